"""The page catches up a page at a time, and resumes where the pages got to after a drop."""

from __future__ import annotations

import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from browsing import send, shown_seqs
from harness import Gunicorn
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

RECONNECT_MS = 15_000


def watch_frames(page) -> list[str]:
    """Every Socket.IO frame the page sends."""
    sent: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda frame: sent.append(str(frame))))
    return sent


def test_more_missed_than_a_page_are_replayed_page_by_page(page, tmp_path):
    with Gunicorn(tmp_path, env={"HOOKSCOPE_REPLAY_PAGE": "2"}) as server:
        bin_ = server.create_bin()
        first = send(bin_, "/before")
        list_reads: list[str] = []
        page.on("request", lambda r: list_reads.append(r.url) if "/requests?" in r.url else None)
        frames = watch_frames(page)
        page.goto(bin_["share_url"])
        status = page.locator("#live-status")
        expect(status).to_have_attribute("data-state", "live")

        page.context.set_offline(True)
        expect(status).to_have_attribute("data-state", "reconnecting")
        missed = [send(bin_, f"/missed/{n}") for n in range(7)]
        page.context.set_offline(False)

        expect(status).to_have_attribute("data-state", "live", timeout=RECONNECT_MS)
        expect(page.locator("#request-list li")).to_have_count(8)
        live = send(bin_, "/after")
        expect(page.locator("#request-list li")).to_have_count(9)
        assert shown_seqs(page) == sorted([first, *missed, live], reverse=True)
        assert len(list_reads) == 1, "pages, not a reload of the list"
        # Seven missed, two a page: the watch brought the first page, three asks the rest.
        assert sum('"replay"' in f for f in frames) == 3
        assert any('"paged":true' in f for f in frames)
        server.stop(signal.SIGINT)  # a graceful stop would wait for the page's open connection


class Proxy:
    """A TCP relay in front of the server, through which the browser's WebSocket can be held:
    while ``hold`` is set, nothing the server sends on it goes on to the browser (a browser on a
    stalled network), and the relay reads no more of it, so the server's writes back up."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.hold = threading.Event()
        self.socks: list[socket.socket] = []
        self.threads = [threading.Thread(target=self._accept)]
        self.threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                browser, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.socket()
            self.socks += [browser, server]
            # Set before connecting: the relay takes little of the server's data at a time.
            server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            try:
                server.connect(("127.0.0.1", self.target_port))
            except OSError:
                continue  # the server is stopping; close() closes both
            live_stream = threading.Event()
            for args in (
                (browser, server, None, live_stream),
                (server, browser, live_stream, None),
            ):
                thread = threading.Thread(target=self._pipe, args=args)
                self.threads.append(thread)
                thread.start()

    def _pipe(self, src, dst, holdable, mark) -> None:
        try:
            while True:
                while holdable is not None and holdable.is_set() and self.hold.is_set():
                    time.sleep(0.02)
                data = src.recv(65536)
                if not data:
                    break
                if mark is not None and data.startswith(b"GET /socket.io/"):
                    mark.set()  # this connection carries the live stream
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.hold.clear()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self.listener.close()
        for sock in self.socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self.threads:
            thread.join(timeout=10)
        for sock in self.socks:
            sock.close()


def send_many(bin_: dict, start: int, count: int) -> list[int]:
    """Capture ``count`` requests whose summaries are big (paths and queries cut at 1,024)."""
    long = "s" * 2000

    def part(numbers: list[int]) -> list[int]:
        with requests.Session() as session:
            seqs = []
            for n in numbers:
                answer = session.post(f"{bin_['capture_url']}/{n}/{long}?q={long}", timeout=30)
                assert answer.status_code == 200
                seqs.append(int(answer.headers["X-Hookscope-Seq"]))
            return seqs

    numbers = list(range(start, start + count))
    with ThreadPoolExecutor(4) as pool:
        return [seq for seqs in pool.map(part, [numbers[i::4] for i in range(4)]) for seq in seqs]


MOST = 6000
DROPPED = "dropped a connection that does not read"


def test_a_browser_that_stops_reading_is_dropped_and_catches_up_by_seq(page, tmp_path):
    """The page's network stalls while captures keep coming: the server drops its connection
    once what waits for it passes the cap, and the page, back, gets every capture once."""
    env = {
        "HOOKSCOPE_LIVE_QUEUE_BYTES": str(64 * 1024),
        "HOOKSCOPE_REPLAY_PAGE": "200",
        "HOOKSCOPE_REPLAY_LIMIT": str(MOST),
        "HOOKSCOPE_DEFAULT_MAX_REQUESTS": str(MOST),
        "HOOKSCOPE_MAX_REQUESTS_CEILING": str(MOST),
    }
    with Gunicorn(tmp_path, env=env) as server:
        proxy = Proxy(server.port)
        try:
            bin_ = server.create_bin()
            first = send(bin_, "/before")
            list_reads: list[str] = []
            page.on(
                "request", lambda r: list_reads.append(r.url) if "/requests?" in r.url else None
            )
            page.goto(bin_["share_url"].replace(f":{server.port}/", f":{proxy.port}/"))
            status = page.locator("#live-status")
            expect(status).to_have_attribute("data-state", "live")

            proxy.hold.set()
            sent = [first]
            while len(sent) < MOST and DROPPED not in server.log_text():
                sent += send_many(bin_, len(sent), 250)
            assert DROPPED in server.log_text()
            print(f"\nthe page was dropped after {len(sent)} captures")
            proxy.hold.clear()

            expect(status).to_have_attribute("data-state", "live", timeout=RECONNECT_MS)
            expect(page.locator("#request-list li")).to_have_count(len(sent), timeout=30_000)
            assert shown_seqs(page) == sorted(sent, reverse=True)
            assert len(list_reads) == 1, "caught up by seq, not by reloading the list"
        finally:
            proxy.close()
            server.stop(signal.SIGINT)
