"""Extensions, created unbound; ``create_app`` binds them."""

from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


# Captures are read right after commit (to publish them); keep their loaded values.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
socketio = SocketIO()
csrf = CSRFProtect()


def under_gevent() -> bool:
    """Tell whether gevent has patched the standard library (gunicorn's worker does; tests and
    the CLI run on plain threads)."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return monkey.is_module_patched("socket")


# The app's flask-limiter Limiter, one per app (app/web/limits.py says why), under this key.
LIMITER = "hookscope.limiter"
