"""Who may see what: the logged-in user, site membership (404 otherwise) and admin-only pages."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app
from flask_login import current_user, login_required

from tracker import accounts
from tracker.configdb import db
from tracker.models import Site, User

F = TypeVar("F", bound=Callable[..., Any])


class SessionUser:
    """What Flask-Login keeps as `current_user`: the User model plus the login protocol.

    The session id names the user, a fingerprint of the password hash (changing a password
    ends every session of that user) and the nonce of its row in `login_sessions` (logging out
    deletes the row, so a copy of the cookie is refused from then on).
    """

    is_authenticated = True
    is_anonymous = False

    def __init__(self, user: User, nonce: str) -> None:
        self.user = user
        self.nonce = nonce

    @property
    def is_active(self) -> bool:
        return bool(self.user.active)

    def get_id(self) -> str:
        return session_id_for(self.user, self.nonce)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.user, name)


def session_id_for(user: User, nonce: str) -> str:
    fingerprint = hashlib.sha256(user.password_hash.encode()).hexdigest()[:12]
    return f"{user.id}:{fingerprint}:{nonce}"


def load_user(session_id: str) -> SessionUser | None:
    user_id, _, rest = session_id.partition(":")
    _fingerprint, _, nonce = rest.partition(":")
    if not user_id.isdecimal() or not nonce:
        return None  # not a session id this version issues (or one from before sessions)
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or session_id_for(user, nonce) != session_id:
        return None
    lifetime = current_app.permanent_session_lifetime
    if not accounts.login_session_is_live(db.session, user, nonce, lifetime):
        return None
    return SessionUser(user, nonce)


def me() -> User:
    """The logged-in user as the model."""
    wrapper: SessionUser = current_user._get_current_object()
    return wrapper.user


def site_or_404(site_key: str) -> Site:
    """The site when the user is a member (or an admin); 404 otherwise, so other users'
    sites are not even revealed to exist."""
    site = accounts.site_by_key(db.session, site_key)
    if site is None or not accounts.can_access(db.session, me(), site):
        abort(404)
    return site


def funnel_or_404(site: Site, funnel_id: int) -> Any:
    """The site's funnel with this id; 404 otherwise (the site is checked by the caller)."""
    from tracker import funnels  # the stage engine is optional at import time

    funnel = funnels.get_funnel(db.session, site, funnel_id)
    if funnel is None:
        abort(404)
    return funnel


def admin_required(func: F) -> F:
    @wraps(func)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not me().is_admin:
            abort(403)
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
