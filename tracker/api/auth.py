"""Bearer-token authentication and per-site access for the JSON API."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, g, request
from werkzeug.datastructures import MultiDict

from tracker import accounts
from tracker.api.errors import ApiError
from tracker.configdb import db
from tracker.models import Site, User
from tracker.reports.query import REPEATABLE

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")

F = TypeVar("F", bound=Callable[..., Any])


def current_api_user() -> User:
    user: User = g.api_user
    return user


def require_token(func: F) -> F:
    """Resolves the bearer token to a user in `g.api_user`, or answers 401."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <API token>")
        try:
            found = accounts.token_for(db.session, token.strip())
        except accounts.TokenRefused as exc:
            raise ApiError(401, "token_expired", str(exc)) from None
        if found is None:
            raise ApiError(401, "unauthorized", "unknown or revoked API token")
        db.session.commit()  # records last_used_at
        if found.read_only and not _reads_only():
            raise ApiError(
                403,
                "read_only_token",
                "this API token may only read; changes need a token without read-only",
            )
        g.api_user = found.user
        reject_conflicting_repeats(request.args)
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# POST endpoints that only read: a report or a preview of a definition sent in the body.
_READING_POSTS = frozenset({"api_v1.inline_report", "api_v1.inline_preview"})


def _reads_only() -> bool:
    return request.method in ("GET", "HEAD") or request.endpoint in _READING_POSTS


def reject_conflicting_repeats(args: MultiDict[str, str]) -> None:
    """Every query parameter but the repeatable filters (`filter`, the attribution
    shorthands) takes one value. Given twice with different values it is a 400, on every
    endpoint alike, rather than whichever one a view happens to read."""
    for key in args:
        if key in REPEATABLE:
            continue
        values = args.getlist(key)
        if len(set(values)) > 1:
            shown = ", ".join(repr(v) for v in values[:5])
            raise ApiError(
                400, "invalid_query", f"{key} was given {len(values)} times ({shown}); give it once"
            )


def site_for_request(site_key: str) -> Site:
    """The site if the token's user may see it; 404 otherwise (existence is not revealed)."""
    site = accounts.site_by_key(db.session, site_key)
    if site is None or not accounts.can_access(db.session, current_api_user(), site):
        raise ApiError(404, "not_found", f"no site {site_key!r} for this token")
    return site
