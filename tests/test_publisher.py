"""A capture's live event leaves before its own answer only when few watch it."""

from __future__ import annotations

import gevent
import pytest
import socketio

from app.live import publisher as publishing
from app.live.fanout import Lanes


def publisher_with(monkeypatch, watchers: int | None) -> tuple[publishing.Publisher, list[str]]:
    """A real publisher greenlet on a gevent Socket.IO server whose worker has ``watchers``
    WebSocket connections (None: the fan-out is not installed); it records what it sends."""
    server = socketio.Server(async_mode="gevent")
    if watchers is not None:
        server.manager.lanes = Lanes()
        server.manager.lanes.by_sid.update({f"sid{i}": object() for i in range(watchers)})
    done: list[str] = []
    monkeypatch.setattr(publishing.Publisher, "_send", staticmethod(lambda e, *_: done.append(e)))
    pub = publishing.Publisher(server, "in-process")
    gevent.sleep(0)  # the publisher greenlet starts and waits for events
    return pub, done


def capture_then_answer(pub: publishing.Publisher, done: list[str]) -> list[str]:
    """What a capture's greenlet does: publish its event, then write its own answer."""

    def capture() -> None:
        pub.put("captured", {}, "bin")
        done.append("answered")

    gevent.spawn(capture).join()
    pub.queue.join()
    return done


@pytest.mark.parametrize("watchers", [1, publishing.SEND_FIRST_UP_TO])
def test_with_a_few_watchers_the_event_leaves_before_the_answer(monkeypatch, watchers):
    pub, done = publisher_with(monkeypatch, watchers)
    assert capture_then_answer(pub, done) == ["captured", "answered"]


@pytest.mark.parametrize("watchers", [None, 0, publishing.SEND_FIRST_UP_TO + 1, 100])
def test_with_many_watchers_or_none_the_answer_does_not_wait(monkeypatch, watchers):
    pub, done = publisher_with(monkeypatch, watchers)
    assert capture_then_answer(pub, done) == ["answered", "captured"]


def test_events_queued_behind_others_do_not_make_the_caller_wait(monkeypatch):
    pub, done = publisher_with(monkeypatch, 1)

    def burst() -> None:
        for i in range(3):
            pub.put(f"e{i}", {}, "bin")
            done.append(f"answered{i}")

    gevent.spawn(burst).join()
    pub.queue.join()
    # The first event goes first; the rest queue behind it, sent after the caller went on.
    assert done[:2] == ["e0", "answered0"]
    assert sorted(done) == sorted(["e0", "e1", "e2", "answered0", "answered1", "answered2"])
    assert [e for e in done if e.startswith("e")] == ["e0", "e1", "e2"]
