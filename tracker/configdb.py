"""The config store: an SQLAlchemy engine and a request-scoped session, wired via init_app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from flask import Flask, current_app, has_app_context
from flask.globals import app_ctx
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from tracker.settings import SettingsError


def make_engine(url: str) -> Engine:
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SettingsError(f"FUNNEL_DATABASE_URL: cannot create {path}: {exc}") from exc
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            # WAL lets the dashboard read while the CLI or another thread writes.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

    return engine


class _AppBoundSession(Session):
    """Uses the engine of the app whose context is active: several apps in one process (tests,
    a host embedding two of them) each keep their own config store."""

    def get_bind(self, *args: Any, **kwargs: Any) -> Engine:
        engine: Engine = current_app.extensions["configdb"]
        return engine


def _app_context_id() -> int:
    return id(app_ctx._get_current_object())  # type: ignore[attr-defined]


class ConfigDB:
    """Flask extension owning the engine; `db.session` is scoped to the app context (one per
    request, CLI command or background run) and removed when that context ends."""

    def __init__(self) -> None:
        self._engines: dict[str, Engine] = {}
        self._scoped: scoped_session[Session] = scoped_session(
            sessionmaker(class_=_AppBoundSession, expire_on_commit=False),
            scopefunc=_app_context_id,
        )

    @property
    def session(self) -> Session:
        """The session of the current thread (one per request or CLI command)."""
        return self._scoped()

    def remove(self) -> None:
        if has_app_context():  # outside one, the context's teardown already removed it
            self._scoped.remove()

    def init_app(self, app: Flask) -> None:
        url = app.config["FUNNEL_SETTINGS"].database_url
        engine = self._engines.get(url)
        if engine is None:
            engine = self._engines[url] = make_engine(url)
        app.extensions["configdb"] = engine

        @app.teardown_appcontext
        def _remove_session(_exc: BaseException | None) -> None:
            self.remove()

    def engine(self, app: Flask) -> Engine:
        engine: Engine = app.extensions["configdb"]
        return engine

    def ping(self, app: Flask) -> tuple[bool, str]:
        try:
            with self.engine(app).connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            return False, f"config database: {exc}".splitlines()[0][:300]
        return True, "ok"


db = ConfigDB()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Bring the config store to the newest Alembic revision (idempotent)."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")
