import logging
import sys
from pathlib import Path

import pytest

from tracker import settings as settings_module
from tracker.settings import ENV_VARS, Settings, SettingsError


def test_defaults_resolve_inside_the_data_dir(tmp_path: Path) -> None:
    s = Settings.from_env({"FUNNEL_DATA_DIR": str(tmp_path)})
    assert s.clickhouse_dsn == f"chdb://{tmp_path / 'clickhouse'}"
    assert s.database_url == f"sqlite:///{tmp_path / 'config.db'}"
    assert s.embedded and s.default_workers() == 1
    assert (s.host, s.port) == ("127.0.0.1", 8000)


def test_server_dsn_uses_many_workers(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "FUNNEL_DATA_DIR": str(tmp_path),
            "FUNNEL_CLICKHOUSE_DSN": "http://u:p@ch.internal:8123/analytics",
            "FUNNEL_WORKERS": "5",
        }
    )
    assert not s.embedded and s.default_workers() == 5


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("FUNNEL_PORT", "eighty"),
        ("FUNNEL_PORT", "70000"),
        ("FUNNEL_CLICKHOUSE_DSN", "mysql://x"),
        ("FUNNEL_CLICKHOUSE_DSN", "chdb://relative/path"),
        ("FUNNEL_CLICKHOUSE_DSN", "http://"),
        ("FUNNEL_CLICKHOUSE_CLUSTER", "bad name; DROP"),
        ("FUNNEL_DATABASE_URL", "not-a-url"),
        ("FUNNEL_DATABASE_URL", "foo://x"),
        ("FUNNEL_DATABASE_URL", "x://"),
        ("FUNNEL_DATABASE_URL", "nosuchdriver+nosuchdriver://u:secret@h/db"),
        ("FUNNEL_DATABASE_URL", "mysql+nosuchdriver://u:secret@h/db"),
        ("FUNNEL_HOST", "999.1.1.1"),
        ("FUNNEL_HOST", "10.0.0"),
        ("FUNNEL_HOST", "bad_host!"),
        ("FUNNEL_HOST", ""),
        ("FUNNEL_HOST", "-leading.example"),
        ("FUNNEL_LOG_LEVEL", "loud"),
        ("FUNNEL_THREADS", "0"),
        ("FUNNEL_QUERY_TIMEOUT", "-1"),
        ("FUNNEL_SECURE_COOKIES", "maybe"),
        ("FUNNEL_GEOIP_DB", "/no/such/file.mmdb"),
        ("FUNNEL_SPOOL_FSYNC", "sometimes"),
        ("FUNNEL_SECRET_KEY", "short-key"),
    ],
)
def test_invalid_values_name_the_variable(tmp_path: Path, var: str, value: str) -> None:
    env = {"FUNNEL_DATA_DIR": str(tmp_path), var: value}
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    assert var in str(err.value)
    assert "\n" not in str(err.value)
    assert "secret" not in str(err.value)  # a URL's password is never echoed


@pytest.mark.parametrize(
    ("raw", "host"),
    [
        ("0.0.0.0", "0.0.0.0"),
        ("::", "::"),
        ("[::1]", "::1"),
        (" localhost ", "localhost"),
        ("stats.example.com", "stats.example.com"),
        ("10-0-0-1.internal", "10-0-0-1.internal"),
    ],
)
def test_host_takes_addresses_and_names(tmp_path: Path, raw: str, host: str) -> None:
    assert Settings.from_env({"FUNNEL_DATA_DIR": str(tmp_path), "FUNNEL_HOST": raw}).host == host


def test_a_missing_database_driver_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("psycopg", "psycopg2", "pymysql"):  # as if not installed: import fails
        monkeypatch.setitem(sys.modules, module, None)

    def error(url: str) -> str:
        env = {"FUNNEL_DATA_DIR": str(tmp_path), "FUNNEL_DATABASE_URL": url}
        with pytest.raises(SettingsError) as err:
            Settings.from_env(env)
        message = str(err.value)
        assert "secret" not in message and "\n" not in message
        return message

    assert error("postgresql+psycopg://u:secret@db/funnel") == (
        "FUNNEL_DATABASE_URL needs the driver 'psycopg' for postgresql+psycopg, which is not "
        "installed; install the postgres extra: pip install 'funnel-tracker[postgres]' "
        "(in a checkout: pip install -e '.[postgres]')"
    )
    # The default driver of postgresql:// depends on the SQLAlchemy version.
    assert "install the postgres extra" in error("postgresql://u:secret@db/funnel")
    assert error("mysql+pymysql://u:secret@db/funnel") == (
        "FUNNEL_DATABASE_URL needs the driver 'pymysql' for mysql+pymysql, which is not "
        "installed; install the Python package that provides 'pymysql'"
    )


def test_a_geoip_file_that_is_not_a_maxmind_database(tmp_path: Path) -> None:
    for name, body in (("text.mmdb", b"hello\n"), ("empty.mmdb", b"")):
        path = tmp_path / name
        path.write_bytes(body)
        env = {"FUNNEL_DATA_DIR": str(tmp_path), "FUNNEL_GEOIP_DB": str(path)}
        with pytest.raises(SettingsError) as err:
            Settings.from_env(env)
        assert str(err.value) == f"FUNNEL_GEOIP_DB {path}: not a MaxMind-format (.mmdb) database"


def test_cluster_requires_a_server(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="FUNNEL_CLICKHOUSE_CLUSTER"):
        Settings.from_env({"FUNNEL_DATA_DIR": str(tmp_path), "FUNNEL_CLICKHOUSE_CLUSTER": "main"})


def test_secret_key_generated_once_and_kept(tmp_path: Path) -> None:
    s = Settings.from_env({"FUNNEL_DATA_DIR": str(tmp_path)})
    first = s.load_secret_key()
    assert len(first) >= 32
    assert s.load_secret_key() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_a_new_data_dir_is_private_and_an_open_one_is_named_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fresh = tmp_path / "fresh" / "data"
    Settings.from_env({"FUNNEL_DATA_DIR": str(fresh)}).ensure_data_dir()
    assert fresh.stat().st_mode & 0o777 == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    settings_module._data_dir_warned.clear()
    with caplog.at_level(logging.WARNING, logger="tracker.settings"):
        for _ in range(2):
            Settings.from_env({"FUNNEL_DATA_DIR": str(shared)}).ensure_data_dir()
    warnings = [r.getMessage() for r in caplog.records if "other users" in r.getMessage()]
    assert len(warnings) == 1 and f"chmod 700 {shared}" in warnings[0]
    assert shared.stat().st_mode & 0o777 == 0o755  # an operator's choice is not changed


def test_every_variable_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [var for var in ENV_VARS if var not in readme]
    assert missing == []
