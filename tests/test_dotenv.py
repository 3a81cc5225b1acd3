"""The hookscope command reads .env (python-dotenv, through Flask's CLI), and hands it on to the
server it starts. Which wins: the environment, then --env-file, then .env, then .flaskenv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from engines import wait_for
from harness import free_port

HOOKSCOPE = str(Path(sys.executable).with_name("hookscope"))
# A setting whose bad value stops the command, naming the value: which file it came from.
NAME = "HOOKSCOPE_MAX_BODY_BYTES"


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKSCOPE_", "FLASK_"))}
    clean.pop("DATABASE_URL", None)
    return subprocess.run(
        [HOOKSCOPE, *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def winner(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Which value of NAME the command saw."""
    done = run(cwd, *args, "list", env=env)
    assert done.returncode != 0
    marker = f"{NAME}='"
    assert marker in done.stderr, done.stderr[-2000:]
    return done.stderr.split(marker, 1)[1].split("'", 1)[0]


BOTH = {".env": "dotenv", "other.env": "envfile"}


@pytest.mark.parametrize(
    ("files", "args", "env", "expected"),
    [
        ({".env": "dotenv"}, (), None, "dotenv"),
        ({".flaskenv": "flaskenv"}, (), None, "flaskenv"),
        ({".flaskenv": "flaskenv", ".env": "dotenv"}, (), None, "dotenv"),
        (BOTH, ("--env-file", "other.env"), None, "envfile"),
        (BOTH, ("-e", "other.env"), {NAME: "environ"}, "environ"),
    ],
)  # fmt: skip
def test_which_setting_wins(tmp_path, files, args, env, expected):
    for name, value in files.items():
        (tmp_path / name).write_text(f"# a comment\n{NAME}={value}\n")
    assert winner(tmp_path, *args, env=env) == expected


def test_a_dotenv_in_a_parent_folder_is_found(tmp_path):
    (tmp_path / ".env").write_text(f"{NAME}=parent\n")
    below = tmp_path / "a" / "b"
    below.mkdir(parents=True)
    assert winner(below) == "parent"


def test_serve_hands_the_dotenv_on_to_the_server(tmp_path):
    port = free_port()
    (tmp_path / ".env").write_text(
        f"PORT={port}\n"
        f"HOOKSCOPE_INSTANCE_PATH={tmp_path / 'instance'}\n"
        "HOOKSCOPE_PUBLIC_URL=https://hooks.from-dotenv.example\n"
        "SECRET_KEY=from-dotenv-secret-key\n"
    )
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKSCOPE_", "FLASK_"))}
    clean = {k: v for k, v in clean.items() if k not in ("DATABASE_URL", "PORT", "SECRET_KEY")}
    server = subprocess.Popen(
        [HOOKSCOPE, "serve"], cwd=tmp_path, env=clean, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                return requests.get(url + "/healthz", timeout=1).ok
            except (requests.ConnectionError, requests.Timeout):  # still starting
                return False

        wait_for(answers, 60, "hookscope serve on the .env's port", every=0.2)
        made = requests.post(url + "/api/v1/bins", timeout=10).json()
        assert made["capture_url"].startswith("https://hooks.from-dotenv.example/h/")
        assert (tmp_path / "instance" / "hookscope.db").exists()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
