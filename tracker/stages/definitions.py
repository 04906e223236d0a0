"""Funnel definitions: validation, normalisation, window parsing and plain-language text.

`validate_definition` is the one gate every definition passes (API, dashboard, templates,
inline previews). Errors carry a dotted path to the offending input, such as
`stages.1.rules.0.conditions.2.value`, so a form can show each message next to its field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from tracker.stages import fields as fields_mod
from tracker.stages import operators as operators_mod
from tracker.stages.fields import canonical_field, field_label, is_known, is_prop
from tracker.stages.operators import describe_value, normalise
from tracker.text import is_valid_unicode

MODES = ("ordered", "strict", "any")
EVENT_TYPES = ("pageview", "click", "event", "any")
MIN_STAGES, MAX_STAGES = 2, 20
MIN_WINDOW, MAX_WINDOW = 60, 365 * 86400
DEFAULT_WINDOW = 30 * 86400
MAX_RULES = 50
MAX_CONDITIONS = 50
# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
_WINDOW_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

# The picker lists for the UI.
FIELDS = fields_mod.pickers()
OPERATORS = operators_mod.pickers()


class DefinitionError(ValueError):
    """An invalid definition; `errors` lists {"path", "message"} for each problem."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        # Every error names its place for people too (`where`), as the API documents.
        self.errors = [{"where": path_label(e.get("path", "")), **e} for e in errors]
        first = errors[0] if errors else {"path": "", "message": "invalid definition"}
        where = f"{first['path']}: " if first["path"] else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{where}{first['message']}{more}")


