// A request's attempts (replays and auto-forward tries), shown in its detail view.

import { fetchJson } from "./detail.js";
import { clear, h, longText, pairsTable } from "./dom.js";
import { fullLocalTime, parseTime } from "./format.js";
import { note } from "./render.js";

/** One line saying how an attempt went. */
export function outcomeText(attempt) {
  if (attempt.state === "pending") {
    const due = parseTime(attempt.due_at);
    return `pending${due ? `, due ${fullLocalTime(due).slice(11, 19)}` : ""}`;
  }
  if (attempt.response) {
    const { status, reason } = attempt.response;
    return `${status}${reason ? ` ${reason}` : ""}`;
  }
  return String(attempt.error);
}

function tone(attempt) {
  if (attempt.state === "pending") return "pending";
  const status = attempt.response ? attempt.response.status : null;
  return status !== null && status >= 200 && status < 300 ? "ok" : "bad";
}

function bodyOf(body) {
  if (!body || !body.size) return h("p", { class: "muted" }, "(no body)");
  const cut = body.truncated ? note("Cut: only the start of the body was kept.") : null;
  if (typeof body.text === "string") return h("div", null, cut, h("pre", { class: "mono attempt-body" }, longText(body.text, 4000)));
  return h("div", null, cut, h("p", { class: "muted" }, "Binary body, base64:"), h("pre", { class: "mono attempt-body" }, longText(String(body.base64), 4000)));
}

function attemptItem(attempt) {
  const kind = attempt.kind === "forward" ? `Forward, try ${attempt.try}` : "Replay";
  const flags = [attempt.edited ? "edited" : null, attempt.resigned ? `re-signed (${attempt.resigned})` : null].filter(Boolean);
  const started = parseTime(attempt.started_at);
  const ms = attempt.timings && Number.isFinite(attempt.timings.total_ms) ? `${Math.round(attempt.timings.total_ms)} ms` : "";
  const summary = h(
    "summary",
    null,
    h("span", { class: `attempt-outcome attempt-${tone(attempt)}` }, outcomeText(attempt)),
    h("span", { class: "attempt-kind" }, [kind, ...flags].join(" · ")),
    h("span", { class: "mono attempt-target", title: String(attempt.url || attempt.target) }, `${attempt.method} ${attempt.url || attempt.target}`),
    h("span", { class: "muted attempt-when" }, [started ? fullLocalTime(started).slice(11, 19) : "", ms].filter(Boolean).join(" · ")),
  );
  const parts = [];
  if (attempt.retry_at) parts.push(h("p", { class: "muted" }, `Tried again at ${fullLocalTime(parseTime(attempt.retry_at))}.`));
  if (attempt.response) {
    parts.push(attempt.response.headers.length ? pairsTable(attempt.response.headers, { className: "headers" }) : null);
    parts.push(bodyOf(attempt.response.body));
  }
  if (attempt.message) parts.push(note(String(attempt.message), attempt.response ? "info" : "warn"));
  if (attempt.address) parts.push(h("p", { class: "muted mono" }, `${attempt.response ? "Connected to" : "Tried"} ${attempt.address}`));
  return h("li", { class: "attempt", dataset: { id: attempt.id, state: attempt.state } }, h("details", null, summary, ...parts));
}

/** Fill `root` with the attempts (newest first); return whether any is still pending. */
export function showAttempts(root, attempts) {
  clear(root);
  if (!attempts.length) {
    root.appendChild(h("p", { class: "muted" }, "Not sent anywhere yet. Replay it, or set the bin to forward its captures."));
    return false;
  }
  root.appendChild(h("ol", { class: "attempts" }, attempts.map(attemptItem)));
  return attempts.some((a) => a.state === "pending");
}

/** Show a request's attempts; look again every 2 s while one is pending and they are shown. */
export async function loadAttempts(url, root, setTimer) {
  let pending = false;
  try {
    pending = showAttempts(root, (await fetchJson(url)).attempts);
  } catch (err) {
    if (root.isConnected) root.replaceChildren(note(`Could not load the attempts: ${err.message}`, "warn"));
  }
  if (pending && root.isConnected) setTimer(setTimeout(() => loadAttempts(url, root, setTimer), 2000));
}
