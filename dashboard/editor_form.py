"""The stage editor's form <-> funnel definition.

Field names mirror the definition's error paths (`stages-1-rules-0-conditions-2-value` for
`stages.1.rules.0.conditions.2.value`), so an error from the stage engine lands next to its
input. Structural edits (add, delete, move) are actions applied to the submitted draft and
re-rendered without saving, so the editor works without JavaScript and never loses edits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
_NAME_RE = re.compile(
    r"^stages-(\d+)-(?:(key|name|color|order)|rules-(\d+)-(?:(type|name)|conditions-(\d+)-(field|op|value)))$"
)
MAX_STAGES = 20
MAX_RULES = 20
MAX_CONDITIONS = 20


def safe_color(value: Any, index: int = 0) -> str:
    """A colour fit for an SVG attribute: #rrggbb, else the palette's colour for the index."""
    if isinstance(value, str) and _COLOR_RE.match(value):
        return value
    return PALETTE[index % len(PALETTE)]


def blank_condition() -> dict[str, Any]:
    return {"field": "url", "op": "contains", "value": ""}


def blank_rule() -> dict[str, Any]:
    return {"type": "pageview", "name": "", "conditions": [blank_condition()]}


def blank_stage(index: int, taken: set[str]) -> dict[str, Any]:
    return {
        "key": unique_key(f"stage_{index + 1}", taken),
        "name": f"Stage {index + 1}",
        "color": PALETTE[index % len(PALETTE)],
        "rules": [blank_rule()],
    }


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:48]


def unique_key(base: str, taken: set[str]) -> str:
    base = slug(base) or "stage"
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    return key


