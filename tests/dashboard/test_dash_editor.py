"""The stage editor: form parsing, structural actions, inline errors that keep the edits,
saving through the stage engine, and the live preview endpoint."""

from __future__ import annotations

import re

from dash_helpers import insert_events, journey_events
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from dashboard import editor_form
from tracker.clickhouse import Store
from tracker.configdb import db
from tracker.funnels import funnel_to_dict, get_funnel, list_funnels
from tracker.models import Site


def form_of(html: str) -> MultiDict[str, str]:
    """The values a browser would submit from the editor form (inputs and selected options)."""
    form: MultiDict[str, str] = MultiDict()
    body = html[html.index('id="editor"') : html.index("</form>", html.index('id="editor"'))]
    for tag in re.findall(r"<input[^>]*>", body):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="submit"' not in tag:
            form.add(name.group(1), value.group(1) if value else "")
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', body, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options) or re.search(
            r'<option value="([^"]*)"', options
        )
        form.add(name, chosen.group(1) if chosen else "")
    return form


def editor_url(site: Site) -> str:
    return f"/sites/{site.key}/funnels/{list_funnels(db.session, site)[0].id}/edit"


def test_parse_form_orders_stages_and_nests_rules() -> None:
    form = {
        "name": "F",
        "mode": "ordered",
        "window": "7d",
        "engagement_stage": "b",
        "stages-0-key": "a",
        "stages-0-name": "A",
        "stages-0-order": "1",
        "stages-0-rules-0-type": "pageview",
        "stages-0-rules-0-conditions-0-field": "path",
        "stages-0-rules-0-conditions-0-op": "contains",
        "stages-0-rules-0-conditions-0-value": "/x",
        "stages-1-key": "b",
        "stages-1-name": "B",
        "stages-1-order": "0",
        "stages-1-rules-0-type": "click",
        "stages-1-rules-1-type": "event",
        "stages-1-rules-1-name": "signup",
    }
    draft = editor_form.parse_form(form)
    assert [s["key"] for s in draft["stages"]] == ["b", "a"]
    assert len(draft["stages"][0]["rules"]) == 2
    assert draft["stages"][1]["rules"][0]["conditions"] == [
        {"field": "path", "op": "contains", "value": "/x"}
    ]
    engine = editor_form.for_engine(draft)
    assert engine["stages"][0]["rules"][0]["name"] is None


def test_actions_add_move_delete() -> None:
    draft = editor_form.parse_form(
        {"stages-0-key": "a", "stages-0-name": "A", "stages-1-key": "b", "stages-1-name": "B"}
    )
    editor_form.apply_action(draft, "add_stage")
    assert [s["key"] for s in draft["stages"]] == ["a", "b", "stage_3"]
    editor_form.apply_action(draft, "move_up:2")
    assert [s["key"] for s in draft["stages"]] == ["a", "stage_3", "b"]
    editor_form.apply_action(draft, "add_rule:0")  # a new rule starts with one condition
    editor_form.apply_action(draft, "add_condition:0:0")
    assert len(draft["stages"][0]["rules"][0]["conditions"]) == 2
    editor_form.apply_action(draft, "delete_condition:0:0:0")
    editor_form.apply_action(draft, "delete_rule:0:0")
    assert draft["stages"][0]["rules"] == []
    editor_form.apply_action(draft, "delete_stage:1")
    editor_form.apply_action(draft, "move_down:99")  # out of range: ignored
    assert [s["key"] for s in draft["stages"]] == ["a", "b"]
    # Missing or malformed indices (a hand-made request) are ignored too, never an error.
    for action in ("delete_stage", "move_up:", "delete_rule:0", "add_condition:x:0", "nope:0"):
        editor_form.apply_action(draft, action)
    assert [s["key"] for s in draft["stages"]] == ["a", "b"]


def test_errors_map_to_field_ids() -> None:
    errors = editor_form.errors_by_field(
        [{"path": "stages.1.rules.0.conditions.2.value", "message": "value must be a number"}]
    )
    assert errors == {"stages-1-rules-0-conditions-2-value": "value must be a number"}


def test_error_labels_read_like_the_form() -> None:
    draft = {"stages": [{"name": "Trace"}, {"name": "Response"}]}
    label = editor_form.error_label("stages-1-rules-0-conditions-2-value", draft)
    assert label == "Stage 2 “Response”, rule 1, condition 3: value"
    assert editor_form.error_label("window", draft) == "window"


def test_colours_are_sanitised() -> None:
    assert editor_form.safe_color("#12abEF") == "#12abEF"
    assert editor_form.safe_color('red" onload="x', 1) == editor_form.PALETTE[1]


