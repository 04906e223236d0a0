"""Funnel definitions in the config store: the CRUD service used by the API and dashboard.

Every write goes through `validate_definition`, so a stored funnel always compiles.
"""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.models import MAX_ROW_ID, Funnel, Site, Stage, utcnow
from tracker.stages.definitions import (
    describe_stage,
    format_window,
    validate_definition,
)


def list_funnels(session: Session, site: Site) -> list[Funnel]:
    return list(
        session.scalars(select(Funnel).where(Funnel.site_id == site.id).order_by(Funnel.id))
    )


def get_funnel(session: Session, site: Site, funnel_id: int) -> Funnel | None:
    if not 1 <= funnel_id <= MAX_ROW_ID:
        return None  # no such row, and the driver would overflow on the parameter
    return session.scalar(select(Funnel).where(Funnel.site_id == site.id, Funnel.id == funnel_id))


def _apply(funnel: Funnel, definition: dict[str, Any]) -> None:
    funnel.name = definition["name"]
    funnel.mode = definition["mode"]
    funnel.window_seconds = definition["window"]
    funnel.engagement_stage = definition["engagement_stage"]
    funnel.stages.clear()
    for position, stage in enumerate(definition["stages"]):
        funnel.stages.append(
            Stage(
                position=position,
                key=stage["key"],
                name=stage["name"],
                color=stage["color"],
                rules=stage["rules"],
            )
        )


def create_funnel(session: Session, site: Site, data: dict[str, Any]) -> Funnel:
    """Validates (DefinitionError on bad input) and stores a new funnel of the site."""
    definition = validate_definition(data)
    funnel = Funnel(site_id=site.id, name=definition["name"])
    _apply(funnel, definition)
    session.add(funnel)
    session.flush()
    return funnel


def update_funnel(session: Session, site: Site, funnel_id: int, data: dict[str, Any]) -> Funnel:
    """Replaces the definition; LookupError if the funnel is not the site's."""
    funnel = get_funnel(session, site, funnel_id)
    if funnel is None:
        raise LookupError(f"no funnel {funnel_id} on this site")
    definition = validate_definition(data)
    # Flush the removal first: the (funnel_id, key) unique constraint sees old and new rows.
    funnel.stages.clear()
    session.flush()
    _apply(funnel, definition)
    funnel.updated_at = utcnow()
    session.flush()
    return funnel


def duplicate_funnel(session: Session, site: Site, funnel_id: int) -> Funnel:
    """A copy named "<name> (copy)", to try a variant without touching the original;
    LookupError if the funnel is not the site's."""
    funnel = get_funnel(session, site, funnel_id)
    if funnel is None:
        raise LookupError(f"no funnel {funnel_id} on this site")
    definition = funnel_definition(funnel)
    definition["name"] = unused_name(session, site, funnel.name, "copy")
    return create_funnel(session, site, definition)


def unused_name(session: Session, site: Site, name: str, label: str = "") -> str:
    """A name no funnel of the site has, so funnel pickers can tell them apart: `name` itself
    when free (and no label is asked for), else "name (2)", … or "name (copy)", "name (copy 2)"."""
    taken = {f.name for f in list_funnels(session, site)}
    if not label and name not in taken:
        return name
    for n in itertools.count(1 if label else 2):
        tag = f"{label} {n}" if label and n > 1 else label or str(n)
        candidate = f"{name[: 200 - len(tag) - 3].rstrip()} ({tag})"
        if candidate not in taken:
            return candidate
    raise AssertionError("unreachable: the names taken are finite")


def delete_funnel(session: Session, site: Site, funnel_id: int) -> None:
    funnel = get_funnel(session, site, funnel_id)
    if funnel is None:
        raise LookupError(f"no funnel {funnel_id} on this site")
    session.delete(funnel)
    session.flush()


def funnel_definition(funnel: Funnel) -> dict[str, Any]:
    """The normalised definition the report functions take."""
    return {
        "name": funnel.name,
        "mode": funnel.mode,
        "window": funnel.window_seconds,
        "engagement_stage": funnel.engagement_stage,
        "stages": [
            {"key": s.key, "name": s.name, "color": s.color, "rules": s.rules}
            for s in sorted(funnel.stages, key=lambda s: s.position)
        ],
    }


def funnel_to_dict(funnel: Funnel) -> dict[str, Any]:
    definition = funnel_definition(funnel)
    for stage in definition["stages"]:
        stage["description"] = describe_stage(stage)
    return {
        "id": funnel.id,
        **definition,
        "window_text": format_window(funnel.window_seconds),
        "created_at": funnel.created_at.isoformat() + "Z" if funnel.created_at else None,
        "updated_at": funnel.updated_at.isoformat() + "Z" if funnel.updated_at else None,
    }
