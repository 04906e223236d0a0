"""Erasing one person's events: a visitor's request to be forgotten (GDPR art. 17).

Besides retention, the only place that deletes events; the stage engine never does. The
person is the one a report counts: every visitor id stitched to the same user, so a request
made with a browser's visitor id also erases the user's other devices. Every event that
carries the given id as its user id goes too, even where stitching gave that device to an
earlier user, so that the id itself is no longer stored anywhere.

A lightweight DELETE hides the rows from every query at once (a fraction of a second).
`APPLY DELETED MASK` then rewrites the affected parts so the data is gone from disk: at once
when asked to wait (the CLI does), else in the daily maintenance run with retention, since a
rewrite copies whole parts and would hold up the next erasure.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from flask import Flask

from tracker.clickhouse import Store
from tracker.models import Site
from tracker.mutations import Progress, run_mutation
from tracker.reports.engine import PERSON_EXPR, identity_join
from tracker.reports.persons import iso, resolve_person
from tracker.stages.operators import Params

log = logging.getLogger(__name__)
MAX_ID_LENGTH = 512


class ErasureError(ValueError):
    """The id is not a usable visitor or user id."""


class PersonNotFoundError(ErasureError):
    """No stored event of the site names the id."""


class PendingEventsError(RuntimeError):
    """Acknowledged events still wait in the spool, so erasing now could miss some."""


@dataclass
class Erasure:
    person: str  # the person id the reports use (user id once identified, else visitor id)
    visitors: list[str]  # visitor ids (devices, browsers) whose events are erased
    events: int  # how many events are (or would be) erased
    first_seen: str  # time of the earliest and latest erased event (UTC, ISO 8601)
    last_seen: str
    purged: bool = False  # also rewritten off disk (not only hidden) when the call returned

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_id(any_id: str) -> str:
    any_id = any_id.strip()
    if not any_id:
        raise ErasureError("give a visitor or user id")
    if len(any_id) > MAX_ID_LENGTH or "\x00" in any_id:
        raise ErasureError(f"not a visitor or user id (at most {MAX_ID_LENGTH} characters)")
    return any_id


def _selection(site: Site, person: str, any_id: str, visitors: list[str]) -> tuple[str, Params]:
    """The WHERE clause of the events to erase, with its bound parameters."""
    params = Params()
    ids = sorted({person, any_id})
    sql = (
        f"site_id = {params.add(site.key, 'String')}"
        f" AND (visitor_id IN {params.add(visitors, 'Array(String)')}"
        f" OR user_id IN {params.add(ids, 'Array(String)')})"
    )
    return sql, params


def flush_spool(app: Flask, timeout: float = 10.0) -> None:
    """Store what the collectors (this process's and every other serving process's spool)
    have acknowledged, so the person's newest events are erased too rather than written after
    the delete; this process's spool segments holding them are deleted as well."""
    writer = app.extensions.get("funnel_writer")
    if writer is not None and not writer.flush_everywhere(timeout=timeout):
        raise PendingEventsError(
            "events received earlier are still waiting to be stored; try again shortly"
        )


def find_person(store: Store, site: Site, any_id: str) -> Erasure:
    """What erasing this visitor or user id would delete; ErasureError when nothing."""
    any_id = _check_id(any_id)
    person = resolve_person(store, site, any_id)
    params = Params()
    site_cond = f"site_id = {params.add(site.key, 'String')}"
    sql = f"""
        SELECT DISTINCT e.visitor_id FROM events AS e
        {identity_join(site_cond, one_site=True)}
        WHERE e.{site_cond} AND {PERSON_EXPR} = {params.add(person, "String")}
        ORDER BY e.visitor_id
    """
    visitors = [str(r[0]) for r in store.rows(sql, params.values)]
    where, params = _selection(site, person, any_id, visitors)
    count, first, last = store.rows(
        "SELECT count(), toInt64(toUnixTimestamp64Milli(min(ts))),"
        f" toInt64(toUnixTimestamp64Milli(max(ts))) FROM events WHERE {where}",
        params.values,
    )[0]
    if not count:
        raise PersonNotFoundError(f"no stored events for {any_id!r} on this site")
    return Erasure(person, visitors, int(count), iso(int(first)), iso(int(last)))


def erase_person(
    store: Store,
    site: Site,
    any_id: str,
    wait: bool = False,
    on_progress: Progress | None = None,
    by: str = "",
) -> Erasure:
    """Delete every event of the person a visitor or user id belongs to (see the module
    docstring). The events vanish from queries before this returns; with `wait` their
    bytes are also rewritten off disk before it returns, else the daily maintenance run
    (or a merge before it) does that. `by` names who asked, for the audit line."""
    found = find_person(store, site, any_id)
    where, params = _selection(site, found.person, _check_id(any_id), found.visitors)
    store.writer.command(
        f"DELETE FROM {store.events_target} WHERE {where}",
        parameters=params.values,
        settings={"lightweight_deletes_sync": 2},
    )
    # An audit line without the id itself: the log must not keep what was just erased.
    log.info(
        "erasure by %s: site %s, %d events of %d visitor ids",
        by or "an unnamed caller",
        site.key,
        found.events,
        len(found.visitors),
    )
    if wait:
        try:
            purge_deleted(store, wait=True, on_progress=on_progress)
            found.purged = True
        except Exception:
            # The rows are already invisible and ClickHouse keeps the rewrite queued, so a
            # slow or failed rewrite must not turn into a failed erasure.
            log.warning("erasure: the rewrite off disk did not finish", exc_info=True)
    return found


def purge_deleted(store: Store, wait: bool = False, on_progress: Progress | None = None) -> int:
    """Rewrite the parts that hold erased (hidden) rows, so the data leaves the disk; returns
    how many parts had some (on a cluster, where parts are per node, -1: always asked).
    With `wait`, returns once done; `on_progress(parts done, parts)` follows the rewrite.

    Not done on every erasure: each rewrite copies whole parts (seconds at millions of rows)
    and queues the next erasure's DELETE behind it, so it runs once a day instead."""
    parts = -1
    if not store.cluster:
        parts = int(
            store.scalar(
                "SELECT count() FROM system.parts WHERE database = currentDatabase()"
                " AND table = 'events' AND active AND has_lightweight_delete"
            )
        )
        if not parts:
            return 0
    sql = f"ALTER TABLE {store.events_target} APPLY DELETED MASK"
    if wait:
        run_mutation(store, sql, on_progress=on_progress)
    else:
        store.writer.command(sql, settings={"mutations_sync": 0})
    return parts
