"""Engines of a test's own, to stop and start: Redis, PostgreSQL, a small filesystem.

The shared PostgreSQL and Redis that .ci/run starts serve other tests at the same time, so an
outage test never stops them: it starts its own redis-server or PostgreSQL cluster (Debian's
binaries, as .ci/run installs them) on a free loopback port, and removes it afterwards. A
filesystem to fill up or to turn read-only needs mount(8), so root. Without what they need these
tests skip, unless HOOKSCOPE_REQUIRE_TOOLS=1 (.ci/run), which makes that a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from harness import free_port


def unavailable(reason: str) -> None:
    """Skip, or fail when CI requires every tool (HOOKSCOPE_REQUIRE_TOOLS=1)."""
    if os.environ.get("HOOKSCOPE_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{reason}, and HOOKSCOPE_REQUIRE_TOOLS=1 requires it", pytrace=False)
    pytest.skip(reason)


def scaleout_unavailable(reason: str, module: bool = False) -> None:
    """Skip, or fail when CI requires PostgreSQL and Redis (HOOKSCOPE_REQUIRE_SCALEOUT=1)."""
    if os.environ.get("HOOKSCOPE_REQUIRE_SCALEOUT") == "1":
        pytest.fail(f"{reason} (HOOKSCOPE_REQUIRE_SCALEOUT=1)", pytrace=False)
    pytest.skip(reason, allow_module_level=module)


def wait_for(check, timeout: float, what: str, every: float = 0.05):
    """Call ``check`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(every)


class PrivateRedis:
    """A redis-server of the test's own on a free port, nothing persisted; stop() and start()
    again on the same port, as a restarted Redis comes back."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            unavailable("redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        import redis

        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_timeout=1)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_for(answers, 15, "redis-server answering")
        client.close()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)  # gone at once, as in a crash
            self.proc.wait(timeout=10)
        self.proc = None


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: p.split("/")[4])
    return Path(found[-1]).parent if found else None


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb, pg_ctl) on a free loopback port, trusting
    local connections; stop() and start() it as a restart does. As root, its files belong to the
    postgres user and its programs run as that user (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        if self.bin is None:
            unavailable("PostgreSQL's server programs are not installed")
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                import pwd

                pwd.getpwnam("postgres")
            except KeyError:
                unavailable("running as root, and there is no postgres user to run PostgreSQL")
        self.port = free_port()
        # Under /tmp, not pytest's folder: the postgres user must be able to reach it.
        self.dir = Path(tempfile.mkdtemp(prefix="hookscope-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/hookscope"

    def _run(self, *args: str) -> None:
        user = {"user": "postgres"} if self.as_root else {}
        subprocess.run(args, check=True, capture_output=True, timeout=120, **user)

    def create(self) -> PrivatePostgres:
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        self.start()
        import psycopg

        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE hookscope")
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={self.dir} -c max_connections=50"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server: ``immediate`` is a crash (recovery at the next start)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop()
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def _need_root_and(*programs: str) -> None:
    if os.geteuid() != 0:
        unavailable("mounting a filesystem needs root")
    for program in programs:
        if shutil.which(program) is None:
            unavailable(f"{program} is not installed")


class SmallTmpfs:
    """A tmpfs of ``size`` bytes at ``path``: a disk that fills up (mount -t tmpfs -o size=)."""

    def __init__(self, path: Path, size: int) -> None:
        _need_root_and("mount", "umount")
        self.path, self.size = path, size
        self.filler = path / "filler"

    def mount(self) -> SmallTmpfs:
        self.path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0755", "tmpfs", str(self.path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            unavailable(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        return self

    def fill(self) -> int:
        """Take every free byte with a file of our own; return how many that was."""
        chunk, written = b"\0" * 65536, 0
        with open(self.filler, "wb", buffering=0) as f:
            while True:
                try:
                    written += f.write(chunk)
                except OSError:
                    break
        for size in (4096, 512, 1):  # and the last partial chunk
            with open(self.filler, "ab", buffering=0) as f:
                try:
                    while True:
                        written += f.write(b"\0" * size)
                except OSError:
                    pass
        return written

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


class Ext4Image:
    """An ext4 filesystem in a file, loop-mounted at ``path`` with errors=remount-ro (Debian's
    choice for its root filesystem): ``fail()`` makes the kernel record an error, as a failing
    disk would, and turn it read-only under the files open on it."""

    def __init__(self, path: Path, image: Path, size: int = 32 * 1024 * 1024) -> None:
        _need_root_and("mount", "umount", "mkfs.ext4", "e2fsck", "findmnt")
        self.path, self.image, self.size = path, image, size

    def create(self) -> Ext4Image:
        with open(self.image, "wb") as f:
            f.truncate(self.size)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(self.image)], check=True)
        return self.mount()

    def mount(self) -> Ext4Image:
        self.path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-o", "loop,errors=remount-ro", str(self.image), str(self.path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            unavailable(f"cannot loop-mount an ext4 image here: {done.stderr.strip()}")
        return self

    def options(self) -> str:
        return subprocess.run(
            ["findmnt", "-n", "-o", "OPTIONS", str(self.path)], capture_output=True, text=True
        ).stdout.strip()

    def fail(self) -> None:
        """Have ext4 record an error (its sysfs trigger): with errors=remount-ro the kernel turns
        the filesystem read-only at once, open files and all."""
        device = subprocess.run(
            ["findmnt", "-n", "-o", "SOURCE", str(self.path)], capture_output=True, text=True
        ).stdout.strip()
        trigger = Path("/sys/fs/ext4") / Path(device).name / "trigger_fs_error"
        if not trigger.exists():
            unavailable(f"this kernel has no {trigger}")
        trigger.write_text("hookscope outage test\n")

    def repair(self) -> None:
        """Unmount, check and mount again: what an operator does once nothing holds it open."""
        subprocess.run(["umount", str(self.path)], check=True)
        subprocess.run(["e2fsck", "-f", "-y", str(self.image)], capture_output=True)
        self.mount()

    def remove(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
        self.image.unlink(missing_ok=True)
