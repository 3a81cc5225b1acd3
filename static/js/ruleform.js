// A bin's rules as a form: an ordered list of cards, each a name, conditions (all must hold) and
// the response to give. Fields carry data-field like the response form's (rules[1].when[0]).

import { h } from "./dom.js";
import { ResponseForm, field, input, select } from "./respform.js";

const KINDS = [
  ["method", "Method is"],
  ["path", "Path matches"],
  ["header", "Header"],
  ["query", "Query parameter"],
  ["json", "JSON body at"],
];
const NAMED = new Set(["header", "query", "json"]);
const PLACEHOLDERS = {
  method: ["", "POST, PUT"],
  path: ["", "/stripe/*"],
  header: ["X-GitHub-Event", "push (a glob; empty: present)"],
  query: ["type", "invoice.* (a glob; empty: present)"],
  json: ["data.object.status", "\"failed\", 42, true or null"],
};

/** A JSON value as typed: JSON when it reads as JSON, else the text itself. */
function jsonValue(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function shownJson(value) {
  if (typeof value !== "string") return JSON.stringify(value);
  return jsonValue(value) === value ? value : JSON.stringify(value);
}

function conditionRow(condition, onRemove) {
  const kind = KINDS.map(([k]) => k).find((k) => condition && k in condition) || "path";
  const kindEl = select(KINDS, kind);
  kindEl.setAttribute("aria-label", "What to match");
  const subject = input(NAMED.has(kind) ? condition[kind] : "", { class: "mono" });
  let value = "";
  if (kind === "method") value = [].concat(condition.method).join(", ");
  else if (kind === "path") value = condition.path;
  else if (kind === "json") value = shownJson(condition.equals);
  else value = condition?.value ?? "";
  const valueEl = input(value, { class: "mono" });
  const remove = h("button", { class: "button button-small", text: "Remove", attrs: { type: "button", "aria-label": "Remove this condition" } });
  const row = h("div", { class: "af-condition" }, kindEl, subject, valueEl, remove);
  const show = () => {
    const [namePlaceholder, valuePlaceholder] = PLACEHOLDERS[kindEl.value];
    subject.hidden = !NAMED.has(kindEl.value);
    subject.placeholder = namePlaceholder;
    subject.setAttribute("aria-label", kindEl.value === "json" ? "JSON path" : "Name");
    valueEl.placeholder = valuePlaceholder;
    valueEl.setAttribute("aria-label", kindEl.value === "json" ? "Equals" : "Value");
  };
  kindEl.addEventListener("change", show);
  remove.addEventListener("click", () => onRemove(row));
  show();
  row.read = () => {
    const k = kindEl.value;
    const text = valueEl.value.trim();
    if (k === "method") {
      const methods = text.split(/[\s,]+/).filter(Boolean);
      return { method: methods.length === 1 ? methods[0] : methods };
    }
    if (k === "path") return { path: text };
    if (k === "json") return { json: subject.value.trim(), equals: jsonValue(text) };
    return text ? { [k]: subject.value.trim(), value: valueEl.value } : { [k]: subject.value.trim() };
  };
  return row;
}

class RuleCard {
  constructor(rule, editor) {
    this.name = input(rule.name ?? "", { placeholder: "failed payments" });
    this.conditions = h("div", { class: "af-conditions" });
    for (const condition of Array.isArray(rule.when) ? rule.when : []) this.addCondition(condition);
    this.response = new ResponseForm("rules[0].response", rule.response || { status: 200 });
    const button = (text, label, action) => {
      const el = h("button", { class: "button button-small", text, attrs: { type: "button", "aria-label": label } });
      el.addEventListener("click", action);
      return el;
    };
    const addCondition = button("Add condition", "Add a condition to this rule", () =>
      this.addCondition({ path: "" }).querySelector("select").focus());
    this.legend = h("legend", null, "Rule");
    this.element = h(
      "fieldset",
      { class: "af-rule" },
      this.legend,
      h("div", { class: "af-rule-tools" },
        button("Move up", "Move this rule up", () => editor.move(this, -1)),
        button("Move down", "Move this rule down", () => editor.move(this, 1)),
        button("Remove rule", "Remove this rule", () => editor.remove(this))),
      field("Name", this.name),
      h("fieldset", { class: "af-group" }, h("legend", null, "When all of these hold (none: every request)"), this.conditions, addCondition),
      h("fieldset", { class: "af-group" }, h("legend", null, "Answer"), this.response.element),
    );
  }

  addCondition(condition) {
    const row = conditionRow(condition, (gone) => gone.remove());
    this.conditions.appendChild(row);
    return row;
  }

  /** The condition rows, in order (an error message may sit between them). */
  rows() {
    return [...this.conditions.querySelectorAll(":scope > .af-condition")];
  }

  number(i) {
    const p = `rules[${i}]`;
    this.legend.textContent = `Rule ${i + 1}`;
    this.element.dataset.field = p;
    this.name.dataset.field = `${p}.name`;
    this.conditions.dataset.field = `${p}.when`;
    this.rows().forEach((row, j) => {
      row.dataset.field = `${p}.when[${j}]`;
      const [subject, value] = row.querySelectorAll("input");
      const kind = row.querySelector("select").value;
      if (NAMED.has(kind)) subject.dataset.field = `${p}.when[${j}].${kind}`;
      else delete subject.dataset.field; // hidden: the value is the method or the path
      value.dataset.field = `${p}.when[${j}].${kind === "json" ? "equals" : NAMED.has(kind) ? "value" : kind}`;
    });
    this.response.setPrefix(`${p}.response`);
  }

  read() {
    return {
      name: this.name.value.trim(),
      when: this.rows().map((row) => row.read()),
      response: this.response.read(),
    };
  }
}

export class RulesEditor {
  constructor(rules) {
    this.cards = [];
    this.list = h("div", { class: "af-rules", dataset: { field: "rules" } });
    const add = h("button", { class: "button button-small", text: "Add rule", attrs: { type: "button" } });
    add.addEventListener("click", () => this.add({ when: [{ path: "/*" }] }).name.focus());
    this.element = h("div", null, this.list, add);
    for (const rule of Array.isArray(rules) ? rules : []) this.add(rule);
  }

  add(rule) {
    const card = new RuleCard(rule, this);
    this.cards.push(card);
    this.list.appendChild(card.element);
    this.renumber();
    return card;
  }

  move(card, step) {
    const i = this.cards.indexOf(card);
    const j = i + step;
    if (j < 0 || j >= this.cards.length) return;
    [this.cards[i], this.cards[j]] = [this.cards[j], this.cards[i]];
    for (const each of this.cards) this.list.appendChild(each.element);
    this.renumber();
    card.element.querySelector(`[aria-label="${step < 0 ? "Move this rule up" : "Move this rule down"}"]`).focus();
  }

  remove(card) {
    this.cards.splice(this.cards.indexOf(card), 1);
    card.element.remove();
    this.renumber();
  }

  renumber() {
    this.cards.forEach((card, i) => card.number(i));
  }

  read() {
    this.renumber();
    return this.cards.map((card) => card.read());
  }
}
