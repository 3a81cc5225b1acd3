"""Outbound calls inside the server's worker wait cooperatively, name look-ups included."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_name_lookups_in_the_worker_do_not_block_other_greenlets():
    """The worker patches the standard library as gunicorn's gevent worker does (patch_all);
    the client resolves through socket.getaddrinfo, looked up when called. Patched, that is
    gevent's resolver, which runs the system's look-up in a native thread: a look-up the
    system makes wait (here: held in that thread until a greenlet lets it go) must leave
    every other greenlet running."""
    script = textwrap.dedent(
        f"""
        from gevent import monkey
        monkey.patch_all()
        import sys
        sys.path[:0] = [{str(ROOT)!r}]
        import _socket
        import gevent
        from app.outbound import connect
        real = _socket.getaddrinfo
        real_event = gevent.monkey.get_original("threading", "Event")()
        called = []

        def slow_system_lookup(*args, **kwargs):  # the system's look-up, made to wait
            called.append(1)
            real_event.wait(10)
            return real(*args, **kwargs)

        _socket.getaddrinfo = slow_system_lookup
        ticks = []
        def ticker():
            for _ in range(5):
                gevent.sleep(0.001)
                ticks.append(1)
            real_event.set()  # the look-up may finish only after the loop ran freely
        t = gevent.spawn(ticker)
        addresses = connect.resolve_host("localhost", 80)
        ticks_when_resolved = len(ticks)  # 0 if the look-up had held the whole process
        t.join()
        resolver = type(gevent.get_hub().resolver).__module__
        print(resolver, len(called), ticks_when_resolved, "127.0.0.1" in addresses)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    resolver, *outcome = done.stdout.split()
    # "block" (GEVENT_RESOLVER=block) would hold the process during every look-up.
    assert resolver in ("gevent.resolver.thread", "gevent.resolver.ares")
    assert outcome == ["1", "5", "True"]
