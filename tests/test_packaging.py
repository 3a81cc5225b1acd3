"""What `pip install .` gives: every package, the pages, styles, scripts and migrations, served
from outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
import requests
from harness import ROOT, free_port

pytestmark = pytest.mark.timeout(300)


def test_every_package_under_app_is_shipped():
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "app").rglob("__init__.py")
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        timeout=240,
    )
    [built] = out.glob("hookscope-*.whl")
    return built


def test_the_wheel_holds_what_the_app_reads(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("templates", "static"):
        on_disk = {
            f"app/{shipped}/{p.relative_to(ROOT / shipped).as_posix()}"
            for p in (ROOT / shipped).rglob("*")
            if p.is_file()
        }
        assert on_disk <= names
    for name in ("app/web/openapi.json", "app/migrations/alembic.ini", "app/migrations/env.py"):
        assert name in names
    assert any(n.endswith("/licenses/LICENSE") for n in names)


def test_an_installed_copy_serves_from_anywhere(wheel, tmp_path):
    """Unpacked alone (no checkout on the path), started in an empty folder."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), wheel],
        check=True,
        timeout=120,
    )
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HOOKSCOPE_", "DATABASE_URL", "REDIS_URL", "SECRET_KEY"))
    }
    env |= {"PYTHONPATH": str(target), "PORT": str(port), "HOOKSCOPE_HOST": "127.0.0.1"}
    where = subprocess.run(
        [sys.executable, "-c", "import app; print(app.__file__)"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(target))
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [str(target / "bin" / "hookscope"), "serve"]
        if (target / "bin" / "hookscope").exists()
        else [sys.executable, "-c", "from app.cli import main; main()", "serve"],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:  # not up yet, or slow to answer on a busy machine
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.1)
        home = requests.get(base + "/", timeout=5)
        assert home.status_code == 200 and "Create bin" in home.text
        for asset in ("/static/css/app.css", "/static/js/bin.js", "/static/favicon.svg"):
            assert requests.get(base + asset, timeout=5).status_code == 200, asset
        created = requests.post(base + "/api/v1/bins", timeout=5).json()
        assert requests.post(created["capture_url"], data=b"installed", timeout=5).ok
        page = requests.get(
            f"{base}/api/v1/bins/{created['id']}/requests/1/raw",
            headers={"Authorization": f"Bearer {created['read_key']}"},
            timeout=5,
        )
        assert page.content == b"installed"
        assert (workdir / "instance" / "hookscope.db").exists()
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
