// What a bin answers, said in a line: for the bin's header and the list's rows. Pure.

function seconds(ms) {
  const s = Number(ms) / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

/** "first 3 fail (per X-Delivery-Id) with 503", "25% time out". */
export function failureText(failure) {
  if (!failure) return "";
  const which = failure.first !== undefined
    ? `first ${failure.first} fail${failure.per_header ? ` (per ${failure.per_header})` : ""}`
    : `${failure.percent}% fail`;
  return failure.timeout ? `${which} by timing out` : `${which} with ${failure.status}`;
}

/** One line for a bin's response settings (the API's response, rules, handshakes, cors). */
export function glance(settings) {
  const parts = [];
  const response = settings.response;
  if (!response) {
    parts.push("200 ok (default)");
  } else {
    let text = String(response.status);
    if (response.delay_ms) text += ` after ${seconds(response.delay_ms)}`;
    parts.push(text);
    if (response.failure) parts.push(failureText(response.failure));
  }
  const rules = Array.isArray(settings.rules) ? settings.rules.length : 0;
  if (rules) parts.push(`${rules} rule${rules === 1 ? "" : "s"}`);
  parts.push(settings.handshakes?.enabled === false ? "handshakes off" : "handshakes on");
  if (settings.cors?.enabled) parts.push("CORS on");
  return parts.join(" · ");
}

/** A list row's answer: {text, bad} for anything but a plain 200, else null. */
export function answerLabel(summary) {
  const status = Number(summary.status);
  if (summary.rejected) return { text: `${Number.isFinite(status) ? status : ""} rejected`.trim(), bad: true };
  if (status === 0) return { text: "no answer", bad: true };
  if (!Number.isFinite(status) || status === 200) return null;
  return { text: String(status), bad: status >= 400 };
}
