// Send the open request again: "Replay to…", "Edit and replay" (method, headers, body), re-sign,
// and "Copy as" (cURL, HTTPie, Python, fetch). Everything captured goes through value/textContent.

import { change } from "./actions.js";
import { h } from "./dom.js";
import { fetchJson } from "./detail.js";
import { outcomeText } from "./attempts.js";
import { fillTargets, rememberTarget, recentTargets } from "./targets.js";

const SCHEMES = [["", "Keep the captured signature"], ["stripe", "Stripe"], ["github", "GitHub"], ["shopify", "Shopify"], ["standard_webhooks", "Standard Webhooks"]];
const TOOLS = [["curl", "cURL"], ["httpie", "HTTPie"], ["python", "Python requests"], ["fetch", "JavaScript fetch"]];

const field = (label, control) => h("label", { class: "replay-field" }, h("span", { class: "copy-label" }, label), control);

// Set by the client from the URL and body, or about the sender's connection: not offered for editing.
const NOT_EDITED = new Set(["host", "content-length", "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"]);

/** "Name: value" lines for the headers editor, and back (the first ": " splits). */
const headerLines = (headers) => headers.filter(([n]) => !NOT_EDITED.has(String(n).toLowerCase())).map(([n, v]) => `${n}: ${v}`).join("\n");
function parseHeaderLines(text) {
  const pairs = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const at = line.indexOf(":");
    if (at < 1) throw new Error(`"${line.slice(0, 40)}" is not "Name: value"`);
    pairs.push([line.slice(0, at).trim(), line.slice(at + 1).replace(/^ /, "")]);
  }
  return pairs;
}

/** The body as editable text, or null when it is not UTF-8 (edited as base64 then). */
function bodyText(bytes) {
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return text.includes("\u0000") ? null : text;
  } catch {
    return null;
  }
}

function base64Of(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** The replay panel for one request; `onSent(attempt)` after each attempt. */
export function replayPanel(detail, bodyPromise, { requestUrl, binId, onSent }) {
  const url = h("input", { class: "mono", attrs: { type: "url", id: "replay-url", list: "replay-targets", required: true, spellcheck: "false", placeholder: "http://localhost:3000/webhooks" } });
  url.value = recentTargets(binId)[0] || "";
  const appendPath = h("input", { attrs: { type: "checkbox", id: "replay-append-path" } });
  const scheme = h("select", { attrs: { id: "replay-scheme" } }, SCHEMES.map(([v, label]) => h("option", { attrs: { value: v } }, label)));
  const secret = h("input", { class: "mono", attrs: { type: "password", id: "replay-secret", autocomplete: "off", placeholder: "signing secret (used once, never kept)" }, hidden: true });
  scheme.addEventListener("change", () => { secret.hidden = !scheme.value; });
  const method = h("input", { class: "mono", attrs: { type: "text", id: "edit-method", spellcheck: "false" } });
  method.value = String(detail.method);
  const headers = h("textarea", { class: "mono", attrs: { id: "edit-headers", rows: 8, spellcheck: "false" } });
  headers.value = headerLines(Array.isArray(detail.headers) ? detail.headers : []);
  const body = h("textarea", { class: "mono", attrs: { id: "edit-body", rows: 8, spellcheck: "false" } });
  const asBase64 = h("input", { attrs: { type: "checkbox", id: "edit-base64" } });
  bodyPromise.then((buffer) => {
    const bytes = new Uint8Array(buffer);
    const text = bodyText(bytes);
    asBase64.checked = text === null;
    body.value = text === null ? base64Of(bytes) : text;
  }, () => {});
  const edit = h(
    "details",
    { class: "replay-edit", attrs: { id: "replay-edit" } },
    h("summary", null, "Edit the request before sending"),
    field("Method", method),
    field("Headers, one per line (Host and Content-Length are set from the URL and body)", headers),
    field("Body", body),
    h("label", { class: "replay-check" }, asBase64, " The body above is base64 (binary bodies are)"),
  );
  const send = h("button", { class: "button button-primary button-small", text: "Send", attrs: { type: "submit", id: "replay-send" } });
  const result = h("p", { class: "replay-result", attrs: { role: "status", id: "replay-result" } });
  const form = h(
    "form",
    { class: "replay-panel", attrs: { id: "replay-panel", "aria-label": "Replay" }, hidden: true },
    field("Replay to", url),
    h("label", { class: "replay-check" }, appendPath, " Add the request's path below the bin and its query"),
    h("div", { class: "replay-row" }, field("Re-sign", scheme), secret),
    edit,
    h("div", { class: "replay-row" }, send, result),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const payload = { url: url.value.trim(), append_path: appendPath.checked };
    try {
      if (scheme.value) payload.resign = { scheme: scheme.value, secret: secret.value };
      if (edit.open) {
        payload.method = method.value.trim();
        payload.headers = parseHeaderLines(headers.value);
        payload[asBase64.checked ? "body_base64" : "body"] = asBase64.checked ? body.value.replace(/\s+/g, "") : body.value;
      }
    } catch (err) {
      result.textContent = `Not sent: ${err.message}`;
      result.dataset.tone = "bad";
      return;
    }
    send.disabled = true;
    result.textContent = "Sending…";
    delete result.dataset.tone;
    try {
      const attempt = await change(`${requestUrl}/replay`, "POST", payload);
      rememberTarget(binId, payload.url);
      result.textContent = `Answered ${outcomeText(attempt)}`;
      result.dataset.tone = attempt.response && attempt.response.status < 300 ? "ok" : "bad";
      onSent(attempt);
    } catch (err) {
      result.textContent = `Not sent: ${err.message}`;
      result.dataset.tone = "bad";
    } finally {
      send.disabled = false;
    }
  });
  fillTargets(binId);
  return { form, open: (editing) => { form.hidden = false; edit.open = editing; (editing ? method : url).focus(); } };
}

