"""funnel-tracker: collector, ClickHouse storage, stage engine and config store."""

from tracker.app import create_app

__all__ = ["create_app"]
