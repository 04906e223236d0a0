"""The field whitelist: names a marketer may use in a condition, mapped to event columns.

Only names listed here (plus `prop.<name>`) ever reach SQL, and they reach it as fixed
column expressions; a property name is a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    name: str  # canonical name used in definitions
    column: str  # ClickHouse column of `events`
    label: str  # shown in the UI pickers
    numeric: bool = False
    # Person-level attribute: filters on it select persons by attribution, not events.
    attribution: str = ""  # "touch" (first marketing touch) | "first" (first event) | ""


_FIELDS: tuple[Field, ...] = (
    Field("url", "url", "Page URL"),
    Field("host", "host", "Host name"),
    Field("path", "path", "Page path"),
    Field("query", "query", "Query string"),
    Field("title", "title", "Page title"),
    Field("referrer", "referrer", "Referrer URL", attribution="touch"),
    Field("referrer_host", "referrer_host", "Referrer host"),
    Field("source", "source", "Source", attribution="touch"),
    Field("medium", "medium", "Medium", attribution="touch"),
    Field("campaign", "utm_campaign", "Campaign", attribution="touch"),
    Field("keyword", "utm_term", "Search keyword", attribution="touch"),
    Field("content", "utm_content", "Ad content", attribution="touch"),
    Field("click_id", "click_id", "Click id", attribution="touch"),
    Field("click_id_type", "click_id_type", "Click id type"),
    Field("utm_source", "utm_source", "utm_source"),
    Field("utm_medium", "utm_medium", "utm_medium"),
    Field("country", "country", "Country", attribution="first"),
    Field("region", "region", "Region", attribution="first"),
    Field("city", "city", "City", attribution="first"),
    Field("device", "device", "Device", attribution="first"),
    Field("browser", "browser", "Browser", attribution="first"),
    Field("os", "os", "Operating system", attribution="first"),
    Field("language", "language", "Language"),
    Field("element_text", "element_text", "Element text"),
    Field("element_href", "element_href", "Element link (href)"),
    Field("element_selector", "element_selector", "Element CSS selector"),
    Field("element_tag", "element_tag", "Element tag"),
    Field("element_id", "element_id", "Element id"),
    Field("name", "name", "Event name"),
    Field("type", "type", "Event type"),
    Field("value", "value", "Value (revenue)", numeric=True),
)

# The landing page is an attribution-only field: the path of the person's first event.
LANDING = Field("landing", "path", "Landing page", attribution="first")

FIELDS: dict[str, Field] = {f.name: f for f in _FIELDS}
ATTRIBUTION_FIELDS: dict[str, Field] = {f.name: f for f in (*_FIELDS, LANDING) if f.attribution}
PROP_PREFIX = "prop."

# Accepted alternative spellings -> canonical name.
ALIASES: dict[str, str] = {
    "element.text": "element_text",
    "element text": "element_text",
    "element.href": "element_href",
    "element href": "element_href",
    "element.selector": "element_selector",
    "element selector": "element_selector",
    "element.tag": "element_tag",
    "element tag": "element_tag",
    "element.id": "element_id",
    "element id": "element_id",
    "utm_campaign": "campaign",
    "utm_term": "keyword",
    "utm_content": "content",
    "landing_page": "landing",
    "props.": "prop.",
}


def canonical_field(name: str) -> str:
    """The canonical spelling of a field name, or the name unchanged if unknown."""
    raw = name.lstrip()
    low = raw.lower()
    if low.startswith(PROP_PREFIX) or low.startswith("props."):
        # Property names are kept exactly (spaces included): they are data, not syntax.
        return PROP_PREFIX + raw.split(".", 1)[1]
    low = low.strip()
    return ALIASES.get(low, low)


def is_prop(name: str) -> bool:
    return name.startswith(PROP_PREFIX) and len(name) > len(PROP_PREFIX)


def prop_name(name: str) -> str:
    return name[len(PROP_PREFIX) :]


def is_known(name: str) -> bool:
    return name in FIELDS or (is_prop(name) and len(prop_name(name)) <= 200)


def field_label(name: str) -> str:
    if is_prop(name):
        return f"property “{prop_name(name)}”"
    if name in FIELDS:
        return FIELDS[name].label.lower() if name != "url" else "page URL"
    if name in ATTRIBUTION_FIELDS:
        return ATTRIBUTION_FIELDS[name].label.lower()
    return name


def pickers() -> list[dict[str, object]]:
    """The field list for UI pickers."""
    items: list[dict[str, object]] = [
        {"name": f.name, "label": f.label, "numeric": f.numeric} for f in _FIELDS
    ]
    items.append({"name": "prop.<name>", "label": "Event property", "numeric": False})
    return items
