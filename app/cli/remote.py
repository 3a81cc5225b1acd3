"""What ``forward`` and ``tail`` share: the bin and its key, the live stream, stopping cleanly.

Nothing here builds the Flask app or reads the server's settings: these commands run on any
machine with ``pipx install 'hookscope[client]'``, against any Hookscope server.
"""

from __future__ import annotations

import signal as signals
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import click

from app import config
from app.cli import binurl
from app.cli.feed import Feed, Refused, Unreachable
from app.cli.lines import Printer
from app.cli.recent import Recent
from app.cli.stream import (
    RECONNECT_MAX,
    ClientExtraMissing,
    Signal,
    Watcher,
    require_client_extra,
)

BIN_URL_HELP = (
    "BIN_URL is the bin's capture URL (http://host/h/<id>), its page (http://host/bins/<id>) or "
    "its share link (with #key=)."
)
KEY_HELP = "The bin's read key (else the share link's #key=, else HOOKSCOPE_KEY). Never printed."


@dataclass
class Running:
    """A command's shared parts while it runs."""

    ref: binurl.BinRef
    key: str | None
    printer: Printer
    stop: threading.Event
    signal: Signal
    recent: Recent
    watcher: Watcher
    fatal: list[str]  # why the command stopped on its own, if it did

    def fail(self, message: str) -> None:
        """Stop everything: the server refused for good."""
        self.fatal.append(message)
        self.stop.set()
        self.signal.wake()


def resolve(bin_url: str, key: str | None) -> tuple[binurl.BinRef, str | None]:
    """Read the bin's URL; take the key from --key, the share link, or HOOKSCOPE_KEY."""
    try:
        ref = binurl.parse(bin_url)
    except binurl.BadBinURL as err:
        raise click.BadParameter(str(err), param_hint="BIN_URL") from None
    return ref, key or ref.key or config.client_read_key()


@contextmanager
def running(bin_url: str, key: str | None, as_json: bool) -> Iterator[Running]:
    """Check the extra, watch the bin's live stream, and stop on Ctrl-C or SIGTERM."""
    try:
        require_client_extra()
    except ClientExtraMissing as err:
        raise click.ClickException(str(err)) from None
    ref, key = resolve(bin_url, key)
    printer = Printer(as_json)
    stop, signal, recent = threading.Event(), Signal(), Recent()
    watcher = Watcher(ref, key, signal, recent, printer.note, stop)
    state = Running(ref, key, printer, stop, signal, recent, watcher, [])
    previous = signals.signal(signals.SIGTERM, lambda *_: _stop(stop, signal))
    try:
        yield state
    finally:
        signals.signal(signals.SIGTERM, previous)
        stop.set()
        signal.wake()
        watcher.close()


def wait_until_stopped(state: Running, threads: list[threading.Thread]) -> None:
    """Run until Ctrl-C, SIGTERM or a fatal refusal; then let the threads end their step."""
    state.watcher.start()
    for thread in threads:
        thread.start()
    try:
        while not state.stop.is_set():
            state.stop.wait(0.5)
    except KeyboardInterrupt:
        pass
    _stop(state.stop, state.signal)
    for thread in threads:
        # A delivery under way may finish (its position is then saved); a slow one is left to
        # be sent again next time.
        thread.join(timeout=2.0)
    if state.watcher.fatal:
        state.fatal.append(state.watcher.fatal)
    if state.fatal:
        raise click.ClickException(state.fatal[0])


def last_seq(state: Running) -> int | None:
    """Ask the server for the bin (checking the key), waiting while it cannot be reached."""
    feed, wait = Feed(state.ref.server, state.ref.bin_id, state.key), 0.25
    try:
        while not state.stop.is_set():
            try:
                return int(feed.bin()["last_seq"])
            except Unreachable as err:
                state.printer.note("server", f"cannot read the bin: {err}; trying again")
                state.stop.wait(wait)
                wait = min(wait * 2, RECONNECT_MAX)
            except Refused as err:
                raise click.ClickException(str(err)) from None
        return None
    finally:
        feed.close()


def _stop(stop: threading.Event, signal: Signal) -> None:
    stop.set()
    signal.wake()


def thread(state: Running, name: str, work: Callable[[], None]) -> threading.Thread:
    """A worker thread whose failure stops the command, saying why, rather than leaving it idle."""

    def guarded() -> None:
        try:
            work()
        except BrokenPipeError:
            state.fail("the output was closed")
        except Exception as err:  # noqa: BLE001 - reported and stops the command
            state.fail(f"{name} stopped: {type(err).__name__}: {err}")

    return threading.Thread(target=guarded, name=name, daemon=True)
