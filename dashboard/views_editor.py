"""The stage editor: funnels list, create from the template, edit stages and rules with a live
preview, delete. Views parse the form and call the stage engine's service functions."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required

from dashboard import editor_form
from dashboard.access import funnel_or_404, site_or_404
from dashboard.blueprint import bp
from tracker.app import store_of
from tracker.configdb import db
from tracker.models import Site

PREVIEW_DAYS = 30


def _engine() -> Any:
    """The stage engine's modules, imported on use (they are optional at import time)."""
    from tracker import funnels
    from tracker.stages import definitions

    return funnels, definitions


@bp.get("/sites/<site_key>/funnels")
@login_required
def funnels(site_key: str) -> ResponseReturnValue:
    site = site_or_404(site_key)
    funnel_service, definitions = _engine()
    items = [
        funnel_service.funnel_to_dict(f) for f in funnel_service.list_funnels(db.session, site)
    ]
    return render_template(
        "funnels.html", site=site, funnels=items, describe_stage=definitions.describe_stage
    )


@bp.post("/sites/<site_key>/funnels")
@login_required
def create_funnel(site_key: str) -> ResponseReturnValue:
    """A new funnel from the trace → response → engagement → sale template."""
    from tracker.stages.templates import add_template_funnel

    site = site_or_404(site_key)
    funnel = add_template_funnel(db.session, site)
    db.session.commit()
    flash("Funnel created from the trace → response → engagement → sale template.", "ok")
    return redirect(url_for("dashboard.edit_funnel", site_key=site.key, funnel_id=funnel.id))


def _draft_from_funnel(funnel: Any) -> dict[str, Any]:
    funnel_service, _ = _engine()
    data = funnel_service.funnel_to_dict(funnel)
    window = data.get("window", data.get("window_seconds"))
    return {
        "name": data.get("name", ""),
        "mode": data.get("mode", "ordered"),
        "window": editor_form.window_text(window),
        "engagement_stage": data.get("engagement_stage"),
        "stages": [
            {
                "key": s["key"],
                "name": s.get("name", ""),
                "color": editor_form.safe_color(s.get("color"), i),
                "rules": [
                    {
                        "type": r.get("type") or "any",
                        "name": r.get("name") or "",
                        "conditions": [
                            {
                                "field": c.get("field", ""),
                                "op": c.get("op", ""),
                                "value": _value_text(c.get("value")),
                            }
                            for c in r.get("conditions") or []
                        ],
                    }
                    for r in s.get("rules") or []
                ],
            }
            for i, s in enumerate(data.get("stages", []))
        ],
    }


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_value_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _descriptions(draft: dict[str, Any]) -> list[list[str]]:
    """Plain-language text per rule; a rule that does not validate yet gets none."""
    _, definitions = _engine()
    result = []
    for stage in draft["stages"]:
        texts = []
        for rule in stage["rules"]:
            probe = {
                "name": "probe",
                "stages": [
                    {"key": "a", "rules": [{**rule, "name": rule.get("name") or None}]},
                    {"key": "b", "rules": [{"type": "any", "conditions": []}]},
                ],
            }
            try:
                normal = definitions.validate_definition(probe)
            except definitions.DefinitionError:
                texts.append("")
                continue
            texts.append(definitions.describe_rule(normal["stages"][0]["rules"][0]))
        result.append(texts)
    return result


def _render_editor(
    site: Site,
    funnel: Any,
    draft: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
    unsaved: bool = False,
) -> ResponseReturnValue:
    _, definitions = _engine()
    return (
        render_template(
            "editor.html",
            site=site,
            funnel=funnel,
            draft=draft,
            errors=errors,
            descriptions=_descriptions(draft),
            fields=definitions.FIELDS,
            operators=definitions.OPERATORS,
            event_types=definitions.EVENT_TYPES,
            modes=definitions.MODES,
            preview_days=PREVIEW_DAYS,
            error_label=editor_form.error_label,
            unsaved=unsaved or bool(errors),
        ),
        status,
    )


@bp.get("/sites/<site_key>/funnels/<int:funnel_id>")
@login_required
def show_funnel(site_key: str, funnel_id: int) -> ResponseReturnValue:
    """A funnel's own URL (as in the API) opens its report."""
    site = site_or_404(site_key)
    funnel_or_404(site, funnel_id)
    return redirect(url_for("dashboard.report", site_key=site.key, funnel=funnel_id))


