// Where this browser last replayed a bin's requests, most recent first.
//
// Kept in localStorage, per bin: the targets are the user's own (often a localhost URL that only
// means something on their machine), hold no secret, and need no server round trip; another
// browser starts with none. Re-sign secrets are never kept anywhere.

const KEEP = 8;
const key = (binId) => `hookscope:replay-targets:${binId}`;

/** The bin's remembered targets, newest first. */
export function recentTargets(binId) {
  try {
    const stored = JSON.parse(window.localStorage.getItem(key(binId)) || "[]");
    return Array.isArray(stored) ? stored.filter((t) => typeof t === "string").slice(0, KEEP) : [];
  } catch {
    return []; // storage off (private mode) or a value from elsewhere: remember nothing
  }
}

/** Put a target first in the bin's list. */
export function rememberTarget(binId, url) {
  const targets = [url, ...recentTargets(binId).filter((t) => t !== url)].slice(0, KEEP);
  try {
    window.localStorage.setItem(key(binId), JSON.stringify(targets));
  } catch {
    // storage full or off: the replay itself went out; only the shortcut is lost
  }
  fillTargets(binId);
}

/** Fill the page's shared <datalist id="replay-targets"> with the bin's targets. */
export function fillTargets(binId) {
  const list = document.getElementById("replay-targets");
  if (!list) return;
  list.replaceChildren(...recentTargets(binId).map((url) => {
    const option = document.createElement("option");
    option.value = url;
    return option;
  }));
}