def _int(value: str, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def parse_form(form: Mapping[str, str]) -> dict[str, Any]:
    """The draft definition a submitted editor form describes (not yet validated)."""
    stages: dict[int, dict[str, Any]] = {}
    for name, value in form.items():
        m = _NAME_RE.match(name)
        if not m:
            continue
        si = int(m.group(1))
        if si >= MAX_STAGES * 5:
            continue
        stage = stages.setdefault(si, {"rules": {}})
        if m.group(2):
            stage[m.group(2)] = value
            continue
        ri = int(m.group(3))
        rule = stage["rules"].setdefault(ri, {"conditions": {}})
        if m.group(4):
            rule[m.group(4)] = value
        else:
            cond = rule["conditions"].setdefault(int(m.group(5)), {})
            cond[m.group(6)] = value

    ordered = sorted(
        stages.items(), key=lambda item: (_int(item[1].get("order", ""), item[0]), item[0])
    )
    out_stages: list[dict[str, Any]] = []
    taken: set[str] = set()
    for index, (_, raw) in enumerate(ordered):
        name = raw.get("name", "").strip()
        key = slug(raw.get("key", "")) or unique_key(name or f"stage_{index + 1}", taken)
        if key in taken:
            key = unique_key(key, taken)
        taken.add(key)
        rules = []
        for _, raw_rule in sorted(raw["rules"].items()):
            conditions = [
                {
                    "field": c.get("field", "").strip(),
                    "op": c.get("op", "").strip(),
                    "value": c.get("value", ""),
                }
                for _, c in sorted(raw_rule["conditions"].items())
            ]
            rules.append(
                {
                    "type": raw_rule.get("type", "").strip(),
                    "name": raw_rule.get("name", "").strip(),
                    "conditions": conditions,
                }
            )
        out_stages.append(
            {"key": key, "name": name, "color": safe_color(raw.get("color"), index), "rules": rules}
        )

    window = form.get("window", "").strip()
    return {
        "name": form.get("name", "").strip(),
        "mode": form.get("mode", "ordered").strip(),
        "window": int(window) if window.isdecimal() else window,
        "engagement_stage": form.get("engagement_stage", "").strip() or None,
        "stages": out_stages,
    }


def for_engine(draft: dict[str, Any]) -> dict[str, Any]:
    """The draft as the stage engine expects it: empty rule names become None."""
    result = dict(draft)
    result["stages"] = [
        {
            **stage,
            "rules": [{**rule, "name": rule.get("name") or None} for rule in stage["rules"]],
        }
        for stage in draft["stages"]
    ]
    return result


def apply_action(draft: dict[str, Any], action: str) -> dict[str, Any]:
    """Add, delete or move a stage, rule or condition in the draft (indices from the form)."""
    verb, _, rest = action.partition(":")
    idx = [_int(part, -1) for part in rest.split(":")] if rest else []
    idx += [-1] * (3 - len(idx))  # missing indices match nothing, so the action does nothing
    stages: list[dict[str, Any]] = draft["stages"]

    def stage_at(i: int) -> dict[str, Any] | None:
        return stages[i] if 0 <= i < len(stages) else None

    if verb == "add_stage" and len(stages) < MAX_STAGES:
        stages.append(blank_stage(len(stages), {s["key"] for s in stages}))
    elif verb == "delete_stage" and stage_at(idx[0]) is not None:
        removed = stages.pop(idx[0])
        if draft.get("engagement_stage") == removed["key"]:
            draft["engagement_stage"] = None
    elif verb in ("move_up", "move_down") and stage_at(idx[0]) is not None:
        i = idx[0]
        j = i - 1 if verb == "move_up" else i + 1
        if 0 <= j < len(stages):
            stages[i], stages[j] = stages[j], stages[i]
    elif verb == "add_rule" and (stage := stage_at(idx[0])) is not None:
        if len(stage["rules"]) < MAX_RULES:
            stage["rules"].append(blank_rule())
    elif verb == "delete_rule" and (stage := stage_at(idx[0])) is not None:
        if 0 <= idx[1] < len(stage["rules"]):
            stage["rules"].pop(idx[1])
    elif verb == "add_condition" and (stage := stage_at(idx[0])) is not None:
        if 0 <= idx[1] < len(stage["rules"]):
            conditions = stage["rules"][idx[1]]["conditions"]
            if len(conditions) < MAX_CONDITIONS:
                conditions.append(blank_condition())
    elif (
        verb == "delete_condition"
        and (stage := stage_at(idx[0])) is not None
        and 0 <= idx[1] < len(stage["rules"])
    ):
        conditions = stage["rules"][idx[1]]["conditions"]
        if 0 <= idx[2] < len(conditions):
            conditions.pop(idx[2])
    return draft


def errors_by_field(errors: list[dict[str, Any]]) -> dict[str, str]:
    """Engine error paths (`stages.1.name`) as form field ids (`stages-1-name`)."""
    result: dict[str, str] = {}
    for error in errors:
        path = str(error.get("path", "")).replace(".", "-") or "definition"
        message = str(error.get("message", "invalid"))
        result[path] = f"{result[path]}; {message}" if path in result else message
    return result


def window_text(window: Any) -> str:
    """Seconds as the editor shows them: 30d, 12h, 45m, or plain seconds."""
    if isinstance(window, str):
        return window
    if not isinstance(window, int) or window <= 0:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if window % size == 0:
            return f"{window // size}{unit}"
    return str(window)


def error_label(field_id: str, draft: dict[str, Any]) -> str:
    """`stages-1-rules-0-conditions-2-value` as "Stage 2 “Response”, rule 1, condition 3:
    value", for the error summary."""
    parts = field_id.split("-")
    words: list[str] = []
    i = 0
    while i < len(parts):
        name = parts[i]
        index = parts[i + 1] if i + 1 < len(parts) and parts[i + 1].isdecimal() else None
        if name == "stages" and index is not None:
            n = int(index)
            stages = draft.get("stages", [])
            title = stages[n].get("name") if n < len(stages) else ""
            words.append(f"Stage {n + 1}" + (f" “{title}”" if title else ""))
        elif name == "rules" and index is not None:
            words.append(f"rule {int(index) + 1}")
        elif name == "conditions" and index is not None:
            words.append(f"condition {int(index) + 1}")
        else:
            words.append(name.replace("_", " "))
        i += 2 if index is not None else 1
    return ", ".join(words[:-1]) + (": " if len(words) > 1 else "") + words[-1] if words else ""
