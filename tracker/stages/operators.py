"""The operator registry: each condition operator compiles to a ClickHouse boolean fragment.

An operator gets the column expression (already safe: it comes from the field whitelist) and
the condition value, and returns SQL that references the value only through a fresh bound
parameter from `Params`. Values are checked and normalised first by `normalise`, which raises
ValueError with a message meant for the marketer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import re2

MAX_VALUE_LEN = 2000
MAX_IN_ITEMS = 500


class Params:
    """Bound parameters of one query; every value gets a fresh, unique placeholder name."""

    def __init__(self, prefix: str = "v") -> None:
        self.prefix = prefix
        self.values: dict[str, Any] = {}

    def add(self, value: Any, ch_type: str) -> str:
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{ch_type}}}"


@dataclass(frozen=True)
class Column:
    """How a field reads from a row: a string expression, or a property of the props map."""

    expr: str  # SQL expression of the value (String, or Float64 when numeric)
    exists: str  # SQL expression true when the field is present
    numeric: bool = False


@dataclass(frozen=True)
class Operator:
    name: str
    label: str  # plain-language verb phrase for describe()
    kind: str  # "text" | "list" | "number" | "flag" | "pattern"
    compile: Callable[[Column, Any, Params], str]
    numeric_ok: bool = False  # usable on numeric fields


def _text_param(col: Column, value: Any, params: Params) -> str:
    if col.numeric:
        return params.add(float(value), "Float64")
    return params.add(str(value), "String")


def _equals(col: Column, value: Any, params: Params) -> str:
    return f"({col.expr} = {_text_param(col, value, params)})"


def _not_equals(col: Column, value: Any, params: Params) -> str:
    return f"({col.expr} != {_text_param(col, value, params)})"


def _contains(col: Column, value: Any, params: Params) -> str:
    # position() is a literal substring search: % and _ carry no meaning here.
    return f"(position({col.expr}, {params.add(value, 'String')}) > 0)"


def _not_contains(col: Column, value: Any, params: Params) -> str:
    return f"(position({col.expr}, {params.add(value, 'String')}) = 0)"


def _starts_with(col: Column, value: Any, params: Params) -> str:
    return f"startsWith({col.expr}, {params.add(value, 'String')})"


def _ends_with(col: Column, value: Any, params: Params) -> str:
    return f"endsWith({col.expr}, {params.add(value, 'String')})"


def _regex(col: Column, value: Any, params: Params) -> str:
    return f"match({col.expr}, {params.add(value, 'String')})"


# Python accepts these but RE2 (ClickHouse's engine) refuses them at query time.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is an answer to the user, not a log line


def re2_error(pattern: str) -> str | None:
    """Why RE2, the engine ClickHouse matches with, refuses this pattern; None if it compiles.
    Validating with RE2 itself (not Python's re) keeps exactly its syntax: \\z, \\Q…\\E and
    \\p{Greek} are accepted, look-around, back-references and possessive quantifiers are not."""
    try:
        re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    return None


_REGEX_META = set("\\.^$|?*+()[]{}")


def _regex_literal(ch: str) -> str:
    # RE2 accepts a backslash before punctuation only, so escape just the metacharacters.
    if ch == "\x00":
        return "\\x00"
    return "\\" + ch if ch in _REGEX_META else ch


def glob_to_regex(pattern: str) -> str:
    """`*` is any run of characters, `?` one character; everything else is literal."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append("(?s:.*)")
        elif ch == "?":
            out.append("(?s:.)")
        else:
            out.append(_regex_literal(ch))
    return "^" + "".join(out) + "$"


def _glob(col: Column, value: Any, params: Params) -> str:
    return f"match({col.expr}, {params.add(glob_to_regex(value), 'String')})"


def _in(col: Column, value: Any, params: Params) -> str:
    if col.numeric:
        return f"has({params.add([float(v) for v in value], 'Array(Float64)')}, {col.expr})"
    return f"has({params.add([str(v) for v in value], 'Array(String)')}, {col.expr})"


def _number(col: Column) -> str:
    return col.expr if col.numeric else f"toFloat64OrNull({col.expr})"


def _gt(col: Column, value: Any, params: Params) -> str:
    return f"({col.exists} AND {_number(col)} > {params.add(float(value), 'Float64')})"


def _lt(col: Column, value: Any, params: Params) -> str:
    return f"({col.exists} AND {_number(col)} < {params.add(float(value), 'Float64')})"


def _exists(col: Column, value: Any, params: Params) -> str:
    return f"({col.exists})" if value else f"(NOT ({col.exists}))"


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("equals", "is", "text", _equals, numeric_ok=True),
        Operator("not_equals", "is not", "text", _not_equals, numeric_ok=True),
        Operator("contains", "contains", "text", _contains),
        Operator("not_contains", "does not contain", "text", _not_contains),
        Operator("starts_with", "starts with", "text", _starts_with),
        Operator("ends_with", "ends with", "text", _ends_with),
        Operator("regex", "matches the regular expression", "pattern", _regex),
        Operator("glob", "matches the pattern", "pattern", _glob),
        Operator("in", "is one of", "list", _in, numeric_ok=True),
        Operator("gt", "is greater than", "number", _gt, numeric_ok=True),
        Operator("lt", "is less than", "number", _lt, numeric_ok=True),
        Operator("exists", "is present", "flag", _exists, numeric_ok=True),
    )
}


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    if isinstance(value, str):
        return value
    raise ValueError("must be a text value")


def _as_number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number, got {value!r}"[:200]) from None
    except OverflowError:  # an int beyond float range
        raise ValueError("must be a finite number") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def normalise(op_name: str, value: Any, numeric: bool) -> Any:
    """The value in the form the operator compiles; ValueError with a clear message if not."""
    op = OPERATORS[op_name]
    if op.kind == "flag":
        if value is None or value == "":
            return True
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ValueError("must be true or false")
    if op.kind == "number" or (numeric and op.kind == "text"):
        return _as_number(value)
    if op.kind == "list":
        items = value
        if isinstance(value, str):
            items = [v for v in value.split(",")]
        if not isinstance(items, list) or not items:
            raise ValueError("must be a non-empty list of values")
        if len(items) > MAX_IN_ITEMS:
            raise ValueError(f"may hold at most {MAX_IN_ITEMS} values")
        if numeric:
            return [_as_number(v) for v in items]
        texts = [_as_text(v) for v in items]
        if any(len(t) > MAX_VALUE_LEN for t in texts):
            raise ValueError(f"values may be at most {MAX_VALUE_LEN} characters")
        return texts
    if value is None:
        raise ValueError("a value is required")
    text = _as_text(value)
    if len(text) > MAX_VALUE_LEN:
        raise ValueError(f"may be at most {MAX_VALUE_LEN} characters")
    if op.kind == "pattern":
        if text == "":
            raise ValueError("a pattern is required")
        if op_name == "regex":
            error = re2_error(text)
            if error is not None:
                raise ValueError(
                    f"is not a regular expression ClickHouse's RE2 engine accepts: {error}"
                )
    return text


def describe_value(op_name: str, value: Any) -> str:
    if op_name == "exists":
        return ""
    if isinstance(value, list):
        return ", ".join(f"“{v}”" for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return f"“{value}”"


def pickers() -> list[dict[str, str]]:
    return [{"name": op.name, "label": op.label, "kind": op.kind} for op in OPERATORS.values()]
