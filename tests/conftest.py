"""Shared fixtures. One real chDB engine per test session (chDB allows one per process) in a
temporary directory; a fresh SQLite config store per test; ClickHouse data isolated by site key.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Hermetic: ignore the developer's own FUNNEL_* settings, and point at a throwaway data dir
# before anything opens a store.
for _var in [v for v in os.environ if v.startswith("FUNNEL_")]:
    del os.environ[_var]
SESSION_DIR = Path(tempfile.mkdtemp(prefix="funnel-tests-"))
os.environ["FUNNEL_DATA_DIR"] = str(SESSION_DIR)
os.environ["FUNNEL_SECRET_KEY"] = "test-secret-key-not-for-production"

from flask import Flask  # noqa: E402
from flask.testing import FlaskClient, FlaskCliRunner  # noqa: E402

from tracker import create_app  # noqa: E402
from tracker.app import store_of  # noqa: E402
from tracker.ch_migrations import migrate  # noqa: E402
from tracker.clickhouse import Store  # noqa: E402
from tracker.configdb import db, upgrade  # noqa: E402
from tracker.models import Site, User  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def store() -> Store:
    """The session's migrated ClickHouse store (real chDB)."""
    app = create_app({"database_url": f"sqlite:///{SESSION_DIR / 'bootstrap.db'}"})
    the_store = store_of(app)
    migrate(the_store)
    return the_store


@pytest.fixture
def app(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """An app on the session's ClickHouse and a fresh, migrated SQLite config store."""
    url = f"sqlite:///{tmp_path / 'config.db'}"
    monkeypatch.setenv("FUNNEL_DATABASE_URL", url)
    upgrade(url)
    application = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False})
    with application.app_context():
        yield application
    db.remove()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def admin(app: Flask) -> User:
    from tracker import accounts

    user = accounts.create_user(db.session, "admin@test.example", "admin-pass-123", role="admin")
    db.session.commit()
    return user


@pytest.fixture
def site(app: Flask, admin: User) -> Site:
    """A site whose unique key isolates this test's events in the shared ClickHouse."""
    from tracker import accounts

    created = accounts.create_site(
        db.session,
        "Test site",
        ["example.test", "localhost", "127.0.0.1"],
        owner=admin,
        key=f"t{uuid.uuid4().hex[:12]}",
    )
    db.session.commit()
    return created


@pytest.fixture
def token(admin: User) -> str:
    """A plain API token of the admin (only its hash is stored)."""
    from tracker import accounts

    _, plain = accounts.create_token(db.session, admin, "tests")
    db.session.commit()
    return plain


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
