"""The per-person funnel evaluation in ClickHouse SQL, shared by every report.

One pass over `events`:
1. identity: a visitor -> user map (first identification wins), so person = user id or
   visitor id, computed at query time;
2. each event gets a stage bitmask (bit k = matches stage k+1) from the compiled rules;
3. events group per person into an array sorted by (ts, lowest stage matched, mask): equal
   timestamps are ordered so that they can fill consecutive stages;
4. attempts are evaluated with array functions (ordered: greedy earliest match, which is
   optimal for a subsequence; strict: the run of directly following events), together with
   first-touch and first-event attribution from argMin aggregates.

The result is a subquery with one row per person; reports aggregate over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from tracker.clickhouse import Store
from tracker.reports.query import ReportQuery
from tracker.stages.compile import column_for, compile_conditions, compile_mask
from tracker.stages.fields import ATTRIBUTION_FIELDS, is_prop, prop_name
from tracker.stages.operators import OPERATORS, Params

# Attribution columns: first marketing touch, and first event in range.
TOUCH_FIELDS = ("campaign", "source", "medium", "keyword", "content", "click_id", "referrer")
FIRST_FIELDS = ("landing", "country", "region", "city", "device", "browser", "os")
_TOUCH_COLUMNS = (
    "utm_campaign",
    "source",
    "medium",
    "utm_term",
    "utm_content",
    "click_id",
    "referrer",
)
_FIRST_COLUMNS = ("path", "country", "region", "city", "device", "browser", "os")
# Histogram of time from first click: upper bounds (seconds) of all but the last bucket.
HISTOGRAM_EDGES = (60, 600, 3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400)
HISTOGRAM_LABELS = ("<1m", "1-10m", "10m-1h", "1-6h", "6-24h", "1-3d", "3-7d", "7-30d", "30d+")


def identity_join(site_cond: str, alias: str = "e", one_site: bool = False) -> str:
    """LEFT JOIN giving `i.uid`: the user a visitor first identified as ('' if never).

    `one_site`: both sides are already restricted to a single site, so the join key is the
    visitor id alone (a single String key hashes much faster than a composite one)."""
    site = "" if one_site else "site_id, "
    on = "" if one_site else f"{alias}.site_id = i.site_id AND "
    return f"""LEFT ANY JOIN (
            SELECT {site}visitor_id, argMin(user_id, (ts, toString(event_id))) AS uid
            FROM events
            WHERE {site_cond} AND user_id != ''
            GROUP BY {site}visitor_id
        ) AS i ON {on}{alias}.visitor_id = i.visitor_id"""


PERSON_EXPR = "if(i.uid != '', i.uid, e.visitor_id)"


@dataclass
class Plan:
    sql: str  # SELECT yielding one row per person (see person_columns)
    params: Params
    stages: int
    mode: str
    window: int


ALL_ATTRS = (*TOUCH_FIELDS, *FIRST_FIELDS)


def site_condition(site_key: str | list[str], params: Params) -> str:
    """`site_id` restricted to one site, or to several (batch evaluation)."""
    if isinstance(site_key, list):
        return f"site_id IN {params.add(site_key, 'Array(String)')}"
    return f"site_id = {params.add(site_key, 'String')}"


def has_identities(store: Store, site_key: str | list[str]) -> bool:
    """Whether any event of the site(s) carries a user id, i.e. identity stitching can change
    who is a person. A cheap scan of one mostly empty column, run before each report."""
    params = Params()
    cond = site_condition(site_key, params)
    sql = f"SELECT count() FROM (SELECT 1 FROM events WHERE {cond} AND user_id != '' LIMIT 1)"
    return bool(store.scalar(sql, params.values))


# The per-person column of a property breakdown (a report has at most one breakdown).
PROP_ATTR = "attr_breakdown_prop"


def attr_expr(field: str) -> str:
    """The per-person column holding an attribution field, or the breakdown's property."""
    if is_prop(field):
        return PROP_ATTR
    if field not in ALL_ATTRS:
        raise ValueError(f"not an attribution field: {field}")
    return f"attr_{field}"


def needed_attrs(query: ReportQuery) -> set[str]:
    fields = {c["field"] for c in query.person_filters if c["field"] in ATTRIBUTION_FIELDS}
    if query.breakdown and not is_prop(query.breakdown):
        fields.add(query.breakdown)
    return fields


