"""Geo enrichment: country/region/city from a MaxMind-format database, or from trusted CDN
headers. The IP only passes through here; it is never returned, stored or logged."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import maxminddb

log = logging.getLogger(__name__)

Geo = tuple[str, str, str]  # (country ISO alpha-2, region name, city name)
EMPTY: Geo = ("", "", "")
# Header names that CDNs use; read only when FUNNEL_TRUSTED_GEO_HEADERS is on.
COUNTRY_HEADERS = ("CF-IPCountry", "X-Geo-Country", "CloudFront-Viewer-Country")
REGION_HEADERS = ("X-Geo-Region", "CF-Region", "CloudFront-Viewer-Country-Region-Name")
CITY_HEADERS = ("X-Geo-City", "CF-IPCity", "CloudFront-Viewer-City")


def _name(record: Mapping[str, Any] | None) -> str:
    if not isinstance(record, Mapping):
        return ""
    names = record.get("names")
    if isinstance(names, Mapping):
        value = names.get("en") or next(iter(names.values()), "")
        return str(value)[:100]
    return ""


class GeoDatabaseError(ValueError):
    """The file cannot be opened as a MaxMind-format database; the message says why."""


def open_database(path: str) -> maxminddb.Reader:
    """A reader for a MaxMind-format (.mmdb) file, or GeoDatabaseError."""
    try:
        return maxminddb.open_database(path)
    except maxminddb.InvalidDatabaseError:
        raise GeoDatabaseError("not a MaxMind-format (.mmdb) database") from None
    except (OSError, ValueError) as exc:  # unreadable; an unusable path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise GeoDatabaseError(f"cannot be read: {reason}") from None


class GeoLookup:
    def __init__(self, db_path: str = "", trust_headers: bool = False) -> None:
        self.trust_headers = trust_headers
        self._reader: Any = None
        if db_path:
            self._reader = open_database(db_path)
            self._cached = lru_cache(maxsize=16384)(self._lookup)

    @property
    def enabled(self) -> bool:
        return self._reader is not None or self.trust_headers

    def from_headers(self, headers: Mapping[str, str]) -> Geo:
        def first(names: tuple[str, ...]) -> str:
            for name in names:
                value = headers.get(name, "").strip()
                if value:
                    return value[:100]
            return ""

        country = first(COUNTRY_HEADERS).upper()
        if len(country) != 2 or not country.isalpha() or country in ("XX", "T1"):
            country = ""
        return country, first(REGION_HEADERS), first(CITY_HEADERS)

    def lookup(self, ip: str) -> Geo:
        if self._reader is None or not ip:
            return EMPTY
        return self._cached(ip)

    def _lookup(self, ip: str) -> Geo:
        try:
            record = self._reader.get(ip)
        except (ValueError, TypeError):
            return EMPTY
        except Exception:  # a damaged database must not fail the request
            log.warning("geo database lookup failed")
            return EMPTY
        if not isinstance(record, Mapping):
            return EMPTY
        country_rec = record.get("country") or record.get("registered_country") or {}
        country = str(country_rec.get("iso_code", "") if isinstance(country_rec, Mapping) else "")
        subdivisions = record.get("subdivisions")
        region = _name(subdivisions[0]) if isinstance(subdivisions, list) and subdivisions else ""
        return country.upper()[:2], region, _name(record.get("city"))

    def resolve(self, ip: str, headers: Mapping[str, str]) -> Geo:
        if self.trust_headers:
            geo = self.from_headers(headers)
            if geo[0]:
                return geo
        return self.lookup(ip)
