"""Table-driven enrichment: campaign parameters and aliases, click ids, referrer attribution,
user agents, and geo from a generated MaxMind database; plus the no-raw-IP scan."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
from flask import Flask

from tests.collector.conftest import event, flush, post, stored
from tests.collector.mmdb import city, write_mmdb
from tracker import create_app
from tracker.clickhouse import Store
from tracker.ingest.geo import GeoLookup
from tracker.ingest.referrer import attribute
from tracker.ingest.urls import campaign, click_id, split_url
from tracker.ingest.useragent import describe, is_bot


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "utm_source=google&utm_medium=cpc&utm_campaign=spring&utm_term=shoes&utm_content=ad1",
            {
                "utm_source": "google",
                "utm_medium": "cpc",
                "utm_campaign": "spring",
                "utm_term": "shoes",
                "utm_content": "ad1",
            },
        ),
        (
            "mtm_source=nl&mtm_medium=email&mtm_campaign=may&mtm_kwd=boots&mtm_content=top",
            {
                "utm_source": "nl",
                "utm_medium": "email",
                "utm_campaign": "may",
                "utm_term": "boots",
                "utm_content": "top",
            },
        ),
        (
            "pk_campaign=summer&pk_kwd=sandals&pk_source=fb",
            {"utm_campaign": "summer", "utm_term": "sandals", "utm_source": "fb"},
        ),
        ("mtm_cpn=short", {"utm_campaign": "short"}),
        ("UTM_SOURCE=Upper", {"utm_source": "Upper"}),
        ("utm_campaign=a&mtm_campaign=b", {"utm_campaign": "a"}),
        ("utm_source=", {}),
        ("", {}),
    ],
)
def test_campaign_parameters_and_aliases(query: str, expected: dict[str, str]) -> None:
    _, _, _, params = split_url(f"https://shop.test/p?{query}")
    assert campaign(params) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("gclid=Cj0abc", ("Cj0abc", "gclid")),
        ("fbclid=IwAR1", ("IwAR1", "fbclid")),
        ("msclkid=m1", ("m1", "msclkid")),
        ("ttclid=t1", ("t1", "ttclid")),
        ("li_fat_id=l1", ("l1", "li_fat_id")),
        ("twclid=w1", ("w1", "twclid")),
        ("dclid=d1", ("d1", "dclid")),
        ("wbraid=wb", ("wb", "wbraid")),
        ("gbraid=gb", ("gb", "gbraid")),
        ("yclid=y1", ("y1", "yclid")),
        ("x=1", ("", "")),
    ],
)
def test_click_ids(query: str, expected: tuple[str, str]) -> None:
    assert click_id(split_url(f"https://shop.test/?{query}")[3]) == expected


def test_url_parts() -> None:
    assert split_url("https://Shop.Test:8443/a/b?x=1&y=2#frag")[:3] == (
        "shop.test",
        "/a/b",
        "x=1&y=2",
    )
    assert split_url("https://shop.test")[:3] == ("shop.test", "/", "")
    assert split_url("http://[::1") == ("", "", "", {})


PAGE = "shop.test"


@pytest.mark.parametrize(
    ("referrer", "page_query", "source", "medium", "keyword"),
    [
        ("https://www.google.com/", "", "google", "search", ""),
        ("https://www.google.co.uk/search?q=red+shoes", "", "google", "search", "red shoes"),
        ("https://www.bing.com/search?q=blue+boots&form=QBLH", "", "bing", "search", "blue boots"),
        ("https://duckduckgo.com/?q=sandals", "", "duckduckgo", "search", "sandals"),
        ("https://search.yahoo.com/search?p=hiking+boots", "", "yahoo", "search", "hiking boots"),
        ("https://www.baidu.com/s?wd=%E9%9E%8B", "", "baidu", "search", "鞋"),
        ("https://yandex.ru/search/?text=sapogi", "", "yandex", "search", "sapogi"),
        ("https://www.ecosia.org/search?q=trees", "", "ecosia", "search", "trees"),
        ("https://search.brave.com/search?q=brave", "", "brave", "search", "brave"),
        ("https://www.google.com/", "utm_term=chosen", "google", "search", "chosen"),
        ("https://www.google.com/", "mtm_kwd=matomo", "google", "search", "matomo"),
        ("https://www.google.com/", "pk_kwd=piwik", "google", "search", "piwik"),
        ("https://www.google.com/", "gclid=abc", "google", "paid", ""),
        ("https://www.bing.com/", "msclkid=abc", "bing", "paid", ""),
        ("https://l.facebook.com/l.php?u=x", "", "facebook", "social", ""),
        ("https://m.facebook.com/", "fbclid=x", "facebook", "social", ""),
        ("https://t.co/abc", "", "twitter", "social", ""),
        ("https://x.com/someone", "", "twitter", "social", ""),
        ("https://www.linkedin.com/feed/", "", "linkedin", "social", ""),
        ("https://www.instagram.com/", "", "instagram", "social", ""),
        ("https://old.reddit.com/r/x", "", "reddit", "social", ""),
        ("https://www.youtube.com/watch?v=1", "", "youtube", "social", ""),
        ("https://www.tiktok.com/@x", "", "tiktok", "social", ""),
        ("https://mail.google.com/mail/u/0/", "", "mail.google.com", "email", ""),
        ("https://outlook.live.com/mail/", "utm_source=newsletter", "newsletter", "email", ""),
        ("", "utm_source=newsletter&utm_medium=email", "newsletter", "email", ""),
        ("", "utm_source=google&utm_medium=cpc", "google", "paid", ""),
        ("", "utm_source=facebook&utm_medium=paid_social", "facebook", "paid", ""),
        ("", "utm_source=partner", "partner", "referral", ""),
        ("", "gclid=abc", "google", "paid", ""),
        ("https://blog.example.org/post", "", "blog.example.org", "referral", ""),
        ("https://www.example.org/post", "", "example.org", "referral", ""),
        ("", "", "direct", "direct", ""),
        ("https://shop.test/cart", "", "", "", ""),
        ("https://shop.test/cart", "utm_term=kept", "", "", "kept"),
        ("https://www.shop.test/cart", "utm_campaign=x&utm_source=nl", "nl", "referral", ""),
    ],
)
def test_referrer_attribution(
    referrer: str, page_query: str, source: str, medium: str, keyword: str
) -> None:
    params = split_url(f"https://{PAGE}/?{page_query}")[3]
    utm = campaign(params)
    _, click_type = click_id(params)
    got = attribute(referrer, PAGE, utm, click_type)
    assert (got["source"], got["medium"], got["utm_term"]) == (source, medium, keyword)


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36",
            ("Chrome", "Windows", "desktop"),
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/17.4 Safari/605.1.15",
            ("Safari", "Mac OS X", "desktop"),
        ),
        (
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
            ("Firefox", "Ubuntu", "desktop"),
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
            "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            ("Mobile Safari", "iOS", "mobile"),
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36",
            ("Chrome Mobile", "Android", "mobile"),
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            ("Mobile Safari", "iOS", "tablet"),
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36",
            ("Chrome", "Android", "tablet"),
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
            ("Edge", "Windows", "desktop"),
        ),
    ],
)
def test_user_agents(ua: str, expected: tuple[str, str, str]) -> None:
    assert describe(ua) == expected
    assert not is_bot(ua)


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "python-requests/2.31.0",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) "
        "PhantomJS/2.1.1 Safari/538.1",
        "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/109.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
    ],
)
def test_bots(ua: str) -> None:
    assert is_bot(ua)


@pytest.fixture(scope="module")
def geo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mmdb(
        tmp_path_factory.mktemp("geo") / "city.mmdb",
        {
            "203.0.113.0/24": city("DE", "Bavaria", "Munich"),
            "198.51.100.7/32": city("FR", "Île-de-France", "Paris"),
        },
    )


def test_geo_lookup_from_a_generated_database(geo_db: Path) -> None:
    geo = GeoLookup(str(geo_db))
    assert geo.lookup("203.0.113.77") == ("DE", "Bavaria", "Munich")
    assert geo.lookup("198.51.100.7") == ("FR", "Île-de-France", "Paris")
    assert geo.lookup("198.51.100.8") == ("", "", "")
    assert geo.lookup("not an ip") == ("", "", "")
    assert geo.lookup("2001:db8::1") == ("", "", "")


def test_geo_from_trusted_cdn_headers() -> None:
    geo = GeoLookup("", trust_headers=True)
    got = geo.resolve("203.0.113.1", {"CF-IPCountry": "nl", "X-Geo-City": "Utrecht"})
    assert got == ("NL", "", "Utrecht")
    assert geo.resolve("203.0.113.1", {"CF-IPCountry": "XX"}) == ("", "", "")
    untrusted = GeoLookup("", trust_headers=False)
    assert untrusted.resolve("203.0.113.1", {"CF-IPCountry": "NL"}) == ("", "", "")


def test_collected_events_carry_geo_and_no_raw_ip_anywhere(
    app: Flask, store: Store, key: str, geo_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    geo_app = create_app({"TESTING": True, "geoip_db": str(geo_db), "trusted_proxies": 1})
    client = geo_app.test_client()
    ip = "203.0.113.77"
    caplog.set_level(logging.DEBUG)
    ids = []
    for visitor in ("known", None):
        body = event(site=key)
        if visitor is None:
            del body["visitor"]
        ids.append(body["id"])
        resp = post(client, body, ip=ip)
        assert resp.status_code == 202
    # A client-written left-most hop is ignored: only what the trusted proxy saw counts.
    spoof = event(site=key)
    assert post(client, spoof, ip=f"198.51.100.7, {ip}").status_code == 202
    flush(geo_app)
    rows = {str(r["event_id"]): r for r in stored(store, key)}
    assert (rows[ids[0]]["country"], rows[ids[0]]["region"], rows[ids[0]]["city"]) == (
        "DE",
        "Bavaria",
        "Munich",
    )
    assert rows[spoof["id"]]["country"] == "DE"
    # Scan every stored column and every log line for the address.
    text = repr(store.rows("SELECT * FROM events WHERE site_id = {site:String}", {"site": key}))
    assert ip not in text and "203.0.113" not in text
    assert ip not in caplog.text
    spool_dir = geo_app.config["FUNNEL_SETTINGS"].spool_dir
    for path in spool_dir.rglob("*"):
        if path.is_file():
            assert ip.encode() not in path.read_bytes(), path


def test_event_ids_survive_as_given(app: Flask, store: Store, key: str) -> None:
    client = app.test_client()
    given = str(uuid.uuid4())
    assert post(client, event(site=key, id=given.upper())).status_code == 202
    flush(app)
    assert [str(r["event_id"]) for r in stored(store, key)] == [given]