def person_filter_sql(query: ReportQuery, params: Params) -> str:
    parts = []
    for cond in query.person_filters:
        field = cond["field"]
        if field not in ATTRIBUTION_FIELDS:
            continue
        op = OPERATORS[cond["op"]]
        col = column_for(field, params)
        # Re-point the column at the person's attributed value.
        expr = attr_expr(field)
        col = type(col)(expr, f"({expr} != '')", False)
        parts.append(op.compile(col, cond.get("value"), params))
    if query.breakdown and query.segment is not None:
        # One group of the breakdown (a drill-down from its funnel), by the same attribution.
        parts.append(f"{attr_expr(query.breakdown)} = {params.add(query.segment, 'String')}")
    return " AND ".join(parts) if parts else "1"


def status_condition(status: str, k: int, n: int) -> str:
    """SQL over a plan's per-person row: the person reached stage k (1-based) of n, dropped
    off after it (reached it, not k + 1; nobody at the last stage: they converted), or
    skipped it."""
    return {
        "reached": f"hit[{k}] = 1",
        "dropped": f"hit[{k}] = 1 AND {'0' if k == n else f'hit[{k + 1}] = 0'}",
        "skipped": f"NOT bitTest(matched, {k - 1}) AND bitShiftRight(matched, {k}) != 0",
    }[status]


def site_plan(
    store: Store,
    site_key: str | list[str],
    definition: dict[str, Any],
    query: ReportQuery,
    params: Params,
    **options: Any,
) -> Plan:
    """`build_plan` with identity stitching decided from the stored events: the one place
    every report asks `has_identities`, unless the caller already knows (`identities=`)."""
    if "identities" not in options:
        options["identities"] = has_identities(store, site_key)
    return build_plan(site_key, definition, query, params, **options)


