"""Config store models: sites, users, memberships, API tokens, funnels, stages, tracked links.

Anything that is event data lives in ClickHouse instead; these tables are small and edited by
people. Schema changes go through Alembic (tracker/migrations).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_site_key() -> str:
    # Public (it sits in every page's HTML) but unguessable enough that sites are not enumerable.
    return secrets.token_urlsafe(9).replace("-", "x").replace("_", "y")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# The largest id an INTEGER primary key holds on every config-store backend (SQLite,
# PostgreSQL): ids from URLs beyond it are "not found", never passed to the driver.
MAX_ROW_ID = 2**31 - 1


class Base(DeclarativeBase):
    pass


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True, index=True, default=new_site_key)
    name: Mapped[str] = mapped_column(String(200))
    # Hostnames allowed to send events (CORS and Origin check); empty means any.
    domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    retention_days: Mapped[int] = mapped_column(Integer, default=0)  # 0 keeps everything
    # ISO 4217 code that sale values are in ("EUR"); empty: plain numbers.
    currency: Mapped[str] = mapped_column(String(3), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    funnels: Mapped[list[Funnel]] = relationship(
        back_populates="site", cascade="all, delete-orphan", order_by="Funnel.id"
    )
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="site", cascade="all, delete-orphan"
    )
    links: Mapped[list[TrackedLink]] = relationship(
        back_populates="site", cascade="all, delete-orphan"
    )


class User(Base):
    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}  # ids in URLs: never reused

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="marketer")  # admin | marketer
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )
    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "site_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))

    user: Mapped[User] = relationship(back_populates="memberships")
    site: Mapped[Site] = relationship(back_populates="memberships")


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = {"sqlite_autoincrement": True}  # ids in URLs: never reused

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    # Only a hash is kept; the token itself is shown once at creation.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    # A read-only token reads reports and exports but changes nothing (for BI tools).
    read_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    user: Mapped[User] = relationship(back_populates="tokens")


class Funnel(Base):
    __tablename__ = "funnels"
    __table_args__ = {"sqlite_autoincrement": True}  # ids in URLs: never reused

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    window_seconds: Mapped[int] = mapped_column(Integer, default=30 * 86400)
    mode: Mapped[str] = mapped_column(String(16), default="ordered")  # ordered | strict | any
    engagement_stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    site: Mapped[Site] = relationship(back_populates="funnels")
    stages: Mapped[list[Stage]] = relationship(
        back_populates="funnel", cascade="all, delete-orphan", order_by="Stage.position"
    )


class Stage(Base):
    __tablename__ = "stages"
    __table_args__ = (UniqueConstraint("funnel_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    funnel_id: Mapped[int] = mapped_column(ForeignKey("funnels.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    color: Mapped[str] = mapped_column(String(16), default="#0072B2")
    # [{"type": "pageview", "name": null, "conditions": [{"field","op","value"}]}]
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    funnel: Mapped[Funnel] = relationship(back_populates="stages")


class TrackedLink(Base):
    __tablename__ = "tracked_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    target_url: Mapped[str] = mapped_column(Text)
    campaign: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(200), default="")
    medium: Mapped[str] = mapped_column(String(200), default="")
    keyword: Mapped[str] = mapped_column(String(200), default="")
    content: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    site: Mapped[Site] = relationship(back_populates="links")


class DailySalt(Base):
    """Keys for cookieless visitor ids; rotated daily, deleted after 48 hours."""

    __tablename__ = "daily_salts"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD (UTC)
    salt: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LoginFailure(Base):
    """A failed dashboard login under one limiter key (client address or email), kept while it
    counts: in the config database, every worker and host applies the same limit. The key is
    an HMAC under the instance's secret key, so the table holds no address and no email."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)


class LoginSession(Base):
    """A dashboard login that has not ended. The session cookie names it, so logging out ends
    the session for good: a copy of the cookie taken before is refused from then on (a signed
    cookie alone stays valid until it expires). Only a hash of the cookie's nonce is kept."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    nonce_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Setting(Base):
    """Small instance-wide key/value settings edited from the dashboard."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


__all__ = [
    "ApiToken",
    "Base",
    "DailySalt",
    "Funnel",
    "LoginFailure",
    "Membership",
    "Setting",
    "Site",
    "Stage",
    "TrackedLink",
    "User",
    "hash_token",
    "new_site_key",
]
