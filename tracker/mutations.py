"""Waiting for a ClickHouse mutation (ALTER ... DELETE, APPLY DELETED MASK) with progress.

A mutation rewrites whole parts, which takes minutes on a large table. `mutations_sync = 2`
would wait in silence; here the command is queued and `system.mutations` is read until the
mutation is done, reporting parts done out of parts to rewrite, so that the CLI can show a
progress bar. On a cluster each node has its own `system.mutations`, so that case (and any
call without a progress callback) waits in the plain synchronous way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from tracker.clickhouse import Store

Progress = Callable[[int, int], None]  # (parts done, parts to rewrite in all)


class MutationFailedError(RuntimeError):
    """ClickHouse could not apply the mutation; it stays queued and is retried by the server."""


_MUTATIONS = (
    "SELECT mutation_id, is_done, parts_to_do, latest_fail_reason FROM system.mutations"
    " WHERE database = currentDatabase() AND table = {table:String}"
)


def run_mutation(
    store: Store,
    sql: str,
    parameters: Mapping[str, Any] | None = None,
    on_progress: Progress | None = None,
    poll_s: float = 0.25,
) -> None:
    """Run the mutation `sql` on the events table and return once it is done."""
    if on_progress is None or store.cluster:
        store.writer.command(sql, parameters=dict(parameters or {}), settings={"mutations_sync": 2})
        return
    table = {"table": store.events_target}
    before = {row[0] for row in store.query(_MUTATIONS, table).result_rows}
    store.writer.command(sql, parameters=dict(parameters or {}), settings={"mutations_sync": 0})
    total = 0
    while True:
        mine = [row for row in store.query(_MUTATIONS, table).result_rows if row[0] not in before]
        if not mine:
            # Nothing queued: no part needed rewriting (or a merge already dropped the mutation).
            on_progress(total, total)
            return
        to_do = sum(int(row[2]) for row in mine)
        total = max(total, to_do)
        if all(row[1] for row in mine):
            on_progress(total, total)
            return
        on_progress(total - to_do, total)
        failed = [str(row[3]) for row in mine if row[3]]
        if failed:
            raise MutationFailedError(
                f"ClickHouse could not rewrite the data: {failed[0].splitlines()[0]} "
                "(the change stays queued and ClickHouse retries it)"
            )
        time.sleep(poll_s)
