// The page served instead of another when the database failed: show the storage banner, and
// once storage is back, load the page that failed (a GET) or let the user try the change again.

import { troubled, watchStorage } from "./outage.js";

const main = document.getElementById("unavailable");

watchStorage({
  onBack: () => {
    if (main.dataset.reload === "true") window.location.reload();
  },
});
troubled("storage", Number(main.dataset.retryAfter) || 5);
