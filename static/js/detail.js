// The detail pane: overview, headers, query and body of one captured request.

import { clear, h, longText, pairsTable } from "./dom.js";
import {
  formatBytes, formatCount, fullLocalTime, mediaType, methodClass, parseTime, relativeTime, requestTarget,
} from "./format.js";
import { armTwice, change, notify } from "./actions.js";
import { loadAttempts } from "./attempts.js";
import { copyAsPanel, replayPanel } from "./replay.js";
import { noteAnswer, noteUnreachable } from "./outage.js";
import {
  emptyView, formView, hexView, inflate, inflateFormat, jsonView, multipartView, note, rawView, textView,
} from "./render.js";

/** Fetch JSON from the API; throw an Error carrying the API's message on failure. */
export async function fetchJson(url, options) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" }, ...options });
  } catch (err) {
    noteUnreachable();
    throw err;
  }
  noteAnswer(response);
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    // not JSON: fall through to the status line
  }
  if (!response.ok) {
    const message = payload && typeof payload.message === "string" ? payload.message : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return payload;
}

// Whether each section is open; a section the user folds stays folded for the next request.
const sectionOpen = new Map();

function details(title, count, ...children) {
  const open = sectionOpen.get(title) ?? !(count === 0);
  const el = h(
    "details",
    { class: "section", dataset: { section: title.toLowerCase() }, attrs: { open } },
    h("summary", null, h("h3", null, title), count === null ? null : h("span", { class: "count" }, String(count))),
    h("div", { class: "section-body" }, ...children),
  );
  // Remember what the user did (a click on the summary, or Enter on it), not what the page set.
  el.firstElementChild.addEventListener("click", () => sectionOpen.set(title, !el.open));
  return el;
}

function overview(detail) {
  const received = parseTime(detail.received_at);
  const rows = [
    ["Method", h("span", { class: methodClass(detail.method) }, String(detail.method))],
    ["URL", h("span", { class: "mono break" }, longText(detail.url ?? ""))],
    ["Client", h("span", { class: "mono" }, String(detail.remote_addr ?? ""))],
    [
      "Received",
      h(
        "span",
        { class: "mono", title: `${detail.received_at}${received ? ` (${relativeTime(received)})` : ""}` },
        received ? fullLocalTime(received) : String(detail.received_at ?? ""),
      ),
    ],
    ["Size", h("span", { title: formatCount(detail.body.size) }, formatBytes(detail.body.size))],
    ["Answered", h("span", { class: detail.rejected ? "answer-rejected" : "" }, answered(detail))],
    ["Content type", h("span", { class: "mono break" }, detail.content_type ? String(detail.content_type) : "(none)")],
    ["HTTP version", h("span", { class: "mono" }, String(detail.http_version ?? ""))],
  ];
  return h("dl", { class: "overview" }, rows.map(([term, value]) => [h("dt", null, term), h("dd", null, value)]));
}

const KIND_LABELS = { json: "JSON", form: "Form", multipart: "Multipart", text: "Text", binary: "Binary", empty: "Empty" };

function answered(detail) {
  const status = detail.status === null || detail.status === undefined ? "?" : String(detail.status);
  return detail.rejected ? `${status}, rejected: the capture URL requires credentials this request lacked` : status;
}

// The body tab the user picked last; it stays picked across requests.
let bodyMode = "pretty";

/** Pick the "Pretty" renderer for a body (after inflating it for display, when it is compressed). */
async function prettyView(detail, bytes) {
  const { kind, charset, content_encoding: encoding } = detail.body;
  if (kind === "empty") return emptyView();
  if (encoding && encoding.toLowerCase() !== "identity") return encodedView(detail, bytes, encoding);
  if (kind === "json") return jsonView(bytes, charset);
  if (kind === "form") return formView(detail);
  if (kind === "multipart") return multipartView(detail);
  if (kind === "text") return textView(bytes, charset);
  return hexView(bytes);
}