def build_plan(
    site_key: str | list[str],
    definition: dict[str, Any],
    query: ReportQuery,
    params: Params | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    periods: list[tuple[int, int]] | None = None,
    attrs: set[str] | None = None,
    values: bool = False,
    identities: bool = True,
    visitors: list[str] | None = None,
    every_attempt: bool = False,
) -> Plan:
    """Per-person rows for the definition over [start_ms, end_ms) (the query's range).

    With `periods` ([start, end) pairs in epoch ms) every person is evaluated once per period
    as if that period were the report's range; rows then carry the period in `ps`/`pe`.
    `values` adds `sale_value` (the value of the event that filled the last stage).
    `identities=False` (no event of the site carries a user id, see `has_identities`) leaves
    out the identity join: person = visitor id, without probing a join for every event.
    `visitors` restricts the events read to those visitor ids (a primary-key range read):
    exact for every person all of whose visitors are listed.
    `every_attempt` evaluates every attempt and adds `last_start` (the start of the latest
    attempt reaching the person's furthest stage, for the pipeline). Without it, ordered mode
    skips the later attempts whenever they cannot reach further than the first one.
    """
    params = params or Params()
    stages = definition["stages"]
    n = len(stages)
    mode = query.mode or definition["mode"]
    window = query.window or int(definition["window"])
    start = query.start_ms if start_ms is None else start_ms
    end = query.end_ms if end_ms is None else end_ms
    # Several sites at once (batch evaluation): persons are per site.
    site_cond = site_condition(site_key, params)
    if periods:
        periods = sorted(periods)
        if any(a[1] > b[0] for a, b in pairwise(periods)):
            raise ValueError("periods must not overlap")
        start, end = periods[0][0], max(p[1] for p in periods)
        if len(periods) == 1:
            periods = None  # a single period is a plain range, evaluated the cheaper way
    p_start = params.add(start, "Int64")
    p_end = params.add(end, "Int64")
    p_w = params.add(window * 1000, "Int64")
    p_hi = params.add(end + window * 1000, "Int64")
    if periods:
        # Each event belongs to at most one period's range: the period that starts at or
        # before it (roundDown, a binary search over the constant starts), if it ends after.
        p_starts = params.add([p[0] for p in periods], "Array(Int64)")
        p_ends = params.add([p[1] for p in periods], "Array(Int64)")
        pe_of = f"transform(ps, {p_starts}, {p_ends}, toInt64(-1))"
        bounds = f"""if(t >= {p_start} AND t < {p_end}, roundDown(t, {p_starts}), toInt64(-1))
                AS ps,
            {pe_of} AS pe"""
    else:
        bounds = f"{p_start} AS ps, {p_end} AS pe"
    mask = compile_mask(stages, params, "e")
    event_filter = compile_conditions(query.event_filters, params, "e")
    visitor_cond = ""
    if visitors is not None:
        visitor_cond = f"AND e.visitor_id IN {params.add(visitors, 'Array(String)')}"

    # Only the attribution fields this report uses are computed (each is an argMin).
    wanted = needed_attrs(query) | (attrs or set())
    attr_cols = []
    attr_aggs = []
    attr_names = []
    for name in ALL_ATTRS:
        if name not in wanted:
            continue
        if name in TOUCH_FIELDS:
            column, cond = _TOUCH_COLUMNS[TOUCH_FIELDS.index(name)], "in_range AND has_touch"
        else:
            column, cond = _FIRST_COLUMNS[FIRST_FIELDS.index(name)], "in_range"
        attr_cols.append(f"e.{column} AS c_{name}")
        attr_aggs.append(f"argMinIf(c_{name}, vkey, {cond}) AS attr_{name}")
        attr_names.append(f"attr_{name}")
    if any(name in TOUCH_FIELDS for name in wanted):
        # `touch` is stored at insert (schema 0002): any of the touch columns is non-empty.
        attr_cols.append("e.touch AS has_touch")
    if query.breakdown and is_prop(query.breakdown):
        # A property is attributed like a marketing touch: from the person's first event in
        # range that carries it (e.g. the first product looked at).
        key = params.add(prop_name(query.breakdown), "String")
        attr_cols.append(f"e.props[{key}] AS c_breakdown_prop")
        attr_cols.append(f"mapContains(e.props, {key}) AS has_breakdown_prop")
        attr_aggs.append(
            f"argMinIf(c_breakdown_prop, vkey, in_range AND has_breakdown_prop) AS {PROP_ATTR}"
        )
        attr_names.append(PROP_ATTR)
    attr_select = "".join(f"{c},\n" for c in attr_cols)
    attr_agg_select = "".join(f"{c},\n" for c in attr_aggs)

    events_sql = f"""
        SELECT
            e.site_id AS site,
            {PERSON_EXPR if identities else "e.visitor_id"} AS person,
            toInt64(toUnixTimestamp64Milli(e.ts)) AS t,
            {mask} AS mask,
            if(mask = 0, 31, bitCount(bitXor(mask, mask - 1)) - 1) AS minst,
            e.value AS v,
            -- One UInt64 orders events as (ts, lowest stage, mask): 39 bits of ms since the
            -- range start (17 years), 5 + 20 bits of stage data (at most 20 stages). Events
            -- equal in all three are interchangeable for stages and times, so the report
            -- sorts this alone: arraySort on one UInt64 is far cheaper than on a tuple.
            bitShiftLeft(toUInt64(t - {p_start}), 25) + bitShiftLeft(toUInt64(minst), 20)
                + mask AS okey,
            -- Values and attribution also need the event id as the last tie-break: 64 bits
            -- of it (two events alike in all else sharing those is a 2^-64 chance), since
            -- comparing UInt128 keys is much cheaper than UInt256 ones on every event.
            bitShiftLeft(toUInt128(okey), 64)
                + bitShiftRight(reinterpretAsUInt128(e.event_id), 64) AS vkey,
            {bounds},
            {attr_select}
            (t >= ps AND t < pe) AS in_range
        FROM events AS e
        {identity_join(site_cond, one_site=not isinstance(site_key, list)) if identities else ""}
        WHERE e.{site_cond}
          AND e.ts >= fromUnixTimestamp64Milli({p_start}, 'UTC')
          AND e.ts <= fromUnixTimestamp64Milli({p_hi}, 'UTC')
          AND ({event_filter})
          {visitor_cond}
    """
    # Persons outside the funnel or the attribution filters are dropped before the costly
    # array evaluation: an attempt (or the `any` anchor) needs an entry event in range.
    entry = "mask != 0" if mode == "any" else "bitTest(mask, 0)"
    person_filters = person_filter_sql(query, params)
    # Only ordered/any evaluate matching events alone; strict needs every event in between.
    keep = "1" if mode == "strict" else "mask != 0"
    # Per person arrays (name -> collected column), as raw_<name> until sorted into <name>.
    if values:
        # The values follow the events' full order (vkey), so ties pick by event id.
        collected = {"evs": "vkey", "vals": "v"}
        sort = "arraySort(raw_evs) AS evs, arraySort((x, k) -> k, raw_vals, raw_evs) AS vals"
        okey_of = "toUInt64(bitShiftRight(x, 64))"
    else:
        collected = {"evs": "okey"}
        sort = "arraySort(raw_evs) AS evs"
        okey_of = "x"
    multi_site = isinstance(site_key, list)
    # Group by the person alone when site and range are constants: composite keys hash slower.
    site_select = "site" if multi_site else f"{params.add(site_key, 'String')} AS site"
    if periods:
        grouped_sql = _periods_grouped_sql(
            events_sql,
            multi_site=multi_site,
            site_select=site_select,
            collected=collected,
            keep=keep,
            attrs=attr_names,
            attr_agg_select=attr_agg_select,
            pe_of=pe_of,
            entry=entry,
            person_filters=person_filters,
            sort=sort,
        )
    else:
        arrays = "".join(f"groupArrayIf({c}, {keep}) AS raw_{n}," for n, c in collected.items())
        if multi_site:
            keys, consts = "site, person", f"{p_start} AS ps, {p_end} AS pe,"
        else:
            keys, consts = "person", f"{site_select}, {p_start} AS ps, {p_end} AS pe,"
        grouped_sql = f"""
        SELECT
            {keys},
            {consts}
            {arrays}
            minIf(t, in_range) AS first_ms,
            {attr_agg_select}
            countIf(in_range) AS events_in_range
        FROM ({events_sql})
        GROUP BY {keys}
        HAVING events_in_range > 0 AND countIf(in_range AND {entry}) > 0 AND ({person_filters})
    """
        grouped_sql = f"SELECT *, {sort} FROM ({grouped_sql})"
    # Each step is its own subquery layer: ClickHouse inlines alias references, so chaining
    # aliases in one SELECT would make the analyzer copy whole expression trees.
    # (Sorting comes after HAVING, above: only the persons left in the funnel pay for it.)
    layers: list[str] = [
        f"""arrayMap(x -> toInt64(bitShiftRight({okey_of}, 25)) + {p_start}, evs) AS ts,
        arrayMap(x -> toUInt32(bitAnd({okey_of}, 1048575)), evs) AS masks""",
    ]
    sale_any = f" if(firsts[{n}] > 0, vals[firsts[{n}]], 0) AS sale_value," if values else ""
    last_any = ", t0 AS last_start" if every_attempt else ""
    last_attempt = (
        """,
            arrayMax(arrayMap(a -> if(length(a) = reach, ts[a[1]], 0), attempts)) AS last_start"""
        if every_attempt
        else ""
    )
    sale_attempt = f"if(reach = {n}, vals[best[{n}][{n}]], 0) AS sale_value," if values else ""
    if mode == "any":
        layers += [
            """arrayFirstIndex((m, x) -> m != 0 AND x >= ps AND x < pe, masks, ts)
                AS anchor""",
            f"""anchor > 0 AS in_funnel, ts[anchor] AS t0,
            arrayMap(k -> arrayFirstIndex((m, x) -> bitTest(m, k - 1) AND x >= ts[anchor]
                AND x - ts[anchor] <= {p_w}, masks, ts), range(1, {n + 1})) AS firsts""",
            f"""arrayMap(f -> toUInt8(in_funnel AND f > 0), firsts) AS hit,
            arrayMap(f -> if(f > 0, ts[f], 0), firsts) AS tk,
            [[toUInt32(anchor)]] AS attempts,{sale_any} t0 AS close_start{last_any}""",
            f"""arrayMap(k -> if(k > 1, tk[k - 1], tk[k]), range(1, {n + 1})) AS tprev,
            arraySum(arrayMap(k -> bitShiftLeft(toUInt32(hit[k]), k - 1), range(1, {n + 1})))
                AS matched, arraySum(hit) AS reach""",
        ]
    else:
        # Lambdas take the arrays as arguments rather than indexing captured ones: a captured
        # array is copied for every element the lambda runs on.
        layers.append(
            """arrayEnumerate(masks) AS idx,
            arrayFilter((i, m, x) -> bitTest(m, 0) AND x >= ps AND x < pe, idx, masks, ts)
                AS starts"""
        )
        if mode == "strict":
            # Stages k+1.. must be the directly following events; brk = first stage missed.
            layers.append(
                f"""arrayMap(i -> arrayFirstIndex(m -> NOT (i + m <= length(masks)
                    AND bitTest(masks[i + m], m) AND ts[i + m] - ts[i] <= {p_w}),
                    range(1, {n})), starts) AS brks"""
            )
            layers.append(
                f"""arrayMap((i, b) -> range(toUInt32(i), toUInt32(i + if(b = 0, {n}, b))),
                    starts, brks) AS attempts"""
            )
        else:
            # When every event after the first start lies inside its window, no later attempt
            # gets further than the first (a later attempt's k-th pick is never earlier than
            # the first's), and the first is the one whose times count: later ones are only
            # evaluated for `last_start`, or when events lie beyond the first window.
            tried = "starts"
            if not every_attempt:
                layers.append(
                    f"""if(length(starts) > 1 AND ts[length(ts)] - ts[starts[1]] > {p_w},
                        starts, arraySlice(starts, 1, 1)) AS tried"""
                )
                tried = "tried"
            # Greedy earliest match per attempt: optimal for an ordered subsequence.
            layers.append(
                f"""arrayMap((i, ti) -> arrayFold((acc, m, x, j) -> if(j > i
                    AND length(acc) < {n} AND bitTest(m, length(acc)) AND x - ti <= {p_w},
                    arrayPushBack(acc, j), acc), masks, ts, idx, [toUInt32(i)]),
                {tried}, arrayMap(i -> ts[i], {tried})) AS attempts"""
            )
        layers += [
            f"""notEmpty(starts) AS in_funnel,
            if(in_funnel, arrayMax(arrayMap(a -> length(a), attempts)), 0) AS reach,
            arrayMap(k -> arrayFirst(a -> length(a) >= k, attempts), range(1, {n + 1})) AS best,
            -- Union of the attempt windows in one pass: a start sorts first among events
            -- with its timestamp (lowest stage first), so the latest start seen so far is
            -- the one whose window decides.
            arrayFold((acc, m, x) -> if(bitTest(m, 0) AND x >= ps AND x < pe,
                (x, bitOr(acc.2, m)),
                if(acc.1 >= 0 AND x - acc.1 <= {p_w}, (acc.1, bitOr(acc.2, m)), acc)),
                masks, ts, (toInt64(-1), toUInt32(0))).2 AS matched""",
            f"""arrayMap(k -> toUInt8(reach >= k), range(1, {n + 1})) AS hit,
            arrayMap(k -> if(reach >= k, ts[best[k][k]], 0), range(1, {n + 1})) AS tk,
            arrayMap(k -> if(reach >= k, ts[best[k][greatest(k - 1, 1)]], 0), range(1, {n + 1}))
                AS tprev,
            {sale_attempt}
            if(reach = {n}, ts[best[{n}][1]], 0) AS close_start{last_attempt}""",
        ]
    layers.append("arrayPushFront(arrayPopBack(hit), toUInt8(0)) AS hit_prev")
    sql = grouped_sql
    for layer in layers:
        sql = f"SELECT *, {layer} FROM ({sql})"
    return Plan(sql=sql, params=params, stages=n, mode=mode, window=window)


