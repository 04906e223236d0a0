"""Persons behind a stage figure (reached, dropped or skipped) and one person's journey."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from tracker.clickhouse import Store
from tracker.models import Site
from tracker.reports.common import ReportTimer, as_definition
from tracker.reports.engine import (
    ALL_ATTRS,
    PERSON_EXPR,
    attr_expr,
    has_identities,
    identity_join,
    site_plan,
    status_condition,
)
from tracker.reports.exits import exit_pages
from tracker.reports.query import QueryError, ReportQuery
from tracker.stages.compile import compile_mask
from tracker.stages.fields import is_prop
from tracker.stages.operators import Params

STATUSES = ("reached", "dropped", "skipped")
MAX_PER_PAGE = 1000
MAX_PAGE = 1_000_000  # keeps (page - 1) * per_page far inside OFFSET's UInt64
JOURNEY_LIMIT = 2000
# CSV exports of a persons list: pages of this many persons, at most this many in all.
EXPORT_PAGE = 5000
MAX_EXPORT_PERSONS = 1_000_000


def iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def funnel_persons(
    store: Store,
    site: Site,
    definition: Any,
    query: ReportQuery,
    stage: str,
    status: str,
    page: int = 1,
    per_page: int = 50,
) -> dict[str, Any]:
    if not 1 <= page <= MAX_PAGE or not 1 <= per_page <= MAX_PER_PAGE:
        raise QueryError(
            f"page must be between 1 and {MAX_PAGE} and per_page between 1 and {MAX_PER_PAGE}"
        )
    result, _ = _persons_page(
        store, site, definition, query, stage, status, per_page, offset=(page - 1) * per_page
    )
    return {"page": page, "per_page": per_page, **result}


def export_persons(
    store: Store,
    site: Site,
    definition: Any,
    query: ReportQuery,
    stage: str,
    status: str,
    page_size: int | None = None,
    cap: int | None = None,
) -> tuple[dict[str, Any], Iterator[list[dict[str, Any]]]]:
    """Every person of a persons list, up to `cap`, for a CSV export: the first page at once
    (so a bad argument or an outage is an error answer before any byte is sent, and `total`
    is known), then the others lazily, page by page, so memory stays bounded by a page.
    Pages follow the list's order by key (first_ms, person), not by offset: each page costs
    the same, and persons entering meanwhile do not shift later pages. The first page
    also says `truncated`: the list holds more than `cap` persons (default
    MAX_EXPORT_PERSONS), of which the export gives the first `cap`."""
    page_size = page_size or EXPORT_PAGE
    cap = cap or MAX_EXPORT_PERSONS
    first, cursor = _persons_page(
        store, site, definition, query, stage, status, min(page_size, cap)
    )
    first["truncated"] = first["total"] > cap

    def rest() -> Iterator[list[dict[str, Any]]]:
        sent, after = len(first["persons"]), cursor
        while after is not None and sent < min(first["total"], cap):
            page, after = _persons_page(
                store, site, definition, query, stage, status, min(page_size, cap - sent),
                after=after,
            )  # fmt: skip
            if not page["persons"]:
                return
            sent += len(page["persons"])
            yield page["persons"]

    return first, rest()


def _persons_page(
    store: Store,
    site: Site,
    definition: Any,
    query: ReportQuery,
    stage: str,
    status: str,
    limit: int,
    offset: int = 0,
    after: tuple[int, str] | None = None,
) -> tuple[dict[str, Any], tuple[int, str] | None]:
    """Up to `limit` persons of the list, from `offset` or after the key `after`; and the
    key of the last one (None when none). `total` counts the whole list only from the start
    (with `after`, the persons after it)."""
    definition = as_definition(definition)
    keys = [s["key"] for s in definition["stages"]]
    if stage not in keys:
        raise QueryError(f"stage must be one of {', '.join(keys)}")
    if status not in STATUSES:
        raise QueryError(f"status must be one of {', '.join(STATUSES)}")
    k = keys.index(stage) + 1
    condition = status_condition(status, k, len(keys))
    # Two passes: the page of persons first (no attribution work for the millions not on
    # it), then the attributes of just those persons, read by primary key.
    identities = has_identities(store, site.key)
    params = Params()
    # The page itself needs the breakdown only to select a segment; the attributes of its
    # persons (a property breakdown's value included) come from the second pass.
    # `values`: what each person who reached the last stage spent (the pipeline's sale value).
    plan = site_plan(
        store, site.key, definition, query.totals_only(), params, identities=identities,
        values=True,
    )  # fmt: skip
    if after is not None:
        p_first, p_person = params.add(after[0], "Int64"), params.add(after[1], "String")
        condition = f"({condition}) AND (first_ms, person) > ({p_first}, {p_person})"
    p_limit = params.add(limit, "UInt32")
    p_offset = params.add(offset, "UInt64")
    sql = f"""
        SELECT person, first_ms, arrayLastIndex(x -> x = 1, hit) AS last, tk[{k}] AS at,
            count() OVER () AS total, sale_value
        FROM ({plan.sql})
        WHERE in_funnel AND ({condition})
        ORDER BY first_ms, person
        LIMIT {p_limit} OFFSET {p_offset}
    """
    timer = ReportTimer()
    rows = timer.rows(store, sql, params.values)
    total = int(rows[0][4]) if rows else 0
    if not rows and offset > 0:
        # The page is past the end; count what there is for the pager.
        count_sql = f"""SELECT count() FROM ({plan.sql})
            WHERE in_funnel AND ({condition})"""
        total = int(timer.rows(store, count_sql, params.values)[0][0])
    listed = [str(r[0]) for r in rows]
    visitors = _visitors_of(store, site, listed, identities, timer)
    attributes = _attributes(store, site, definition, query, listed, visitors, identities, timer)
    exits: dict[str, str | None] = {}
    if status == "dropped":
        # Where each of them left, as counted by `funnel_exits`.
        people = [(str(r[0]), int(r[1]), int(r[3])) for r in rows]
        exits = exit_pages(store, site.key, people, plan.window, identities, visitors, timer)
    # A property breakdown's value is one more attribute of each person (e.g. the product).
    fields = _person_fields(query)
    persons = []
    for person, first_ms, last, at, _, sale_value in rows:
        attrs = attributes.get(str(person), ("",) * len(fields))
        item: dict[str, Any] = {
            "id": person,
            "first_seen": iso(int(first_ms)),
            "last_stage": keys[last - 1] if last else None,
            "reached_at": iso(int(at)) if status != "skipped" and at else None,
            # The value of the event that filled the last stage; None: not converted.
            "sale_value": float(sale_value) if last == len(keys) else None,
        }
        if status == "dropped":
            item["exit_page"] = exits.get(str(person))
        item.update(dict(zip(fields, attrs, strict=True)))
        persons.append(item)
    cursor = (int(rows[-1][1]), str(rows[-1][0])) if rows else None
    result = {
        "stage": stage,
        "status": status,
        "total": total,
        # What each person carries, in order, whether or not the page has any (CSV header).
        "columns": person_columns(query, status),
        "persons": persons,
        "range": query.range_dict(),
        "sql_ms": timer.ms,
    }
    return result, cursor


def person_columns(query: ReportQuery, status: str) -> list[str]:
    """The keys of every person in a persons list, in order: fixed by the arguments."""
    base = ["id", "first_seen", "last_stage", "reached_at", "sale_value"]
    return [*base, *(["exit_page"] if status == "dropped" else []), *_person_fields(query)]


def _person_fields(query: ReportQuery) -> tuple[str, ...]:
    """The attributes listed per person: every attribution field, plus the value of a
    property breakdown (e.g. `prop.product`)."""
    if query.breakdown and is_prop(query.breakdown):
        return (*ALL_ATTRS, query.breakdown)
    return ALL_ATTRS


def _visitors_of(
    store: Store, site: Site, persons: list[str], identities: bool, timer: ReportTimer
) -> list[str]:
    """The visitor ids whose events make up the given persons (to read just those)."""
    visitors = list(persons)
    if identities and persons:
        # A stitched person's visitors all carry its user id on some event; a superset of
        # visitors is harmless, as rows are kept only for the persons asked for.
        params = Params()
        sql = f"""SELECT DISTINCT visitor_id FROM events
            WHERE site_id = {params.add(site.key, "String")}
              AND user_id IN {params.add(persons, "Array(String)")}"""
        visitors += [str(r[0]) for r in timer.rows(store, sql, params.values)]
    return visitors


def _attributes(
    store: Store,
    site: Site,
    definition: dict[str, Any],
    query: ReportQuery,
    persons: list[str],
    visitors: list[str],
    identities: bool,
    timer: ReportTimer,
) -> dict[str, tuple[Any, ...]]:
    """Attribution fields of the given persons, evaluated exactly as in the funnel."""
    if not persons:
        return {}
    params = Params()
    plan = site_plan(
        store,
        site.key,
        definition,
        query,
        params,
        attrs=set(ALL_ATTRS),
        identities=identities,
        visitors=visitors,
    )
    sql = f"""SELECT person, ({", ".join(attr_expr(f) for f in _person_fields(query))})
        FROM ({plan.sql}) WHERE person IN {params.add(persons, "Array(String)")}"""
    return {str(p): tuple(a) for p, a in timer.rows(store, sql, params.values)}


def resolve_person(store: Store, site: Site, any_id: str) -> str:
    """The person id (the user id once identified, else the visitor id) for a visitor or a
    user id, so that a lookup by either finds the whole stitched journey; the id unchanged
    when no event carries it. An id that is a person itself stays that person, even where
    some other person's device also carried it (a second login on a shared tablet)."""
    params = Params()
    site_cond = f"site_id = {params.add(site.key, 'String')}"
    p_id = params.add(any_id, "String")
    carrying = f"{site_cond} AND (visitor_id = {p_id} OR user_id = {p_id})"
    # Only the visitors of the rows read need their first user id: identifying every visitor
    # of the site would grow with its identified traffic.
    identities = f"{site_cond} AND visitor_id IN (SELECT visitor_id FROM events WHERE {carrying})"
    sql = f"""
        SELECT {PERSON_EXPR} AS person FROM events AS e
        {identity_join(identities, one_site=True)}
        WHERE e.{site_cond} AND (e.visitor_id = {p_id} OR e.user_id = {p_id})
        ORDER BY person != {p_id}, person
        LIMIT 1
    """
    rows = store.rows(sql, params.values)
    return str(rows[0][0]) if rows else any_id


