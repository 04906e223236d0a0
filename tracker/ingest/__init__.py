"""Ingest steps shared by the collector, the import API and `funnel import`.

decode -> validate -> bot filter -> enrich (agent, url, referrer, geo) -> privacy ->
serialize; each step returns the event or raises `Drop(reason)`, counted per reason.
"""

from tracker.ingest.errors import DROP_REASONS, Drop, RequestError
from tracker.ingest.pipeline import Context, Pipeline, Result

__all__ = ["DROP_REASONS", "Context", "Drop", "Pipeline", "RequestError", "Result"]
