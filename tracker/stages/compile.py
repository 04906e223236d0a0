"""Compile normalised stage definitions to ClickHouse boolean expressions over `events`.

A stage matches an event if any of its rules matches; a rule matches if its event type, its
optional event name and all its conditions hold. Column expressions come only from the field
whitelist; every value is a bound parameter in `Params`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tracker.stages.fields import ATTRIBUTION_FIELDS, FIELDS, is_prop, prop_name
from tracker.stages.operators import OPERATORS, Column, Params


def column_for(field: str, params: Params, alias: str = "") -> Column:
    """The SQL reading `field` from an events row (optionally qualified by a table alias)."""
    qual = f"{alias}." if alias else ""
    if is_prop(field):
        key = params.add(prop_name(field), "String")
        return Column(f"{qual}props[{key}]", f"mapContains({qual}props, {key})")
    spec = FIELDS.get(field) or ATTRIBUTION_FIELDS.get(field)
    if spec is None:  # validated definitions never get here
        raise ValueError(f"unknown field {field!r}")
    expr = f"{qual}{spec.column}"
    if spec.numeric:
        return Column(expr, f"({expr} != 0)", numeric=True)
    return Column(expr, f"({expr} != '')")


def compile_condition(cond: Mapping[str, Any], params: Params, alias: str = "") -> str:
    op = OPERATORS[cond["op"]]
    return op.compile(column_for(cond["field"], params, alias), cond.get("value"), params)


def compile_rule(rule: Mapping[str, Any], params: Params, alias: str = "") -> str:
    qual = f"{alias}." if alias else ""
    parts: list[str] = []
    if rule.get("type", "any") != "any":
        parts.append(f"({qual}type = {params.add(rule['type'], 'String')})")
    if rule.get("name"):
        parts.append(f"({qual}name = {params.add(rule['name'], 'String')})")
    parts.extend(compile_condition(c, params, alias) for c in rule.get("conditions", []))
    return "(" + " AND ".join(parts) + ")" if parts else "1"


def compile_stage(stage: Mapping[str, Any], params: Params, alias: str = "") -> str:
    rules = stage.get("rules") or []
    if not rules:
        return "0"
    return "(" + " OR ".join(compile_rule(r, params, alias) for r in rules) + ")"


def compile_mask(stages: Sequence[Mapping[str, Any]], params: Params, alias: str = "") -> str:
    """A UInt32 whose bit k is set when the event matches stage k+1."""
    terms = [f"if({compile_stage(s, params, alias)}, {1 << k}, 0)" for k, s in enumerate(stages)]
    return "toUInt32(" + " + ".join(terms) + ")"


def compile_conditions(
    conditions: Sequence[Mapping[str, Any]], params: Params, alias: str = ""
) -> str:
    """All conditions ANDed (for event filters); "1" when there are none."""
    if not conditions:
        return "1"
    return " AND ".join(compile_condition(c, params, alias) for c in conditions)
