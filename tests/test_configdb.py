"""The config store's session follows the active app: two apps in one process never mix."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from tracker import accounts, create_app
from tracker.clickhouse import Store
from tracker.configdb import db, upgrade
from tracker.models import User


def test_each_app_uses_its_own_config_store(store: Store, tmp_path: Path) -> None:
    apps = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / name}.db"
        upgrade(url)
        apps.append(create_app({"TESTING": True, "database_url": url}))
    first, second = apps  # the second app was set up last

    def users() -> list[str]:
        return list(db.session.scalars(select(User.email).order_by(User.email)))

    with first.app_context():
        accounts.create_user(db.session, "first@test.example", "long-enough-1")
        db.session.commit()
        with second.app_context():  # nested: its own session, its own database
            assert users() == []
            accounts.create_user(db.session, "second@test.example", "long-enough-2")
            db.session.commit()
        assert users() == ["first@test.example"]
    with second.app_context():
        assert users() == ["second@test.example"]
        assert db.session.scalar(select(func.count()).select_from(User)) == 1
