// The bin page: list on the left, detail on the right, live updates, #<seq> in the address bar.

import { initBulk } from "./bulk.js";
import { initCopyButtons } from "./copy.js";
import { DetailPane } from "./detail.js";
import { initForward, showTargets } from "./forward.js";
import { RequestList } from "./list.js";
import { showStatus, watchBin } from "./live.js";
import { initManage, showBin, showDeleted } from "./manage.js";
import { noteStorage, watchStorage } from "./outage.js";
import { RefusedNotice } from "./refused.js";
import { SearchBox } from "./search.js";

const main = document.getElementById("bin");
const binId = main.dataset.binId;
const apiUrl = main.dataset.apiUrl;
const byId = (id) => document.getElementById(id);

initCopyButtons(document.body);
initManage(main);

const list = new RequestList(
  {
    list: byId("request-list"),
    empty: byId("list-empty"),
    noMatch: byId("list-no-match"),
    loading: byId("list-loading"),
    error: byId("list-error"),
    older: byId("load-older"),
    progress: byId("search-progress"),
    count: byId("list-count"),
  },
  apiUrl,
  binId,
);
const search = new SearchBox(
  {
    form: byId("search-form"),
    input: byId("search-input"),
    clear: byId("search-clear"),
    noMatchQuery: byId("no-match-query"),
    noMatchClear: byId("no-match-clear"),
    hint: byId("search-hint"),
    hintText: byId("search-hint-text"),
    hintClear: byId("search-hint-clear"),
  },
  list,
);
const detail = new DetailPane(byId("detail"), apiUrl, binId);
initBulk(apiUrl, binId, list);
initForward(apiUrl);
const refused = new RefusedNotice(
  { box: byId("refused-notice"), lines: byId("refused-lines"), dismiss: byId("refused-dismiss") },
  `${apiUrl}/usage`,
  binId,
);
const status = byId("live-status");

/** The seq named by the address bar's #fragment, or null. */
function seqFromHash() {
  const match = /^#(\d{1,15})$/.exec(window.location.hash);
  return match ? Number(match[1]) : null;
}

function openFromHash() {
  const seq = seqFromHash();
  if (seq === list.selected) return;
  list.select(seq);
  if (seq === null) detail.reset();
  else detail.show(seq);
}

window.addEventListener("hashchange", openFromHash);

// j / k and the arrow keys move the selection, as in a mail client; / goes to the search box.
document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.target instanceof HTMLElement && event.target.closest("input, textarea, select, [contenteditable]")) return;
  if (event.key === "/") {
    event.preventDefault();
    byId("search-input").focus();
    return;
  }
  const step = { j: 1, ArrowDown: 1, k: -1, ArrowUp: -1 }[event.key];
  if (!step) return;
  const seq = list.neighbour(step);
  if (seq === null) return;
  event.preventDefault();
  window.location.hash = `#${seq}`;
});

// Storage is back after a banner: catch the list up, and retry a request that failed to open.
watchStorage({
  onBack: () => {
    list.loadFirstPage();
    if (detail.seq !== null && !byId("detail").querySelector(".detail")) detail.show(detail.seq);
  },
});

async function start() {
  openFromHash();
  const query = SearchBox.fromAddress();
  if (query) {
    // Opened on a search (?q=): the live stream resumes after the newest request the server
    // had when it rendered the page, shown or not.
    list.saw(Number(main.dataset.lastSeq));
  }
  const loaded = query ? await search.apply(query) : await list.loadFirstPage();
  if (list.selected !== null) list.select(list.selected);
  refused.refresh();
  const socket = watchBin({
    binId,
    // After an empty first page, 0 (not null): a capture that lands before the watch is replayed.
    after: () => list.newestSeen ?? (loaded ? 0 : null),
    onCaptured: (summary) => {
      list.saw(summary.seq);
      if (list.query) search.captured(summary);
      else if (list.add(summary, true)) list.update();
    },
    onGap: () => list.loadFirstPage(),
    on: {
      deleted: ({ seqs }) => {
        const gone = Array.isArray(seqs) ? seqs.filter(Number.isSafeInteger) : [];
        list.remove(gone);
        search.forget(gone);
        if (gone.includes(detail.seq)) detail.gone(detail.seq);
      },
      cleared: async () => {
        search.forget([...search.unmatched, ...search.pending]);
        await list.loadFirstPage();
        // The open request may have gone with the rest; asking again shows either it or why not.
        if (detail.seq !== null && !list.rows.has(detail.seq)) detail.show(detail.seq);
      },
      pinned: (summary) => {
        list.refresh(summary);
        if (summary.seq === detail.seq) detail.setPinned(summary.pinned === true);
      },
      bin_updated: (bin) => {
        showBin(bin);
        showTargets(bin);
      },
      bin_deleted: () => showDeleted(),
      refused: () => refused.refresh(),
    },
    onStatus: (state, why) => {
      showStatus(status, state, why);
      // The first page failed earlier (server restarting?): read it now that the server answers.
      if (state === "live" && !list.loaded) list.loadFirstPage();
    },
  });
  socket.on("storage", noteStorage);
}

start();
