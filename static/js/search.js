// The search box: filters the list through the search API; clearing it brings the live list back.
//
// While a search is shown, a capture that arrives live is never put on the list as it is: the
// page cannot tell from a summary whether its headers or body match. It asks the search API again
// (once per burst), shows the new requests that match, and counts the ones that do not in a hint
// with a way back to the full list.

const TYPING_MS = 250; // wait this long after the last keystroke before searching
const RECHECK_MS = 400; // gather live captures this long before asking whether they match

function plural(n, one, many) {
  return `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

export class SearchBox {
  /** `els`: form, input, clear, noMatchQuery, noMatchClear, hint, hintText, hintClear. */
  constructor(els, list) {
    this.els = els;
    this.list = list;
    this.typing = null;
    this.recheck = null;
    this.pending = new Set(); // live seqs not yet checked against the search
    this.unmatched = new Set(); // live seqs the search did not find
    els.input.addEventListener("input", () => {
      clearTimeout(this.typing);
      this.typing = setTimeout(() => this.apply(els.input.value), TYPING_MS);
    });
    els.form.addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(this.typing);
      this.apply(els.input.value);
    });
    els.input.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && els.input.value) {
        event.preventDefault();
        this.clear();
      }
    });
    for (const button of [els.clear, els.noMatchClear, els.hintClear]) {
      button.addEventListener("click", () => this.clear());
    }
  }

  /** The search in the address bar (?q=), so a reload or a bookmark keeps it. */
  static fromAddress() {
    return new URLSearchParams(window.location.search).get("q") ?? "";
  }

  /** Empty the box and show the whole list again. */
  clear() {
    clearTimeout(this.typing);
    this.els.input.value = "";
    this.els.input.focus();
    return this.apply("");
  }

  /** Show what `text` finds ("" shows everything); resolve to whether the list loaded. */
  async apply(text) {
    const query = text.trim();
    if (this.els.input.value.trim() !== query) this.els.input.value = query;
    if (query === this.list.query && this.list.loaded) return true;
    clearTimeout(this.recheck);
    this.pending.clear();
    this.unmatched.clear();
    this.showHint();
    this.els.clear.hidden = !query;
    this.els.noMatchQuery.textContent = query;
    this.remember(query);
    return this.list.setQuery(query);
  }

  remember(query) {
    const url = new URL(window.location.href);
    if (query) url.searchParams.set("q", query);
    else url.searchParams.delete("q");
    window.history.replaceState(window.history.state, "", url);
  }

  /** A capture arrived while a search is shown: check it (with any others) against the search. */
  captured(summary) {
    this.pending.add(summary.seq);
    clearTimeout(this.recheck);
    this.recheck = setTimeout(() => this.checkPending(), RECHECK_MS);
  }

  async checkPending() {
    const query = this.list.query;
    const checking = [...this.pending];
    if (!query || checking.length === 0) return;
    const page = await this.list.fetchPage(null);
    if (!page || query !== this.list.query) return;
    const found = new Set(page.requests.map((summary) => summary.seq));
    // A full page ends somewhere: what lies below it is not known to miss the search. A search
    // that stopped early has looked at everything from searched_down_to up.
    let lowest = page.searched_down_to ?? Math.min(...found);
    if (page.next_before === null) lowest = -1;
    for (const summary of page.requests) {
      if (this.pending.has(summary.seq) && this.list.add(summary, true)) this.list.update();
    }
    for (const seq of checking) {
      this.pending.delete(seq);
      if (!found.has(seq) && seq >= lowest) this.unmatched.add(seq);
    }
    this.showHint();
  }

  /** Forget requests that are gone (deleted, dropped by retention, cleared). */
  forget(seqs) {
    for (const seq of seqs) {
      this.pending.delete(seq);
      this.unmatched.delete(seq);
    }
    this.showHint();
  }

  showHint() {
    const n = this.unmatched.size;
    this.els.hint.hidden = n === 0;
    this.els.hintText.textContent = n ? `${plural(n, "new request", "new requests")} not matching this search.` : "";
  }
}