def invalid_text_path(value: Any) -> str | None:
    """The dotted path of the first string (or object key) in decoded JSON that is not valid
    Unicode: an unpaired UTF-16 surrogate such as "\\ud800", which json.loads lets through but
    no UTF-8 store (SQLite, ClickHouse parameters) can encode. None when all text is valid.
    Iterative: a deeply nested body must not exhaust the stack here."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if not is_valid_unicode(item):
                return path
        elif isinstance(item, Mapping):
            for key, child in reversed(list(item.items())):
                child_path = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and not is_valid_unicode(key):
                    return path
                stack.append((child_path, child))
        elif isinstance(item, list | tuple):
            stack.extend(
                (f"{path}.{i}" if path else str(i), c) for i, c in reversed(list(enumerate(item)))
            )
    return None


INVALID_TEXT = "text must be valid Unicode (it holds an unpaired UTF-16 surrogate escape)"


def parse_window(value: Any) -> int:
    """Seconds from "90m", "7d", "1h", "2w", "45s" or a number of seconds (1 min..365 days)."""
    if isinstance(value, bool):
        raise ValueError("window must be a duration such as 90m, 7d or a number of seconds")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond float range
            seconds = math.inf
    elif isinstance(value, str):
        match = _WINDOW_RE.match(value.lower())
        if not match:
            raise ValueError(
                f"window {value!r} is not a duration; use e.g. 90m, 12h, 7d, 2w or seconds"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError("window must be a duration such as 90m, 7d or a number of seconds")
    if not MIN_WINDOW <= seconds <= MAX_WINDOW:  # also inf and NaN
        raise ValueError("window must be between 1 minute and 365 days")
    if seconds != int(seconds):
        raise ValueError("window must be a whole number of seconds")
    return int(seconds)


def format_window(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


_ITEM = {"stages": "stage", "rules": "rule", "conditions": "condition"}


def path_label(path: str) -> str:
    """A definition path for people: "stages.0.rules.1.conditions.0.value" is
    "Stage 1, rule 2, condition 1, value" (positions count from 1, as on screen)."""
    parts: list[str] = []
    tokens = path.split(".") if path else []
    for i, token in enumerate(tokens):
        if token.isdecimal() and i and tokens[i - 1] in _ITEM:
            parts[-1] = f"{_ITEM[tokens[i - 1]]} {int(token) + 1}"
        else:
            parts.append(token.replace("_", " "))
    label = ", ".join(parts)
    return label[:1].upper() + label[1:]


class _Collector:
    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append({"path": path, "where": path_label(path), "message": message})


def _condition(raw: Any, path: str, out: _Collector) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        out.add(path, "a condition must be an object with field, op and value")
        return None
    field = raw.get("field")
    if not isinstance(field, str) or not field.strip():
        out.add(f"{path}.field", "choose a field")
        return None
    name = canonical_field(field)
    if not is_known(name):
        out.add(
            f"{path}.field",
            f"unknown field {field!r}; use one of {', '.join(fields_mod.FIELDS)} or prop.<name>",
        )
        return None
    op = raw.get("op")
    if not isinstance(op, str) or op not in operators_mod.OPERATORS:
        out.add(
            f"{path}.op",
            f"unknown operator {op!r}; use one of {', '.join(operators_mod.OPERATORS)}",
        )
        return None
    numeric = name in fields_mod.FIELDS and fields_mod.FIELDS[name].numeric
    if numeric and not operators_mod.OPERATORS[op].numeric_ok:
        out.add(f"{path}.op", f"{op} does not apply to the numeric field {name}")
        return None
    try:
        value = normalise(op, raw.get("value"), numeric)
    except ValueError as exc:
        out.add(f"{path}.value", f"value {exc}")
        return None
    return {"field": name, "op": op, "value": value}


def _rule(raw: Any, path: str, out: _Collector) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        out.add(path, "a rule must be an object with type, name and conditions")
        return None
    type_ = raw.get("type", "any") or "any"
    if type_ not in EVENT_TYPES:
        out.add(f"{path}.type", f"event type must be one of {', '.join(EVENT_TYPES)}")
        return None
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        out.add(f"{path}.name", "event name must be text")
        return None
    name = (name or "").strip() or None
    if name is not None and len(name) > 200:
        out.add(f"{path}.name", "event name may be at most 200 characters")
        return None
    conds_raw = raw.get("conditions", [])
    if conds_raw is None:
        conds_raw = []
    if not isinstance(conds_raw, list):
        out.add(f"{path}.conditions", "conditions must be a list")
        return None
    if len(conds_raw) > MAX_CONDITIONS:
        out.add(f"{path}.conditions", f"at most {MAX_CONDITIONS} conditions per rule")
        return None
    before = len(out.errors)
    conds = [_condition(c, f"{path}.conditions.{i}", out) for i, c in enumerate(conds_raw)]
    if len(out.errors) > before:
        return None
    return {"type": type_, "name": name, "conditions": conds}


def _stage(raw: Any, index: int, keys: set[str], out: _Collector) -> dict[str, Any] | None:
    path = f"stages.{index}"
    if not isinstance(raw, Mapping):
        out.add(path, "a stage must be an object with key, name, color and rules")
        return None
    key = raw.get("key")
    if not isinstance(key, str) or not _KEY_RE.match(key.strip().lower()):
        out.add(f"{path}.key", "key must be 1-64 lowercase letters, digits, '-' or '_'")
        return None
    key = key.strip().lower()
    if key in keys:
        out.add(f"{path}.key", f"duplicate stage key {key!r}")
        return None
    keys.add(key)
    name = raw.get("name") or key.replace("_", " ").replace("-", " ").capitalize()
    if not isinstance(name, str) or len(name.strip()) > 200:
        out.add(f"{path}.name", "name must be text of at most 200 characters")
        return None
    color = raw.get("color") or PALETTE[index % len(PALETTE)]
    if not isinstance(color, str) or not _COLOR_RE.match(color):
        out.add(f"{path}.color", "colour must look like #RRGGBB")
        return None
    rules_raw = raw.get("rules")
    if not isinstance(rules_raw, list) or not rules_raw:
        out.add(f"{path}.rules", "a stage needs at least one rule")
        return None
    if len(rules_raw) > MAX_RULES:
        out.add(f"{path}.rules", f"at most {MAX_RULES} rules per stage")
        return None
    before = len(out.errors)
    rules = [_rule(r, f"{path}.rules.{i}", out) for i, r in enumerate(rules_raw)]
    if len(out.errors) > before:
        return None
    return {"key": key, "name": name.strip(), "color": color.upper(), "rules": rules}


def validate_definition(data: Any) -> dict[str, Any]:
    """The normalised definition, or DefinitionError listing every problem found."""
    out = _Collector()
    if not isinstance(data, Mapping):
        raise DefinitionError([{"path": "", "message": "a funnel definition must be an object"}])
    # Checked first: such text would pass every rule below and fail only in a store, where
    # it reads as an outage (a stored funnel from before this check is caught here too).
    bad = invalid_text_path(data)
    if bad is not None:
        raise DefinitionError([{"path": bad, "where": path_label(bad), "message": INVALID_TEXT}])
    name = data.get("name", "Funnel")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 200:
        out.add("name", "name must be 1 to 200 characters")
    mode = data.get("mode") or "ordered"
    if mode not in MODES:
        out.add("mode", f"mode must be one of {', '.join(MODES)}")
    window_raw = data.get("window", data.get("window_seconds", DEFAULT_WINDOW))
    window = DEFAULT_WINDOW
    try:
        window = parse_window(DEFAULT_WINDOW if window_raw in (None, "") else window_raw)
    except ValueError as exc:
        out.add("window", str(exc))
    stages_raw = data.get("stages")
    stages: list[dict[str, Any]] = []
    if not isinstance(stages_raw, list):
        out.add("stages", "stages must be a list")
    elif not MIN_STAGES <= len(stages_raw) <= MAX_STAGES:
        out.add("stages", f"a funnel has {MIN_STAGES} to {MAX_STAGES} stages")
    else:
        keys: set[str] = set()
        for i, s in enumerate(stages_raw):
            stage = _stage(s, i, keys, out)
            if stage is not None:
                stages.append(stage)
    engagement = data.get("engagement_stage")
    if engagement in ("", None):
        engagement = None
    elif not isinstance(engagement, str) or (
        stages and engagement not in {s["key"] for s in stages}
    ):
        out.add("engagement_stage", f"engagement stage {engagement!r} is not one of the stages")
    if out.errors:
        raise DefinitionError(out.errors)
    return {
        "name": name.strip(),
        "mode": mode,
        "window": window,
        "engagement_stage": engagement,
        "stages": stages,
    }


def describe_condition(cond: Mapping[str, Any]) -> str:
    op = cond["op"]
    label = field_label(cond["field"])
    if op == "exists":
        return f"{label} is present" if cond.get("value", True) else f"{label} is absent"
    verb = operators_mod.OPERATORS[op].label
    return f"{label} {verb} {describe_value(op, cond.get('value'))}"


_TYPE_TEXT = {
    "pageview": "a page view",
    "click": "a click",
    "event": "an event",
    "any": "any event",
}


def describe_rule(rule: Mapping[str, Any]) -> str:
    """One plain-language sentence, e.g. 'A click where element text contains “Buy”.'"""
    type_ = rule.get("type") or "any"
    subject = _TYPE_TEXT.get(type_, "any event")
    if rule.get("name"):
        subject = (
            f"an event named “{rule['name']}”"
            if type_ in ("event", "any")
            else f"{subject} named “{rule['name']}”"
        )
    conds = [describe_condition(c) for c in rule.get("conditions") or []]
    text = subject
    if conds:
        text += " where " + (
            ", ".join(conds[:-1]) + " and " + conds[-1] if len(conds) > 1 else conds[0]
        )
    return text[0].upper() + text[1:] + "."


def describe_stage(stage: Mapping[str, Any]) -> str:
    rules = stage.get("rules") or []
    if not rules:
        return "Matches nothing yet: add a rule."
    parts = [describe_rule(r).rstrip(".") for r in rules]
    if len(parts) == 1:
        return parts[0] + "."
    return "Any of: " + "; or ".join(p[0].lower() + p[1:] for p in parts) + "."


def is_prop_field(name: str) -> bool:
    return is_prop(name)
