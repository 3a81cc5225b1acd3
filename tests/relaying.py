"""Run ``hookscope forward`` and ``tail`` as a user does (the installed command, as a process of
its own) and send captures byte for byte, for the relay and tail tests."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

# The command a user runs, from the same environment as the tests.
HOOKSCOPE = str(Path(sys.executable).parent / "hookscope")
# Long enough for a loaded 2-core machine to start a Python process and deliver; the tests wait
# for outcomes, never for a time.
WAIT = 60.0
# The server's settings: none of them may reach a client command.
SERVER_VARIABLES = ("HOOKSCOPE_", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PORT")


def client_env(state: Path, **extra: str) -> dict[str, str]:
    """The environment of a machine with the client only: no server setting, its own state."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SERVER_VARIABLES)}
    return {**env, "XDG_STATE_HOME": str(state), **extra}


class Cli:
    """One run of the command: its output lines as they come, and ways to end it."""

    def __init__(self, args: Sequence[str], env: dict[str, str], cwd: Path) -> None:
        self.args = list(args)
        self.proc = subprocess.Popen(
            [HOOKSCOPE, *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self.changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, lines: list[str]) -> None:  # noqa: ANN001
        for line in stream:
            with self.changed:
                lines.append(line.rstrip("\n"))
                self.changed.notify_all()

    @property
    def records(self) -> list[dict]:
        """The --json lines so far."""
        with self.changed:
            return [json.loads(line) for line in self.out]

    def wait_for(self, check: Callable[[Cli], bool], what: str, timeout: float = WAIT) -> None:
        with self.changed:
            if not self.changed.wait_for(
                lambda: check(self) or self.proc.poll() is not None, timeout
            ):
                raise AssertionError(f"waited {timeout:g} s for {what}; {self.transcript()}")
        if not check(self):
            raise AssertionError(f"the command ended before {what}; {self.transcript()}")

    def delivered(self) -> list[int]:
        return [r["seq"] for r in self.records if r.get("outcome") == "delivered"]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = WAIT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.finish(timeout)

    def finish(self, timeout: float = WAIT) -> int:
        """Wait for the command to end by itself; return its exit code."""
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code

    def transcript(self) -> str:
        return "stdout:\n" + "\n".join(self.out[-40:]) + "\nstderr:\n" + "\n".join(self.err[-40:])


def wait_until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(0.02)


def send_raw(
    base_url: str,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str | bytes]],
    body: bytes = b"",
    chunked: bool = False,
) -> int:
    """Send one request with exactly these header lines (no Host or framing added); return the
    seq the capture got."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            # Bytes go out as they are; http.client would encode text as Latin-1.
            conn.putheader(name, value.encode() if isinstance(value, str) else value)
        conn.endheaders(body if body and not chunked else None)
        if chunked:
            for piece in (body[: len(body) // 2], body[len(body) // 2 :]):
                if piece:
                    conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        return int(response.getheader("X-Hookscope-Seq"))
    finally:
        conn.close()
