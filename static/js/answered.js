// The detail pane's "Answer" section: what the capture was answered, as sent, and why.

import { h, pairsTable, section } from "./dom.js";
import { fullLocalTime, parseTime } from "./format.js";
import { TEXT_LIMIT, hexDump, note, strictText, truncationNote } from "./render.js";

const HANDSHAKES = {
  slack: "Slack's url_verification",
  graph: "Microsoft Graph's validationToken",
  dropbox: "Dropbox's challenge",
  twitch: "Twitch EventSub's callback verification",
  meta: "Meta's hub.challenge",
  zoom: "Zoom's endpoint.url_validation",
};

/** Why this answer: "rule “failed payments” (1st)", "the bin's response", ... */
export function answeredBy(answer) {
  switch (answer.source) {
    case "rule":
      return `rule “${answer.rule || "(no name)"}” (rule ${Number(answer.rule_index) + 1})`;
    case "response":
      return "the bin's response";
    case "handshake":
      return `a handshake: ${HANDSHAKES[answer.handshake] || String(answer.handshake)}`;
    case "preflight":
      return "a CORS preflight";
    case "ingest_auth":
      return "ingest protection: the credentials were missing or wrong";
    default:
      return "the default answer (no response settings)";
  }
}

function sentText(answer) {
  const sent = parseTime(answer.sent_at);
  if (sent) return fullLocalTime(sent);
  if (!answer.recorded) return "as soon as the capture was stored";
  return `not yet: it goes out after ${Number(answer.delay_ms).toLocaleString("en-US")} ms`;
}

/** The body as sent: text when it is UTF-8 (bounded, and saying so), else a hex dump. */
function bodyView(bytes) {
  if (bytes.length === 0) return h("p", { class: "muted" }, "(no body)");
  const text = strictText(bytes, "utf-8");
  const pre = h("pre", { class: "body-pre mono answer-body" });
  if (text === null) {
    pre.textContent = hexDump(bytes);
    pre.classList.add("body-hex");
    return pre;
  }
  pre.textContent = text.length > TEXT_LIMIT ? text.slice(0, TEXT_LIMIT) : text;
  return h("div", null, text.length > TEXT_LIMIT ? truncationNote(TEXT_LIMIT, text.length) : null, pre);
}

function bodyBytes(answer) {
  if (answer.body_encoding === "base64") return Uint8Array.from(atob(String(answer.body)), (c) => c.charCodeAt(0));
  return new TextEncoder().encode(String(answer.body ?? ""));
}

/** The Answer section of a request's detail; `onDelivery(id)` lists one delivery's attempts. */
export function answerSection(detail, onDelivery) {
  const answer = detail.answer;
  if (!answer) return null;
  const status = answer.hang_up ? "no answer: the connection was closed" : String(answer.status);
  const rows = [
    ["Status", h("span", { class: answer.hang_up || answer.status >= 400 ? "answer-rejected" : "" }, status)],
    ["Chosen by", answeredBy(answer)],
    ["Sent", h("span", { title: String(answer.sent_at ?? "") }, sentText(answer))],
  ];
  if (answer.delay_ms) rows.push(["Delay", `${Number(answer.delay_ms).toLocaleString("en-US")} ms`]);
  if (answer.failure) rows.push(["Failed on purpose", String(answer.failure)]);
  if (answer.template_error) rows.push(["Template error", String(answer.template_error)]);
  if (answer.delivery_id !== null && answer.delivery_id !== undefined) {
    const show = h("button", { class: "link-button", text: "Show every try of it", attrs: { type: "button" } });
    show.addEventListener("click", () => onDelivery(String(answer.delivery_id)));
    rows.push(["Delivery", h("span", null, h("span", { class: "mono break" }, String(answer.delivery_id)), " ", show)]);
  }
  const overview = h("dl", { class: "answer-facts" }, rows.map(([term, value]) => [h("dt", null, term), h("dd", null, value)]));
  const headers = Array.isArray(answer.headers) ? answer.headers : [];
  const bytes = bodyBytes(answer);
  return section(
    "Answer",
    null,
    overview,
    headers.length ? h("h4", { class: "answer-sub" }, "Headers") : null,
    headers.length ? pairsTable(headers, { className: "headers" }) : null,
    answer.hang_up ? null : h("h4", { class: "answer-sub" }, "Body"),
    answer.hang_up ? null : bodyView(bytes),
    detail.method === "HEAD" && !answer.hang_up ? note("A HEAD request: the headers went out without the body.") : null,
  );
}