async function encodedView(detail, bytes, encoding) {
  const label = `${encoding}-encoded, ${formatCount(bytes.length)}`;
  const format = inflateFormat(encoding);
  if (!format) {
    const view = hexView(bytes);
    view.insertBefore(note(`${label}; this browser cannot decode it for display, so here are the bytes as received.`), view.firstChild);
    return view;
  }
  let inflated;
  try {
    inflated = await inflate(bytes, format);
  } catch (err) {
    const view = hexView(bytes);
    view.insertBefore(note(`${label}; decoding failed (${err.message || err}), so here are the bytes as received.`, "warn"), view.firstChild);
    return view;
  }
  const type = mediaType(detail.content_type);
  const plain = inflated.bytes;
  let view;
  if (type === "application/json" || type.endsWith("+json")) view = jsonView(plain, detail.body.charset);
  else view = rawView(plain, detail.body.charset);
  const more = inflated.truncated ? ` (stopped at ${formatBytes(plain.length)})` : ` to ${formatCount(plain.length)}`;
  view.insertBefore(note(`${label}; shown decompressed${more}. Raw shows the bytes as received.`), view.firstChild);
  return view;
}

function bodySection(detail, bodyPromise) {
  const size = Number(detail.body.size);
  const content = h("div", { class: "body-content" }, h("p", { class: "muted" }, size ? "Loading body…" : "(no body)"));
  const tabs = {};
  const views = {};
  let bytes = null;

  const show = async (mode) => {
    bodyMode = mode;
    for (const [name, tab] of Object.entries(tabs)) tab.setAttribute("aria-selected", String(name === mode));
    if (bytes === null) return;
    if (!views[mode]) views[mode] = mode === "pretty" ? prettyView(detail, bytes) : Promise.resolve(rawView(bytes, detail.body.charset));
    const view = await views[mode].catch((err) => note(`Could not show the body: ${err.message || err}`, "warn"));
    if (bodyMode === mode) clear(content).appendChild(view);
  };

  for (const [mode, label] of [["pretty", "Pretty"], ["raw", "Raw"]]) {
    tabs[mode] = h("button", {
      class: "tab",
      text: label,
      attrs: { type: "button", role: "tab", "aria-selected": String(mode === bodyMode) },
      dataset: { mode },
      on: { click: () => show(mode) },
    });
  }
  const kindLabel = [KIND_LABELS[detail.body.kind] || detail.body.kind, detail.body.charset, detail.body.content_encoding]
    .filter(Boolean).map(String).join(" · ");
  const toolbar = h(
    "div",
    { class: "body-toolbar" },
    h("div", { class: "tabs", attrs: { role: "tablist", "aria-label": "Body view" } }, tabs.pretty, tabs.raw),
    h("span", { class: "muted body-kind mono" }, kindLabel),
    rawLink(detail),
  );

  bodyPromise.then(
    (buffer) => {
      if (!content.isConnected) return; // the user has moved on to another request
      bytes = new Uint8Array(buffer);
      show(bodyMode);
    },
    (err) => clear(content).appendChild(note(`Could not load the body: ${err.message || err}`, "warn")),
  );
  const hash = size ? h("p", { class: "body-hash muted mono" }, `SHA-256 ${detail.body.sha256}`) : null;
  return details("Body", formatBytes(size), size ? toolbar : null, content, hash);
}

function rawLink(detail) {
  const url = String(detail.raw_url || "");
  // raw_url comes from our API; accept only a same-origin path, never a captured value.
  if (!url.startsWith("/api/")) return null;
  return h("a", { class: "button button-small", text: "Download raw", attrs: { href: url, download: "" } });
}

export class DetailPane {
  constructor(root, apiUrl, binId) {
    this.root = root;
    this.apiUrl = apiUrl;
    this.binId = binId;
    this.placeholder = root.querySelector("#detail-placeholder");
    this.token = 0;
    this.seq = null;
  }

  /** Show whether the open request is pinned. */
  setPinned(pinned) {
    if (!this.pinButton) return;
    this.pinButton.setAttribute("aria-pressed", String(pinned));
    this.pinButton.textContent = pinned ? "Unpin" : "Pin";
    this.pinButton.setAttribute("title", pinned ? "Pinned: retention and Clear keep it" : "Keep it through retention and Clear");
  }

  /** Say that the open request is gone (deleted here, in another tab, or by retention). */
  gone(seq) {
    this.token += 1;
    this.seq = seq;
    clear(this.root).appendChild(h("div", { class: "detail-placeholder" }, note(`Request #${seq} was deleted.`)));
  }

