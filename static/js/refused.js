// Refused captures: a notice on the bin page when senders were turned away (a flood limit, the
// body size or time limit, the bin's ingest protection, storage), each line naming what changes it.
// Read from GET .../usage; the live stream's `refused` event says when to read again.

import { h } from "./dom.js";

const storageKey = (binId) => `hookscope:refused-dismissed:${binId}`;

function plural(n, word) {
  return `${n.toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;
}

/** The advice, with the setting it names (if any) as code. */
function advice(reason) {
  const text = String(reason.advice || "");
  const setting = reason.setting ? String(reason.setting) : "";
  const at = setting ? text.indexOf(setting) : -1;
  if (at < 0) return [text];
  return [text.slice(0, at), h("code", null, setting), text.slice(at + setting.length)];
}

/** One line: "312 requests refused by the per-bin limit in the last hour: raise ...". */
function line([code, reason]) {
  const hour = Number(reason.last_hour) || 0;
  const count = hour > 0 ? hour : Number(reason.last_day) || 0;
  const when = hour > 0 ? "in the last hour" : "in the last day";
  return h(
    "li",
    { dataset: { reason: code } },
    h("strong", null, plural(count, "request")),
    ` ${String(reason.summary)} ${when}`,
    reason.advice ? [": ", advice(reason)] : null,
  );
}

export class RefusedNotice {
  /** `els`: {box, lines, dismiss}; `usageUrl`: the bin's GET .../usage. */
  constructor(els, usageUrl, binId) {
    this.els = els;
    this.url = usageUrl;
    this.key = storageKey(binId);
    this.total = 0;
    this.loading = false;
    this.again = false;
    els.dismiss.addEventListener("click", () => this.dismiss());
  }

  /** Read the counts again (one request at a time; a call meanwhile reads once more after). */
  async refresh() {
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    try {
      const response = await fetch(this.url, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.ok) this.show(await response.json());
    } catch {
      // Offline or restarting: the storage banner says so; the next event or reload reads again.
    } finally {
      this.loading = false;
    }
    if (this.again) {
      this.again = false;
      this.refresh();
    }
  }

  /** Show the refusals of the last day, unless none, or none since the notice was dismissed. */
  show(usage) {
    const refused = (usage && usage.refused) || {};
    const reasons = Object.entries(refused.by_reason || {}).filter(([, r]) => Number(r.last_day) > 0);
    reasons.sort(([, a], [, b]) => b.last_hour - a.last_hour || b.last_day - a.last_day);
    this.total = Number(refused.last_day) || 0;
    // Old refusals age out of the day's count: dismissed ones must not hide new ones for long.
    if (this.total < this.dismissedAt()) this.remember(this.total);
    if (reasons.length === 0 || this.total <= this.dismissedAt()) {
      this.els.box.hidden = true;
      return;
    }
    this.els.lines.replaceChildren(...reasons.map(line));
    this.els.box.hidden = false;
  }

  /** Hide the notice until more requests are refused. */
  dismiss() {
    this.remember(this.total);
    this.els.box.hidden = true;
  }

  remember(total) {
    this.dismissedTotal = total;
    try {
      sessionStorage.setItem(this.key, String(total));
    } catch {
      // Storage refused (private mode): dismissed for this page only.
    }
  }

  dismissedAt() {
    if (this.dismissedTotal !== undefined) return this.dismissedTotal;
    try {
      const stored = sessionStorage.getItem(this.key);
      return stored === null ? -1 : Number(stored);
    } catch {
      return -1;
    }
  }
}
