// Changes a user makes to a bin: pin, delete, clear, delete the bin. The page learns the outcome
// from the live stream (every open tab does), so these only send the request and report failures.

import { noteAnswer, noteUnreachable } from "./outage.js";

const ARM_MS = 3000;

/**
 * Send a change to the API; resolve to the JSON answer (null for 204), reject with its message
 * (the error's `field` names the setting at fault when the API says which).
 */
export async function change(url, method, body) {
  // The session cookie is the credential here, so every change carries the page's CSRF token.
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const options = { method, credentials: "same-origin", headers: { "X-CSRFToken": token } };
  if (body !== undefined) {
    options.body = JSON.stringify(body);
    Object.assign(options.headers, { "Content-Type": "application/json", Accept: "application/json" });
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    noteUnreachable();
    throw err;
  }
  noteAnswer(response);
  if (response.status === 204) return null;
  if (response.ok) return response.json();
  let message = `HTTP ${response.status}`;
  let field = null;
  try {
    const payload = await response.json();
    if (payload && typeof payload.message === "string") message = payload.message;
    if (payload && typeof payload.field === "string") field = payload.field;
  } catch {
    // keep the status line
  }
  throw Object.assign(new Error(message), { field });
}

/**
 * A destructive button that asks twice: the first click arms it ("Click again to …"), a second
 * click within three seconds runs `action`. No modal dialog, nothing to dismiss.
 */
export function armTwice(button, confirmLabel, action) {
  const label = button.textContent;
  let timer = null;
  const disarm = () => {
    clearTimeout(timer);
    timer = null;
    button.textContent = label;
    button.classList.remove("armed");
  };
  button.addEventListener("click", async () => {
    if (timer === null) {
      button.textContent = confirmLabel;
      button.classList.add("armed");
      timer = setTimeout(disarm, ARM_MS);
      return;
    }
    disarm();
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
    }
  });
}

/** Show a short message in the page's notice area (role=status), replacing the previous one. */
export function notify(text, tone = "info") {
  const area = document.getElementById("notice");
  if (!area) return;
  area.textContent = text;
  area.dataset.tone = tone;
  area.hidden = !text;
}