def person_progress(
    store: Store,
    site: Site,
    definition: Any,
    query: ReportQuery,
    person_id: str,
    known: tuple[bool, list[str]] | None = None,
) -> dict[str, Any]:
    """How far the person got in the report given by `query` (range, filters, mode, window),
    evaluated by the same engine as the report: so a journey agrees with the persons list
    it was opened from, even where events outside the range would tell another story.

    `stage_times` are the times the report counts for each stage reached (along the earliest
    attempt that got that far); `status` is "in_funnel", or "no_entry" (no first-stage event
    in the range) or "filtered_out" (the report's filters leave the person out).
    `known`: (has_identities, the person's visitors) when the caller already looked them up."""
    definition = as_definition(definition)
    keys = [s["key"] for s in definition["stages"]]
    timer = ReportTimer()
    if known is None:
        identities = has_identities(store, site.key)
        known = identities, _visitors_of(store, site, [person_id], identities, timer)
    identities, visitors = known

    def evaluate(q: ReportQuery) -> tuple[Any, ...] | None:
        params = Params()
        plan = site_plan(
            store, site.key, definition, q, params, identities=identities, visitors=visitors
        )
        p_person = params.add(person_id, "String")
        sql = f"""SELECT in_funnel, hit, tk, matched, first_ms FROM ({plan.sql})
            WHERE person = {p_person}"""
        rows = timer.rows(store, sql, params.values)
        return rows[0] if rows and rows[0][0] else None

    row = evaluate(query)
    status = "in_funnel"
    if row is None:
        status = "no_entry"
        if query.person_filters or query.segment is not None or query.event_filters:
            unfiltered = replace(
                query, person_filters=[], event_filters=[], segment=None, breakdown=None
            )
            if evaluate(unfiltered) is not None:
                status = "filtered_out"
    hit = [int(h) for h in row[1]] if row else [0] * len(keys)
    # In `any` mode stages are reached in any order: not always a prefix of the funnel.
    reached = [key for key, h in zip(keys, hit, strict=True) if h]
    matched = int(row[3]) if row else 0
    skipped = [
        key
        for k, key in enumerate(keys)
        if not matched >> k & 1 and matched >> (k + 1) != 0 and row is not None
    ]
    return {
        "status": status,
        "reached": reached,
        "last_stage": reached[-1] if reached else None,
        "converted": bool(hit[-1]),
        "skipped": skipped,
        "stage_times": {
            key: iso(int(t))
            for key, h, t in zip(keys, hit, row[2] if row else [], strict=False)
            if h
        },
        "first_seen": iso(int(row[4])) if row else None,
        "range": query.range_dict(),
        "mode": query.mode or definition["mode"],
        "window_s": query.window or int(definition["window"]),
        "sql_ms": timer.ms,
    }


