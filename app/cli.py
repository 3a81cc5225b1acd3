"""The ``hookscope`` command: ``serve``, plus Flask's own (``db upgrade``, ``routes``)."""

from __future__ import annotations

import os
import sys

import click
from flask.cli import FlaskGroup

from . import create_app


@click.group(cls=FlaskGroup, create_app=create_app)
def main() -> None:
    """Hookscope: a self-hosted webhook inspector."""


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("gunicorn_args", nargs=-1, type=click.UNPROCESSED)
def serve(gunicorn_args: tuple[str, ...]) -> None:
    """Serve under gunicorn with the production settings (extra arguments go to gunicorn)."""
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:app.serving", *gunicorn_args]
    os.execv(sys.executable, [*argv, "app:create_app()"])  # noqa: S606 - fixed program, no shell
