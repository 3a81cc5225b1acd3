// One delivery's tries, together: the list filtered to a delivery id (?delivery= in the
// address bar), from the Answer section's "Show every try of it". A search clears it.

export class DeliveryFilter {
  /** `els`: bar, text, clear (the button back to every request); `list`, `search`. */
  constructor(els, list, search) {
    this.els = els;
    this.list = list;
    this.search = search;
    els.clear.addEventListener("click", () => this.apply(null));
  }

  /** The delivery in the address bar, so a reload keeps it. */
  static fromAddress() {
    return new URLSearchParams(window.location.search).get("delivery") || null;
  }

  /** List only the tries of delivery `id` (null: every request again); resolve when shown. */
  async apply(id) {
    this.list.delivery = id;
    this.els.text.textContent = id ? `Every try of delivery ${id}, newest first.` : "";
    const url = new URL(window.location.href);
    if (id) url.searchParams.set("delivery", id);
    else url.searchParams.delete("delivery");
    if (id && this.list.query) {
      url.searchParams.delete("q");
      this.search.els.input.value = "";
      this.search.els.clear.hidden = true;
    }
    window.history.replaceState(window.history.state, "", url);
    return this.list.setQuery("");
  }
}