def _periods_grouped_sql(
    events_sql: str,
    *,
    multi_site: bool,
    site_select: str,
    collected: dict[str, str],
    keep: str,
    attrs: list[str],
    attr_agg_select: str,
    pe_of: str,
    entry: str,
    person_filters: str,
    sort: str,
) -> str:
    """Per (person, period) rows for `build_plan(periods=...)`, each with all of the person's
    events. The events are grouped once per person, not once per period: first per (person,
    period of the event's range, or -1 for window tails), for the period's own first event,
    attribution and counts; then per person, flattening the events and keeping the periods
    the person is in the funnel for; ARRAY JOIN then gives one row per such period. Layers
    only look at events from the row's `ps` onward (attempt starts are in [ps, pe)), so
    events of earlier periods in the array change nothing."""
    keys = "site, person" if multi_site else "person"
    per_fields = ["ps", "first_ms", "events_in_range", *attrs]
    per_cols = ", ".join(f"per.{i} AS {name}" for i, name in enumerate(per_fields, start=1))
    part_arrays = "".join(f"groupArrayIf({c}, {keep}) AS part_{n}," for n, c in collected.items())
    flat = "".join(f"arrayFlatten(groupArray(part_{n})) AS raw_{n}," for n in collected)
    return f"""
        SELECT {site_select}, person, {per_cols}, {pe_of} AS pe, {", ".join(collected)}
        FROM (
            SELECT *, {sort}
            FROM (
                SELECT {keys},
                    {flat}
                    groupArrayIf(({", ".join(per_fields)}), ps >= 0 AND events_in_range > 0
                        AND entries > 0 AND ({person_filters})) AS pers
                FROM (
                    SELECT {keys}, ps,
                        {part_arrays}
                        minIf(t, in_range) AS first_ms,
                        {attr_agg_select}
                        countIf(in_range) AS events_in_range,
                        countIf(in_range AND {entry}) AS entries
                    FROM ({events_sql})
                    GROUP BY {keys}, ps
                )
                GROUP BY {keys}
                HAVING notEmpty(pers)
            )
        )
        ARRAY JOIN pers AS per
    """
