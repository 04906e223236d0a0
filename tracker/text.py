"""Checks on text from clients, shared by the collector and the definition validator."""

from __future__ import annotations


def is_valid_unicode(text: str) -> bool:
    """False for text holding an unpaired UTF-16 surrogate (a "\\ud800" JSON escape): Python
    decodes it, but no UTF-8 store (SQLite, ClickHouse parameters) can encode it."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
