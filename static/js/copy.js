// Copy buttons: <button data-copy="element-id">. The clipboard API when allowed, else select the text.

function selectText(el) {
  if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) {
    el.focus();
    el.select();
    return;
  }
  const range = document.createRange();
  range.selectNodeContents(el);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

async function copy(el) {
  const text = "value" in el && typeof el.value === "string" ? el.value : el.textContent;
  try {
    if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard API");
    await navigator.clipboard.writeText(text);
    return "Copied";
  } catch {
    // Plain http on a public host has no clipboard API: select the text for the user to copy.
    selectText(el);
    try {
      if (document.execCommand("copy")) return "Copied";
    } catch {
      // fall through
    }
    return "Press Ctrl+C";
  }
}

export function initCopyButtons(root) {
  root.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.textContent = await copy(source);
    button.classList.add("copied");
    clearTimeout(Number(button.dataset.timer));
    button.dataset.timer = String(setTimeout(() => {
      button.textContent = label;
      button.classList.remove("copied");
    }, 1500));
  });
  // One click in a read-only field selects all of it.
  for (const input of root.querySelectorAll("input[readonly]")) input.addEventListener("focus", () => input.select());
}
