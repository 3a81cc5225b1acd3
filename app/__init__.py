"""Hookscope: a self-hosted webhook inspector."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import config

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent
MIGRATIONS = str(PACKAGE / "migrations")


def _shipped(name: str) -> str:
    """Where templates/ or static/ is: beside app/ in a checkout, inside it once installed."""
    beside = ROOT / name
    return str(beside if beside.is_dir() else PACKAGE / name)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: configuration, extensions, blueprints."""
    # Imported here rather than at the top: gunicorn imports this package to read its settings
    # (app.runtime.serving) before the gevent worker patches the standard library, and these modules
    # bring in ssl users (Socket.IO's Redis and HTTP clients) that must be imported after it.
    from app import cli, live, web
    from app.extensions import db, migrate
    from app.ingest import gate
    from app.store import engine

    app = Flask(
        __name__,
        instance_path=config.instance_path(ROOT),
        instance_relative_config=True,
        template_folder=_shipped("templates"),
        static_folder=_shipped("static"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(config.from_environment(app.instance_path))
    if test_config:
        app.config.update(test_config)

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS)
    engine.init_app(app)
    live.init_app(app)
    gate.init_app(app)
    web.init_app(app)
    cli.init_app(app)

    proxies = app.config["HOOKSCOPE_PROXY_COUNT"]
    if proxies:
        # Forwarded headers are believed only from the configured number of proxies in front.
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )
    return app
