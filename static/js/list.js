// The request list: newest first, one row per seq, fed by the list API and the live stream.

import { h } from "./dom.js";
import { fetchJson } from "./detail.js";
import { formatBytes, formatCount, mediaType, methodClass, parseTime, requestTarget, rowTime } from "./format.js";
import { answerLabel } from "./glance.js";

export const PAGE_SIZE = 50;
// A search on PostgreSQL may answer before its page is full, saying how far back it searched
// (searched_down_to). The list goes on by itself for this many such answers in a row, then asks.
export const AUTO_CONTINUE = 25;

const isSeq = (value) => Number.isSafeInteger(value) && value >= 0;

function row(summary, fresh) {
  const seq = summary.seq;
  const target = requestTarget(summary);
  const received = parseTime(summary.received_at);
  const type = mediaType(summary.content_type);
  const size = Number(summary.body_size) || 0;
  const answer = answerLabel(summary);
  const link = h(
    "a",
    { class: "row", attrs: { href: `#${seq}` } },
    h("span", { class: methodClass(summary.method) }, String(summary.method)),
    h("span", { class: "row-target mono", title: target }, target),
    h(
      "span",
      { class: "row-end" },
      h("span", { class: "pin-badge", title: "Pinned: retention keeps it" }, "pinned"),
      h("span", { class: "row-seq mono" }, `#${seq}`),
    ),
    h(
      "span",
      { class: "row-meta" },
      answer ? h("span", { class: `row-answer${answer.bad ? " bad" : ""}`, title: "What the sender was answered" }, answer.text) : null,
      summary.delivery_id ? h("span", { class: "row-delivery mono", title: `Delivery ${summary.delivery_id}` }, `↻ ${summary.delivery_id}`) : null,
      h("time", { attrs: { datetime: String(summary.received_at) }, title: String(summary.received_at) }, received ? rowTime(received) : ""),
      h("span", { class: "row-size", title: formatCount(size) }, formatBytes(size)),
      type ? h("span", { class: "row-type mono", title: String(summary.content_type) }, type) : null,
    ),
  );
  const li = h("li", { class: fresh ? "fresh" : "", dataset: { seq } }, link);
  li.classList.toggle("pinned", summary.pinned === true);
  li.classList.toggle("rejected", summary.rejected === true);
  return li;
}

export class RequestList {
  /**
   * `els`: list, empty, noMatch, loading, error, older (button), progress, count; `apiUrl`: the
   * bin's API URL. With a search `query`, the list shows only what the search API finds.
   */
  constructor(els, apiUrl, binId) {
    this.els = els;
    this.apiUrl = apiUrl;
    this.binId = binId;
    this.rows = new Map(); // seq -> <li>
    this.nextBefore = null;
    this.searchedDownTo = null; // set while a search has not yet looked below this seq
    this.continuing = null; // the generation whose older pages are being read
    this.loaded = false; // the first page has been read at least once
    this.selected = null;
    this.query = "";
    this.delivery = null; // set: only the attempts of this delivery (delivery.js)
    this.newestSeen = null; // the highest seq this page has heard of, shown or not
    this.generation = 0; // bumped by setQuery: answers for an older query are dropped
    els.older.addEventListener("click", () => this.loadOlder());
  }

  /** The highest seq on the page, or null when none. */
  highestSeq() {
    const first = this.els.list.firstElementChild;
    return first ? Number(first.dataset.seq) : null;
  }

  /** Remember a seq the page heard of (to resume the live stream after it), shown or not. */
  saw(seq) {
    if (isSeq(seq) && (this.newestSeen === null || seq > this.newestSeen)) this.newestSeen = seq;
  }

  /** Show what `query` finds (or everything, for ""), from its newest page; resolve when shown. */
  async setQuery(query) {
    this.query = query;
    if (query) this.delivery = null; // a search lists all matches, whatever their delivery
    this.generation += 1;
    for (const li of this.rows.values()) li.remove();
    this.rows.clear();
    this.setNextBefore(null);
    this.loaded = false;
    this.update();
    this.els.loading.hidden = false;
    return this.loadFirstPage();
  }

  /**
   * Read the newest page and make it the list. Rows that were on the page before are replaced by
   * what the server says now (some may be gone); rows that arrived live meanwhile stay. A search
   * that stopped early goes on in the background.
   */
  async loadFirstPage() {
    const shownBefore = this.highestSeq() ?? -1;
    const generation = this.generation;
    const page = await this.fetchPage(null);
    if (!page || generation !== this.generation) return false;
    if (!this.query) this.saw(page.requests[0]?.seq);
    const onPage = new Set(page.requests.map((summary) => summary.seq));
    for (const [seq, li] of this.rows) {
      if (seq <= shownBefore && !onPage.has(seq)) {
        li.remove();
        this.rows.delete(seq);
      }
    }
    this.addAll(page.requests, false);
    this.setNextBefore(page.next_before, page.searched_down_to);
    this.loaded = true;
    // Not awaited: the page is shown; loadOlder marks itself as going on before its first call.
    if (this.searchedDownTo !== null) this.loadOlder(page.requests.length);
    this.update();
    return true;
  }

  /**
   * Read older pages until a page's worth of rows came (counting `got` already), the list ends,
   * or AUTO_CONTINUE answers in a row stopped early; then the button offers to go on.
   */
  async loadOlder(got = 0) {
    const generation = this.generation;
    if (this.nextBefore === null || this.continuing === generation) return;
    this.continuing = generation;
    this.els.older.disabled = true;
    let answers = 0;
    try {
      while (this.nextBefore !== null) {
        this.update();
        const page = await this.fetchPage(this.nextBefore);
        if (!page || generation !== this.generation) return;
        this.addAll(page.requests, false);
        this.setNextBefore(page.next_before, page.searched_down_to);
        got += page.requests.length;
        answers += 1;
        if (this.searchedDownTo === null || got >= PAGE_SIZE || answers >= AUTO_CONTINUE) break;
      }
    } finally {
      if (this.continuing === generation) this.continuing = null;
      if (generation === this.generation) {
        this.els.older.disabled = false;
        this.update();
      }
    }
  }

