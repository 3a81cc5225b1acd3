"""Each reliance on a library's private part is checked at start-up: broken on purpose, the server
says which package and version it needs, and refuses to start or takes the public path."""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
import textwrap

import pytest
from harness import ROOT, free_port

from app import internals
from app.ingest import body_input, sending, server
from app.live import backlog, fanout
from app.store import engine

RELIANCES = (
    server.RELIANCES
    + body_input.RELIANCES
    + sending.RELIANCES
    + fanout.RELIANCES
    + backlog.RELIANCES
    + engine.RELIANCES
)


def owner_and_name(part: str) -> tuple[object, str]:
    """The object a reliance's last attribute lives on, and that attribute's name."""
    module_name, _, path = part.partition(":")
    *parents, name = path.split(".")
    if not parents:
        return importlib.import_module(module_name), name
    return internals.resolve(f"{module_name}:{'.'.join(parents)}"), name


@pytest.fixture(autouse=True)
def fresh_answers():
    internals.usable.cache_clear()
    yield
    internals.usable.cache_clear()


@pytest.mark.parametrize("reliance", RELIANCES, ids=lambda r: r.part)
def test_a_missing_part_is_named_with_the_version_needed(reliance, monkeypatch, caplog):
    assert internals.check((reliance,)) == []
    owner, name = owner_and_name(reliance.part)
    if reliance.package == internals.PYTHON:
        # What is assumed of the standard library's Message (a list of the fields as parsed, in
        # its _headers) goes, for the server's subclass only: importlib.metadata parses with it.
        from app.ingest.head import Headers

        monkeypatch.setattr(Headers, "__init__", lambda *_, **__: None)
    elif isinstance(owner, type):
        for cls in owner.__mro__:  # wherever the library defines it, as a rename would
            if name in vars(cls):
                monkeypatch.delattr(cls, name)
    else:
        monkeypatch.delattr(owner, name)

    findings = internals.check((reliance,))

    assert len(findings) == 1
    message = findings[0].message
    assert reliance.part in message
    assert internals.wanted(reliance.package) in message
    assert reliance.loses in message
    if reliance.fallback:
        with caplog.at_level(logging.WARNING, "hookscope.internals"):
            internals.enforce((reliance,))
        assert "takes the public path" in caplog.text
        assert internals.usable(reliance) is False
    else:
        with pytest.raises(SystemExit) as refused:
            internals.enforce((reliance,))
        assert "refuses to start" in str(refused.value)


def test_the_pins_name_exact_versions():
    """Every package a reliance is on is pinned exactly, so the message names one version."""
    for package in {r.package for r in RELIANCES} - {internals.PYTHON}:
        assert internals.wanted(package) == f"{package}=={internals.installed(package)}"


def test_trailers_that_pywsgi_stops_handing_over_are_caught(monkeypatch):
    """The part can exist and still not be called: the behaviour is what is checked."""
    from gevent import pywsgi

    from app.ingest.body_input import Body

    original = next(c for c in Body.__mro__ if c.__module__ == pywsgi.__name__)
    # As if gevent read trailers through a method under another name: ours would never run.
    monkeypatch.setattr(Body, "_Input__read_chunk_trailer", original._Input__read_chunk_trailer)
    trailers = next(r for r in RELIANCES if r.behaves is body_input._keeps_trailers)
    [finding] = internals.check((trailers,))
    assert "does not behave as expected" in finding.message


def test_the_live_fan_out_falls_back_to_engineios_queues(monkeypatch):
    import socketio

    monkeypatch.delattr(socketio.Server, "_send_eio_packet")
    server = socketio.Server(async_mode="threading", client_manager=fanout.Manager())
    assert fanout.install(server) == "engineio's queues (missing socketio:Server._send_eio_packet)"


def test_the_server_refuses_to_start_and_says_why(tmp_path):
    """A real gunicorn, with gevent's trailer reader renamed under it by a sitecustomize."""
    (tmp_path / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            from gevent import pywsgi
            del pywsgi.Input._Input__read_chunk_trailer
            """
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'hookscope.db'}",
        "SECRET_KEY": "test",
        "PORT": str(free_port()),
    }
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "python:app.runtime.serving", "app:create_app()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "gevent.pywsgi:Input._Input__read_chunk_trailer" in done.stderr
    assert f"Install gevent=={internals.installed('gevent')}" in done.stderr
    assert "refuses to start" in done.stderr
    assert not (tmp_path / "hookscope.db").exists()  # it stopped before touching the database
