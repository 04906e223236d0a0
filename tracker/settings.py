"""Settings: every knob comes from a FUNNEL_* environment variable, read in one place.

Invalid values raise SettingsError naming the variable, so start-up stops with one clear line.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class SettingsError(ValueError):
    """A setting has an unusable value; the message names the environment variable."""


_CLUSTER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_HOST_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
POSTGRES_EXTRA = (
    "pip install 'funnel-tracker[postgres]' (in a checkout: pip install -e '.[postgres]')"
)


def _int(lo: int, hi: int) -> Callable[[str, str], int]:
    def parse(var: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{var} must be a whole number, got {raw!r}") from None
        if not lo <= value <= hi:
            raise SettingsError(f"{var} must be between {lo} and {hi}, got {value}")
        return value

    return parse


def _bool(var: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{var} must be true or false, got {raw!r}")


def _str(var: str, raw: str) -> str:
    return raw.strip()


def parse_host(var: str, raw: str) -> str:
    """An address to bind: an IP address (IPv6 also in brackets) or a host name."""
    host = raw.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.removesuffix(".").split(".")
    if all(label.isdigit() for label in labels):
        raise SettingsError(f"{var} is not a valid IP address: {raw!r}")
    # A host name's last label is never all digits, so "999.1.1" is refused here too.
    if len(host) > 253 or labels[-1].isdigit() or not all(map(_HOST_LABEL_RE.match, labels)):
        raise SettingsError(f"{var} must be an IP address or a host name, got {raw!r}")
    return host


def _choice(*allowed: str) -> Callable[[str, str], str]:
    def parse(var: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise SettingsError(f"{var} must be one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Field metadata names the environment variable and its parser."""

    data_dir: Path = field(default=Path("data"), metadata={"env": "FUNNEL_DATA_DIR"})
    clickhouse_dsn: str = field(default="", metadata={"env": "FUNNEL_CLICKHOUSE_DSN"})
    clickhouse_cluster: str = field(default="", metadata={"env": "FUNNEL_CLICKHOUSE_CLUSTER"})
    database_url: str = field(default="", metadata={"env": "FUNNEL_DATABASE_URL"})
    secret_key: str = field(default="", metadata={"env": "FUNNEL_SECRET_KEY"})
    host: str = field(default="127.0.0.1", metadata={"env": "FUNNEL_HOST", "parse": parse_host})
    port: int = field(default=8000, metadata={"env": "FUNNEL_PORT", "parse": _int(1, 65535)})
    workers: int = field(default=0, metadata={"env": "FUNNEL_WORKERS", "parse": _int(0, 256)})
    threads: int = field(default=8, metadata={"env": "FUNNEL_THREADS", "parse": _int(1, 256)})
    query_timeout: int = field(
        default=30, metadata={"env": "FUNNEL_QUERY_TIMEOUT", "parse": _int(1, 3600)}
    )
    log_level: str = field(default="info", metadata={"env": "FUNNEL_LOG_LEVEL"})
    secure_cookies: bool = field(
        default=False, metadata={"env": "FUNNEL_SECURE_COOKIES", "parse": _bool}
    )
    geoip_db: str = field(default="", metadata={"env": "FUNNEL_GEOIP_DB"})
    trusted_geo_headers: bool = field(
        default=False, metadata={"env": "FUNNEL_TRUSTED_GEO_HEADERS", "parse": _bool}
    )
    trusted_proxies: int = field(
        default=0, metadata={"env": "FUNNEL_TRUSTED_PROXIES", "parse": _int(0, 10)}
    )
    spool_max_mb: int = field(
        default=1024, metadata={"env": "FUNNEL_SPOOL_MAX_MB", "parse": _int(1, 1_000_000)}
    )
    spool_fsync: str = field(
        default="always",
        metadata={"env": "FUNNEL_SPOOL_FSYNC", "parse": _choice("always", "interval")},
    )
    rate_limit: int = field(
        default=600, metadata={"env": "FUNNEL_RATE_LIMIT", "parse": _int(0, 10_000_000)}
    )
    extra: Mapping[str, Any] = field(default_factory=dict, metadata={"env": ""})

    # -- derived -----------------------------------------------------------------

    @property
    def embedded(self) -> bool:
        """True when ClickHouse runs in-process (chDB): one process may own the store."""
        return self.clickhouse_dsn.startswith("chdb://")

    @property
    def chdb_path(self) -> Path:
        if not self.embedded:
            raise SettingsError("FUNNEL_CLICKHOUSE_DSN is not an embedded chdb:// DSN")
        return Path(self.clickhouse_dsn[len("chdb://") :])

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = f.metadata.get("env")
            if var and var in env:
                parse = f.metadata.get("parse", _str)
                values[f.name] = parse(var, env[var])
        for key, value in (overrides or {}).items():
            if key in {f.name for f in fields(cls)}:
                values[key] = value
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])
        settings = cls(**values)
        return settings._resolved()

    def _resolved(self) -> Settings:
        data_dir = self.data_dir.expanduser().absolute()
        dsn = self.clickhouse_dsn or f"chdb://{data_dir / 'clickhouse'}"
        db_url = self.database_url or f"sqlite:///{data_dir / 'config.db'}"
        resolved = replace(self, data_dir=data_dir, clickhouse_dsn=dsn, database_url=db_url)
        resolved._validate()
        return resolved

    def _validate(self) -> None:
        if self.secret_key and len(self.secret_key) < 16:
            # It signs sessions and CSRF tokens, and keys the login limiter's hashes.
            raise SettingsError(
                "FUNNEL_SECRET_KEY must be at least 16 characters (unset, one is generated "
                "and kept in the data dir)"
            )
        dsn = self.clickhouse_dsn
        scheme = urlsplit(dsn).scheme
        if scheme == "chdb":
            if not dsn.startswith("chdb:///"):
                raise SettingsError(
                    "FUNNEL_CLICKHOUSE_DSN must be chdb:///absolute/path for the embedded store, "
                    f"got {dsn!r}"
                )
        elif scheme in {"http", "https"}:
            if not urlsplit(dsn).hostname:
                raise SettingsError(f"FUNNEL_CLICKHOUSE_DSN has no host: {dsn!r}")
        else:
            raise SettingsError(
                f"FUNNEL_CLICKHOUSE_DSN must start with chdb://, http:// or https://, got {dsn!r}"
            )
        if self.clickhouse_cluster and not _CLUSTER_RE.match(self.clickhouse_cluster):
            raise SettingsError(
                "FUNNEL_CLICKHOUSE_CLUSTER may hold only letters, digits, '_', '-' and '.', "
                f"got {self.clickhouse_cluster!r}"
            )
        if self.clickhouse_cluster and self.embedded:
            raise SettingsError(
                "FUNNEL_CLICKHOUSE_CLUSTER needs a ClickHouse server DSN (http[s]://...), "
                "not the embedded chdb:// store"
            )
        if "://" not in self.database_url:
            raise SettingsError(
                f"FUNNEL_DATABASE_URL must be an SQLAlchemy URL, got {self.database_url!r}"
            )
        _check_database_url(self.database_url)
        if self.log_level.lower() not in {"debug", "info", "warning", "error", "critical"}:
            raise SettingsError(
                f"FUNNEL_LOG_LEVEL must be debug, info, warning, error or critical, "
                f"got {self.log_level!r}"
            )
        if self.geoip_db and not Path(self.geoip_db).is_file():
            raise SettingsError(f"FUNNEL_GEOIP_DB points at a missing file: {self.geoip_db}")
        if self.geoip_db:
            from tracker.ingest.geo import GeoDatabaseError, open_database

            try:
                open_database(self.geoip_db).close()
            except GeoDatabaseError as exc:
                raise SettingsError(f"FUNNEL_GEOIP_DB {self.geoip_db}: {exc}") from None

    def ensure_data_dir(self) -> None:
        """Create the data dir private to this user: it holds every event, password and token
        hashes, and the salts that would turn cookieless visitor ids back into addresses."""
        existed = self.data_dir.is_dir()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise SettingsError(
                f"FUNNEL_DATA_DIR {self.data_dir} cannot be created: {exc}"
            ) from exc
        if existed and not _data_dir_warned:
            info = self.data_dir.stat()
            if info.st_mode & 0o077 and info.st_uid == os.getuid():
                _data_dir_warned.append(True)
                logging.getLogger(__name__).warning(
                    "FUNNEL_DATA_DIR %s can be read by other users of this machine "
                    "(mode %o); `chmod 700 %s` makes it private",
                    self.data_dir,
                    info.st_mode & 0o777,
                    self.data_dir,
                )

    def load_secret_key(self) -> str:
        """The configured key, else one generated on first run and kept in the data dir."""
        if self.secret_key:
            return self.secret_key
        self.ensure_data_dir()
        path = self.data_dir / "secret_key"
        if not path.exists():
            # O_EXCL so two processes starting at once cannot write different keys.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_urlsafe(48))
        key = path.read_text().strip()
        if len(key) < 16:
            raise SettingsError(f"FUNNEL_SECRET_KEY unset and {path} holds no usable key")
        return key

    def default_workers(self) -> int:
        """Workers for gunicorn: one for the embedded store, else the configured or 2*cores+1."""
        if self.embedded:
            return 1
        return self.workers or (2 * (os.cpu_count() or 1) + 1)


