"""Service functions for users, sites, memberships and API tokens.

The CLI, the JSON API and the dashboard all call these; none of them touch models directly
for these operations.
"""

from __future__ import annotations

import functools
import re
import secrets
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from tracker.models import (
    ApiToken,
    Funnel,
    LoginSession,
    Membership,
    Site,
    User,
    hash_token,
    utcnow,
)

ROLES = ("admin", "marketer")
TOKEN_PREFIX = "ft_"  # noqa: S105 - a marker, not a secret
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOMAIN_RE = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?(\.[a-z0-9\-]{1,63})*(:\d+)?$")


class AccountError(ValueError):
    """Invalid input for an account operation; the message is shown to the user as is."""


def _hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def create_user(
    session: Session, email: str, password: str, role: str = "marketer", name: str = ""
) -> User:
    email = email.strip().lower()
    if not _EMAIL_RE.match(email):
        raise AccountError(f"not a valid email address: {email!r}")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if len(password) < 8:
        raise AccountError("password must be at least 8 characters")
    if session.scalar(select(User).where(User.email == email)):
        raise AccountError(f"a user with email {email} already exists")
    user = User(email=email, password_hash=_hash_password(password), role=role, name=name)
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    """A new password. Every dashboard session of the user ends with it: their ids carry a
    fingerprint of the hash (see `end_login_sessions` for tidying their rows)."""
    if len(password) < 8:
        raise AccountError("password must be at least 8 characters")
    user.password_hash = _hash_password(password)


def password_matches(user: User, password: str) -> bool:
    return check_password_hash(user.password_hash, password)


def start_login_session(session: Session, user: User, lifetime: timedelta) -> str:
    """Record a new dashboard login and return the nonce its session cookie carries. The
    user's sessions older than `lifetime` go, so the table holds only live ones."""
    nonce = secrets.token_urlsafe(24)
    session.execute(
        delete(LoginSession).where(
            LoginSession.user_id == user.id, LoginSession.created_at <= utcnow() - lifetime
        )
    )
    session.add(LoginSession(user_id=user.id, nonce_hash=hash_token(nonce)))
    return nonce


def login_session_is_live(session: Session, user: User, nonce: str, lifetime: timedelta) -> bool:
    found = session.scalar(
        select(LoginSession.created_at).where(
            LoginSession.nonce_hash == hash_token(nonce), LoginSession.user_id == user.id
        )
    )
    return found is not None and found > utcnow() - lifetime


def end_login_session(session: Session, nonce: str) -> None:
    session.execute(delete(LoginSession).where(LoginSession.nonce_hash == hash_token(nonce)))


def end_login_sessions(session: Session, user: User) -> None:
    """Every session of the user ends (after a password change, which already makes them
    unusable, this removes their rows)."""
    session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))


@functools.cache
def _dummy_hash() -> str:
    return _hash_password(secrets.token_urlsafe(16))


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.active:
        # One scrypt check, as for a real user, so response time does not reveal which emails
        # exist (hashing a fresh dummy here as well would double the cost and give it away).
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    return user


def normalise_domains(domains: list[str] | str) -> list[str]:
    items = domains.split(",") if isinstance(domains, str) else list(domains)
    result = []
    for raw in items:
        domain = raw.strip().lower()
        if not domain:
            continue
        domain = re.sub(r"^https?://", "", domain).rstrip("/")
        if not _DOMAIN_RE.match(domain):
            raise AccountError(f"not a valid domain: {raw.strip()!r}")
        if domain not in result:
            result.append(domain)
    return result


def validate_timezone(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        raise AccountError(
            f"unknown time zone: {tz!r} (use an IANA name like Europe/Paris)"
        ) from None
    return tz


# Currencies with no minor unit: their amounts are shown without decimals.
ZERO_DECIMAL_CURRENCIES = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()  # noqa: SIM905
)
# Offered first in the settings form; any other three-letter code is accepted too.
_COMMON = "EUR USD GBP CHF JPY CAD AUD NZD SEK NOK DKK PLN CZK HUF RON BGN TRY INR CNY HKD SGD"
COMMON_CURRENCIES = (_COMMON + " KRW BRL MXN ZAR AED ILS").split()


def validate_currency(code: str) -> str:
    """An ISO 4217 code ("eur" -> "EUR"), or "" for no currency."""
    code = code.strip().upper()
    if code and not re.fullmatch(r"[A-Z]{3}", code):
        raise AccountError(
            f"currency must be a three-letter ISO 4217 code like EUR or USD, not {code[:20]!r}"
        )
    return code


