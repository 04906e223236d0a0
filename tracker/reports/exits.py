"""Where the persons who dropped off after a stage left: the last page each of them viewed,
up to one conversion window after reaching that stage, counted by path."""

from __future__ import annotations

from typing import Any

from tracker.clickhouse import Store
from tracker.models import Site
from tracker.reports.common import ReportTimer, as_definition, ratio
from tracker.reports.engine import (
    PERSON_EXPR,
    has_identities,
    identity_join,
    site_plan,
    status_condition,
)
from tracker.reports.query import QueryError, ReportQuery
from tracker.stages.operators import Params

MAX_EXITS = 1000


def funnel_exits(
    store: Store,
    site: Site,
    definition: Any,
    query: ReportQuery,
    stage: str,
    limit: int = 10,
) -> dict[str, Any]:
    """The top exit pages of the persons who reached `stage` but not the next one.

    A person's exit page is the path of their last page view from their first event in range
    up to one window after they reached the stage (ties by event id): a page viewed after
    reaching it if any, else the page they reached it on. Page views are read whatever the
    event filters: those choose the events that count for the funnel, not where a person
    went. Persons without a page view in that span are counted apart."""
    definition = as_definition(definition)
    keys = [s["key"] for s in definition["stages"]]
    if stage not in keys:
        raise QueryError(f"stage must be one of {', '.join(keys)}")
    if not 1 <= limit <= MAX_EXITS:
        raise QueryError(f"limit must be between 1 and {MAX_EXITS}")
    k = keys.index(stage) + 1
    identities = has_identities(store, site.key)
    params = Params()
    plan = site_plan(
        store, site.key, definition, query.totals_only(), params, identities=identities
    )
    w = params.add(plan.window * 1000, "Int64")
    start = params.add(query.start_ms, "Int64")
    horizon = params.add(query.end_ms + 2 * plan.window * 1000, "Int64")
    p_limit = params.add(limit, "UInt32")
    dropped = f"""SELECT person, first_ms AS first, tk[{k}] AS at FROM ({plan.sql})
        WHERE in_funnel AND {status_condition("dropped", k, len(keys))}"""
    per_person = _last_page_sql(site.key, dropped, start, horizon, w, identities, params)
    sql = f"""
        SELECT has_page, path, persons,
            sum(persons) OVER () AS total, countIf(has_page) OVER () AS paths
        FROM (
            SELECT has_page, if(has_page, path, '') AS path, count() AS persons
            FROM ({per_person})
            GROUP BY has_page, path
        )
        ORDER BY has_page, persons DESC, path
        LIMIT {p_limit} + 1
    """
    timer = ReportTimer()
    rows = timer.rows(store, sql, params.values)
    total = int(rows[0][3]) if rows else 0
    paths = int(rows[0][4]) if rows else 0
    no_page = next((int(r[2]) for r in rows if not r[0]), 0)
    top = [(str(path), int(count)) for has_page, path, count, _, _ in rows if has_page][:limit]
    exits = [{"path": p, "persons": c, "share": ratio(c, total)} for p, c in top]
    listed = sum(c for _, c in top)
    return {
        "stage": stage,
        "persons": total,
        "exits": exits,
        "other": {"paths": paths - len(exits), "persons": total - no_page - listed},
        "no_page_view": no_page,
        "window": plan.window,
        "range": query.range_dict(),
        "sql_ms": timer.ms,
    }


def _last_page_sql(
    site_key: str,
    persons_sql: str,
    start: str,
    horizon: str,
    w: str,
    identities: bool,
    params: Params,
    visitors: list[str] | None = None,
) -> str:
    """Per person of `persons_sql` (person, first, at): whether they viewed a page from
    `first` to `at` + `w`, and the last one's path. The persons are few next to the events:
    they form the join's (right) hash side, and RIGHT JOIN keeps those without a page view.
    `visitors` narrows the events read to those visitors (a primary-key range read)."""
    site_cond = f"site_id = {params.add(site_key, 'String')}"
    person = PERSON_EXPR if identities else "e.visitor_id"
    join = identity_join(site_cond, one_site=True) if identities else ""
    only = f"AND e.visitor_id IN {params.add(visitors, 'Array(String)')}" if visitors else ""
    span = f"v.t >= s.first AND v.t <= s.at + {w}"
    return f"""
        SELECT s.person AS who, countIf({span}) > 0 AS has_page,
            argMaxIf(v.path, (v.t, v.eid), {span}) AS path
        FROM (
            SELECT {person} AS person, toInt64(toUnixTimestamp64Milli(e.ts)) AS t,
                e.path AS path, e.event_id AS eid
            FROM events AS e
            {join}
            WHERE e.{site_cond} AND e.type = {params.add("pageview", "String")}
              AND e.ts >= fromUnixTimestamp64Milli({start}, 'UTC')
              AND e.ts <= fromUnixTimestamp64Milli({horizon}, 'UTC')
              {only}
        ) AS v
        RIGHT JOIN ({persons_sql}) AS s ON v.person = s.person
        GROUP BY s.person
    """


def exit_pages(
    store: Store,
    site_key: str,
    people: list[tuple[str, int, int]],
    window_s: int,
    identities: bool,
    visitors: list[str],
    timer: ReportTimer,
) -> dict[str, str | None]:
    """Each listed person's exit page, as in `funnel_exits`, from (person, first event ms,
    ms the stage was reached): the path, or None without a page view."""
    if not people:
        return {}
    params = Params()
    w = params.add(window_s * 1000, "Int64")
    start = params.add(min(first for _, first, _ in people), "Int64")
    horizon = params.add(max(at for _, _, at in people) + window_s * 1000, "Int64")
    who = params.add([p[0] for p in people], "Array(String)")
    firsts = params.add([p[1] for p in people], "Array(Int64)")
    ats = params.add([p[2] for p in people], "Array(Int64)")
    persons_sql = f"""SELECT x.1 AS person, x.2 AS first, x.3 AS at
        FROM (SELECT arrayJoin(arrayZip({who}, {firsts}, {ats})) AS x)"""
    sql = _last_page_sql(site_key, persons_sql, start, horizon, w, identities, params, visitors)
    rows = timer.rows(store, sql, params.values)
    return {str(who): (str(path) if has_page else None) for who, has_page, path in rows}
