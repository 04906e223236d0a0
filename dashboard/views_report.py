"""The funnel report (the landing page), its CSV export, filter values, the drop-off
drill-down and a person's journey. One stage-engine service call per panel."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from functools import partial
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import login_required
from markupsafe import escape
from werkzeug.datastructures import MultiDict

from dashboard import charts, recent, report_args
from dashboard.access import funnel_or_404, site_or_404
from dashboard.blueprint import bp
from dashboard.report_cache import ReportCache
from tracker import reports
from tracker.app import store_of
from tracker.configdb import db
from tracker.models import Funnel, Site
from tracker.reports.persons import MAX_PAGE

FILTER_VALUE_FIELDS = {name for name, _ in report_args.NAMED_FILTERS} | {
    name for name, _ in report_args.BREAKDOWNS
}


# The panels of one report page are independent queries: run them side by side (each thread
# has its own ClickHouse handle), so the page waits for the slowest, not for the sum.
_PANEL_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="report-panel")


def _run_panels(calls: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Each panel's result; a panel the query does not suit (say, 400 days by day) gets
    `<name>_error` with the message instead of failing the page."""
    query_error = reports.QueryError
    futures = {name: _PANEL_POOL.submit(call) for name, call in calls.items()}
    results: dict[str, Any] = {}
    for name, future in futures.items():
        try:
            results[name] = future.result()
        except query_error as exc:
            if name == "report":
                raise
            results[f"{name}_error"] = str(exc)
    return results


def _cached(
    name: str,
    site: Site,
    version: int,
    definition: dict[str, Any],
    query: Any,
    *extra: Any,
    call: Callable[[], Any],
) -> Callable[[], Any]:
    """`call` through the report cache (see report_cache.py); callers get their own copy,
    since views decorate results with links."""
    cache: ReportCache = current_app.extensions["dashboard_report_cache"]
    # The currency is part of what the pipeline returns: a change must not show stale labels.
    key = ReportCache.key(name, site.key, site.currency, version, definition, query, extra)
    return lambda: copy.deepcopy(cache.get_or_compute(key, call))


def _report_call(
    site: Site, version: int, definition: dict[str, Any], query: Any
) -> Callable[[], Any]:
    """The funnel report through the cache: the report page and the funnels page's summaries
    share its entries, so opening a report from its summary is a hit."""
    store = store_of(current_app)
    return _cached(
        "report", site, version, definition, query,
        call=partial(reports.funnel_report, store, site, definition, query),
    )  # fmt: skip


def _site_and_funnel(site_key: str) -> tuple[Site, MultiDict[str, str], Funnel]:
    """The site, this request's report arguments and the funnel they pick; 404 if none."""
    site = site_or_404(site_key)
    args = report_args.clean_args(request.args)
    funnel, _ = _pick_funnel(site, args)
    if funnel is None:
        abort(404)
    return site, args, funnel


def _pick_funnel(site: Site, args: MultiDict[str, str]) -> tuple[Funnel | None, list[Funnel]]:
    from tracker import funnels as funnel_service

    items = funnel_service.list_funnels(db.session, site)
    wanted = args.get("funnel", "")
    if wanted:
        if not wanted.isdecimal():
            abort(404)
        funnel = funnel_service.get_funnel(db.session, site, int(wanted))
        if funnel is None:
            abort(404)
        return funnel, items
    return (items[0] if items else None), items


def _definition(funnel: Funnel) -> dict[str, Any]:
    from tracker.funnels import funnel_definition

    return funnel_definition(funnel)


def _query(site: Site, args: MultiDict[str, str], explicit_range: bool = True) -> Any:
    """The ReportQuery, or a QueryError carrying the message to show. Without
    `explicit_range` the dates are left to the service's defaults."""
    service_args = report_args.service_args(args, site.timezone)
    if not explicit_range:
        service_args.poplist("from")
        service_args.poplist("to")
    return reports.parse_report_query(service_args, site)


def _with_links(
    site: Site,
    args: MultiDict[str, str],
    stages: list[dict[str, Any]],
    linked: bool = True,
    **narrow: Any,
) -> list[dict[str, Any]]:
    """Stages plus the drill-down links the chart and table use (`narrow`: more arguments
    for the persons list, such as a breakdown's segment; no links unless `linked`)."""
    base = url_for("dashboard.persons", site_key=site.key)
    out = []
    for stage in stages:
        persons = stage.get("persons") or 0
        dropped = stage.get("dropoff") or 0
        links = {
            f"href_{status}": report_args.url_with(
                base, args, stage=stage["key"], status=status, **narrow
            )
            if linked
            else None
            for status in ("reached", "dropped", "skipped")
        }
        out.append({**stage, "dropoff_rate": (dropped / persons) if persons else None, **links})
    return out


