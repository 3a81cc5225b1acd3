"""The ``hookscope`` command: serve, create, list, prune, admin, plus Flask's own (``db upgrade``).

``forward`` and ``tail`` (app/cli/relay.py, app/cli/tail.py) are clients of a server, anywhere:
they sit on the group itself, so Flask's group finds them without loading the app, and they
read none of the server's settings. The server commands import what they use when they run, so
that a client command does not wait for the server's libraries to load.
"""

from __future__ import annotations

import os
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from app import create_app
from app.cli.relay import forward
from app.cli.tail import tail
from app.config import server_settings


@click.group(cls=FlaskGroup, create_app=create_app)
def main() -> None:
    """Hookscope: a self-hosted webhook inspector."""


main.add_command(forward)
main.add_command(tail)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("gunicorn_args", nargs=-1, type=click.UNPROCESSED)
def serve(gunicorn_args: tuple[str, ...]) -> None:
    """Serve under gunicorn with the production settings (extra arguments go to gunicorn)."""
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:app.runtime.serving", *gunicorn_args]
    os.execv(sys.executable, [*argv, "app:create_app()"])  # noqa: S606 - fixed program, no shell


def _request_context():
    """A request context on the public base URL, so links come out as users will open them."""
    base = current_app.config["HOOKSCOPE_PUBLIC_URL"] or (
        f"http://127.0.0.1:{server_settings().port}"
    )
    return current_app.test_request_context(base_url=base)


@click.command()
@click.option("--name", default="", help="A name to tell the bin apart.")
@with_appcontext
def create(name: str) -> None:
    """Create a bin; print its capture URL, read key and share link."""
    from app.store import bins
    from app.web.links import bin_dict

    with _request_context():
        created = bins.create(name=name)
        shown = bin_dict(created.bin, created.read_key)
    click.echo(f"id           {shown['id']}")
    click.echo(f"capture URL  {shown['capture_url']}")
    click.echo(f"read key     {shown['read_key']}")
    click.echo(f"share link   {shown['share_url']}")


@click.command("list")
@with_appcontext
def list_bins() -> None:
    """List every bin: id, requests stored, expiry, name."""
    from app.domain.models import Bin
    from app.extensions import db

    rows = db.session.scalars(db.select(Bin).order_by(Bin.created_at)).all()
    if not rows:
        click.echo("no bins")
        return
    click.echo(f"{'id':<26}  {'requests':>8}  {'expires (UTC)':<19}  name")
    for bin_ in rows:
        expires = bin_.expires_at.strftime("%Y-%m-%d %H:%M:%S") if bin_.expires_at else "never"
        click.echo(f"{bin_.id:<26}  {bin_.request_count:>8}  {expires:<19}  {bin_.name}")


@click.command()
@with_appcontext
def prune() -> None:
    """Delete the bins whose expiry has passed."""
    from app.store import bins

    expired = bins.prune()
    click.echo(f"pruned {len(expired)} expired bin(s)")
    for bin_id in expired:
        click.echo(f"  {bin_id}")


def init_app(app) -> None:
    """Add the operator commands to ``flask``/``hookscope`` for this app."""
    from app.cli.admin import admin_group

    for command in (create, list_bins, prune, admin_group):
        app.cli.add_command(command)
