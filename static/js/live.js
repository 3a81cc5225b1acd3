// The live stream: watch the bin over Socket.IO, catch up after every (re)connect, report status.

const WATCH_TIMEOUT_MS = 10000;

const isSeq = (value) => Number.isSafeInteger(value) && value >= 0;

const LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

/** Show the connection state in the status element (data-state drives the colour). */
export function showStatus(el, state, detail = "") {
  el.dataset.state = state;
  el.querySelector(".live-label").textContent = LABELS[state] || state;
  el.setAttribute("title", detail || (state === "live" ? "New requests appear as they arrive." : LABELS[state] || state));
}

/**
 * Connect and watch a bin. `after()` returns the highest seq the page has (or null); every
 * `captured` summary goes to `onCaptured`, what was missed first, a page at a time; `onGap` is
 * called when the server could not replay everything that was missed; `onStatus(state, detail)`
 * follows the connection; `on` maps the other server events (deleted, cleared, pinned,
 * bin_updated, bin_deleted) to handlers.
 */
export function watchBin({ binId, after, onCaptured, onGap, onStatus, on = {} }) {
  // io() comes from the vendored socket.io.min.js, loaded before this module.
  const socket = window.io({
    path: "/socket.io",
    // WebSocket first (the only transport a multi-process server offers), long polling if a proxy
    // in between cannot carry WebSocket.
    transports: ["websocket", "polling"],
    tryAllTransports: true,
    // Back off from half a second to three: after a restart the page should be live again quickly.
    reconnectionDelay: 500,
    reconnectionDelayMax: 3000,
  });
  for (const [event, handler] of Object.entries(on)) {
    socket.on(event, (payload) => {
      if (payload && (payload.bin === binId || payload.id === binId)) handler(payload);
    });
  }

  // While a catch-up goes on, a reconnect resumes after what its pages have brought (`through`),
  // not after the newest seq seen: captures arriving live meanwhile are newer than the pages
  // still to come.
  let resumeAfter = null;
  // Answers meant for an earlier connection are ignored: that connection's watch is over.
  let connection = 0;

  const ask = (event, payload, answered) => {
    const mine = connection;
    socket.timeout(WATCH_TIMEOUT_MS).emit(event, payload, (err, ack) => {
      if (mine !== connection) return;
      if (err) {
        // No answer: drop the connection and let the client reconnect and ask again.
        onStatus("reconnecting", "The server did not answer; retrying.");
        socket.disconnect().connect();
        return;
      }
      answered(ack);
    });
  };

  // The server replays what was missed a page at a time: ask for the next once one has come.
  const catchUp = (ack) => {
    if (ack.more !== true || !isSeq(ack.through)) {
      resumeAfter = null;
      return;
    }
    resumeAfter = ack.through;
    ask("replay", { bin: binId }, (next) => {
      if (next && next.ok === true) {
        catchUp(next);
        return;
      }
      // The server has no catch-up for us any more: read the list afresh instead.
      resumeAfter = null;
      onGap();
    });
  };

  const watch = () => {
    connection += 1;
    onStatus("connecting");
    const from = resumeAfter ?? after();
    ask("watch", { bin: binId, after: from, paged: true }, (ack) => {
      if (!ack || ack.ok !== true) {
        onStatus("offline", `Not watching: ${ack && ack.error ? ack.error : "unexpected answer"}`);
        return;
      }
      onStatus("live");
      if (ack.gap) onGap();
      catchUp(ack);
    });
  };

  socket.on("connect", watch);
  // The server's message queue (Redis) was away: events from other processes may have gone
  // missing, so watch again from the highest seq the page has, which replays them.
  socket.on("resync", watch);
  socket.on("captured", (summary) => onCaptured(summary));
  socket.on("disconnect", (reason) => {
    onStatus("reconnecting", `Disconnected (${reason}); reconnecting.`);
    // The client reconnects by itself except after a server-side disconnect.
    if (reason === "io server disconnect") socket.connect();
  });
  socket.on("connect_error", (err) => {
    if (socket.active) onStatus("reconnecting", `Cannot reach the server (${err.message}); retrying.`);
    else onStatus("offline", `Connection refused: ${err.message}`);
  });
  return socket;
}
