"""The template funnel every new site starts with: trace -> response -> engagement -> sale.

It fits the snippet's defaults and the demo traffic: any page view is a trace, any click a
response, the custom event "signup" an engagement and the custom event "purchase" a sale.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tracker.models import Funnel, Site

TEMPLATE: dict[str, Any] = {
    "name": "Trace to sale",
    "mode": "ordered",
    "window": "30d",
    "engagement_stage": "engagement",
    "stages": [
        {
            "key": "trace",
            "name": "Trace",
            "color": "#0072B2",
            "rules": [{"type": "pageview", "name": None, "conditions": []}],
        },
        {
            "key": "response",
            "name": "Response",
            "color": "#E69F00",
            "rules": [{"type": "click", "name": None, "conditions": []}],
        },
        {
            "key": "engagement",
            "name": "Engagement",
            "color": "#009E73",
            "rules": [{"type": "event", "name": "signup", "conditions": []}],
        },
        {
            "key": "sale",
            "name": "Sale",
            "color": "#D55E00",
            "rules": [{"type": "event", "name": "purchase", "conditions": []}],
        },
    ],
}


def template_definition() -> dict[str, Any]:
    from tracker.stages.definitions import validate_definition

    return validate_definition(TEMPLATE)


def add_template_funnel(session: Session, site: Site) -> Funnel:
    from tracker.funnels import create_funnel, unused_name

    name = unused_name(session, site, TEMPLATE["name"])
    return create_funnel(session, site, {**TEMPLATE, "name": name})
