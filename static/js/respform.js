// One response of a bin's settings as a form: status, headers, body, content type, delay, and a
// failure rehearsal. Every field carries data-field, the API's name for it, so that a refusal
// can be shown next to the field it names.

import { h } from "./dom.js";

let counter = 0;
const newId = () => `af-${++counter}`;

/** A labelled field; `control` is the input, select or textarea. */
export function field(label, control, hint) {
  if (!control.id) control.id = newId();
  return h(
    "div",
    { class: "af-field" },
    h("label", { attrs: { for: control.id } }, label),
    control,
    hint ? h("span", { class: "af-hint muted" }, hint) : null,
  );
}

export function input(value, attrs = {}) {
  const el = h("input", { attrs: { type: "text", spellcheck: "false", autocomplete: "off", ...attrs } });
  el.value = value === undefined || value === null ? "" : String(value);
  return el;
}

export function select(options, value) {
  const el = h("select", null, options.map(([key, label]) => h("option", { attrs: { value: key } }, label)));
  el.value = value;
  return el;
}

/** A number as typed: a number when it is one, undefined when empty, else the text (refused). */
export function numberOf(el) {
  const text = el.value.trim();
  if (text === "") return undefined;
  return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text;
}

function headerRow(name, value, onRemove) {
  const nameEl = input(name, { "aria-label": "Header name", placeholder: "X-Name", class: "mono" });
  const valueEl = input(value, { "aria-label": "Header value", placeholder: "value or {{ template }}", class: "mono" });
  const remove = h("button", { class: "button button-small", text: "Remove", attrs: { type: "button", "aria-label": "Remove this header" } });
  const row = h("div", { class: "af-header-row" }, nameEl, valueEl, remove);
  remove.addEventListener("click", () => onRemove(row));
  return row;
}

export class ResponseForm {
  /** `prefix`: the API's path to this response ("response", "rules[0].response"). */
  constructor(prefix, value) {
    const v = value || {};
    const failure = v.failure || null;
    this.status = input(v.status ?? 200, { inputmode: "numeric", class: "af-short" });
    this.contentType = input(v.content_type ?? "text/plain; charset=utf-8", { class: "mono" });
    this.delay = input(v.delay_ms || "", { inputmode: "numeric", placeholder: "0", class: "af-short" });
    this.base64 = h("input", { attrs: { type: "checkbox" } });
    this.base64.checked = v.body_base64 !== undefined;
    this.body = h("textarea", { class: "mono", attrs: { rows: "4", spellcheck: "false" } });
    this.body.value = v.body_base64 ?? v.body ?? "";
    this.headerList = h("div", { class: "af-headers" });
    for (const [name, val] of Array.isArray(v.headers) ? v.headers : []) this.addHeader(name, val);
    const addHeader = h("button", { class: "button button-small", text: "Add header", attrs: { type: "button" } });
    addHeader.addEventListener("click", () => this.addHeader("", "").firstElementChild.focus());

    this.failKind = select([["none", "never"], ["first", "the first N requests"], ["percent", "a share at random"]],
      !failure ? "none" : failure.first !== undefined ? "first" : "percent");
    this.failCount = input(failure ? failure.first ?? failure.percent : "", { inputmode: "numeric", class: "af-short" });
    this.failPer = input(failure?.per_header ?? "", { placeholder: "X-Delivery-Id", class: "mono" });
    this.failHow = select([["status", "answer with status"], ["timeout", "time out (close without answering)"]],
      failure?.timeout ? "timeout" : "status");
    this.failStatus = input(failure?.status ?? 503, { inputmode: "numeric", class: "af-short" });
    this.failDelay = input(failure?.delay_ms || "", { inputmode: "numeric", placeholder: "0", class: "af-short" });
    this.failCountField = field("N", this.failCount, "a count, or a percentage");
    this.failBox = h(
      "div",
      { class: "af-row" },
      this.failCountField,
      field("Count per header", this.failPer, "optional: each delivery id apart"),
      field("Then", this.failHow),
      field("Failing status", this.failStatus),
      field("Failing delay (ms)", this.failDelay, "timeouts: 30,000 unless set"),
    );
    for (const el of [this.failKind, this.failHow]) el.addEventListener("change", () => this.showFailure());

    this.element = h(
      "div",
      { class: "af-response" },
      h("div", { class: "af-row" },
        field("Status", this.status),
        field("Content type", this.contentType),
        field("Delay (ms)", this.delay, "0 to 30,000")),
      h("fieldset", { class: "af-group" }, h("legend", null, "Headers"), this.headerList, addHeader),
      field("Body", this.body, "text; {{ method }}, {{ path }}, {{ query.x }}, {{ header('X-Name') }}, {{ json.a }}, {{ seq }}, {{ received_at }}, {{ uuid() }}"),
      h("label", { class: "af-check" }, this.base64, " The body is base64-encoded bytes"),
      h("fieldset", { class: "af-group" }, h("legend", null, "Fail on purpose"), field("Fail", this.failKind), this.failBox),
    );
    this.failure = this.failBox.parentElement;
    this.setPrefix(prefix);
    this.showFailure();
  }