def person_journey(
    store: Store,
    site: Site,
    definition: Any | None,
    person_id: str,
    query: ReportQuery | None = None,
) -> dict[str, Any]:
    """All events of the person (every device and visitor id stitched to it), in order,
    each labelled with the keys of the stages it matches. A visitor id of a stitched person
    gives that person's journey (`person` in the answer says whose).

    With a definition and a `query`, `progress` says how far the person got in that report
    (see `person_progress`); each event then carries `filled` (the stage it filled there, or
    None) and `in_range` ("before", "in" or "after" the report's range)."""
    person_id = resolve_person(store, site, person_id)
    params = Params()
    stages: list[dict[str, Any]] = []
    if definition is not None:
        stages = as_definition(definition)["stages"]
    mask = compile_mask(stages, params, "e") if stages else "toUInt32(0)"
    timer = ReportTimer()
    # Only the person's visitors are read (a primary-key range each), for the events and
    # for their identification: not the whole site's history.
    identities = has_identities(store, site.key)
    visitors = _visitors_of(store, site, [person_id], identities, timer)
    p_visitors = params.add(visitors, "Array(String)")
    p_site = params.add(site.key, "String")
    site_cond = f"site_id = {p_site} AND visitor_id IN {p_visitors}"
    p_person = params.add(person_id, "String")
    p_limit = params.add(JOURNEY_LIMIT + 1, "UInt32")
    sql = f"""
        SELECT toInt64(toUnixTimestamp64Milli(e.ts)) AS t, {mask} AS mask,
            if(mask = 0, 255, bitCount(bitXor(mask, mask - 1)) - 1) AS minst,
            toString(e.event_id) AS eid, e.type, e.name, e.url, e.path, e.title, e.referrer,
            e.source, e.medium, e.utm_campaign, e.utm_term, e.element_text, e.element_href,
            e.visitor_id, e.user_id, e.session_id, e.props, e.value, e.device, e.country
        FROM events AS e
        {identity_join(site_cond, one_site=True)}
        WHERE e.site_id = {p_site} AND e.visitor_id IN {p_visitors}
          AND {PERSON_EXPR} = {p_person}
        ORDER BY t, minst, mask, eid
        LIMIT {p_limit}
    """
    rows = timer.rows(store, sql, params.values)
    events = []
    for row in rows[:JOURNEY_LIMIT]:
        (
            t,
            m,
            _,
            eid,
            type_,
            name,
            url,
            path,
            title,
            referrer,
            source,
            medium,
            campaign,
            keyword,
            text,
            href,
            visitor,
            user,
            session,
            props,
            value,
            device,
            country,
        ) = row
        events.append(
            {
                "id": eid,
                "ts": iso(int(t)),
                "type": type_,
                "name": name,
                "url": url,
                "path": path,
                "title": title,
                "referrer": referrer,
                "source": source,
                "medium": medium,
                "campaign": campaign,
                "keyword": keyword,
                "element_text": text,
                "element_href": href,
                "visitor_id": visitor,
                "user_id": user,
                "session_id": session,
                "props": dict(props),
                "value": float(value),
                "device": device,
                "country": country,
                "stages": [s["key"] for k, s in enumerate(stages) if int(m) >> k & 1],
            }
        )
    result: dict[str, Any] = {
        "person": person_id,
        "events": events,
        "truncated": len(rows) > JOURNEY_LIMIT,
        "visitors": sorted({e["visitor_id"] for e in events}),
        "sql_ms": timer.ms,
    }
    if definition is not None and query is not None:
        progress = person_progress(
            store, site, definition, query, person_id, known=(identities, visitors)
        )
        _mark_progress(events, progress, query)
        result["progress"] = progress
        result["sql_ms"] += progress["sql_ms"]
    return result


def _mark_progress(
    events: list[dict[str, Any]], progress: dict[str, Any], query: ReportQuery
) -> None:
    """Marks on each journey event where it lies against the report's range, and the stage
    it filled in the report: the first event at a stage's counted time that matches it."""
    start, end = iso(query.start_ms), iso(query.end_ms)
    fills = dict(progress["stage_times"])
    for event in events:
        # ISO strings of one fixed format compare in time order.
        event["in_range"] = (
            "before" if event["ts"] < start else "after" if event["ts"] >= end else "in"
        )
        event["filled"] = None
        for key in list(fills):
            if fills[key] == event["ts"] and key in event["stages"]:
                event["filled"] = key
                del fills[key]
                break
