"""A reference implementation of the funnel semantics in plain Python, written from the
README's "Funnel semantics" and deliberately simple and slow: no SQL, no shared code with the
engine, exhaustive search instead of greedy shortcuts. Tests compare the engine against it.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

COLUMN = {
    "campaign": "utm_campaign",
    "keyword": "utm_term",
    "content": "utm_content",
    "element_text": "element_text",
    "element_href": "element_href",
    "element_selector": "element_selector",
    "element_tag": "element_tag",
    "element_id": "element_id",
}
TOUCH = ("campaign", "source", "medium", "keyword", "content", "click_id", "referrer")
FIRST = {
    "landing": "path",
    "country": "country",
    "region": "region",
    "city": "city",
    "device": "device",
    "browser": "browser",
    "os": "os",
}
EDGES_S = (60, 600, 3600, 21600, 86400, 259200, 604800, 2592000)


def uuid_order(u: Any) -> tuple[int, int]:
    """ClickHouse orders UUIDs by their second 64 bits, then their first."""
    value = int(u.int) if hasattr(u, "int") else int(str(u).replace("-", ""), 16)
    return (value & (2**64 - 1), value >> 64)


def ms(ts: datetime) -> int:
    return round(ts.timestamp() * 1000)


def raw(event: dict[str, Any], name: str) -> Any:
    """(present, value) of a field on an event."""
    if name.startswith("prop."):
        props = event.get("props") or {}
        key = name[5:]
        return (key in props), props.get(key, "")
    if name == "value":
        v = float(event.get("value", 0.0))
        return v != 0, v
    v = event.get(COLUMN.get(name, name), "")
    if name == "type":
        v = event.get("type", "pageview")
    return v != "", v


def to_float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f


def glob_match(pattern: str, text: str) -> bool:
    # Brute force: match character by character with backtracking.
    def go(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(text)
        if pattern[i] == "*":
            return any(go(i + 1, k) for k in range(j, len(text) + 1))
        if j < len(text) and (pattern[i] == "?" or pattern[i] == text[j]):
            return go(i + 1, j + 1)
        return False

    return go(0, 0)


def condition_holds(event: dict[str, Any], cond: dict[str, Any]) -> bool:
    present, v = raw(event, cond["field"])
    op, want = cond["op"], cond.get("value")
    numeric = cond["field"] == "value"
    if op == "exists":
        return present if want else not present
    if op in ("gt", "lt"):
        f = v if numeric else to_float(v) if present else None
        if f is None or (isinstance(f, float) and math.isnan(f)) or not present:
            return False
        return f > float(want) if op == "gt" else f < float(want)
    if numeric:
        if op == "equals":
            return v == float(want)
        if op == "not_equals":
            return v != float(want)
        if op == "in":
            return v in [float(x) for x in want]
    s = str(v)
    if op == "equals":
        return s == want
    if op == "not_equals":
        return s != want
    if op == "contains":
        return want in s
    if op == "not_contains":
        return want not in s
    if op == "starts_with":
        return s.startswith(want)
    if op == "ends_with":
        return s.endswith(want)
    if op == "regex":
        return re.search(want, s) is not None
    if op == "glob":
        return glob_match(want, s)
    if op == "in":
        return s in want
    raise AssertionError(op)


def rule_matches(event: dict[str, Any], rule: dict[str, Any]) -> bool:
    if rule.get("type", "any") != "any" and event.get("type", "pageview") != rule["type"]:
        return False
    if rule.get("name") and event.get("name", "") != rule["name"]:
        return False
    return all(condition_holds(event, c) for c in rule.get("conditions", []))


def stage_matches(event: dict[str, Any], stage: dict[str, Any]) -> bool:
    return any(rule_matches(event, r) for r in stage["rules"])


@dataclass
class Ev:
    t: int
    matches: frozenset[int]  # stage indexes 0..n-1
    event: dict[str, Any]

    @property
    def order(self) -> tuple[Any, ...]:
        lowest = min(self.matches) if self.matches else 255
        mask = sum(1 << k for k in self.matches)
        return (self.t, lowest, mask, uuid_order(self.event["event_id"]))


@dataclass
class Person:
    pid: str
    events: list[Ev] = field(default_factory=list)


@dataclass
class Outcome:
    in_funnel: bool
    hit: list[bool]
    tk: list[int | None]
    tprev: list[int | None]
    skipped: list[bool]
    first_t: int
    attrs: dict[str, str]
    # For the pipeline: the start of the latest attempt reaching the furthest stage, the start
    # of the earliest attempt reaching the last stage, and the value of the event that filled
    # the last stage on it (in `any` mode: the anchor, twice, and the first last-stage match).
    # Each property's value on the person's first event in range carrying it (breakdowns).
    props: dict[str, str] = field(default_factory=dict)
    last_start: int | None = None
    close_start: int | None = None
    sale_value: float | None = None


def persons_of(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    ident: dict[str, tuple[int, str, str]] = {}
    for e in events:
        if e.get("user_id"):
            key = (ms(e["ts"]), str(e["event_id"]))
            if e["visitor_id"] not in ident or key < ident[e["visitor_id"]][:2]:
                ident[e["visitor_id"]] = (*key, e["user_id"])
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        who = ident[e["visitor_id"]][2] if e["visitor_id"] in ident else e["visitor_id"]
        out[who].append(e)
    return out


def chains(evs: list[Ev], start: int, n: int, window: int, strict: bool) -> list[list[int]]:
    """Every chain of distinct events (indexes in order) filling stages 1..m from `start`."""
    found: list[list[int]] = []

    def extend(chain: list[int]) -> None:
        found.append(list(chain))
        level = len(chain)
        if level == n:
            return
        last = chain[-1]
        candidates = [last + 1] if strict else range(last + 1, len(evs))
        for j in candidates:
            if j >= len(evs):
                continue
            if level in evs[j].matches and evs[j].t - evs[start].t <= window:
                extend([*chain, j])

    extend([start])
    return found


def value_of(ev: Ev) -> float:
    return float(ev.event.get("value", 0.0))


def evaluate(
    evs_all: list[Ev], n: int, mode: str, window: int, start: int, end: int
) -> tuple[bool, list[bool], list[int | None], list[int | None], list[bool], dict[str, Any]]:
    evs = sorted(evs_all, key=lambda e: e.order)
    in_range = [start <= e.t < end for e in evs]
    hit = [False] * n
    tk: list[int | None] = [None] * n
    tprev: list[int | None] = [None] * n
    facts: dict[str, Any] = {}
    if mode == "any":
        anchors = [i for i, e in enumerate(evs) if e.matches and in_range[i]]
        if not anchors:
            return False, hit, tk, tprev, [False] * n, facts
        t0 = evs[anchors[0]].t
        for k in range(n):
            times = [e.t for e in evs if k in e.matches and t0 <= e.t <= t0 + window]
            if times:
                hit[k], tk[k] = True, min(times)
        for k in range(1, n):
            tprev[k] = tk[k - 1]
        matched = list(hit)
        sales = [e for e in evs if n - 1 in e.matches and t0 <= e.t <= t0 + window]
        facts = {
            "last_start": t0,
            "close_start": t0 if hit[n - 1] else None,
            "sale_value": value_of(sales[0]) if sales else None,
        }
    else:
        starts = [i for i, e in enumerate(evs) if 0 in e.matches and in_range[i]]
        if not starts:
            return False, hit, tk, tprev, [False] * n, facts
        attempts = []
        for s in starts:
            found = chains(evs, s, n, window, mode == "strict")
            level = max(len(c) for c in found)
            # Times along the attempt: the earliest event each stage can be filled with.
            times = [min(evs[c[j]].t for c in found if len(c) > j) for j in range(level)]
            attempts.append(times)
            if level == n and "close_start" not in facts:
                # The earliest attempt through the last stage closes the sale, with the
                # first event (in the events' order) any full chain ends on.
                facts["close_start"] = evs[s].t
                facts["sale_value"] = value_of(evs[min(c[-1] for c in found if len(c) == n)])
        reach = max(len(times) for times in attempts)
        facts["last_start"] = max(
            evs[s].t for s, times in zip(starts, attempts, strict=True) if len(times) == reach
        )
        for k in range(n):
            for times in attempts:  # earliest attempt first
                if len(times) > k:
                    hit[k] = True
                    tk[k] = times[k]
                    tprev[k] = times[k - 1] if k else times[0]
                    break
        windows = [(evs[s].t, evs[s].t + window) for s in starts]
        matched = [False] * n
        for e in evs:
            if any(lo <= e.t <= hi for lo, hi in windows):
                for k in e.matches:
                    matched[k] = True
    skipped = [not matched[k] and any(matched[k + 1 :]) for k in range(n)]
    return True, hit, tk, tprev, skipped, facts


def outcomes(
    events: list[dict[str, Any]],
    definition: dict[str, Any],
    mode: str,
    window_s: int,
    start: int,
    end: int,
    event_filters: list[dict[str, Any]],
) -> dict[str, Outcome]:
    stages = definition["stages"]
    n = len(stages)
    window = window_s * 1000
    result = {}
    for pid, pevents in persons_of(events).items():
        kept = [
            e
            for e in pevents
            if start <= ms(e["ts"]) <= end + window
            and all(condition_holds(e, c) for c in event_filters)
        ]
        evs = [
            Ev(ms(e["ts"]), frozenset(k for k, s in enumerate(stages) if stage_matches(e, s)), e)
            for e in kept
        ]
        ranged = sorted((ev for ev in evs if start <= ev.t < end), key=lambda ev: ev.order)
        if not ranged:
            continue
        if mode != "strict":
            evs = [ev for ev in evs if ev.matches]
        inf, hit, tk, tprev, skipped, facts = evaluate(evs, n, mode, window, start, end)
        attrs = {}
        touch = next(
            (ev.event for ev in ranged if any(raw(ev.event, f)[0] for f in TOUCH)),
            None,
        )
        for f in TOUCH:
            attrs[f] = str(raw(touch, f)[1]) if touch else ""
        for f, col in FIRST.items():
            attrs[f] = str(ranged[0].event.get(col, ""))
        props: dict[str, str] = {}
        for ev in ranged:
            for name, value in (ev.event.get("props") or {}).items():
                props.setdefault(name, str(value))
        result[pid] = Outcome(
            inf, hit, tk, tprev, skipped, ranged[0].t, attrs, props=props, **facts
        )
    return result


def quantile(values: list[int], q: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.floor(q * len(ordered)))]


def stage_stats(outs: list[Outcome], definition: dict[str, Any]) -> list[dict[str, Any]]:
    n = len(definition["stages"])
    counts = [sum(1 for o in outs if o.hit[k]) for k in range(n)]
    stats = []
    for k, stage in enumerate(definition["stages"]):
        reached = [o for o in outs if o.hit[k]]
        prevs = [o.tk[k] - o.tprev[k] for o in reached if k > 0 and o.hit[k - 1]]  # type: ignore[operator]
        firsts = [o.tk[k] - o.first_t for o in reached]  # type: ignore[operator]
        hist = [0] * (len(EDGES_S) + 1)
        for d in firsts:
            hist[sum(1 for edge in EDGES_S if d >= edge * 1000)] += 1
        stats.append(
            {
                "key": stage["key"],
                "persons": counts[k],
                "conversion_from_previous": (
                    (1.0 if counts[k] else 0.0)
                    if k == 0
                    else (counts[k] / counts[k - 1] if counts[k - 1] else 0.0)
                ),
                "conversion_from_start": (
                    (1.0 if counts[k] else 0.0)
                    if k == 0
                    else (counts[k] / counts[0] if counts[0] else 0.0)
                ),
                "dropoff": counts[k] - counts[k + 1] if k + 1 < n else 0,
                "skipped": sum(1 for o in outs if o.skipped[k]),
                "prev_mean_s": (sum(prevs) / len(prevs) / 1000) if prevs else None,
                "prev_median_s": (quantile(prevs, 0.5) / 1000) if prevs else None,  # type: ignore[operator]
                "first_median_s": (quantile(firsts, 0.5) / 1000) if firsts else None,  # type: ignore[operator]
                "first_p90_s": (quantile(firsts, 0.9) / 1000) if firsts else None,  # type: ignore[operator]
                "histogram": hist,
            }
        )
    return stats


def breakdown_value(o: Outcome, breakdown: str) -> str:
    if breakdown.startswith("prop."):
        return o.props.get(breakdown[5:], "")
    return o.attrs[breakdown]


def exit_path(events: list[dict[str, Any]], o: Outcome, k: int, window_s: int) -> str | None:
    """The path of the person's last page view from their first event in range up to one
    window after reaching stage k (0-based), ties by event id; None without one."""
    end = o.tk[k] + window_s * 1000  # type: ignore[operator]
    views = [e for e in events if e["type"] == "pageview" and o.first_t <= ms(e["ts"]) <= end]
    if not views:
        return None
    return str(max(views, key=lambda e: (ms(e["ts"]), uuid_order(e["event_id"])))["path"])


def person_filter_ok(o: Outcome, filters: list[dict[str, Any]]) -> bool:
    for cond in filters:
        fake = {"x": o.attrs[cond["field"]]}
        if not condition_holds(fake, {**cond, "field": "x"}):
            return False
    return True


def report(
    events: list[dict[str, Any]],
    definition: dict[str, Any],
    *,
    mode: str,
    window_s: int,
    start: int,
    end: int,
    event_filters: list[dict[str, Any]] = (),  # type: ignore[assignment]
    person_filters: list[dict[str, Any]] = (),  # type: ignore[assignment]
    breakdown: str | None = None,
    limit: int = 10,
) -> dict[str, Any]:
    outs = outcomes(events, definition, mode, window_s, start, end, list(event_filters))
    selected = [
        o for o in outs.values() if o.in_funnel and person_filter_ok(o, list(person_filters))
    ]
    result: dict[str, Any] = {"persons": len(selected), "stages": stage_stats(selected, definition)}
    if breakdown:
        groups: dict[str, list[Outcome]] = defaultdict(list)
        for o in selected:
            groups[breakdown_value(o, breakdown)].append(o)
        ranked = sorted(groups, key=lambda v: (-len(groups[v]), v))
        # Keyed by (value, is the remainder): a real value "other" is not the remainder.
        merged: dict[tuple[str, bool], list[Outcome]] = {
            (v, False): groups[v] for v in ranked[:limit]
        }
        if ranked[limit:]:
            merged[("other", True)] = [o for v in ranked[limit:] for o in groups[v]]
            result["other_values"] = len(ranked[limit:])
        result["breakdown"] = {v: stage_stats(os, definition) for v, os in merged.items()}
    return result


def pipeline(outs: list[Outcome], n: int, window_s: int, now: int) -> dict[str, Any]:
    """The pipeline figures of the persons in the funnel (after person filters) at `now`."""
    reached = [sum(1 for o in outs if o.hit[k]) for k in range(n)]
    sitting = [0] * n
    for o in outs:
        last = max(k for k in range(n) if o.hit[k])
        if last < n - 1 and now - o.last_start <= window_s * 1000:  # type: ignore[operator]
            sitting[last] += 1
    closed = [o for o in outs if o.hit[n - 1]]
    value = sum(o.sale_value for o in closed)  # type: ignore[misc]
    rates = [reached[n - 1] / reached[k] if reached[k] else 0.0 for k in range(n - 1)]
    forecast = sum(sitting[k] * rates[k] for k in range(n - 1))
    return {
        "entered": len(outs),
        "converted": len(closed),
        "reached": reached,
        "sitting": sitting,
        "rates": [*rates, 1.0],
        "close_rate": len(closed) / len(outs) if outs else 0.0,
        "value_sum": value,
        "value_avg": value / len(closed) if closed else None,
        "close_s": (
            sum(o.tk[n - 1] - o.close_start for o in closed) / len(closed) / 1000  # type: ignore[operator]
            if closed
            else None
        ),
        "forecast": forecast,
        "forecast_value": forecast * value / len(closed) if closed else 0.0,
    }
