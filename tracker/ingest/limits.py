"""Size caps for collected input, in one place so the OpenAPI spec and the README agree."""

from __future__ import annotations

MAX_BODY_BYTES = 1 << 20  # on the wire and after decompression
MAX_IMPORT_BODY_BYTES = 64 << 20
MAX_BATCH_EVENTS = 100
MAX_URL_CHARS = 2048  # a longer url is stored cut to this
MAX_URL_READ_CHARS = 16_384  # how far a long url is read for campaign parameters
MAX_PROPS = 50
MAX_PROP_KEY_CHARS = 128
MAX_PROP_VALUE_CHARS = 1024
MAX_NAME_CHARS = 200
MAX_ID_CHARS = 128  # visitor, session, user ids given by the client
MAX_TITLE_CHARS = 1000
MAX_ELEMENT_TEXT_CHARS = 500
MAX_SELECTOR_CHARS = 1000
MAX_LANGUAGE_CHARS = 35
MAX_ANY_TEXT_CHARS = 16_384  # longer than this is not a truncatable title but junk
CLOCK_SKEW_MS = 24 * 3600 * 1000