  async fetchPage(before) {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (before !== null) params.set("before", String(before));
    if (this.query) params.set("q", this.query);
    else if (this.delivery) params.set("delivery", this.delivery);
    const generation = this.generation;
    try {
      const page = await fetchJson(`${this.apiUrl}/requests?${params}`);
      if (generation === this.generation) this.els.error.hidden = true;
      return {
        requests: Array.isArray(page.requests) ? page.requests : [],
        next_before: isSeq(page.next_before) ? page.next_before : null,
        searched_down_to: isSeq(page.searched_down_to) ? page.searched_down_to : null,
      };
    } catch (err) {
      if (generation !== this.generation) return null;
      this.els.error.textContent = `${this.query ? "Cannot search" : "Could not load requests"}: ${err.message}`;
      this.els.error.hidden = false;
      return null;
    } finally {
      this.els.loading.hidden = true;
    }
  }

  /** Remember where the next page starts and, for a search that stopped early, how far it got. */
  setNextBefore(value, searchedDownTo = null) {
    this.nextBefore = isSeq(value) ? value : null;
    this.searchedDownTo = this.nextBefore !== null && isSeq(searchedDownTo) ? searchedDownTo : null;
  }

  addAll(summaries, fresh) {
    for (const summary of summaries) this.add(summary, fresh);
  }

  /** Insert a summary in seq order (newest first); a seq already shown is ignored. */
  add(summary, fresh = true) {
    if (!summary || !isSeq(summary.seq) || summary.bin !== this.binId) return false;
    if (this.delivery && summary.delivery_id !== this.delivery) return false;
    if (this.rows.has(summary.seq)) {
      this.refresh(summary);
      return false;
    }
    const li = row(summary, fresh);
    if (summary.seq === this.selected) li.setAttribute("aria-current", "true");
    const list = this.els.list;
    const seq = summary.seq;
    const first = list.firstElementChild;
    const last = list.lastElementChild;
    if (!first || seq > Number(first.dataset.seq)) {
      list.prepend(li);
    } else if (seq < Number(last.dataset.seq)) {
      list.append(li);
    } else {
      let before = first;
      while (before && Number(before.dataset.seq) > seq) before = before.nextElementSibling;
      list.insertBefore(li, before);
    }
    this.rows.set(seq, li);
    if (fresh) li.addEventListener("animationend", () => li.classList.remove("fresh"), { once: true });
    return true;
  }

  /** Take rows off the list (deleted, or dropped by retention). */
  remove(seqs) {
    for (const seq of seqs) {
      this.rows.get(seq)?.remove();
      this.rows.delete(seq);
    }
    this.update();
  }

  /** Reflect a changed summary (pinned or not) in its row, if shown. */
  refresh(summary) {
    this.rows.get(summary.seq)?.classList.toggle("pinned", summary.pinned === true);
  }

  /** Is the request shown on the list and pinned? */
  isPinned(seq) {
    return Boolean(this.rows.get(seq)?.classList.contains("pinned"));
  }

  /** Show the row for seq as selected (the detail pane shows it even when the row is not loaded). */
  select(seq) {
    if (this.selected !== null) this.rows.get(this.selected)?.removeAttribute("aria-current");
    this.selected = seq;
    const li = seq === null ? null : this.rows.get(seq);
    if (li) {
      li.setAttribute("aria-current", "true");
      li.scrollIntoView({ block: "nearest" });
    }
  }

  /** The seq `step` rows below (positive) or above (negative) the selection, or null. */
  neighbour(step) {
    const current = this.selected === null ? null : this.rows.get(this.selected);
    let li = current || null;
    if (!li) {
      li = this.els.list.firstElementChild;
      return li ? Number(li.dataset.seq) : null;
    }
    li = step > 0 ? li.nextElementSibling : li.previousElementSibling;
    return li ? Number(li.dataset.seq) : null;
  }

  update() {
    if (this.els.delivery) this.els.delivery.hidden = !this.delivery;
    const count = this.rows.size;
    const empty = this.loaded && count === 0 && this.nextBefore === null;
    // A search that stopped early says how far back it looked: going on by itself, or waiting
    // for the button.
    const searching = this.searchedDownTo !== null;
    const continuing = searching && this.continuing === this.generation;
    this.els.older.hidden = this.nextBefore === null || continuing;
    this.els.older.textContent = searching ? "Search older requests" : "Load older";
    const progress = searching ? `Searched back to #${this.searchedDownTo.toLocaleString("en-US")}` : "";
    this.els.progress.hidden = !searching;
    this.els.progress.textContent = !searching ? "" : continuing ? `${progress}…` : `${progress}; older requests not searched yet.`;
    this.els.empty.hidden = !(empty && !this.query);
    this.els.noMatch.hidden = !(empty && this.query);
    this.els.list.closest("main")?.classList.toggle("is-empty", empty && !this.query);
    const found = this.query ? " found" : "";
    this.els.count.textContent = count ? `${count}${this.nextBefore === null ? "" : "+"}${found}` : "";
    const what = this.query ? "matching requests" : "requests";
    this.els.count.setAttribute("title", this.nextBefore === null ? `${count} ${what}` : `${count} ${what} loaded; older ones below`);
  }
}
