"""Definition validation, normalisation, window parsing and plain-language descriptions."""

from __future__ import annotations

import pytest

from tracker.clickhouse import Store
from tracker.stages.definitions import (
    DefinitionError,
    describe_rule,
    describe_stage,
    parse_window,
    path_label,
    validate_definition,
)
from tracker.stages.operators import normalise
from tracker.stages.templates import template_definition


def _stage(key: str, **rule: object) -> dict[str, object]:
    return {"key": key, "rules": [rule or {"type": "pageview"}]}


def _errors(data: object) -> list[dict[str, str]]:
    with pytest.raises(DefinitionError) as info:
        validate_definition(data)
    return info.value.errors


def test_template_is_valid_and_fits_the_demo() -> None:
    d = template_definition()
    assert [s["key"] for s in d["stages"]] == ["trace", "response", "engagement", "sale"]
    assert d["window"] == 30 * 86400 and d["mode"] == "ordered"
    assert d["engagement_stage"] == "engagement"
    assert d["stages"][2]["rules"][0] == {"type": "event", "name": "signup", "conditions": []}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90m", 5400), ("7d", 604800), ("1h", 3600), ("2w", 1209600), ("60", 60), (120, 120)],
)
def test_window_parsing(text: object, seconds: int) -> None:
    assert parse_window(text) == seconds


@pytest.mark.parametrize("bad", ["59s", "366d", "soon", -5, True, "1.5s", None])
def test_window_bounds(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_window(bad)


def test_normalisation_defaults_and_aliases() -> None:
    d = validate_definition(
        {
            "name": " Signups ",
            "window": "7d",
            "stages": [
                _stage("Visit"),
                {
                    "key": "buy",
                    "rules": [
                        {
                            "type": "click",
                            "conditions": [
                                {"field": "element.text", "op": "contains", "value": "Buy"},
                                {"field": "utm_campaign", "op": "in", "value": "a,b"},
                                {"field": "prop.plan", "op": "exists"},
                                {"field": "value", "op": "gt", "value": "10"},
                            ],
                        }
                    ],
                },
            ],
        }
    )
    assert d["name"] == "Signups" and d["window"] == 604800 and d["mode"] == "ordered"
    assert d["stages"][0]["key"] == "visit" and d["stages"][0]["name"] == "Visit"
    assert d["stages"][0]["color"] == "#0072B2"
    conds = d["stages"][1]["rules"][0]["conditions"]
    assert conds[0]["field"] == "element_text"
    assert conds[1] == {"field": "campaign", "op": "in", "value": ["a", "b"]}
    assert conds[2] == {"field": "prop.plan", "op": "exists", "value": True}
    assert conds[3]["value"] == 10.0
    # Idempotent: a normalised definition validates to itself.
    assert validate_definition(d) == d


def test_error_paths_point_at_the_field() -> None:
    errors = _errors(
        {
            "stages": [
                _stage("a"),
                {
                    "key": "b",
                    "rules": [
                        {
                            "type": "click",
                            "conditions": [
                                {"field": "url", "op": "equals", "value": "x"},
                                {"field": "url", "op": "equals", "value": "y"},
                                {"field": "password", "op": "equals", "value": "x"},
                            ],
                        }
                    ],
                },
            ]
        }
    )
    assert errors[0]["path"] == "stages.1.rules.0.conditions.2.field"
    assert errors[0]["where"] == "Stage 2, rule 1, condition 3, field"
    assert "unknown field 'password'" in errors[0]["message"]


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("", ""),
        ("name", "Name"),
        ("window", "Window"),
        ("engagement_stage", "Engagement stage"),
        ("stages", "Stages"),
        ("stages.0", "Stage 1"),
        ("stages.19.key", "Stage 20, key"),
        ("stages.2.rules.0.name", "Stage 3, rule 1, name"),
        ("stages.0.rules.1.conditions.0.value", "Stage 1, rule 2, condition 1, value"),
        ("stages.x.rules", "Stages, x, rules"),  # not an index: left as it is
    ],
)
def test_error_paths_read_as_positions_on_screen(path: str, label: str) -> None:
    assert path_label(path) == label


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ({"stages": [_stage("a")]}, "stages", "2 to 20"),
        ({"stages": [_stage(f"s{i}") for i in range(21)]}, "stages", "2 to 20"),
        ({"mode": "random", "stages": [_stage("a"), _stage("b")]}, "mode", "ordered"),
        ({"window": "0m", "stages": [_stage("a"), _stage("b")]}, "window", "1 minute"),
        ({"stages": [_stage("a"), _stage("a")]}, "stages.1.key", "duplicate"),
        ({"stages": [_stage("a"), {"key": "b", "rules": []}]}, "stages.1.rules", "at least one"),
        ({"stages": [_stage("a"), _stage("b", type="hover")]}, "stages.1.rules.0.type", "pageview"),
        (
            {"stages": [_stage("a"), {"key": "b", "color": "red", "rules": [{"type": "any"}]}]},
            "stages.1.color",
            "#RRGGBB",
        ),
        (
            {"engagement_stage": "zzz", "stages": [_stage("a"), _stage("b")]},
            "engagement_stage",
            "not one of",
        ),
        (
            {
                "stages": [
                    _stage("a"),
                    _stage("b", conditions=[{"field": "url", "op": "like", "value": "x"}]),
                ]
            },
            "stages.1.rules.0.conditions.0.op",
            "unknown operator",
        ),
        (
            {
                "stages": [
                    _stage("a"),
                    _stage("b", conditions=[{"field": "url", "op": "regex", "value": "(("}]),
                ]
            },
            "stages.1.rules.0.conditions.0.value",
            "regular expression",
        ),
        (
            {
                "stages": [
                    _stage("a"),
                    _stage("b", conditions=[{"field": "url", "op": "regex", "value": "a(?=b)"}]),
                ]
            },
            "stages.1.rules.0.conditions.0.value",
            "RE2",
        ),
        (
            {
                "stages": [
                    _stage("a"),
                    _stage("b", conditions=[{"field": "value", "op": "contains", "value": "1"}]),
                ]
            },
            "stages.1.rules.0.conditions.0.op",
            "numeric",
        ),
        (
            {
                "stages": [
                    _stage("a"),
                    _stage("b", conditions=[{"field": "prop.n", "op": "gt", "value": "ten"}]),
                ]
            },
            "stages.1.rules.0.conditions.0.value",
            "number",
        ),
    ],
)
def test_rejections(data: dict[str, object], path: str, words: str) -> None:
    errors = _errors(data)
    assert errors[0]["path"] == path
    assert words in errors[0]["message"]


