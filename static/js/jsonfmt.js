// Re-indent JSON text without parsing it into values and back.
//
// JSON.parse + JSON.stringify would round big integers (12345678901234567890), turn 1.0 into 1 and
// re-escape strings. Webhook debugging needs the document exactly as sent, so this walks the
// characters, keeps every token verbatim and only replaces the whitespace between tokens.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

const isSpace = (c) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const endsScalar = (c) =>
  isSpace(c) || c === COMMA || c === COLON || c === QUOTE ||
  c === OPEN_OBJECT || c === CLOSE_OBJECT || c === OPEN_ARRAY || c === CLOSE_ARRAY;

/** Index just past the string starting with the quote at `start` (or text.length if unterminated). */
function stringEnd(text, start) {
  let i = start + 1;
  for (;;) {
    const quote = text.indexOf('"', i);
    if (quote === -1) return text.length;
    let slashes = 0;
    for (let j = quote - 1; j > start && text.charCodeAt(j) === BACKSLASH; j--) slashes++;
    if (slashes % 2 === 0) return quote + 1;
    i = quote + 1;
  }
}

function skipSpace(text, i) {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/**
 * Walk JSON text and call emit(kind, piece) for each piece of the re-indented document, where kind
 * is "punct", "space", "key", "string", "number", "literal" (true, false, null) or "other".
 * Tokens are passed through unchanged. A truncated prefix of a document is walked as far as it goes.
 */
export function walkJson(text, emit, unit = "  ") {
  const newlines = ["\n"]; // newlines[d]: a line break and d levels of indentation
  const newline = (depth) => {
    while (newlines.length <= depth) newlines.push(`\n${unit.repeat(newlines.length)}`);
    return newlines[depth];
  };
  const inObject = []; // one entry per open container: true for an object, false for an array
  let expectKey = false;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (isSpace(c)) {
      i++;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      const close = c === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY;
      const next = skipSpace(text, i + 1);
      if (next < n && text.charCodeAt(next) === close) {
        emit("punct", c === OPEN_OBJECT ? "{}" : "[]");
        expectKey = false;
        i = next + 1;
      } else {
        inObject.push(c === OPEN_OBJECT);
        emit("punct", text[i]);
        emit("space", newline(inObject.length));
        expectKey = c === OPEN_OBJECT;
        i++;
      }
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      inObject.pop();
      emit("space", newline(inObject.length));
      emit("punct", text[i]);
      expectKey = false;
      i++;
    } else if (c === COMMA) {
      emit("punct", ",");
      emit("space", newline(inObject.length));
      expectKey = inObject.length > 0 && inObject[inObject.length - 1];
      i++;
    } else if (c === COLON) {
      emit("punct", ": ");
      expectKey = false;
      i++;
    } else if (c === QUOTE) {
      const end = stringEnd(text, i);
      emit(expectKey ? "key" : "string", text.slice(i, end));
      expectKey = false;
      i = end;
    } else {
      let end = i + 1;
      while (end < n && !endsScalar(text.charCodeAt(end))) end++;
      const token = text.slice(i, end);
      const kind = c === 0x2d || (c >= 0x30 && c <= 0x39) ? "number"
        : token === "true" || token === "false" || token === "null" ? "literal" : "other";
      emit(kind, token);
      i = end;
    }
  }
}

/** Return the re-indented JSON text as a string (two spaces per level). */
export function reindent(text, unit = "  ") {
  const out = [];
  walkJson(text, (_kind, piece) => out.push(piece), unit);
  return out.join("");
}

const CLASSES = { key: "j-key", string: "j-str", number: "j-num", literal: "j-lit", other: "j-other" };

/**
 * Return the re-indented JSON as a DocumentFragment: tokens that carry a value become spans with a
 * colour class and textContent; punctuation and whitespace are merged into plain text nodes.
 *
 * The lines are grouped in blocks of `linesPerBlock` (div.json-block), so that a stylesheet can let
 * the browser skip laying out the blocks that are off screen (content-visibility): a quarter of a
 * megabyte of JSON is tens of thousands of lines.
 */
export function reindentToFragment(text, { unit = "  ", linesPerBlock = 200 } = {}) {
  const fragment = document.createDocumentFragment();
  let block = null;
  let lines = 0;
  let plain = "";
  const flush = () => {
    if (plain) block.appendChild(document.createTextNode(plain));
    plain = "";
  };
  const newBlock = () => {
    block = document.createElement("div");
    block.className = "json-block";
    fragment.appendChild(block);
    lines = 0;
  };
  newBlock();
  walkJson(text, (kind, piece) => {
    const cls = CLASSES[kind];
    if (!cls) {
      if (kind === "space" && ++lines >= linesPerBlock) {
        // The line break ends this block; the indentation starts the next one.
        plain += "\n";
        flush();
        newBlock();
        plain = piece.slice(1);
      } else {
        plain += piece;
      }
      return;
    }
    flush();
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = piece;
    block.appendChild(span);
  }, unit);
  flush();
  return fragment;
}