  /** Show nothing selected. */
  reset() {
    this.token += 1;
    this.seq = null;
    clear(this.root).appendChild(this.placeholder);
  }

  /** Fetch and show one request; a later call wins over a slower earlier one. */
  async show(seq) {
    const token = ++this.token;
    this.seq = seq;
    this.root.setAttribute("aria-busy", "true");
    let detail;
    try {
      detail = await fetchJson(`${this.apiUrl}/requests/${seq}`);
    } catch (err) {
      if (token !== this.token) return;
      this.root.removeAttribute("aria-busy");
      clear(this.root).appendChild(h("div", { class: "detail-placeholder" }, note(`Request #${seq}: ${err.message}`, "warn")));
      return;
    }
    if (token !== this.token) return;
    const body = detail.body.size > 0 && detail.raw_url
      ? fetch(detail.raw_url).then((r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error(`HTTP ${r.status}`))))
      : Promise.resolve(new ArrayBuffer(0));
    this.render(detail, body);
    this.root.removeAttribute("aria-busy");
  }

  render(detail, bodyPromise) {
    const target = requestTarget(detail);
    const requestUrl = `${this.apiUrl}/requests/${detail.seq}`;
    this.pinButton = h("button", { class: "button button-small", attrs: { type: "button", "aria-pressed": "false" } });
    this.setPinned(detail.pinned === true);
    this.pinButton.addEventListener("click", () =>
      change(requestUrl, "PATCH", { pinned: this.pinButton.getAttribute("aria-pressed") !== "true" })
        .then((summary) => this.setPinned(summary.pinned === true))
        .catch((err) => notify(`Could not change the pin: ${err.message}`, "warn")));
    const remove = h("button", { class: "button button-small button-danger", text: "Delete", attrs: { type: "button" } });
    armTwice(remove, "Delete it?", () =>
      change(requestUrl, "DELETE").catch((err) => notify(`Could not delete #${detail.seq}: ${err.message}`, "warn")));
    const attempts = h("div", { class: "attempts-body" }, h("p", { class: "muted" }, "Loading…"));
    const replay = replayPanel(detail, bodyPromise, { requestUrl, binId: this.binId, onSent: () => this.loadAttempts(requestUrl, attempts) });
    const copyAs = copyAsPanel(detail, requestUrl);
    const button = (text, id, action) => h("button", { class: "button button-small", text, attrs: { type: "button", id }, on: { click: action } });
    const head = h(
      "header",
      { class: "detail-head" },
      h("span", { class: methodClass(detail.method) }, String(detail.method)),
      h("span", { class: "detail-target mono", title: target }, target),
      h("span", { class: "detail-seq mono" }, `#${detail.seq}`),
      h(
        "span",
        { class: "detail-actions" },
        button("Replay to…", "replay-open", () => { copyAs.panel.hidden = true; replay.open(false); }),
        button("Edit and replay", "replay-edit-open", () => { copyAs.panel.hidden = true; replay.open(true); }),
        button("Copy as…", "copy-as-open", () => { replay.form.hidden = true; copyAs.open(); }),
        this.pinButton,
        remove,
      ),
    );
    const headers = Array.isArray(detail.headers) ? detail.headers : [];
    const query = Array.isArray(detail.query) ? detail.query : [];
    const view = h(
      "article",
      { class: "detail", dataset: { seq: detail.seq } },
      head,
      replay.form,
      copyAs.panel,
      h(
        "div",
        { class: "detail-top" },
        h(
          "div",
          { class: "detail-column" },
          details("Overview", null, overview(detail)),
          details("Query", query.length, query.length ? pairsTable(query, { name: "Key", className: "query" }) : h("p", { class: "muted" }, "No query string.")),
        ),
        details("Headers", headers.length, headers.length ? pairsTable(headers, { className: "headers" }) : note("No headers.")),
      ),
      bodySection(detail, bodyPromise),
      details("Attempts", null, attempts),
    );
    clear(this.root).appendChild(view);
    this.root.scrollTop = 0;
    this.loadAttempts(requestUrl, attempts);
  }

  loadAttempts(requestUrl, root) {
    clearTimeout(this.attemptsTimer);
    loadAttempts(`${requestUrl}/attempts`, root, (timer) => { this.attemptsTimer = timer; });
  }
}
