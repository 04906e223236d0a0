from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tracker import create_app


def test_healthz(client: FlaskClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json == {"status": "ok"}


def test_readyz_when_both_stores_answer(client: FlaskClient) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json["checks"]["clickhouse"] == "ok"
    assert resp.json["checks"]["config_db"] == "ok"


def test_readyz_is_503_with_a_reason_when_the_config_db_is_gone(
    store: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A directory where the database file should be: SQLite cannot open it.
    monkeypatch.setenv("FUNNEL_DATABASE_URL", f"sqlite:///{tmp_path}")
    app = create_app({"TESTING": True})
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json["status"] == "unavailable"
    assert "config database" in resp.json["reason"]
    assert resp.json["checks"]["clickhouse"] == "ok"
