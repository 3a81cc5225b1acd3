// Storage trouble: when the server answers 503 (its database is locked, full or down) or cannot be
// reached, show the banner from base.html, ask /readyz again with backoff (never sooner than the
// server's Retry-After), and take the banner down by itself once storage takes writes again.

import { h } from "./dom.js";

const READY_URL = "/readyz";
const MAX_DELAY_S = 30;
const UNREACHABLE_DELAY_S = 2;
// The server repeats "storage failed" at most once per Retry-After while failures go on; the
// banner stays up this many of those periods after the last one.
const LEASE_PERIODS = 3;

const MESSAGES = {
  storage: [
    "Storage is unavailable.",
    "New captures are refused with 503 and Retry-After, so senders try again later; nothing already stored is lost.",
  ],
  unreachable: ["Cannot reach Hookscope.", "The server is not answering; this page catches up when it is back."],
};

const state = {
  reason: null, // null while all is well, else "storage" or "unreachable"
  attempt: 0,
  dueAt: 0,
  quietUntil: 0, // a server reported failed writes: keep the banner up until then at least
  timer: null,
  ticker: null,
  checking: false,
  onBack: () => {},
};

const byId = (id) => document.getElementById(id);

/** Seconds from a Retry-After header (seconds or an HTTP date), within 1 s and 5 min. */
export function retryAfterSeconds(value, fallback = 5) {
  const text = String(value ?? "").trim();
  let seconds = /^\d+$/.test(text) ? Number(text) : (Date.parse(text) - Date.now()) / 1000;
  if (!Number.isFinite(seconds)) seconds = fallback;
  return Math.min(Math.max(Math.ceil(seconds), 1), 300);
}

function render() {
  const banner = byId("storage-banner");
  if (!banner) return;
  if (state.reason === null) {
    banner.hidden = true;
    byId("storage-banner-message").textContent = "";
    return;
  }
  const [title, detail] = MESSAGES[state.reason];
  const message = byId("storage-banner-message");
  // Shown first, then filled: a live region announces what changes while it is displayed.
  banner.hidden = false;
  banner.dataset.reason = state.reason;
  if (message.dataset.reason !== state.reason) {
    message.dataset.reason = state.reason;
    message.replaceChildren(h("strong", null, title), ` ${detail}`);
  }
  renderCountdown();
}

function renderCountdown() {
  const left = Math.max(0, Math.ceil((state.dueAt - Date.now()) / 1000));
  byId("storage-banner-retry").textContent = state.timer === null ? "Checking…" : `Retrying in ${left} s`;
}

function schedule(seconds) {
  clearTimeout(state.timer);
  state.dueAt = Date.now() + seconds * 1000;
  state.timer = setTimeout(check, seconds * 1000);
  if (state.ticker === null) state.ticker = setInterval(renderCountdown, 1000);
  render();
}

/** Wait at least what the server asked, doubling after each failed check up to 30 s, plus jitter. */
function backoff(base) {
  const grown = Math.min(base * 2 ** state.attempt, MAX_DELAY_S);
  return Math.max(base, grown) * (1 + Math.random() * 0.2);
}

/** Note trouble: show the banner and make sure a check is coming. */
export function troubled(reason, seconds) {
  const first = state.reason === null;
  state.reason = reason;
  if (first) {
    state.attempt = 0;
    schedule(seconds);
  } else {
    render();
  }
}

/** Report an API answer: a 503 means storage trouble. Returns whether it was one. */
export function noteAnswer(response) {
  if (response.status !== 503) return false;
  troubled("storage", retryAfterSeconds(response.headers.get("Retry-After")));
  return true;
}

/** Report that a request got no answer at all (network down, server stopped). */
export function noteUnreachable() {
  troubled("unreachable", UNREACHABLE_DELAY_S);
}

/** Take the server's word from the live stream: {ok, retry_after}. */
export function noteStorage(news) {
  const seconds = retryAfterSeconds(news && news.retry_after);
  if (news && news.ok === true) {
    if (state.reason !== null) recovered();
    return;
  }
  state.quietUntil = Date.now() + LEASE_PERIODS * seconds * 1000;
  troubled("storage", seconds);
}

function recovered() {
  clearTimeout(state.timer);
  clearInterval(state.ticker);
  Object.assign(state, { reason: null, attempt: 0, quietUntil: 0, timer: null, ticker: null });
  render();
  state.onBack();
}

/** Ask the server whether storage takes writes; recover, or wait and ask again. */
async function check() {
  if (state.checking || state.reason === null) return;
  clearTimeout(state.timer);
  state.timer = null;
  state.checking = true;
  renderCountdown();
  let response;
  try {
    response = await fetch(READY_URL, { cache: "no-store", headers: { Accept: "application/json" } });
  } catch {
    state.checking = false;
    state.reason = "unreachable";
    state.attempt += 1;
    schedule(backoff(UNREACHABLE_DELAY_S));
    return;
  }
  state.checking = false;
  if (response.ok && Date.now() >= state.quietUntil) {
    recovered();
    return;
  }
  if (response.ok) {
    // Writes work for this check, but a capture failed moments ago: look again when that is old.
    schedule(Math.max(1, (state.quietUntil - Date.now()) / 1000));
    return;
  }
  state.reason = "storage";
  state.attempt += 1;
  schedule(backoff(retryAfterSeconds(response.headers.get("Retry-After"))));
}

/** Wire the banner's button; `onBack` runs each time storage is back (reload, catch up). */
export function watchStorage({ onBack } = {}) {
  if (onBack) state.onBack = onBack;
  byId("storage-banner-now")?.addEventListener("click", check);
}