def test_descriptions_are_plain_language() -> None:
    rule = {
        "type": "click",
        "name": None,
        "conditions": [
            {"field": "element_text", "op": "contains", "value": "Buy"},
            {"field": "campaign", "op": "in", "value": ["a", "b"]},
        ],
    }
    assert (
        describe_rule(rule)
        == "A click where element text contains “Buy” and campaign is one of “a”, “b”."
    )
    assert describe_rule({"type": "event", "name": "signup"}) == "An event named “signup”."
    stage = {"rules": [{"type": "pageview"}, rule]}
    assert describe_stage(stage).startswith("Any of: a page view; or a click where")


REGEXES = [
    *("a*+", "a++", "a?+", "a{2}+", "[a-z]++", "[\\]]++", "(?>ab)", "a\\Z", "\\1", "(a)\\1"),
    *("(?=x)", "(?!x)", "(?<=x)y", "(?<!x)y", "(?P<n>a)(?P=n)", "(a)?(?(1)b|c)"),
    *("\\++", "[+]+", "a+", "a+?", "a??", "x{1,2}", "x{2}?", "(?:a)+", "(?P<n>a)", "a}+"),
    *("a\\z", "^/(en|de)/pricing$", "\\d{3}-\\w+", "(?i)SALE", "[^/]+\\.html?$", "\\.\\*"),
    *("\\Q.*\\E", "\\p{Greek}+", "[[:alpha:]]+", "(?<n>a)", "((", "a{,", "*a", "[z-a]"),
]


@pytest.mark.parametrize("pattern", REGEXES)
def test_regex_validation_agrees_with_clickhouse(store: Store, pattern: str) -> None:
    """Every pattern accepted at definition time compiles in ClickHouse's RE2, and every
    pattern refused would have failed there: a stored funnel always reports."""
    try:
        normalise("regex", pattern, numeric=False)
        accepted = True
    except ValueError as exc:
        assert "RE2" in str(exc)  # with the engine's own reason
        accepted = False
    try:
        store.rows("SELECT match('', {p:String})", {"p": pattern})
        clickhouse_accepts = True
    except Exception:
        clickhouse_accepts = False
    assert accepted == clickhouse_accepts
