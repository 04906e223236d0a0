"""The config store's session follows the active app: two apps in one process never mix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def test_ids_in_urls_are_never_reused_and_the_migration_keeps_every_row(tmp_path: Path) -> None:
    """A store made before revision 0002 keeps its users, tokens, funnels, their stages and
    memberships through it; afterwards a deleted funnel's or user's id is never handed out
    again (a bookmark or a stale API client must not reach the next one created)."""
    from alembic import command
    from sqlalchemy import text

    from tracker.configdb import alembic_config

    url, engine = _store_at(tmp_path, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sites (id, key, name, domains, timezone, retention_days, created_at)"
                " VALUES (1, 'shop', 'Shop', '[]', 'UTC', 0, '2026-01-01')"
            )
        )
        for n in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO users (id, email, name, password_hash, role, active, created_at)"
                    f" VALUES ({n}, 'u{n}@test.example', '', 'x', 'marketer', 1, '2026-01-01')"
                )
            )
            conn.execute(text(f"INSERT INTO memberships (user_id, site_id) VALUES ({n}, 1)"))
            conn.execute(
                text(
                    "INSERT INTO funnels (id, site_id, name, window_seconds, mode, created_at,"
                    f" updated_at) VALUES ({n}, 1, 'F{n}', 60, 'ordered', '2026-01-01',"
                    " '2026-01-01')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO stages (funnel_id, position, key, name, color, rules)"
                    f" VALUES ({n}, 0, 'a', 'A', '#000000', '[]'),"
                    f" ({n}, 1, 'b', 'B', '#000000', '[]')"
                )
            )
    before = _counts(engine)
    upgrade(url)
    assert _counts(engine) == before == {"users": 2, "memberships": 2, "funnels": 2, "stages": 4}
    with engine.begin() as conn:
        conn.execute(text("PRAGMA foreign_keys=ON"))
        conn.execute(text("DELETE FROM funnels WHERE id = 2"))
        conn.execute(text("DELETE FROM users WHERE id = 2"))
        # The cascades still hold after the tables were rebuilt.
        assert conn.execute(text("SELECT count(*) FROM stages")).scalar() == 2
        assert conn.execute(text("SELECT count(*) FROM memberships")).scalar() == 1
        conn.execute(
            text(
                "INSERT INTO funnels (site_id, name, window_seconds, mode, created_at, updated_at)"
                " VALUES (1, 'new', 60, 'ordered', '2026-01-02', '2026-01-02')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO users (email, name, password_hash, role, active, created_at)"
                " VALUES ('new@test.example', '', 'x', 'marketer', 1, '2026-01-02')"
            )
        )
        assert conn.execute(text("SELECT id FROM funnels WHERE name = 'new'")).scalar() == 3
        assert (
            conn.execute(text("SELECT id FROM users WHERE email = 'new@test.example'")).scalar()
            == 3
        )
    # And back: the downgrade keeps the rows too.
    command.downgrade(alembic_config(url), "0001")
    assert _counts(engine) == {"users": 2, "memberships": 1, "funnels": 2, "stages": 2}


def test_tables_with_ids_in_urls_keep_autoincrement_at_the_head(tmp_path: Path) -> None:
    """A later revision that rebuilds such a table (SQLite batch mode) must not drop the
    AUTOINCREMENT that revision 0002 gave it."""
    from sqlalchemy import create_engine, text

    from tracker.models import Base

    url = f"sqlite:///{tmp_path / 'head.db'}"
    upgrade(url)
    wanted = [t.name for t in Base.metadata.sorted_tables if t.kwargs.get("sqlite_autoincrement")]
    assert {"users", "api_tokens", "funnels"} <= set(wanted)
    with create_engine(url).connect() as conn:
        for table in wanted:
            sql = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": table}
            ).scalar()
            assert "AUTOINCREMENT" in str(sql), table


def _store_at(tmp_path: Path, revision: str) -> tuple[str, Any]:
    """A new SQLite config store migrated only up to `revision` (a user's older store)."""
    from alembic import command
    from sqlalchemy import create_engine

    from tracker.configdb import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), revision)
    return url, create_engine(url)


def _counts(engine: Any) -> dict[str, int]:
    from sqlalchemy import text

    with engine.connect() as conn:
        return {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() or 0)
            for t in ("users", "memberships", "funnels", "stages")
        }


def test_the_migrations_build_exactly_the_models(tmp_path: Path) -> None:
    """A column added to a model without an Alembic revision (or the reverse) shows up here,
    not on a user's upgraded store."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from tracker.models import Base

    url = f"sqlite:///{tmp_path / 'head.db'}"
    upgrade(url)
    with create_engine(url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_sites_made_before_currencies_existed_keep_their_rows_and_have_none(
    tmp_path: Path,
) -> None:
    from alembic import command
    from sqlalchemy import text

    from tracker.configdb import alembic_config

    url, engine = _store_at(tmp_path, "0002")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sites (id, key, name, domains, timezone, retention_days, created_at)"
                " VALUES (1, 'shop', 'Shop', '[\"shop.example\"]', 'Europe/Paris', 30,"
                " '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO funnels (id, site_id, name, window_seconds, mode, created_at,"
                " updated_at) VALUES (1, 1, 'F', 60, 'ordered', '2026-01-01', '2026-01-01')"
            )
        )
    upgrade(url)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT key, timezone, retention_days, currency FROM sites"))
        assert [tuple(r) for r in row] == [("shop", "Europe/Paris", 30, "")]
        assert conn.execute(text("SELECT count(*) FROM funnels")).scalar() == 1
    command.downgrade(alembic_config(url), "0002")
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(text("SELECT key, timezone FROM sites"))] == [
            ("shop", "Europe/Paris")
        ]
        assert conn.execute(text("SELECT count(*) FROM funnels")).scalar() == 1
