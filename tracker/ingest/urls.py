"""URL enrichment: host/path/query, campaign parameters (utm_* with the Matomo mtm_* and
Piwik pk_* aliases) and advertising click ids."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

from tracker.ingest.limits import MAX_URL_CHARS

_CAP = 200  # campaign values land in LowCardinality columns

# Column -> accepted query parameters, most specific first.
CAMPAIGN_PARAMS: dict[str, tuple[str, ...]] = {
    "utm_source": ("utm_source", "mtm_source", "pk_source", "matomo_source"),
    "utm_medium": ("utm_medium", "mtm_medium", "pk_medium", "matomo_medium"),
    "utm_campaign": (
        "utm_campaign",
        "mtm_campaign",
        "mtm_cpn",
        "pk_campaign",
        "pk_cpn",
        "matomo_campaign",
        "piwik_campaign",
    ),
    "utm_term": (
        "utm_term",
        "mtm_kwd",
        "mtm_keyword",
        "pk_kwd",
        "pk_keyword",
        "matomo_kwd",
        "piwik_kwd",
    ),
    "utm_content": ("utm_content", "mtm_content", "pk_content", "matomo_content"),
}

# Click id parameter -> (network, whether it marks a paid click).
CLICK_IDS: dict[str, tuple[str, bool]] = {
    "gclid": ("google", True),
    "fbclid": ("facebook", False),  # Facebook adds it to every outbound link, paid or not
    "msclkid": ("bing", True),
    "ttclid": ("tiktok", True),
    "li_fat_id": ("linkedin", True),
    "twclid": ("twitter", True),
    "dclid": ("google", True),
    "wbraid": ("google", True),
    "gbraid": ("google", True),
    "yclid": ("yandex", True),
}


def split_url(url: str) -> tuple[str, str, str, dict[str, str]]:
    """(host, path, query, first value of each parameter); empty parts for unusable URLs."""
    if not url:
        return "", "", "", {}
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return "", "", "", {}
    params: dict[str, str] = {}
    if parts.query:
        for key, value in parse_qsl(parts.query, keep_blank_values=False):
            params.setdefault(key.lower(), value)
    return host, parts.path or "/", parts.query, params


def campaign(params: dict[str, str]) -> dict[str, str]:
    """utm_* columns from the parameters, honouring the mtm_*/pk_* aliases."""
    out: dict[str, str] = {}
    if not params:
        return out
    for column, names in CAMPAIGN_PARAMS.items():
        for name in names:
            value = params.get(name, "").strip()
            if value:
                out[column] = value[:_CAP]
                break
    return out


def click_id(params: dict[str, str]) -> tuple[str, str]:
    """(click id, its type) for the first advertising click id present."""
    if params:
        for name in CLICK_IDS:
            value = params.get(name, "").strip()
            if value:
                return value[:500], name
    return "", ""


UrlFacts = tuple[str, str, str, tuple[tuple[str, str], ...], str, str]


def url_facts(url: str) -> UrlFacts:
    """(host, path, query, campaign items, click id, click id type). Path and query are cut
    to MAX_URL_CHARS like the stored url; the parameters come from the whole of `url`.
    Cached up to that length: sites have few distinct URLs compared with their number of
    hits, and longer ones (rare) would only fill the cache."""
    return _url_facts(url) if len(url) <= MAX_URL_CHARS else _facts(url)


def _facts(url: str) -> UrlFacts:
    host, path, query, params = split_url(url)
    cid, ctype = click_id(params)
    campaign_items = tuple(campaign(params).items())
    return host, path[:MAX_URL_CHARS], query[:MAX_URL_CHARS], campaign_items, cid, ctype


_url_facts = lru_cache(maxsize=8192)(_facts)
