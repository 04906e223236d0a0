"""A tiny MaxMind DB (.mmdb) writer for tests, written from the published format spec
(binary search tree with 24-bit records, a data section, and a metadata map), so geo tests
use a real database file read by the real maxminddb reader."""

from __future__ import annotations

import ipaddress
import struct
import time
from pathlib import Path
from typing import Any

_META_MARKER = b"\xab\xcd\xefMaxMind.com"


def _ctrl(type_id: int, size: int) -> bytes:
    if size < 29:
        size_bits, extra = size, b""
    elif size < 29 + 256:
        size_bits, extra = 29, bytes([size - 29])
    elif size < 285 + 65536:
        size_bits, extra = 30, struct.pack(">H", size - 285)
    else:
        size_bits, extra = 31, struct.pack(">I", size - 65821)[1:]
    if type_id <= 7:
        return bytes([(type_id << 5) | size_bits]) + extra
    return bytes([size_bits, type_id - 7]) + extra


def _uint(type_id: int, value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return _ctrl(type_id, len(raw)) + raw


class U16(int):
    pass


class U32(int):
    pass


class U64(int):
    pass


def encode(value: Any) -> bytes:
    if isinstance(value, U16):
        return _uint(5, value)
    if isinstance(value, U64):
        return _uint(9, value)
    if isinstance(value, U32):
        return _uint(6, value)
    if isinstance(value, str):
        raw = value.encode()
        return _ctrl(2, len(raw)) + raw
    if isinstance(value, bool):
        return _ctrl(14, int(value))
    if isinstance(value, int):
        return _uint(9 if value >= 1 << 32 else 6, value)
    if isinstance(value, float):
        return _ctrl(3, 8) + struct.pack(">d", value)
    if isinstance(value, dict):
        out = _ctrl(7, len(value))
        for key, item in value.items():
            out += encode(str(key)) + encode(item)
        return out
    if isinstance(value, list):
        return _ctrl(11, len(value)) + b"".join(encode(v) for v in value)
    raise TypeError(f"cannot encode {type(value)}")


def write_mmdb(path: Path, networks: dict[str, dict[str, Any]]) -> Path:
    """An IPv4 City-style database mapping each CIDR in `networks` to its record."""
    # Build a binary trie: node = [left, right], leaves are ("data", index) or None.
    records = list(networks.values())
    root: list[Any] = [None, None]
    for index, cidr in enumerate(networks):
        net = ipaddress.ip_network(cidr)
        bits = int(net.network_address)
        node = root
        for depth in range(net.prefixlen):
            bit = (bits >> (31 - depth)) & 1
            if depth == net.prefixlen - 1:
                node[bit] = ("data", index)
            else:
                if not isinstance(node[bit], list):
                    node[bit] = [None, None]
                node = node[bit]
    # Number the nodes breadth-first.
    order: list[list[Any]] = []
    queue = [root]
    while queue:
        node = queue.pop(0)
        order.append(node)
        queue.extend(child for child in node if isinstance(child, list))
    ids = {id(node): i for i, node in enumerate(order)}
    node_count = len(order)

    data = b""
    offsets = []
    for record in records:
        offsets.append(len(data))
        data += encode(record)

    def record_value(child: Any) -> int:
        if child is None:
            return node_count
        if isinstance(child, list):
            return ids[id(child)]
        return node_count + 16 + offsets[child[1]]

    tree = b""
    for node in order:
        tree += record_value(node[0]).to_bytes(3, "big") + record_value(node[1]).to_bytes(3, "big")
    metadata = {
        "node_count": U32(node_count),
        "record_size": U16(24),
        "ip_version": U16(4),
        "database_type": "Funnel-Test-City",
        "languages": ["en"],
        "binary_format_major_version": U16(2),
        "binary_format_minor_version": U16(0),
        "build_epoch": U64(int(time.time())),
        "description": {"en": "generated for tests"},
    }
    meta = encode(metadata)
    path.write_bytes(tree + b"\x00" * 16 + data + _META_MARKER + meta)
    return path


def city(country: str, region: str, city_name: str) -> dict[str, Any]:
    return {
        "country": {"iso_code": country, "names": {"en": country}},
        "subdivisions": [{"iso_code": "X", "names": {"en": region}}],
        "city": {"names": {"en": city_name}},
    }
