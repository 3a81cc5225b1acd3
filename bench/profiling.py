"""Sample a gunicorn worker with py-spy while ingest load runs; summarise where the time goes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))


Share = tuple[str, float]


def available() -> bool:
    return Path(PY_SPY).exists()


def record(pid: int, seconds: int, out_prefix: Path, rate: int = 200) -> dict:
    """Record ``seconds`` of stacks from ``pid`` as a flame graph (SVG) and collapsed text."""
    collapsed = out_prefix.with_suffix(".txt")
    svg = out_prefix.with_suffix(".svg")
    base = [PY_SPY, "record", "--pid", str(pid), "-d", str(seconds), "-r", str(rate)]
    base.append("--nonblocking")  # sample without pausing the worker
    # Raw (collapsed stacks) is what we rank; py-spy cannot turn it into an SVG afterwards, so the
    # flame graph is a second pass (flamegraph()) over the same steady load.
    proc = subprocess.run(
        [*base, "-f", "raw", "-o", str(collapsed)],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-2000:]}
    flamegraph(pid, seconds, svg, rate)
    return {"collapsed": str(collapsed), "svg": str(svg), **summarise(collapsed)}


def flamegraph(pid: int, seconds: int, svg: Path, rate: int = 200) -> None:
    subprocess.run(
        [PY_SPY, "record", "--pid", str(pid), "-d", str(seconds), "-r", str(rate), "--nonblocking",
         "-o", str(svg)],
        capture_output=True,
        timeout=seconds + 60,
    )  # fmt: skip


REPO = str(Path(__file__).resolve().parent.parent)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    """``func (path/site-packages/pkg/mod.py:12)`` -> ``pkg/mod.py:func``."""
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m["file"]
    for marker in ("site-packages/", f"{REPO}/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{m['func']}"


# Parts of the capture path a reader can act on: share of samples with such a frame on the stack.
COMPONENTS = [
    ("capture gate (CaptureGate.__call__), total", "__call__ (app/ingest/gate.py"),
    ("  bin lookup (cached)", "_exists (app/ingest/gate.py"),
    ("  read_body", "read_body (app/ingest/gate.py"),
    ("  snapshot.take", "take (app/ingest/snapshot.py"),
    ("  Recorder.record (queue + wait)", "record (app/store/recorder.py"),
    ("  live.publish_capture (Socket.IO emit)", "publish_capture (app/live/"),
    ("  capture log line", "info (app/logs.py"),
    ("group-commit writer: Store.write", "write (app/store/recorder.py"),
    ("  pool checkout (pre-ping)", "checkout (app/store/recorder.py"),
    ("pywsgi: read request line + headers", "read_request (gevent/pywsgi.py"),
    ("pywsgi: environ", "get_environ (app/ingest/server.py"),
    ("pywsgi: response write", "write (gevent/pywsgi.py"),
    ("gunicorn access log", "Logger.access (gunicorn/glogging.py"),
]


def _package(frame: str) -> str:
    """Name the library a leaf frame belongs to."""
    m = _FRAME.match(frame)
    path = m["file"] if m else frame
    if "<sqlalchemy generated" in path:
        return "sqlalchemy"
    # py-spy already shortens paths to "package/module.py" (site-packages and stdlib alike).
    path = path.split("site-packages/", 1)[-1]
    top = path.split("/", 1)[0].removesuffix(".py")
    if top == "app":
        return "app (Hookscope)"
    return f"stdlib ({top})" if top in sys.stdlib_module_names else top


def summarise(collapsed: Path, top: int = 12) -> dict:
    """Rank frames by self time; share of samples per capture-path component and per library."""
    self_time: Counter[str] = Counter()
    components: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        self_time[_short(frames[-1])] += n
        packages[_package(frames[-1])] += n
        for label, needle in COMPONENTS:
            if needle in stack:
                components[label] += n

    def share(counter: Counter[str], keep_order: list[str] | None = None) -> list[Share]:
        items = [(k, counter[k]) for k in keep_order] if keep_order else counter.most_common(top)
        return [(k, round(100 * v / max(total, 1), 1)) for k, v in items]

    return {
        "samples": total,
        "components": share(components, [label for label, _ in COMPONENTS]),
        "libraries_self": share(packages),
        "top_self": share(self_time),
    }
