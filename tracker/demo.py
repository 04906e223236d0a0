"""Deterministic synthetic traffic for the demo site.

Visitors arrive over a few weeks through several campaigns, keywords, regions and devices, and
walk a trace -> response -> engagement -> sale path with campaign-dependent drop-off. Some sign
up, identify, and buy later from a second device, which exercises identity stitching.
Everything derives from one seeded Random, so the same seed gives the same events.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

DEMO_SITE_KEY = "demo"
DEMO_HOST = "shop.example"
DEMO_ADMIN_EMAIL = "admin@example.com"
DEMO_ADMIN_PASSWORD = "demo-admin-2026"  # noqa: S105 - printed for the local demo on purpose


@dataclass(frozen=True)
class Channel:
    weight: float
    source: str
    medium: str
    campaign: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    keywords: tuple[str, ...] = ()
    referrer: str = ""
    click_id_type: str = ""
    landing: str = "/"
    # Multipliers on the base stage-to-stage rates: campaigns differ in quality.
    quality: float = 1.0


CHANNELS: tuple[Channel, ...] = (
    Channel(
        0.22,
        "google",
        "paid",
        "spring_sale",
        "google",
        "cpc",
        ("running shoes", "trail running shoes", "buy sneakers"),
        "https://www.google.com/",
        "gclid",
        "/landing/spring-sale",
        1.25,
    ),
    Channel(
        0.14,
        "facebook",
        "social",
        "black_friday",
        "facebook",
        "paid_social",
        (),
        "https://l.facebook.com/",
        "fbclid",
        "/landing/black-friday",
        0.7,
    ),
    Channel(
        0.10,
        "newsletter",
        "email",
        "newsletter_nov",
        "newsletter",
        "email",
        (),
        "",
        "",
        "/products/trail-runner",
        1.6,
    ),
    Channel(
        0.06,
        "bing",
        "paid",
        "spring_sale",
        "bing",
        "cpc",
        ("running shoes", "hiking boots"),
        "https://www.bing.com/",
        "msclkid",
        "/landing/spring-sale",
        1.0,
    ),
    Channel(
        0.20,
        "google",
        "search",
        "",
        "",
        "",
        ("acme shoes", "best trail shoes", "hiking boots review"),
        "https://www.google.com/",
        "",
        "/",
        1.0,
    ),
    Channel(
        0.08, "twitter", "social", "", "", "", (), "https://t.co/", "", "/blog/trail-guide", 0.6
    ),
    Channel(
        0.05,
        "runnersworld.example",
        "referral",
        "",
        "",
        "",
        (),
        "https://runnersworld.example/reviews",
        "",
        "/products/trail-runner",
        1.1,
    ),
    Channel(0.15, "direct", "direct", "", "", "", (), "", "", "/", 0.9),
)

REGIONS: tuple[tuple[float, str, str, str], ...] = (
    (0.18, "US", "California", "San Francisco"),
    (0.12, "US", "New York", "New York"),
    (0.08, "US", "Texas", "Austin"),
    (0.12, "DE", "Berlin", "Berlin"),
    (0.07, "DE", "Bavaria", "Munich"),
    (0.10, "FR", "Île-de-France", "Paris"),
    (0.11, "GB", "England", "London"),
    (0.08, "NL", "North Holland", "Amsterdam"),
    (0.06, "IN", "Karnataka", "Bengaluru"),
    (0.08, "BR", "São Paulo", "São Paulo"),
)

DEVICES: tuple[tuple[float, str, str, str, int], ...] = (
    (0.34, "desktop", "Chrome", "Windows", 1920),
    (0.12, "desktop", "Safari", "Mac OS X", 1440),
    (0.06, "desktop", "Firefox", "Linux", 1680),
    (0.30, "mobile", "Mobile Safari", "iOS", 390),
    (0.13, "mobile", "Chrome Mobile", "Android", 412),
    (0.05, "tablet", "Mobile Safari", "iOS", 820),
)

PRODUCTS: tuple[tuple[str, str, float], ...] = (
    ("trail-runner", "Trail Runner", 129.0),
    ("city-sneaker", "City Sneaker", 89.0),
    ("hiking-boot", "Hiking Boot", 189.0),
)
LANGUAGES = ("en-US", "en-GB", "de-DE", "fr-FR", "nl-NL", "pt-BR")
TITLES = {
    "/": "Acme Shoes - Run further",
    "/landing/spring-sale": "Spring Sale - up to 40% off | Acme Shoes",
    "/landing/black-friday": "Black Friday deals | Acme Shoes",
    "/blog/trail-guide": "The complete trail running guide | Acme Shoes",
    "/pricing": "Shipping & returns | Acme Shoes",
    "/signup": "Create your account | Acme Shoes",
    "/checkout": "Checkout | Acme Shoes",
    "/thank-you": "Thank you for your order | Acme Shoes",
}

# Base stage-to-stage rates before a channel's quality multiplier.
P_RESPONSE = 0.55
P_ENGAGE = 0.45
P_SALE = 0.40
P_SECOND_DEVICE = 0.25


def _pick(rng: random.Random, table: tuple[Any, ...]) -> Any:
    return rng.choices(
        table, weights=[row[0] if isinstance(row, tuple) else row.weight for row in table]
    )[0]


class _VisitorWriter:
    """Builds the events of one visitor, moving a clock forward."""

    def __init__(self, rng: random.Random, site_id: str, start: datetime) -> None:
        self.rng = rng
        self.site_id = site_id
        self.now = start
        self.events: list[dict[str, Any]] = []
        self.visitor_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex[:16]
        self.session_id = self._new_session()
        self.user_id = ""
        _, self.country, self.region, self.city = _pick(rng, REGIONS)
        _, self.device, self.browser, self.os, self.screen_width = _pick(rng, DEVICES)
        self.language = rng.choice(LANGUAGES)
        self.first_touch: dict[str, Any] = {}

    def _new_session(self) -> str:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4).hex[:16]

    def advance(self, low_s: float, high_s: float) -> None:
        self.now += timedelta(seconds=self.rng.uniform(low_s, high_s))

    def new_session(self, days: float) -> None:
        self.now += timedelta(days=days, seconds=self.rng.uniform(0, 3600))
        self.session_id = self._new_session()
        self.first_touch = {}

    def emit(self, type_: str, path: str, **fields: Any) -> dict[str, Any]:
        query = fields.pop("query", "")
        event: dict[str, Any] = {
            "site_id": self.site_id,
            "event_id": uuid.UUID(int=self.rng.getrandbits(128), version=4),
            "type": type_,
            "ts": self.now,
            "received_at": self.now + timedelta(milliseconds=self.rng.randint(20, 400)),
            "visitor_id": self.visitor_id,
            "session_id": self.session_id,
            "user_id": self.user_id,
            "url": f"https://{DEMO_HOST}{path}" + (f"?{query}" if query else ""),
            "host": DEMO_HOST,
            "path": path,
            "query": query,
            "title": TITLES.get(path, "Acme Shoes"),
            "country": self.country,
            "region": self.region,
            "city": self.city,
            "browser": self.browser,
            "os": self.os,
            "device": self.device,
            "screen_width": self.screen_width,
            "language": self.language,
        }
        event.update(self.first_touch)
        event.update(fields)
        self.events.append(event)
        return event


def _visitor(rng: random.Random, site_id: str, start: datetime) -> list[dict[str, Any]]:
    w = _VisitorWriter(rng, site_id, start)
    channel: Channel = _pick(rng, CHANNELS)
    keyword = rng.choice(channel.keywords) if channel.keywords else ""
    params: dict[str, str] = {}
    if channel.campaign:
        params.update(
            utm_source=channel.utm_source,
            utm_medium=channel.utm_medium,
            utm_campaign=channel.campaign,
        )
        if keyword:
            params["utm_term"] = keyword
    click_id = ""
    if channel.click_id_type:
        click_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
        params[channel.click_id_type] = click_id
    referrer = channel.referrer
    if referrer and keyword and channel.medium == "search":
        referrer = f"{referrer}search?{urlencode({'q': keyword})}"
    touch = {
        "source": channel.source,
        "medium": channel.medium,
        "utm_source": channel.utm_source,
        "utm_medium": channel.utm_medium,
        "utm_campaign": channel.campaign,
        "utm_term": keyword,
        "click_id": click_id,
        "click_id_type": channel.click_id_type,
    }
    w.first_touch = dict(touch)
    product_slug, product_name, price = rng.choice(PRODUCTS)
    landing = channel.landing
    w.emit(
        "pageview",
        landing,
        query=urlencode(params),
        referrer=referrer,
        referrer_host=referrer.split("/")[2] if referrer else "",
        props={"product": product_slug} if landing.startswith("/products/") else {},
    )
    # Later hits are internal navigation: the campaign reaches them only through attribution.
    w.first_touch = {}
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
        w.advance(8, 120)
        w.emit("pageview", f"/products/{product_slug}", props={"product": product_slug})
    q = channel.quality
    if rng.random() >= min(0.95, P_RESPONSE * q):
        return w.events
    w.advance(3, 90)
    w.emit(
        "click",
        f"/products/{product_slug}",
        element_tag="button",
        element_text="Add to cart",
        element_id="add-to-cart",
        element_selector="#add-to-cart",
        props={"product": product_slug},
    )
    if rng.random() < 0.3:
        # Returns another day, which spreads time-to-convert.
        w.new_session(rng.choice((1, 2, 3, 6)))
    if rng.random() >= min(0.95, P_ENGAGE * q):
        if rng.random() < 0.3:
            w.advance(10, 60)
            w.emit("pageview", "/pricing")
        return w.events
    w.advance(20, 300)
    w.emit("pageview", "/signup")
    w.advance(15, 120)
    w.user_id = f"user-{uuid.UUID(int=rng.getrandbits(128), version=4).hex[:12]}"
    w.emit("event", "/signup", name="signup", props={"plan": rng.choice(("free", "pro"))})
    if rng.random() >= min(0.95, P_SALE * q):
        return w.events
    if rng.random() < P_SECOND_DEVICE:
        # Buys later on another device: a new visitor id, stitched by the identified user.
        user_id = w.user_id
        w.new_session(rng.choice((0.1, 1, 2, 4)))
        w.visitor_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex[:16]
        w.device, w.browser, w.os, w.screen_width = "mobile", "Mobile Safari", "iOS", 390
        w.user_id = user_id
        w.emit(
            "pageview",
            f"/products/{product_slug}",
            source="direct",
            medium="direct",
            props={"product": product_slug},
        )
    w.advance(30, 900)
    w.emit("pageview", "/checkout", props={"product": product_slug})
    w.advance(30, 300)
    quantity = rng.choice((1, 1, 1, 2))
    w.emit(
        "event",
        "/thank-you",
        name="purchase",
        value=round(price * quantity, 2),
        props={"product": product_slug, "product_name": product_name, "quantity": str(quantity)},
    )
    return w.events


def generate(
    visitors: int,
    seed: int,
    days: int = 42,
    site_id: str = DEMO_SITE_KEY,
    end: datetime | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Yield each visitor's events. Arrivals grow ~15% a month and dip at weekends."""
    rng = random.Random(seed)
    if end is None:
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    for _ in range(visitors):
        while True:
            offset = rng.random() * days
            growth = 1 + 0.15 * (offset / 30)
            arrival = start + timedelta(days=offset)
            weekend = 0.7 if arrival.weekday() >= 5 else 1.0
            if rng.random() * 1.3 <= growth * weekend:
                break
        # Returning visits can run past the end; the future has not happened yet.
        yield [e for e in _visitor(rng, site_id, arrival) if e["ts"] < end]


def seed_events(
    insert: Callable[[list[dict[str, Any]]], None],
    visitors: int,
    seed: int,
    days: int = 42,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 20_000,
) -> int:
    """Generate and insert in batches; returns the number of events written."""
    batch: list[dict[str, Any]] = []
    total = 0
    for events in generate(visitors, seed, days):
        batch.extend(events)
        if progress:
            progress(1)
        if len(batch) >= batch_size:
            insert(batch)
            total += len(batch)
            batch = []
    if batch:
        insert(batch)
        total += len(batch)
    return total