  addHeader(name, value) {
    const row = headerRow(name, value, (gone) => {
      gone.remove();
      this.setPrefix(this.prefix);
    });
    this.headerList.appendChild(row);
    this.setPrefix(this.prefix);
    return row;
  }

  showFailure() {
    const kind = this.failKind.value;
    this.failBox.hidden = kind === "none";
    this.failPer.closest(".af-field").hidden = kind !== "first";
    this.failStatus.closest(".af-field").hidden = this.failHow.value === "timeout";
    this.failCountField.querySelector("label").textContent = kind === "percent" ? "Percent" : "N";
    this.setPrefix(this.prefix);
  }

  /** The header rows, in order (an error message may sit between them). */
  rows() {
    return [...this.headerList.querySelectorAll(":scope > .af-header-row")];
  }

  /** Name every field by its place in the API's settings (after rules move, headers go). */
  setPrefix(prefix) {
    this.prefix = prefix;
    if (!this.failure) return;
    const p = prefix;
    const named = [
      [this.status, "status"], [this.contentType, "content_type"], [this.delay, "delay_ms"],
      [this.body, this.base64.checked ? "body_base64" : "body"], [this.failure, "failure"],
      [this.failCount, `failure.${this.failKind.value === "percent" ? "percent" : "first"}`],
      [this.failPer, "failure.per_header"], [this.failHow, "failure.timeout"],
      [this.failStatus, "failure.status"], [this.failDelay, "failure.delay_ms"],
    ];
    for (const [el, name] of named) el.dataset.field = `${p}.${name}`;
    this.headerList.dataset.field = `${p}.headers`;
    this.rows().forEach((row, i) => { row.dataset.field = `${p}.headers[${i}]`; });
  }

  /** The API's response object for what the form holds. */
  read() {
    this.setPrefix(this.prefix);
    const out = {
      status: numberOf(this.status),
      headers: this.rows().map((row) => [...row.querySelectorAll("input")].map((el) => el.value)),
      content_type: this.contentType.value.trim() || undefined,
      delay_ms: numberOf(this.delay),
    };
    out[this.base64.checked ? "body_base64" : "body"] = this.body.value;
    const kind = this.failKind.value;
    if (kind !== "none") {
      const failure = { [kind]: numberOf(this.failCount) };
      if (kind === "first" && this.failPer.value.trim()) failure.per_header = this.failPer.value.trim();
      if (this.failHow.value === "timeout") failure.timeout = true;
      else failure.status = numberOf(this.failStatus);
      if (numberOf(this.failDelay) !== undefined) failure.delay_ms = numberOf(this.failDelay);
      out.failure = failure;
    }
    return out;
  }
}
