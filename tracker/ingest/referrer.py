"""Referrer enrichment: source, medium and search keyword.

medium is one of search, social, email, paid, referral, direct, or "" for internal hits that
carry no marketing touch. source is the engine/network name, else utm_source, else the
referrer host, else "direct".
"""

from __future__ import annotations

from functools import lru_cache

from tracker.ingest.urls import CLICK_IDS, split_url

# Search engines: registrable-name label -> (source, keyword parameters).
SEARCH_ENGINES: dict[str, tuple[str, tuple[str, ...]]] = {
    "google": ("google", ("q",)),
    "bing": ("bing", ("q",)),
    "duckduckgo": ("duckduckgo", ("q",)),
    "yahoo": ("yahoo", ("p", "q")),
    "baidu": ("baidu", ("wd", "word", "kw")),
    "yandex": ("yandex", ("text",)),
    "ya": ("yandex", ("text",)),
    "ecosia": ("ecosia", ("q",)),
    "qwant": ("qwant", ("q",)),
    "ask": ("ask", ("q",)),
    "naver": ("naver", ("query",)),
    "seznam": ("seznam", ("q",)),
    "sogou": ("sogou", ("query",)),
    "startpage": ("startpage", ("query", "q")),
    "aol": ("aol", ("q",)),
    "so": ("so", ("q",)),  # 360 search, so.com
}
SEARCH_HOSTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "search.brave.com": ("brave", ("q",)),
    "search.yahoo.com": ("yahoo", ("p", "q")),
    "kagi.com": ("kagi", ("q",)),
}

SOCIAL_HOSTS: dict[str, str] = {
    "facebook.com": "facebook",
    "fb.com": "facebook",
    "fb.me": "facebook",
    "messenger.com": "facebook",
    "instagram.com": "instagram",
    "t.co": "twitter",
    "twitter.com": "twitter",
    "x.com": "twitter",
    "linkedin.com": "linkedin",
    "lnkd.in": "linkedin",
    "reddit.com": "reddit",
    "redd.it": "reddit",
    "youtube.com": "youtube",
    "youtu.be": "youtube",
    "tiktok.com": "tiktok",
    "pinterest.com": "pinterest",
    "pin.it": "pinterest",
    "threads.net": "threads",
    "mastodon.social": "mastodon",
    "bsky.app": "bluesky",
    "vk.com": "vk",
    "t.me": "telegram",
    "telegram.org": "telegram",
    "whatsapp.com": "whatsapp",
    "wa.me": "whatsapp",
    "quora.com": "quora",
    "tumblr.com": "tumblr",
    "snapchat.com": "snapchat",
    "news.ycombinator.com": "hackernews",
    "weibo.com": "weibo",
    "xing.com": "xing",
}

EMAIL_HOSTS: dict[str, str] = {
    "mail.google.com": "gmail",
    "outlook.live.com": "outlook",
    "outlook.office.com": "outlook",
    "outlook.office365.com": "outlook",
    "mail.yahoo.com": "yahoo mail",
    "mail.aol.com": "aol mail",
    "mail.proton.me": "proton mail",
    "mail.yandex.ru": "yandex mail",
    "webmail": "webmail",
}

UTM_MEDIUMS: dict[str, str] = {}
for _medium, _names in {
    "paid": (
        "cpc ppc paid paidsearch paid_search paid-search cpm cpv cpa display banner ads ad "
        "paid_social paidsocial paid-social sem retargeting remarketing"
    ),
    "email": "email e-mail e_mail mail newsletter",
    "social": "social social-network social_network social-media social_media sm organic_social",
    "search": "organic search seo",
    "referral": "referral referrer affiliate partner link",
    "direct": "direct (none) none",
}.items():
    for _name in _names.split():
        UTM_MEDIUMS[_name] = _medium

SOCIAL_NAMES = frozenset(SOCIAL_HOSTS.values()) | {"fb", "ig", "tw", "li"}


def _match_host(host: str, table: dict[str, str]) -> str:
    """The table value for host or any parent domain of it."""
    labels = host.split(".")
    for i in range(len(labels) - 1):
        found = table.get(".".join(labels[i:]))
        if found:
            return found
    return ""


def search_engine(host: str) -> tuple[str, tuple[str, ...]] | None:
    if host in SEARCH_HOSTS:
        return SEARCH_HOSTS[host]
    labels = host.split(".")
    if len(labels) < 2 or labels[0] in ("mail", "maps", "docs", "drive", "news", "webmail"):
        return None
    # google.com, www.google.co.uk, yandex.ru, ya.ru: the label before the public suffix.
    for label in labels[-3:-1] if len(labels) > 2 else labels[:1]:
        if label in SEARCH_ENGINES:
            return SEARCH_ENGINES[label]
    return None


def _same_site(ref_host: str, page_host: str) -> bool:
    if not ref_host or not page_host:
        return False
    a = ref_host.removeprefix("www.")
    b = page_host.removeprefix("www.")
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def attribute(
    referrer: str, page_host: str, utm: dict[str, str], click_type: str
) -> dict[str, str]:
    """source, medium, referrer_host and the search keyword (utm_term) for one event."""
    return dict(
        _attribute(
            referrer,
            page_host,
            utm.get("utm_source", ""),
            utm.get("utm_medium", ""),
            bool(utm.get("utm_campaign")),
            utm.get("utm_term", ""),
            click_type,
        )
    )


@lru_cache(maxsize=8192)
def _attribute(
    referrer: str,
    page_host: str,
    utm_source: str,
    utm_medium: str,
    has_campaign: bool,
    utm_term: str,
    click_type: str,
) -> tuple[tuple[str, str], ...]:
    return tuple(
        _classify(
            referrer, page_host, utm_source, utm_medium, has_campaign, utm_term, click_type
        ).items()
    )


def _classify(
    referrer: str,
    page_host: str,
    utm_source: str,
    utm_medium: str,
    has_campaign: bool,
    utm_term: str,
    click_type: str,
) -> dict[str, str]:
    ref_host, _path, _query, ref_params = split_url(referrer)
    kind, network, keyword = "", "", ""
    if ref_host:
        engine = search_engine(ref_host)
        if engine is not None:
            kind, network = "search", engine[0]
            for param in engine[1]:
                if ref_params.get(param):
                    keyword = ref_params[param].strip()[:500]
                    break
        elif _match_host(ref_host, EMAIL_HOSTS):
            kind, network = "email", ""
        elif social := _match_host(ref_host, SOCIAL_HOSTS):
            kind, network = "social", social
    internal = _same_site(ref_host, page_host)
    click_network, click_paid = CLICK_IDS.get(click_type, ("", False))

    utm_source = utm_source.strip().lower()
    utm_medium = utm_medium.strip().lower()
    tagged = bool(utm_source or utm_medium or has_campaign or click_type)

    if not tagged and internal:
        return {"source": "", "medium": "", "referrer_host": ref_host, "utm_term": utm_term}

    source = network or click_network or utm_source or ("" if internal else ref_host) or "direct"
    source = source.removeprefix("www.")

    if utm_medium:
        medium = UTM_MEDIUMS.get(utm_medium, "referral")
    elif click_type and click_paid:
        medium = "paid"
    elif kind:
        medium = kind
    elif click_type == "fbclid":
        medium = "social"
    elif ref_host and not internal:
        medium = "referral"
    elif utm_source:
        medium = "social" if utm_source in SOCIAL_NAMES else "referral"
    else:
        medium = "direct"
    term = utm_term or keyword
    return {"source": source, "medium": medium, "referrer_host": ref_host, "utm_term": term}
