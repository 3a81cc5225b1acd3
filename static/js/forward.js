// The bin's auto-forward targets: every capture it accepts is sent on to each of them.

import { change, notify } from "./actions.js";

const byId = (id) => document.getElementById(id);

/** Show the bin's targets (from the page, or a bin_updated event), unless being edited. */
export function showTargets(bin) {
  const input = byId("forward-targets");
  if (!input || document.activeElement === input || !Array.isArray(bin.forward_to)) return;
  input.value = bin.forward_to.map(String).join("\n");
  byId("forward-summary").textContent = bin.forward_to.length ? `Forwarding (${bin.forward_to.length})` : "Forward";
}

export function initForward(apiUrl) {
  const form = byId("forward-form");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const targets = byId("forward-targets").value.split("\n").map((t) => t.trim()).filter(Boolean);
    const status = byId("forward-status");
    try {
      const bin = await change(apiUrl, "PATCH", { forward_to: targets });
      byId("forward-targets").blur();
      showTargets(bin);
      status.textContent = targets.length ? "Saved: new captures are forwarded." : "Saved: nothing is forwarded.";
    } catch (err) {
      status.textContent = "";
      notify(`Could not save the forward targets: ${err.message}`, "warn");
    }
  });
}
