// Build DOM from plain values. Every string becomes a text node: captured data is never parsed as HTML.

/**
 * Create an element. `props` may hold: class (string), title, text, attrs (object of attributes),
 * dataset (object), hidden (bool), on (object of event listeners). Children may be nodes, strings
 * (inserted as text), numbers, or null/undefined/false (skipped), or arrays of those.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    if (props.class) el.className = props.class;
    if (props.title !== undefined && props.title !== null) el.setAttribute("title", String(props.title));
    if (props.text !== undefined && props.text !== null) el.textContent = String(props.text);
    if (props.hidden) el.hidden = true;
    for (const [name, value] of Object.entries(props.attrs || {})) {
      if (value !== undefined && value !== null && value !== false) el.setAttribute(name, String(value));
    }
    for (const [name, value] of Object.entries(props.dataset || {})) el.dataset[name] = String(value);
    for (const [type, listener] of Object.entries(props.on || {})) el.addEventListener(type, listener);
  }
  append(el, children);
  return el;
}

/** Append children (nodes, strings as text, arrays) to a parent; skip null, undefined and false. */
export function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
  return parent;
}

/** Remove every child of an element. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Characters of a header value, query value or URL shown before "show all". */
export const LONG_TEXT = 400;

/**
 * Text that may be very long (a 10 KB header): the first `limit` characters and a button that shows
 * the rest. Nothing is dropped; the full value is one click away and in the element's title.
 */
export function longText(value, limit = LONG_TEXT) {
  const text = String(value);
  if (text.length <= limit + 40) return document.createTextNode(text);
  const shown = h("span", null, text.slice(0, limit));
  const more = h("button", {
    class: "link-button show-all",
    text: `… show all ${text.length.toLocaleString("en-US")} characters`,
    attrs: { type: "button" },
  });
  more.addEventListener("click", () => {
    shown.textContent = text;
    more.remove();
  });
  return h("span", { class: "long-text" }, shown, more);
}

/** A two-column table of [name, value] pairs, in the given order, duplicates kept. */
export function pairsTable(pairs, { name = "Name", value = "Value", className = "" } = {}) {
  const body = h("tbody");
  for (const [k, v] of pairs) {
    body.appendChild(h("tr", null, h("th", { class: "mono", attrs: { scope: "row" } }, String(k)), h("td", { class: "mono" }, longText(v))));
  }
  return h(
    "table",
    { class: `kv ${className}`.trim() },
    h("colgroup", null, h("col", { class: "kv-name" }), h("col")),
    h("thead", null, h("tr", null, h("th", { attrs: { scope: "col" } }, name), h("th", { attrs: { scope: "col" } }, value))),
    body,
  );
}

// Whether each section is open; a section the user folds stays folded for the next request.
const sectionOpen = new Map();

/** A foldable section of the detail pane: a title, an optional count, its content. */
export function section(title, count, ...children) {
  const open = sectionOpen.get(title) ?? !(count === 0);
  const el = h(
    "details",
    { class: "section", dataset: { section: title.toLowerCase() }, attrs: { open } },
    h("summary", null, h("h3", null, title), count === null ? null : h("span", { class: "count" }, String(count))),
    h("div", { class: "section-body" }, ...children),
  );
  // Remember what the user did (a click on the summary, or Enter on it), not what the page set.
  el.firstElementChild.addEventListener("click", () => sectionOpen.set(title, !el.open));
  return el;
}
