// Bulk replay: send every request the list shows (all of them, or all that match the search)
// again, oldest first, one at a time, with progress and a Stop button. The server bounds what
// goes out (HOOKSCOPE_RATE_LIMIT_REPLAY and the outbound slots); a 429 here waits and goes on.

import { fetchJson } from "./detail.js";
import { rememberTarget, recentTargets } from "./targets.js";

const byId = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every seq the list's current search (or no search) finds, oldest first. */
async function matchingSeqs(apiUrl, query, stopped) {
  const seqs = [];
  let before = null;
  do {
    const params = new URLSearchParams({ limit: "200" });
    if (query) params.set("q", query);
    if (before !== null) params.set("before", String(before));
    const page = await fetchJson(`${apiUrl}/requests?${params}`);
    for (const summary of page.requests) seqs.push(summary.seq);
    before = Number.isSafeInteger(page.next_before) ? page.next_before : null;
  } while (before !== null && !stopped());
  return seqs.reverse();
}

/** Send one replay; on 429 wait as told and try the same one again. */
async function replayOne(apiUrl, seq, payload, stopped) {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  for (;;) {
    const response = await fetch(`${apiUrl}/requests/${seq}/replay`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": token },
      body: JSON.stringify(payload),
    });
    const answer = await response.json().catch(() => ({}));
    if (response.status !== 429 || stopped()) return { ok: response.ok, answer };
    await sleep(1000 * Math.max(1, Number(response.headers.get("Retry-After")) || 1));
  }
}

export function initBulk(apiUrl, binId, list) {
  const form = byId("bulk-panel");
  const url = byId("bulk-url");
  const start = byId("bulk-start");
  const stop = byId("bulk-stop");
  const progress = byId("bulk-progress");
  let running = false;
  let stopRequested = false;
  const stopped = () => stopRequested;

  byId("bulk-open").addEventListener("click", () => {
    form.hidden = !form.hidden;
    if (!form.hidden) {
      url.value = url.value || recentTargets(binId)[0] || "";
      byId("bulk-scope").textContent = list.query ? `every request matching “${list.query}”` : "every request in this bin";
      url.focus();
    }
  });
  stop.addEventListener("click", () => { stopRequested = true; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (running) return;
    running = true;
    stopRequested = false;
    start.disabled = true;
    stop.disabled = false;
    const payload = { url: url.value.trim(), append_path: byId("bulk-append-path").checked };
    let sent = 0;
    let failed = 0;
    let firstError = "";
    try {
      progress.textContent = "Finding the requests…";
      const seqs = await matchingSeqs(apiUrl, list.query, stopped);
      for (const seq of seqs) {
        if (stopRequested) break;
        const { ok, answer } = await replayOne(apiUrl, seq, payload, stopped);
        const attempt = ok ? answer : null;
        const good = attempt && attempt.response && attempt.response.status < 300;
        if (!good) {
          failed += 1;
          firstError ||= ok ? `#${seq}: ${attempt.response ? attempt.response.status : attempt.error}` : `#${seq}: ${answer.message || "refused"}`;
        }
        sent += 1;
        if (sent === 1 && ok) rememberTarget(binId, payload.url);
        progress.textContent = `Sent ${sent} of ${seqs.length}${failed ? ` · ${failed} failed (first: ${firstError})` : ""}`;
        if (!ok && answer.error === "target_forbidden") break; // every other one would be refused too
      }
      progress.textContent += stopRequested ? " · stopped" : " · done";
    } catch (err) {
      progress.textContent = `Stopped: ${err.message}`;
    } finally {
      running = false;
      start.disabled = false;
      stop.disabled = true;
    }
  });
}