@bp.get("/sites/<site_key>/report")
@login_required
def report(site_key: str) -> ResponseReturnValue:
    site = site_or_404(site_key)
    base = url_for("dashboard.report", site_key=site.key)
    problems = report_args.form_problems(request.args)
    folded = None if "f_value" in problems else report_args.fold_new_filter(request.args)
    if folded is not None:
        return redirect(report_args.url_with(base, folded))
    args = report_args.clean_args(request.args)
    funnel, funnels = _pick_funnel(site, args)
    context: dict[str, Any] = {
        "site": site,
        "funnel": funnel,
        "funnels": funnels,
        "args": args,
        "base": base,
        "chips": report_args.chips(args, base),
        "presets": report_args.PRESETS,
        "named_filters": report_args.NAMED_FILTERS,
        "breakdowns": report_args.BREAKDOWNS,
        "intervals": report_args.INTERVALS,
        "preset": args.get("range")
        or ("custom" if args.get("from") or args.get("to") else report_args.DEFAULT_PRESET),
        "interval": args.get("interval", ""),
        "url_with": report_args.url_with,
        "charts": charts,
        "error": None,
        "report": None,
        "problems": problems,
        # A filter row sent back for its missing value keeps what was typed.
        "new_filter": {k: request.args.get(k, "") for k in ("f_field", "f_op", "f_value")}
        if problems.get("f_value")
        else {},
    }
    if funnel is None:
        return render_template("report.html", **context)
    if "from" in problems:
        context["error"] = problems["from"]
        return render_template("report.html", **context), 400
    try:
        query = _query(site, args)
    except reports.QueryError as exc:
        context["error"] = str(exc)
        return render_template("report.html", **context), 400
    store = store_of(current_app)
    definition = _definition(funnel)
    context["definition"] = definition
    version = ReportCache.data_version(store, site)
    calls: dict[str, Callable[[], Any]] = {"report": _report_call(site, version, definition, query)}
    # The page waits only for the funnel; trends and the pipeline load into it afterwards
    # (common.js), unless asked for inline (no JavaScript, or a test).
    context["inline_panels"] = request.args.get("panels") == "inline"
    if context["inline_panels"]:
        calls.update(_panel_calls(site, args, definition, version))
    try:
        context.update(_run_panels(calls))
    except reports.QueryError as exc:
        context["error"] = str(exc)
        return render_template("report.html", **context), 400
    result = context["report"]
    result["stages"] = _with_links(site, args, result["stages"])
    named = {name for name, _ in report_args.NAMED_FILTERS}
    for item in result.get("breakdown") or []:
        # Each group's figures open the persons of that group; the remainder merges many
        # values, so it has no persons links and no "only this".
        item["stages"] = _with_links(
            site, args, item["stages"], linked=not item["other"], segment=item["value"]
        )
        field = result.get("breakdown_field")
        if field in named and not item["other"]:
            item["href_only"] = report_args.url_with(
                base, args, breakdown=None, **{field: item["value"]}
            )
    context["query"] = query
    if result.get("compare"):
        # Growth against a period the data only partly covers reads far too high: say so.
        first = recent.first_event_day(store, site)
        earlier_from = date.fromisoformat(result["compare"]["range"]["from"])
        context["data_starts"] = first if first is not None and first > earlier_from else None
    if not result.get("persons"):
        context["has_events"] = recent.event_count(store, site) > 0
    return render_template("report.html", **context)


def _interval(args: MultiDict[str, str], query: Any) -> str:
    chosen = args.get("interval", "")
    if chosen in report_args.INTERVALS:
        return chosen
    return report_args.auto_interval(query.date_from, query.date_to)


def _panel_calls(
    site: Site, args: MultiDict[str, str], definition: dict[str, Any], version: int
) -> dict[str, Callable[[], Any]]:
    """The service calls behind the trends and pipeline panels."""
    store = store_of(current_app)
    # Trends cover the report's own range (so they never disagree with it); without a chosen
    # range the pipeline shows the attempts still open (it narrows the query it is given).
    explicit = bool(args.get("range") or args.get("from") or args.get("to"))
    calls: dict[str, Callable[[], Any]] = {}
    if hasattr(reports, "funnel_trends"):
        trends_query = _query(site, args)
        interval = _interval(args, trends_query)
        calls["trends"] = _cached(
            "trends", site, version, definition, trends_query, interval,
            call=partial(reports.funnel_trends, store, site, definition, trends_query, interval),
        )  # fmt: skip
    if hasattr(reports, "funnel_pipeline"):
        pipeline_query = _query(site, args, explicit)
        calls["pipeline"] = _cached(
            "pipeline", site, version, definition, pipeline_query,
            call=partial(reports.funnel_pipeline, store, site, definition, pipeline_query),
        )  # fmt: skip
    return calls


