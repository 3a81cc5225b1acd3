// One delivery's attempts, together: the list filtered to a delivery id (?delivery= in the
// address bar), from the Answer section's "List its attempts". A search clears it.

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

  /** List only the attempts of `id` (null: every request again); resolve when shown. */
  async apply(id) {
    this.list.delivery = id;
    this.els.text.textContent = id ? `Attempts of delivery ${id}, newest first.` : "";
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