@bp.route("/sites/<site_key>/funnels/<int:funnel_id>/edit", methods=["GET", "POST"])
@login_required
def edit_funnel(site_key: str, funnel_id: int) -> ResponseReturnValue:
    site = site_or_404(site_key)
    funnel = funnel_or_404(site, funnel_id)
    if request.method == "GET":
        return _render_editor(site, funnel, _draft_from_funnel(funnel), {})

    draft = editor_form.parse_form(request.form)
    action = request.form.get("action", "save")
    if action != "save":
        # Structural edits change the draft only; nothing is saved until "Save".
        draft = editor_form.apply_action(draft, action)
        return _render_editor(site, funnel, draft, {}, unsaved=True)

    funnel_service, definitions = _engine()
    try:
        funnel_service.update_funnel(db.session, site, funnel_id, editor_form.for_engine(draft))
    except definitions.DefinitionError as exc:
        db.session.rollback()
        errors = editor_form.errors_by_field(exc.errors)
        # 200: the page is the answer (the form with its errors), not a failed request.
        return _render_editor(site, funnel, draft, errors)
    db.session.commit()
    flash("Funnel saved.", "ok")
    return redirect(url_for("dashboard.edit_funnel", site_key=site.key, funnel_id=funnel_id))


@bp.post("/sites/<site_key>/funnels/<int:funnel_id>/duplicate")
@login_required
def duplicate_funnel(site_key: str, funnel_id: int) -> ResponseReturnValue:
    site = site_or_404(site_key)
    funnel_or_404(site, funnel_id)
    funnel_service, _ = _engine()
    copy = funnel_service.duplicate_funnel(db.session, site, funnel_id)
    db.session.commit()
    flash(f"Copied as “{copy.name}”: change it here; the original stays as it was.", "ok")
    return redirect(url_for("dashboard.edit_funnel", site_key=site.key, funnel_id=copy.id))


@bp.post("/sites/<site_key>/funnels/<int:funnel_id>/delete")
@login_required
def delete_funnel(site_key: str, funnel_id: int) -> ResponseReturnValue:
    site = site_or_404(site_key)
    funnel_or_404(site, funnel_id)
    funnel_service, _ = _engine()
    funnel_service.delete_funnel(db.session, site, funnel_id)
    db.session.commit()
    flash("Funnel deleted.", "ok")
    return redirect(url_for("dashboard.funnels", site_key=site.key))


@bp.post("/sites/<site_key>/funnels/preview.json")
@login_required
def preview_funnel(site_key: str) -> ResponseReturnValue:
    """What each stage of the draft matches over the last 30 days (the editor's live preview)."""
    from tracker.reports import partial_stage_preview, stage_preview

    site = site_or_404(site_key)
    _, definitions = _engine()
    draft = editor_form.parse_form(request.form)
    try:
        definition = definitions.validate_definition(editor_form.for_engine(draft))
    except definitions.DefinitionError as exc:
        # A draft that does not validate yet is the normal state while typing: a successful
        # answer saying so (not an HTTP error the browser console would report). The stages
        # that are valid on their own still get their figures (null for the others), so one
        # half-typed regex does not blank the whole preview.
        partial = [
            item and _preview_item(item, item)
            for item in partial_stage_preview(
                store_of(current_app), site, editor_form.for_engine(draft), exc.errors,
                days=PREVIEW_DAYS,
            )
        ]  # fmt: skip
        return jsonify(
            valid=False,
            error="invalid_definition",
            detail=exc.errors,
            fields=editor_form.errors_by_field(exc.errors),
            descriptions=_descriptions(draft),
            days=PREVIEW_DAYS,
            stages=partial,
        )
    preview = stage_preview(store_of(current_app), site, definition, days=PREVIEW_DAYS)
    return jsonify(
        valid=True,
        days=PREVIEW_DAYS,
        stages=_preview_stages(definition, preview),
        descriptions=_descriptions(draft),
    )


def _preview_stages(definition: dict[str, Any], preview: Any) -> list[dict[str, Any]]:
    """The engine's preview per stage, in the draft's stage order."""
    items = preview.get("stages", preview) if isinstance(preview, dict) else preview
    by_key = {}
    if isinstance(items, list):
        by_key = {item.get("key"): item for item in items if isinstance(item, dict)}
    elif isinstance(items, dict):
        by_key = items
    return [_preview_item(stage, by_key.get(stage["key"], {})) for stage in definition["stages"]]


def _preview_item(stage: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """One stage's preview as the editor shows it (at most five samples of each kind)."""
    return {
        "key": stage["key"],
        "name": stage["name"],
        "persons": item.get("persons", 0),
        "events": item.get("events", 0),
        "sample_urls": list(item.get("sample_urls", []))[:5],
        "sample_elements": list(item.get("sample_elements", []))[:5],
    }
