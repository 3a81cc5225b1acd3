// A share link is /bins/<id>#key=<read key>. The fragment never reaches the server; this script
// trades it for this browser's cookie (POST .../session with the key as a Bearer token), removes
// it from the address bar, and reloads the page, which the cookie now opens.

const main = document.getElementById("locked");

function unlock() {
  const key = new URLSearchParams(window.location.hash.slice(1)).get("key");
  if (!main || !key) return;
  document.getElementById("locked-title").textContent = "Opening the bin…";
  history.replaceState(null, "", window.location.pathname + window.location.search);
  fetch(main.dataset.sessionUrl, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}` },
    credentials: "same-origin",
  }).then((response) => {
    if (response.ok) {
      window.location.reload();
      return;
    }
    document.getElementById("locked-title").textContent = "This link does not open a bin";
    document.getElementById("locked-message").textContent =
      "The bin may have expired or been deleted, or the link is incomplete.";
  });
}

unlock();
// Pasting the share link over this page's own address changes only the fragment: no new load.
window.addEventListener("hashchange", unlock);