# Warn once per process, not at every app or command that opens the data dir.
_data_dir_warned: list[bool] = []


def _check_database_url(url: str) -> None:
    """The URL names a database SQLAlchemy knows and whose driver is installed: found now, a
    typo or a missing driver would otherwise surface as a traceback when the store opens."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SettingsError(
            "FUNNEL_DATABASE_URL must be an SQLAlchemy URL such as sqlite:///path/config.db "
            "or postgresql+psycopg://user:password@host/db"
        ) from None
    name = parsed.drivername  # never the whole URL: it may hold a password
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise SettingsError(
            f"FUNNEL_DATABASE_URL names a database or driver SQLAlchemy does not know: {name!r} "
            "(use sqlite:///path or postgresql+psycopg://...)"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        if parsed.get_backend_name() == "postgresql":
            how = (
                f"install the postgres extra: {POSTGRES_EXTRA}"
                if parsed.get_driver_name() == "psycopg"
                else f"use postgresql+psycopg:// and install the postgres extra: {POSTGRES_EXTRA}"
            )
        else:
            how = f"install the Python package that provides {missing!r}"
        raise SettingsError(
            f"FUNNEL_DATABASE_URL needs the driver {missing!r} for {name}, which is not "
            f"installed; {how}"
        ) from None


ENV_VARS: tuple[str, ...] = tuple(
    f.metadata["env"] for f in fields(Settings) if f.metadata.get("env")
)