def test_editor_round_trip_saves(logged_in: FlaskClient, my_site: Site) -> None:
    html = logged_in.get(editor_url(my_site)).data.decode()
    form = form_of(html)
    assert form["stages-0-key"] == "trace"
    form["stages-0-name"] = "First visit"
    form["action"] = "add_condition:0:0"
    # A structural action re-renders the draft (with the rename) and saves nothing.
    html = logged_in.post(editor_url(my_site), data=form).data.decode()
    assert 'value="First visit"' in html
    assert (
        get_funnel(db.session, my_site, list_funnels(db.session, my_site)[0].id).stages[0].name
        == "Trace"
    )  # type: ignore[union-attr]
    form = form_of(html)
    form["stages-0-rules-0-conditions-0-field"] = "path"
    form["stages-0-rules-0-conditions-0-op"] = "starts_with"
    form["stages-0-rules-0-conditions-0-value"] = "/landing"
    form["action"] = "save"
    response = logged_in.post(editor_url(my_site), data=form)
    assert response.status_code == 302
    db.session.expire_all()
    saved = funnel_to_dict(get_funnel(db.session, my_site, list_funnels(db.session, my_site)[0].id))  # type: ignore[arg-type]
    assert saved["stages"][0]["name"] == "First visit"
    assert saved["stages"][0]["rules"][0]["conditions"] == [
        {"field": "path", "op": "starts_with", "value": "/landing"}
    ]
    page = logged_in.get(editor_url(my_site)).data.decode()
    assert "A page view where page path starts with “/landing”." in page


def test_invalid_input_is_shown_inline_and_edits_are_kept(
    logged_in: FlaskClient, my_site: Site
) -> None:
    form = form_of(logged_in.get(editor_url(my_site)).data.decode())
    form["stages-1-name"] = "Renamed but unsaved"
    form["window"] = "forever"
    form["action"] = "save"
    response = logged_in.post(editor_url(my_site), data=form)
    assert response.status_code == 200  # the form again, with its errors
    assert (
        get_funnel(db.session, my_site, list_funnels(db.session, my_site)[0].id).window_seconds
        == 30 * 86400
    )  # type: ignore[union-attr]
    html = response.data.decode()
    assert 'id="err-window"' in html
    assert 'aria-invalid="true" aria-describedby="err-window"' in html or (
        'aria-describedby="window-help err-window"' in html
    )
    assert 'value="Renamed but unsaved"' in html  # nothing the marketer typed is lost
    assert 'value="forever"' in html


def test_preview_endpoint_counts_matches(
    logged_in: FlaskClient, store: Store, my_site: Site
) -> None:
    insert_events(
        store,
        journey_events(
            my_site.key,
            [{"id": "p1", "depth": 3}, {"id": "p2", "depth": 1}, {"id": "p3", "depth": 2}],
        ),
    )
    form = form_of(logged_in.get(editor_url(my_site)).data.decode())
    response = logged_in.post(f"/sites/{my_site.key}/funnels/preview.json", data=form)
    assert response.status_code == 200
    body = response.get_json()
    assert [s["persons"] for s in body["stages"]] == [3, 2, 1, 0]
    assert body["stages"][0]["events"] == 3
    assert body["descriptions"][0] == ["A page view."]
    form["stages-0-rules-0-type"] = "nonsense"
    bad = logged_in.post(f"/sites/{my_site.key}/funnels/preview.json", data=form)
    assert bad.status_code == 200
    assert bad.get_json()["valid"] is False
    assert "stages-0-rules-0-type" in bad.get_json()["fields"]
    # The other stages keep their figures; only the broken one waits for its fix.
    partial = bad.get_json()["stages"]
    assert partial[0] is None
    assert [s["persons"] for s in partial[1:]] == [2, 1, 0]
    # Down to one valid stage (a funnel needs two): it is still counted.
    for n in (2, 3):
        form[f"stages-{n}-rules-0-type"] = "nonsense"
    lone = logged_in.post(f"/sites/{my_site.key}/funnels/preview.json", data=form).get_json()
    assert [s and s["persons"] for s in lone["stages"]] == [None, 2, None, None]
    form["stages-1-rules-0-type"] = "nonsense"
    none = logged_in.post(f"/sites/{my_site.key}/funnels/preview.json", data=form).get_json()
    assert none["valid"] is False and none["stages"] == [None] * 4


def test_duplicate_a_funnel(logged_in: FlaskClient, my_site: Site) -> None:
    original = list_funnels(db.session, my_site)[0]
    response = logged_in.post(f"/sites/{my_site.key}/funnels/{original.id}/duplicate")
    assert response.status_code == 302
    funnels = list_funnels(db.session, my_site)
    assert [f.name for f in funnels] == [original.name, f"{original.name} (copy)"]
    assert response.headers["Location"].endswith(f"/funnels/{funnels[1].id}/edit")
    assert [s.rules for s in funnels[1].stages] == [s.rules for s in original.stages]
    assert logged_in.post(f"/sites/{my_site.key}/funnels/99999/duplicate").status_code == 404
    # Names stay distinct, so the report's funnel picker can tell them apart.
    logged_in.post(f"/sites/{my_site.key}/funnels/{original.id}/duplicate")
    logged_in.post(f"/sites/{my_site.key}/funnels")
    logged_in.post(f"/sites/{my_site.key}/funnels")
    names = [f.name for f in list_funnels(db.session, my_site)]
    assert names[2:] == [
        f"{original.name} (copy 2)",
        f"{original.name} (2)",
        f"{original.name} (3)",
    ]


def test_create_funnel_from_template(logged_in: FlaskClient, my_site: Site) -> None:
    response = logged_in.post(f"/sites/{my_site.key}/funnels")
    assert response.status_code == 302
    assert len(list_funnels(db.session, my_site)) == 2
    page = logged_in.get(f"/sites/{my_site.key}/funnels").data.decode()
    assert page.count("Edit stages") == 2