@bp.get("/sites/<site_key>/report/<any(trends, pipeline):panel>")
@login_required
def report_panel(site_key: str, panel: str) -> ResponseReturnValue:
    """One secondary panel of the report as an HTML fragment (loaded into the page)."""
    site, args, funnel = _site_and_funnel(site_key)
    if request.headers.get("Sec-Fetch-Dest") == "document":
        # Opened as a page (a copied link, a new tab): a bare fragment would be unstyled,
        # so show the whole report with this panel in place instead.
        base = url_for("dashboard.report", site_key=site.key)
        return redirect(report_args.url_with(base, args, panels="inline") + f"#{panel}")
    definition = _definition(funnel)
    try:
        calls = {
            name: call
            for name, call in _panel_calls(
                site, args, definition, ReportCache.data_version(store_of(current_app), site)
            ).items()
            if name == panel
        }
        results = _run_panels(calls)
    except reports.QueryError as exc:
        results = {f"{panel}_error": str(exc)}
    return render_template(
        "report_panel.html",
        panel=panel,
        site=site,
        definition=definition,
        charts=charts,
        args=args,
        url_with=report_args.url_with,
        breakdowns=report_args.BREAKDOWNS,
        **results,
    )


@bp.get("/sites/<site_key>/funnels/<int:funnel_id>/summary")
@login_required
def funnel_summary(site_key: str, funnel_id: int) -> ResponseReturnValue:
    """A funnel's last 30 days as an HTML fragment for its card on the funnels page: the
    same service call (and cache entry) as the report opened without arguments."""
    site = site_or_404(site_key)
    funnel = funnel_or_404(site, funnel_id)
    if request.headers.get("Sec-Fetch-Dest") == "document":
        return redirect(url_for("dashboard.report", site_key=site.key, funnel=funnel.id))
    args = MultiDict({"funnel": str(funnel.id)})  # what the persons links carry
    definition = _definition(funnel)
    query = _query(site, args)
    # A store outage is the blueprint's 503; the page's loader then says the figures could
    # not be loaded, and the card itself still works.
    version = ReportCache.data_version(store_of(current_app), site)
    report = _report_call(site, version, definition, query)()
    return render_template(
        "_funnel_summary.html",
        site=site,
        funnel=funnel,
        report=report,
        stages=_with_links(site, args, report["stages"]),
        has_events=version > 0,  # the data version is the site's event count
        charts=charts,
    )


@bp.get("/sites/<site_key>/values/<field>.json")
@login_required
def filter_values(site_key: str, field: str) -> ResponseReturnValue:
    """The most common values of a field under the current filters (for the pickers)."""
    site = site_or_404(site_key)
    if field not in FILTER_VALUE_FIELDS:
        return jsonify(error="unknown_field", detail=f"no filter values for {field!r}"), 400
    args = report_args.clean_args(request.args)
    args.poplist(field)  # the picker offers alternatives to the value chosen now
    try:
        query = _query(site, args)
    except reports.QueryError as exc:
        return jsonify(error="bad_query", detail=str(exc)), 400
    name = "prop.product" if field == "product" else field
    values = reports.top_values(store_of(current_app), site, name, query, limit=20)
    return jsonify(field=field, values=values)


