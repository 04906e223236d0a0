"""Browser-facing security: the Content-Security-Policy, safe redirects and the login limiter."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Response
from sqlalchemy import ColumnElement, delete, func, or_, select

from tracker.configdb import db
from tracker.models import LoginFailure, utcnow

# Scripts and styles come only from our own static files: no inline code, no CDN.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def add_security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def safe_next(target: str | None, default: str) -> str:
    """`target` if it is a path on this site, else `default` (no open redirects)."""
    if not target:
        return default
    target = target.strip()
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(ch) < 32 for ch in target)
    ):
        return default
    return target


class LoginLimiter:
    """Failed logins per client address and per email in a sliding window.

    Counted in the config database, so every gunicorn worker and every host behind a load
    balancer applies one limit (in each process's memory, N workers allowed N times the
    guesses). Keys are stored as HMACs under the instance's secret key.
    """

    def __init__(self, secret: str, max_failures: int = 10, window_seconds: float = 900.0) -> None:
        self.secret = secret.encode()
        self.max_failures = max_failures
        self.window = timedelta(seconds=window_seconds)

    def _digest(self, key: str) -> str:
        return hmac.new(self.secret, key.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def email_key(email: str) -> str:
        return f"email:{email.strip().lower()}"

    @staticmethod
    def try_again(wait: int) -> str:
        """What a refused attempt is told: when the next one may go (`wait` seconds)."""
        return f"Try again in about {max(1, wait // 60)} minute(s)."

    def retry_after(self, *keys: str, allowed: int | None = None) -> int:
        """Seconds to wait when any key has more than `allowed` failures in the window (by
        default one fewer than the limit: the next attempt would be over it), else 0."""
        allowed = self.max_failures - 1 if allowed is None else allowed
        now = utcnow()
        waits = []
        for key in keys:
            count, oldest = db.session.execute(
                select(func.count(), func.min(LoginFailure.at)).where(
                    LoginFailure.key == self._digest(key), LoginFailure.at > now - self.window
                )
            ).one()
            if count > allowed and oldest is not None:
                # Until the oldest failure in the window expires and frees one attempt.
                waits.append(int((oldest + self.window - now).total_seconds()) + 1)
        return max(waits, default=0)

    def begin(self, *keys: str, exempt: tuple[str, ...] = ()) -> tuple[int, list[int]]:
        """Count an attempt as failed before its password is checked, and say whether it may
        go on: (seconds to wait, or 0; the ids recorded, for `succeeded`). Keys in `exempt`
        are counted but do not hold this attempt up (an email on a device it logged in from).

        Recording first closes the race where parallel guesses all pass the check during the
        100 ms each password check takes, before any of them is recorded.
        """
        checked = tuple(key for key in keys if key not in exempt)
        wait = self.retry_after(*checked)
        if wait:
            return wait, []
        now = utcnow()
        session = db.session
        rows = [LoginFailure(key=self._digest(key), at=now) for key in keys]
        session.add_all(rows)
        # Failures that no longer count go, so the table stays as small as the window.
        session.execute(delete(LoginFailure).where(LoginFailure.at <= now - self.window))
        session.commit()
        # Attempts that others recorded meanwhile count too; this one is within the limit
        # only if at most `max_failures` are recorded, itself included.
        return self.retry_after(*checked, allowed=self.max_failures), [row.id for row in rows]

    def succeeded(self, key: str | None, recorded: list[int]) -> None:
        """The password was right: forget this attempt and every failure of `key` (the email;
        the address keeps its earlier failures). No key: only this attempt is forgotten."""
        forget: list[ColumnElement[bool]] = [LoginFailure.id.in_(recorded)]
        if key is not None:
            forget.append(LoginFailure.key == self._digest(key))
        db.session.execute(delete(LoginFailure).where(or_(*forget)))
        db.session.commit()