def create_site(
    session: Session,
    name: str,
    domains: list[str] | str = (),  # type: ignore[assignment]
    timezone: str = "UTC",
    owner: User | None = None,
    key: str | None = None,
    currency: str = "",
) -> Site:
    name = name.strip()
    if not name or len(name) > 200:
        raise AccountError("site name must be 1 to 200 characters")
    site = Site(
        name=name,
        domains=normalise_domains(domains),
        timezone=validate_timezone(timezone),
        currency=validate_currency(currency),
    )
    if key is not None:
        if not re.fullmatch(r"[A-Za-z0-9_\-]{3,64}", key):
            raise AccountError("site key must be 3-64 letters, digits, '-' or '_'")
        if session.scalar(select(Site).where(Site.key == key)):
            raise AccountError(f"a site with key {key} already exists")
        site.key = key
    session.add(site)
    session.flush()
    if owner is not None:
        add_member(session, owner, site)
    ensure_template_funnel(session, site)
    return site


def ensure_template_funnel(session: Session, site: Site) -> None:
    """A site with no funnel gets the trace -> response -> engagement -> sale template."""
    try:
        from tracker.stages.templates import add_template_funnel
    except ModuleNotFoundError as exc:  # the stage engine is an optional layer of the package
        if exc.name not in ("tracker.stages", "tracker.stages.templates"):
            raise
        return
    if not site.funnels:
        add_template_funnel(session, site)


def add_member(session: Session, user: User, site: Site) -> None:
    exists = session.scalar(
        select(Membership).where(Membership.user_id == user.id, Membership.site_id == site.id)
    )
    if not exists:
        session.add(Membership(user_id=user.id, site_id=site.id))
        session.flush()


def remove_member(session: Session, user: User, site: Site) -> bool:
    """Take `site` away from `user`; False when they were not a member."""
    result = session.execute(
        delete(Membership).where(Membership.user_id == user.id, Membership.site_id == site.id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def sites_for(session: Session, user: User) -> list[Site]:
    """Admins see every site; others only the sites they are members of."""
    if user.is_admin:
        return list(session.scalars(select(Site).order_by(Site.name)))
    return list(
        session.scalars(
            select(Site).join(Membership).where(Membership.user_id == user.id).order_by(Site.name)
        )
    )


def can_access(session: Session, user: User, site: Site) -> bool:
    if user.is_admin:
        return True
    return (
        session.scalar(
            select(Membership).where(Membership.user_id == user.id, Membership.site_id == site.id)
        )
        is not None
    )


def site_to_dict(session: Session, site: Site) -> dict[str, Any]:
    """A site's settings and its funnels (ids and names), as the API and `funnel sites` give
    them."""
    # Queried, not the relationship: a collection loaded earlier in the session would miss a
    # funnel added since by id (a new site's template funnel is).
    funnels = session.scalars(select(Funnel).where(Funnel.site_id == site.id).order_by(Funnel.id))
    return {
        "key": site.key,
        "name": site.name,
        "domains": list(site.domains or []),
        "timezone": site.timezone,
        "currency": site.currency or None,
        "retention_days": site.retention_days or None,  # None: events are kept for ever
        "created_at": site.created_at.isoformat() + "Z" if site.created_at else None,
        "funnels": [{"id": f.id, "name": f.name} for f in funnels],
    }


def site_by_key(session: Session, key: str) -> Site | None:
    return session.scalar(select(Site).where(Site.key == key))


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


TOKEN_MAX_DAYS = 3650


def create_token(
    session: Session,
    user: User,
    name: str = "",
    read_only: bool = False,
    expires_in_days: int | None = None,
) -> tuple[ApiToken, str]:
    """A new API token; the plain value is returned once and only its hash is stored.
    `read_only`: it may read reports and exports but change nothing; `expires_in_days`: it
    stops working that many days from now (None: when revoked)."""
    expires_at = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= TOKEN_MAX_DAYS:
            raise AccountError(f"a token expires in 1 to {TOKEN_MAX_DAYS} days")
        expires_at = utcnow() + timedelta(days=expires_in_days)
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name.strip()[:200],
        token_hash=hash_token(plain),
        prefix=plain[:10],
        read_only=read_only,
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    return token, plain


class TokenRefused(AccountError):
    """A token that exists but may not be used now (expired); the message says why."""


def token_for(session: Session, plain: str) -> ApiToken | None:
    """The usable token with this value (its user active, not revoked), or None. Raises
    TokenRefused for an expired one, so the client hears why. Records when it was used."""
    if not plain.startswith(TOKEN_PREFIX):
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(plain)))
    if token is None or token.revoked or not token.user.active:
        return None
    now = utcnow()
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenRefused(f"this API token expired at {token.expires_at:%Y-%m-%d %H:%M} UTC")
    token.last_used_at = now
    return token


def user_for_token(session: Session, plain: str) -> User | None:
    try:
        token = token_for(session, plain)
    except TokenRefused:
        return None
    return token.user if token is not None else None


def embed_snippet(base_url: str, site: Site) -> str:
    return f'<script defer src="{base_url.rstrip("/")}/t.js" data-site="{site.key}"></script>'
