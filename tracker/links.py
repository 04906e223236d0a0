"""Tracked links for marketing drivers (email, ads, social).

A link stores its target and campaign once; `GET /r/{code}` records a server-side click and
redirects to the stored target with the utm parameters appended. Targets never come from the
request, so the redirect cannot be abused as an open redirect.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.accounts import AccountError
from tracker.clickhouse import Store
from tracker.ingest.limits import MAX_URL_CHARS
from tracker.models import Site, TrackedLink

_FIELD_CAP = 200


def _clean(label: str, value: str) -> str:
    value = (value or "").strip()
    if len(value) > _FIELD_CAP:
        raise AccountError(f"{label} may hold at most {_FIELD_CAP} characters")
    return value


def validate_target(url: str) -> str:
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        raise AccountError(f"not a valid URL: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AccountError("the target must be an http:// or https:// URL with a host")
    if len(url) > MAX_URL_CHARS - 300:
        raise AccountError("the target URL is too long")
    return url


def create_link(
    session: Session,
    site: Site,
    target_url: str,
    campaign: str = "",
    source: str = "",
    medium: str = "",
    keyword: str = "",
    content: str = "",
) -> TrackedLink:
    link = TrackedLink(
        site_id=site.id,
        code=_new_code(session),
        target_url=validate_target(target_url),
        campaign=_clean("campaign", campaign),
        source=_clean("source", source),
        medium=_clean("medium", medium),
        keyword=_clean("keyword", keyword),
        content=_clean("content", content),
    )
    session.add(link)
    session.flush()
    return link


def _new_code(session: Session) -> str:
    while True:
        code = secrets.token_urlsafe(6).replace("-", "x").replace("_", "y")
        if session.scalar(select(TrackedLink.id).where(TrackedLink.code == code)) is None:
            return code


def link_by_code(session: Session, code: str) -> TrackedLink | None:
    if not code or len(code) > 32:
        return None
    return session.scalar(select(TrackedLink).where(TrackedLink.code == code))


def redirect_url(link: TrackedLink) -> str:
    """The stored target with utm parameters from the link (replacing same-named ones)."""
    parts = urlsplit(link.target_url)
    utm = {
        "utm_source": link.source,
        "utm_medium": link.medium,
        "utm_campaign": link.campaign,
        "utm_term": link.keyword,
        "utm_content": link.content,
    }
    utm = {k: v for k, v in utm.items() if v}
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in utm]
    query.extend(utm.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def click_counts(store: Store, site_key: str) -> dict[str, int]:
    rows = store.rows(
        "SELECT props['link_code'] AS code, count() FROM events "
        "WHERE site_id = {site:String} AND type = 'click' AND props['link_code'] != '' "
        "GROUP BY code",
        {"site": site_key},
    )
    return {str(code): int(n) for code, n in rows}


def link_to_dict(link: TrackedLink, clicks: int = 0) -> dict[str, Any]:
    return {
        "code": link.code,
        "url": f"/r/{link.code}",
        "target_url": link.target_url,
        "campaign": link.campaign,
        "source": link.source,
        "medium": link.medium,
        "keyword": link.keyword,
        "content": link.content,
        "created_at": link.created_at.isoformat() if link.created_at else None,
        "clicks": clicks,
    }


def list_links(session: Session, store: Store, site: Site) -> list[dict[str, Any]]:
    links = session.scalars(
        select(TrackedLink).where(TrackedLink.site_id == site.id).order_by(TrackedLink.id.desc())
    )
    counts = click_counts(store, site.key)
    return [link_to_dict(link, counts.get(link.code, 0)) for link in links]


def delete_link(session: Session, site: Site, code: str) -> None:
    link = session.scalar(
        select(TrackedLink).where(TrackedLink.site_id == site.id, TrackedLink.code == code)
    )
    if link is None:
        raise AccountError(f"no tracked link {code!r} for this site")
    session.delete(link)
    session.flush()
