// The bin's answers: what is set, at a glance in the header, and the editor (a dialog) for the
// response, the rules, handshakes and CORS. A refusal from the API names the field at fault
// (rules[2].response.headers[0]); its message is shown next to that field, which gets focus.

import { change } from "./actions.js";
import { clear, h } from "./dom.js";
import { glance } from "./glance.js";
import { ResponseForm, field, input } from "./respform.js";
import { RulesEditor } from "./ruleform.js";

const byId = (id) => document.getElementById(id);

/** The closest element for an API field path: the field itself, or what holds it. */
export function fieldElement(form, path) {
  let name = path;
  while (name) {
    const found = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (found) return found;
    const cut = Math.max(name.lastIndexOf("."), name.lastIndexOf("["));
    name = cut > 0 ? name.slice(0, cut) : "";
  }
  return null;
}

function secretField(label, isSet, name) {
  const value = input("", { type: "password", placeholder: isSet ? "set (type to replace)" : "not set", autocomplete: "new-password" });
  value.dataset.field = `handshakes.${name}`;
  const remove = h("input", { attrs: { type: "checkbox" } });
  const row = h("div", { class: "af-row" }, field(label, value),
    isSet ? h("label", { class: "af-check" }, remove, " Remove it") : null);
  row.read = (into) => {
    if (value.value) into[name] = value.value;
    else if (remove.checked) into[name] = null;
  };
  return row;
}

export class AnswersEditor {
  constructor(main, apiUrl) {
    this.main = main;
    this.apiUrl = apiUrl;
    this.dialog = byId("answers-dialog");
    this.form = byId("answers-form");
    this.body = byId("answers-body");
    this.problem = byId("answers-problem");
    this.settings = JSON.parse(main.dataset.answers || "{}");
    byId("answers-edit")?.addEventListener("click", () => this.open()); // none on a public bin
    byId("answers-cancel").addEventListener("click", () => this.dialog.close());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    this.show(this.settings);
  }

  /** Show what is set (from the page, a save, or another tab's change). */
  show(bin) {
    if (!bin || !("rules" in bin)) return;
    this.settings = { response: bin.response, rules: bin.rules, handshakes: bin.handshakes, cors: bin.cors };
    byId("answers-glance").textContent = glance(this.settings);
    byId("answers-problem-note").hidden = !bin.response_problem;
    byId("answers-problem-note").textContent = bin.response_problem || "";
  }

  open() {
    const s = this.settings;
    this.custom = h("input", { attrs: { type: "checkbox" } });
    this.custom.checked = Boolean(s.response);
    this.response = new ResponseForm("response", s.response || { status: 200, body: "" });
    this.response.element.hidden = !s.response;
    this.custom.addEventListener("change", () => { this.response.element.hidden = !this.custom.checked; });
    this.rules = new RulesEditor(s.rules);
    this.handshakes = h("input", { attrs: { type: "checkbox" } });
    this.handshakes.checked = s.handshakes?.enabled !== false;
    this.handshakes.dataset.field = "handshakes.enabled";
    this.meta = secretField("Meta verify token", s.handshakes?.meta_verify_token_set, "meta_verify_token");
    this.zoom = secretField("Zoom secret token", s.handshakes?.zoom_secret_set, "zoom_secret");
    this.cors = h("input", { attrs: { type: "checkbox" } });
    this.cors.checked = Boolean(s.cors?.enabled);
    this.cors.dataset.field = "cors.enabled";
    this.origins = h("textarea", { class: "mono", attrs: { rows: "2", spellcheck: "false" } });
    this.origins.value = (s.cors?.origins || ["*"]).join("\n");
    this.origins.dataset.field = "cors.origins";
    clear(this.body).append(
      h("section", { class: "af-section", dataset: { field: "response" } },
        h("h3", null, "Default answer"),
        h("p", { class: "muted" }, "What every capture gets unless a rule, a CORS preflight or a handshake answers it."),
        h("label", { class: "af-check" }, this.custom, " Send a custom response (off: 200 “ok”)"),
        this.response.element),
      h("section", { class: "af-section" },
        h("h3", null, "Rules"),
        h("p", { class: "muted" }, "Checked in order before anything else; the first rule whose conditions all hold answers."),
        this.rules.element),
      h("section", { class: "af-section", dataset: { field: "handshakes" } },
        h("h3", null, "Handshakes"),
        h("label", { class: "af-check" }, this.handshakes,
          " Answer verification handshakes by themselves (Slack, Microsoft Graph, Dropbox, Twitch, Meta, Zoom)"),
        this.meta, this.zoom),
      h("section", { class: "af-section", dataset: { field: "cors" } },
        h("h3", null, "CORS"),
        h("label", { class: "af-check" }, this.cors, " Answer preflights and let these origins read the answers"),
        field("Origins", this.origins, "one per line: * or https://app.example.com")),
    );
    this.showProblem(null);
    this.dialog.showModal();
  }

  read() {
    const handshakes = { enabled: this.handshakes.checked };
    this.meta.read(handshakes);
    this.zoom.read(handshakes);
    return {
      response: this.custom.checked ? this.response.read() : null,
      rules: this.rules.read(),
      handshakes,
      cors: { enabled: this.cors.checked, origins: this.origins.value.split(/[\s,]+/).filter(Boolean) },
    };
  }

  async save() {
    // Not by disabling Save: a disabled button loses focus, and focus goes to the field at fault.
    if (this.saving) return;
    this.saving = true;
    const sent = this.read();
    try {
      const bin = await change(this.apiUrl, "PATCH", sent);
      this.show(bin);
      this.dialog.close();
    } catch (err) {
      this.showProblem(err.message, err.field);
    } finally {
      this.saving = false;
    }
  }

  /** Say why the settings were not saved, next to the field at fault when it is known. */
  showProblem(message, path) {
    for (const el of this.form.querySelectorAll(".af-error")) el.remove();
    for (const el of this.form.querySelectorAll("[aria-invalid]")) {
      el.removeAttribute("aria-invalid");
      el.removeAttribute("aria-describedby");
    }
    this.problem.hidden = !message;
    if (!message) return;
    const target = path ? fieldElement(this.form, path) : null;
    this.problem.textContent = target ? `Not saved: ${path} is marked below.` : `Not saved: ${message}`;
    if (!target) return;
    const note = h("p", { class: "af-error", attrs: { id: "answers-field-error" } }, message);
    const holder = target.closest(".af-field, .af-header-row, .af-condition") || target;
    if (holder.matches("fieldset, section, .af-rules, .af-headers, .af-conditions")) holder.prepend(note);
    else holder.after(note);
    const control = target.matches("input, select, textarea") ? target : target.querySelector("input, select, textarea");
    (control || note).setAttribute("aria-invalid", "true");
    (control || note).setAttribute("aria-describedby", "answers-field-error");
    if (control) control.focus();
    // A rule or a response folded away (a custom response turned off) is opened to show it.
    if (this.response.element.contains(target)) this.response.element.hidden = false;
  }
}
