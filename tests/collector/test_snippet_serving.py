"""GET /t.js as shared caches and browsers see it: one copy for every visitor (no Vary on
Cookie), gzipped for clients that take it, revalidated by ETag per representation."""

from __future__ import annotations

import gzip
from pathlib import Path

from flask.testing import FlaskClient

DIST = Path(__file__).resolve().parents[2] / "js" / "dist" / "t.js"


def test_the_snippet_is_one_cacheable_file_for_everyone(client: FlaskClient) -> None:
    client.set_cookie("session", "a-dashboard-session")  # a visitor who is also logged in
    plain = client.get("/t.js")
    assert plain.status_code == 200
    assert plain.data == DIST.read_bytes()
    assert plain.headers["Vary"] == "Accept-Encoding"  # never Cookie: caches keep one copy
    assert "Set-Cookie" not in plain.headers
    assert plain.headers["Content-Type"].startswith("application/javascript")
    assert int(plain.headers["Content-Length"]) == len(plain.data)

    packed = client.get("/t.js", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert len(packed.data) < len(plain.data)
    assert gzip.decompress(packed.data) == plain.data
    assert packed.headers["ETag"] != plain.headers["ETag"]

    for answer, accept in ((plain, ""), (packed, "gzip")):
        again = client.get(
            "/t.js",
            headers={"If-None-Match": answer.headers["ETag"], "Accept-Encoding": accept},
        )
        assert again.status_code == 304 and again.data == b""
    head = client.head("/t.js")
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == plain.headers["Content-Length"]