/** The copy-as panel: pick a tool, copy its code; a binary body comes as a file to download. */
export function copyAsPanel(detail, requestUrl) {
  const tool = h("select", { attrs: { id: "copy-as-tool", "aria-label": "Tool" } }, TOOLS.map(([v, label]) => h("option", { attrs: { value: v } }, label)));
  const code = h("textarea", { class: "mono copy-as-code", attrs: { id: "copy-as-code", readonly: true, rows: 10, spellcheck: "false" } });
  const notes = h("ul", { class: "copy-as-notes muted" });
  const download = h("a", { class: "button button-small", text: "Download the body file", attrs: { id: "copy-as-file" }, hidden: true });
  const copy = h("button", { class: "button button-small", text: "Copy", attrs: { type: "button", "data-copy": "copy-as-code" } });
  const panel = h("div", { class: "replay-panel", attrs: { id: "copy-as-panel" }, hidden: true },
    h("div", { class: "replay-row" }, tool, copy, download), code, notes);
  let loaded = null;
  const show = () => {
    const snippet = loaded.snippets[tool.value];
    code.value = snippet.code;
    notes.replaceChildren(...snippet.notes.map((n) => h("li", null, String(n))));
    const usesFile = snippet.code.includes(loaded.body_file);
    download.hidden = !usesFile;
    if (usesFile && String(detail.raw_url).startsWith("/api/")) {
      download.setAttribute("href", detail.raw_url);
      download.setAttribute("download", loaded.body_file);
    }
  };
  tool.addEventListener("change", () => loaded && show());
  return {
    panel,
    async open() {
      panel.hidden = false;
      if (!loaded) {
        code.value = "Loading…";
        try {
          loaded = await fetchJson(`${requestUrl}/copy-as`);
        } catch (err) {
          code.value = `Could not make the snippets: ${err.message}`;
          return;
        }
      }
      show();
      tool.focus();
    },
  };
}
