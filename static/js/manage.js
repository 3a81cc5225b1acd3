// The bin itself: its name, dates, Clear and Delete, and what other tabs change about it.

import { armTwice, change, notify } from "./actions.js";
import { fullLocalTime, parseTime } from "./format.js";

const byId = (id) => document.getElementById(id);

/** Show the server's UTC times in local time (the markup carries them as ISO 8601). */
function localizeTime(el, iso) {
  const date = parseTime(iso);
  if (!el || !date) return;
  el.setAttribute("datetime", iso);
  el.textContent = fullLocalTime(date).slice(0, 16); // to the minute: this is context, not data
}

/** Show a bin's name and dates, from the page or from a bin_updated event. */
export function showBin(bin) {
  byId("bin-name").textContent = bin.name ? String(bin.name) : "Bin";
  document.title = `${bin.name ? String(bin.name) : `Bin ${bin.id}`} · Hookscope`;
  localizeTime(byId("bin-created"), bin.created_at);
  if (bin.expires_at) localizeTime(byId("bin-expires"), bin.expires_at);
  const input = byId("rename-input");
  if (input && document.activeElement !== input) input.value = bin.name ? String(bin.name) : "";
}

function initRename(apiUrl) {
  const button = byId("rename");
  const form = byId("rename-form");
  const input = byId("rename-input");
  const toggle = (editing) => {
    form.hidden = !editing;
    button.hidden = editing;
    byId("bin-name").parentElement.hidden = editing;
    if (editing) input.select();
  };
  button.addEventListener("click", () => toggle(true));
  byId("rename-cancel").addEventListener("click", () => toggle(false));
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") toggle(false);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      showBin(await change(apiUrl, "PATCH", { name: input.value.trim() }));
      toggle(false);
    } catch (err) {
      notify(`Could not rename the bin: ${err.message}`, "warn");
    }
  });
}

/** The bin is gone (deleted here or in another tab): say so and stop offering actions on it. */
export function showDeleted() {
  document.querySelector("main.bin")?.classList.add("is-deleted");
  notify("This bin was deleted. Its capture URL no longer records anything.", "warn");
  for (const el of document.querySelectorAll("#delete-bin, #clear-bin, #rename, .detail-actions button")) el.disabled = true;
}

/** Wire the bin's own controls; a public bin's page has none but Share (it is read-only). */
export function initManage(main) {
  const apiUrl = main.dataset.apiUrl;
  showBin({
    id: main.dataset.binId,
    name: main.dataset.binName,
    created_at: byId("bin-created")?.getAttribute("datetime"),
    expires_at: byId("bin-expires")?.getAttribute("datetime"),
  });
  if (byId("rename")) initRename(apiUrl);
  const clearBin = byId("clear-bin");
  if (clearBin) {
    armTwice(clearBin, "Clear all but pinned?", () =>
      change(`${apiUrl}/requests`, "DELETE").catch((err) => notify(`Could not clear the bin: ${err.message}`, "warn")));
  }
  const remove = byId("delete-bin");
  if (remove) {
    armTwice(remove, "Delete for good?", async () => {
      try {
        await change(apiUrl, "DELETE");
        showDeleted();
      } catch (err) {
        notify(`Could not delete the bin: ${err.message}`, "warn");
      }
    });
  }
}