def _csv_response(
    text: str | Iterable[str], filename: str, args: MultiDict[str, str] | None = None
) -> Response:
    """A CSV download; with `args`, the file name also says which filters made it, so two
    exports of the same range do not overwrite each other."""
    tag = report_args.file_tag(args) if args is not None else ""
    if tag:
        stem, _, ext = filename.rpartition(".")
        filename = f"{stem}-{tag}.{ext}"
    return Response(
        text,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@bp.get("/sites/<site_key>/report.csv")
@login_required
def report_csv(site_key: str) -> ResponseReturnValue:
    site, args, funnel = _site_and_funnel(site_key)
    try:
        query = _query(site, args)
    except reports.QueryError as exc:
        return jsonify(error="bad_query", detail=str(exc)), 400
    definition = _definition(funnel)
    result = reports.funnel_report(store_of(current_app), site, definition, query)
    text = reports.report_csv(result)
    return _csv_response(
        text, f"funnel-{site.key}-{funnel.id}-{query.date_from}-{query.date_to}.csv", args
    )


@bp.get("/sites/<site_key>/trends.csv")
@login_required
def trends_csv(site_key: str) -> ResponseReturnValue:
    """The trends table as CSV, for the same range, filters and interval as the panel."""
    site, args, funnel = _site_and_funnel(site_key)
    try:
        query = _query(site, args)
        interval = _interval(args, query)
        result = reports.funnel_trends(
            store_of(current_app), site, _definition(funnel), query, interval
        )
    except reports.QueryError as exc:
        return jsonify(error="bad_query", detail=str(exc)), 400
    return _csv_response(
        reports.trends_csv(result),
        f"trends-{site.key}-{funnel.id}-{interval}-{query.date_from}-{query.date_to}.csv",
        args,
    )


@bp.get("/sites/<site_key>/persons")
@login_required
def persons(site_key: str) -> ResponseReturnValue:
    """Drill-down: the persons who reached a stage, or dropped off after it."""
    site, args, funnel = _site_and_funnel(site_key)
    wanted = request.args.get("person", "").strip()
    if wanted:
        # "Open a person's journey": any visitor or user id, looked up from this list.
        person = reports.resolve_person(store_of(current_app), site, wanted)
        journey_url = url_for("dashboard.journey", site_key=site.key, person_id=person)
        return redirect(report_args.url_with(journey_url, args))
    definition = _definition(funnel)
    keys = [s["key"] for s in definition["stages"]]
    stage = request.args.get("stage", keys[0])
    status = request.args.get("status", "dropped")
    raw_page = request.args.get("page", "1")
    # Not a page number: page 1. A huge one is capped (the list then says it is past the end).
    page = 1
    if raw_page.isdecimal() and len(raw_page) < 12:
        page = max(1, min(int(raw_page), MAX_PAGE))
    context: dict[str, Any] = {
        "site": site,
        "funnel": funnel,
        "definition": definition,
        "args": args,
        "stage_key": stage,
        "status": status,
        "page": page,
        "url_with": report_args.url_with,
        "stage_names": {s["key"]: s["name"] for s in definition["stages"]},
        "chips": report_args.chips(
            args, url_for("dashboard.persons", site_key=site.key), stage=stage, status=status
        ),
        "error": None,
        "result": None,
    }
    if stage not in keys:
        context["error"] = f"This funnel has no stage {stage!r}."
        return render_template("persons.html", **context), 400
    try:
        query = _query(site, args)
        result = reports.funnel_persons(
            store_of(current_app), site, definition, query, stage, status, page=page, per_page=50
        )
    except (reports.QueryError, ValueError) as exc:
        context["error"] = str(exc)
        return render_template("persons.html", **context), 400
    columns = _person_columns(result.get("persons", []), query.breakdown or "")
    context.update(result=result, query=query, columns=columns)
    if status == "dropped" and result["total"]:
        # Where they left (the top exit pages of everyone listed, not just this page) is a
        # second full pass: it loads after the list, unless asked inline (no script).
        if request.args.get("exits") == "inline":
            context["exits"] = _exits(site, definition, query, stage)
        else:
            exits_url = url_for("dashboard.persons_exits", site_key=site.key)
            context["exits_url"] = report_args.url_with(exits_url, args, stage=stage)
    return render_template("persons.html", **context)


EXIT_PAGES = 10


def _exits(site: Site, definition: dict[str, Any], query: Any, stage: str) -> dict[str, Any]:
    return reports.funnel_exits(
        store_of(current_app), site, definition, query, stage, limit=EXIT_PAGES
    )


@bp.get("/sites/<site_key>/exits")
@login_required
def persons_exits(site_key: str) -> ResponseReturnValue:
    """The "Where they left" card of a dropped-off list, as an HTML fragment."""
    site, args, funnel = _site_and_funnel(site_key)
    definition = _definition(funnel)
    stages = {s["key"]: s["name"] for s in definition["stages"]}
    stage = request.args.get("stage", "")
    if request.headers.get("Sec-Fetch-Dest") == "document":
        # Opened as a page: show the whole list with the card in place.
        base = url_for("dashboard.persons", site_key=site.key)
        return redirect(
            report_args.url_with(base, args, stage=stage, status="dropped", exits="inline")
        )
    if stage not in stages:
        return f'<p class="error">This funnel has no stage {escape(stage)}.</p>', 400
    try:
        exits = _exits(site, definition, _query(site, args), stage)
    except (reports.QueryError, ValueError) as exc:
        return f'<p class="error">{escape(str(exc))}</p>', 400
    return render_template("_exits.html", exits=exits, stage_name=stages[stage])


PERSON_COLUMNS = (
    ("first_seen", "First seen"),
    ("last_stage", "Furthest stage"),
    ("sale_value", "Sale value"),
    ("exit_page", "Last page"),
    ("campaign", "Campaign"),
    ("keyword", "Keyword"),
    ("source", "Source"),
    ("medium", "Medium"),
    ("landing", "Landing page"),
    ("country", "Country"),
    ("region", "Region"),
    ("device", "Device"),
    ("browser", "Browser"),
)


def _person_columns(people: list[dict[str, Any]], breakdown: str = "") -> list[tuple[str, str]]:
    """The person attributes worth a column, in a readable order; a property breakdown's
    value (e.g. the product) comes right after the furthest stage."""
    if not people:
        return []
    columns = [(key, label) for key, label in PERSON_COLUMNS if key in people[0]]
    if all(p.get("sale_value") is None for p in people):
        # Nobody on this page converted: an empty column would only push the others right.
        columns = [c for c in columns if c[0] != "sale_value"]
    if breakdown.startswith("prop.") and breakdown in people[0]:
        label = dict(report_args.BREAKDOWNS).get(breakdown, breakdown)
        columns.insert(2, (breakdown, label))
    return columns


@bp.get("/sites/<site_key>/persons.csv")
@login_required
def persons_csv(site_key: str) -> ResponseReturnValue:
    site, args, funnel = _site_and_funnel(site_key)
    definition = _definition(funnel)
    stage = request.args.get("stage", definition["stages"][0]["key"])
    status = request.args.get("status", "dropped")
    try:
        query = _query(site, args)
        # The service's export: the first page now (so a bad argument is an error answer),
        # the rest streamed page by page, as the API's persons.csv does.
        first, rest = reports.export_persons(
            store_of(current_app), site, definition, query, stage, status
        )
    except (reports.QueryError, ValueError) as exc:
        return jsonify(error="bad_query", detail=str(exc)), 400
    chunks = reports.persons_csv_chunks(first["columns"], itertools.chain([first["persons"]], rest))
    return _csv_response(
        stream_with_context(chunks), f"persons-{site.key}-{stage}-{status}.csv", args
    )


@bp.get("/sites/<site_key>/persons/<path:person_id>")
@login_required
def journey(site_key: str, person_id: str) -> ResponseReturnValue:
    """One person's events in time order, each labelled with the stages it matched."""
    site = site_or_404(site_key)
    args = report_args.clean_args(request.args)
    funnel, _ = _pick_funnel(site, args)
    definition = _definition(funnel) if funnel is not None else None
    query, query_error = None, None
    if definition is not None:
        try:
            query = _query(site, args)
        except (reports.QueryError, ValueError) as exc:
            # The journey itself needs no report; it is shown without the report's verdict.
            query_error = str(exc)
    result = reports.person_journey(store_of(current_app), site, definition, person_id, query)
    # Opened from a persons list: a way back to the same list and page.
    back_to_list = None
    list_status, list_stage = request.args.get("list_status"), request.args.get("list_stage")
    if list_status in ("dropped", "reached", "skipped") and list_stage:
        list_page = request.args.get("list_page", "1")
        back_to_list = report_args.url_with(
            url_for("dashboard.persons", site_key=site.key),
            args,
            stage=list_stage,
            status=list_status,
            page=list_page if list_page.isdecimal() and list_page != "1" else None,
        )
    return render_template(
        "journey.html",
        back_to_list=back_to_list,
        site=site,
        funnel=funnel,
        definition=definition,
        person_id=person_id,
        journey=result,
        progress=result.get("progress"),
        left_after=_left_after(definition, result.get("progress")),
        query=query,
        query_error=query_error,
        stage_names={s["key"]: s["name"] for s in (definition or {}).get("stages", [])},
        stage_colors={s["key"]: s["color"] for s in (definition or {}).get("stages", [])},
        args=args,
        url_with=report_args.url_with,
    )


def _left_after(
    definition: dict[str, Any] | None, progress: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The stage after which the person went no further in the report, and the next one;
    None when they are not in it or reached the last stage."""
    if not definition or not progress or not progress["last_stage"] or progress["converted"]:
        return None
    stages = definition["stages"]
    last = [s["key"] for s in stages].index(progress["last_stage"])
    return {
        "key": stages[last]["key"],
        "name": stages[last]["name"],
        "next": stages[last + 1]["name"],
    }
