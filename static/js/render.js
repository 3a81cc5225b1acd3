// Body renderers: turn the exact body bytes into DOM for the detail pane, as text only.
//
// Bodies can be megabytes. Each view renders a bounded prefix and says so; the full bytes are always
// one click away through "Download raw".

import { h, pairsTable } from "./dom.js";
import { formatBytes, formatCount } from "./format.js";
import { reindentToFragment } from "./jsonfmt.js";

/** Most body bytes rendered as text or JSON; past this the view says what it left out. */
export const TEXT_LIMIT = 256 * 1024;
/** Most body bytes rendered as a hex dump (each byte takes about four characters on screen). */
export const HEX_LIMIT = 64 * 1024;
/** Most bytes a compressed body may expand to for display. */
export const INFLATE_LIMIT = 16 * 1024 * 1024;

function decoderFor(charset, fatal = false) {
  try {
    return new TextDecoder(charset || "utf-8", { fatal });
  } catch {
    return new TextDecoder("utf-8", { fatal }); // an unknown charset label: read it as UTF-8
  }
}

/** Decode the first `limit` bytes; an incomplete character at the cut is left out, not garbled. */
function decodePrefix(bytes, charset, limit) {
  const cut = bytes.length > limit ? bytes.subarray(0, limit) : bytes;
  return decoderFor(charset).decode(cut, { stream: cut.length < bytes.length });
}

/** The whole body as text, or null when it is not valid in its charset (UTF-8 by default). */
export function strictText(bytes, charset) {
  try {
    return decoderFor(charset, true).decode(bytes);
  } catch {
    return null;
  }
}

/** A notice above a body view. `tone` is "info" or "warn". */
export function note(text, tone = "info") {
  return h("p", { class: `note note-${tone}` }, text);
}

/** The explicit truncation notice: never cut a body silently. */
export function truncationNote(shown, total) {
  return note(
    `Showing first ${formatBytes(shown)} of ${formatBytes(total)} (${formatCount(total)}) - download raw for all.`,
    "warn",
  );
}

function pre(className, content) {
  const el = h("pre", { class: `body-pre mono ${className}`.trim() });
  if (typeof content === "string") el.textContent = content;
  else el.appendChild(content);
  return el;
}

/** Text as decoded, bounded. */
export function textView(bytes, charset) {
  const shown = Math.min(bytes.length, TEXT_LIMIT);
  return h(
    "div",
    { class: "body-view" },
    shown < bytes.length ? truncationNote(shown, bytes.length) : null,
    pre("body-text", decodePrefix(bytes, charset, TEXT_LIMIT)),
  );
}

/** Classic hex dump: offset, 16 bytes in two groups of 8, and printable ASCII ('.' otherwise). */
export function hexDump(bytes, limit = HEX_LIMIT) {
  const end = Math.min(bytes.length, limit);
  const hex = [];
  for (let b = 0; b < 256; b++) hex.push(b.toString(16).padStart(2, "0"));
  const lines = [];
  for (let offset = 0; offset < end; offset += 16) {
    let codes = "";
    let ascii = "";
    for (let k = 0; k < 16; k++) {
      if (k === 8) codes += " ";
      if (offset + k < end) {
        const byte = bytes[offset + k];
        codes += `${hex[byte]} `;
        ascii += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : ".";
      } else {
        codes += "   ";
      }
    }
    lines.push(`${offset.toString(16).padStart(8, "0")}  ${codes} |${ascii}|`);
  }
  return lines.join("\n");
}

export function hexView(bytes) {
  const shown = Math.min(bytes.length, HEX_LIMIT);
  return h(
    "div",
    { class: "body-view" },
    shown < bytes.length ? truncationNote(shown, bytes.length) : null,
    pre("body-hex", hexDump(bytes)),
  );
}

/** Raw: the text as decoded when it is valid, the hex dump when it is not. */
export function rawView(bytes, charset) {
  if (bytes.length === 0) return emptyView();
  return strictText(bytes, charset) === null ? hexView(bytes) : textView(bytes, charset);
}

/**
 * JSON, validated with JSON.parse but shown from the original text re-indented token by token, so
 * numbers, escapes and key order stay exactly as sent. Invalid JSON is shown as sent, with the
 * parser's message.
 */
export function jsonView(bytes, charset) {
  const text = decoderFor(charset).decode(bytes);
  let problem = null;
  try {
    JSON.parse(text);
  } catch (err) {
    problem = err instanceof SyntaxError ? `Invalid JSON: ${err.message}` : `Could not check the JSON: ${err}`;
  }
  if (problem) {
    const view = textView(bytes, charset);
    view.insertBefore(note(problem, "warn"), view.firstChild);
    return view;
  }
  const shown = Math.min(bytes.length, TEXT_LIMIT);
  const source = shown < bytes.length ? decodePrefix(bytes, charset, TEXT_LIMIT) : text;
  return h(
    "div",
    { class: "body-view" },
    shown < bytes.length ? truncationNote(shown, bytes.length) : null,
    pre("body-json", reindentToFragment(source)),
  );
}

function section(title, ...children) {
  return h("div", { class: "body-subsection" }, h("h4", null, title), ...children);
}

/** URL-encoded form fields, in order, repeated names kept. */
export function formView(detail) {
  const fields = Array.isArray(detail.form) ? detail.form : [];
  return h(
    "div",
    { class: "body-view" },
    section(
      `Form fields (${fields.length})`,
      fields.length ? pairsTable(fields, { name: "Field", value: "Value" }) : note("No fields."),
    ),
  );
}

/** Multipart: the text fields, then the files with their names, types and sizes. */
export function multipartView(detail) {
  const view = formView(detail);
  const files = Array.isArray(detail.files) ? detail.files : [];
  const rows = files.map((file) =>
    h(
      "tr",
      null,
      h("td", { class: "mono" }, String(file.field ?? "")),
      h("td", { class: "mono" }, file.filename === null || file.filename === undefined ? "(none)" : String(file.filename)),
      h("td", { class: "mono" }, String(file.content_type ?? "")),
      h("td", { class: "num", title: formatCount(Number(file.size)) }, formatBytes(Number(file.size))),
    ),
  );
  const table = h(
    "table",
    { class: "kv files" },
    h("thead", null, h("tr", null, ["Field", "Filename", "Type", "Size"].map((t) => h("th", { attrs: { scope: "col" } }, t)))),
    h("tbody", null, rows),
  );
  view.appendChild(section(`Files (${files.length})`, files.length ? table : note("No files.")));
  return view;
}

export function emptyView() {
  return h("div", { class: "body-view" }, h("p", { class: "body-empty muted" }, "(no body)"));
}

/** Which formats this browser can inflate for display (HTTP "deflate" is the zlib format). */
export function inflateFormat(encoding) {
  const name = String(encoding || "").trim().toLowerCase();
  const format = name === "gzip" || name === "x-gzip" ? "gzip" : name === "deflate" ? "deflate" : null;
  return format && typeof DecompressionStream === "function" ? format : null;
}

/** Inflate a compressed body, stopping at INFLATE_LIMIT bytes. Returns {bytes, truncated}. */
export async function inflate(bytes, format, limit = INFLATE_LIMIT) {
  const reader = new Blob([bytes]).stream().pipeThrough(new DecompressionStream(format)).getReader();
  const chunks = [];
  let total = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
    if (total >= limit) {
      truncated = true;
      await reader.cancel();
      break;
    }
  }
  const out = new Uint8Array(Math.min(total, limit));
  let at = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, out.length - at);
    out.set(part, at);
    at += part.length;
  }
  return { bytes: out, truncated };
}
