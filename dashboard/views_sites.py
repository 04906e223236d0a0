"""Home, the sites list, creating a site, its setup page (snippet + live install check) and
its settings."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import (
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from dashboard import formatting, recent
from dashboard.access import me, site_or_404
from dashboard.blueprint import bp
from tracker import accounts, export
from tracker.app import store_of
from tracker.configdb import db
from tracker.models import Site

RETENTION_CHOICES = (0, 30, 90, 180, 365, 730, 1095)


@bp.app_context_processor
def _nav() -> dict[str, Any]:
    if not current_user.is_authenticated:
        return {"nav_sites": []}
    return {"nav_sites": accounts.sites_for(db.session, me())}


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    """The funnel report of the user's first site is the landing page."""
    sites = accounts.sites_for(db.session, me())
    if not sites:
        return redirect(url_for("dashboard.sites"))
    return redirect(url_for("dashboard.report", site_key=sites[0].key))


@bp.route("/sites", methods=["GET", "POST"])
@login_required
def sites() -> ResponseReturnValue:
    form = {"name": "", "domains": "", "timezone": "UTC"}
    error = None
    status = 200
    if request.method == "POST":
        form = {k: request.form.get(k, "").strip() for k in form}
        try:
            site = accounts.create_site(
                db.session,
                form["name"],
                form["domains"],
                timezone=form["timezone"] or "UTC",
                owner=me(),
            )
        except accounts.AccountError as exc:
            db.session.rollback()
            error, status = str(exc), 422
        else:
            db.session.commit()
            flash(f"Site “{site.name}” created. Paste the snippet below into your pages.", "ok")
            return redirect(url_for("dashboard.site_setup", site_key=site.key))
    listed = accounts.sites_for(db.session, me())
    return (
        render_template(
            "sites.html",
            sites=listed,
            activity=_activity(listed),
            activity_days=recent.ACTIVITY_DAYS,
            form=form,
            error=error,
            timezones=_timezones(),
        ),
        status,
    )


def _activity(sites: list[Site]) -> dict[str, dict[str, Any]] | None:
    """Each site's recent traffic and the age of its newest event, or None when ClickHouse
    cannot answer: the list (and creating a site) must still work then."""
    try:
        activity = recent.site_activity(store_of(current_app), [s.key for s in sites])
    except Exception:
        current_app.logger.warning("sites list: no activity figures", exc_info=True)
        return None
    now = datetime.now(UTC)
    for figures in activity.values():
        newest = figures["newest"] = _utc(figures["newest"])
        figures["age_s"] = max(0.0, (now - newest).total_seconds()) if newest else None
    return activity


def _utc(value: Any) -> datetime | None:
    """A ClickHouse time as an aware datetime (naive ones are UTC, as `received_at` is)."""
    moment = formatting.to_datetime(value)
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


@bp.get("/sites/<site_key>")
@login_required
def site_home(site_key: str) -> ResponseReturnValue:
    """A site's own address opens its report (with any report arguments kept)."""
    site = site_or_404(site_key)
    target = url_for("dashboard.report", site_key=site.key)
    query = request.query_string.decode()
    return redirect(f"{target}?{query}" if query else target)


def _timezones() -> list[str]:
    from zoneinfo import available_timezones

    return sorted(available_timezones())


def _snippet(site: Site) -> str:
    return accounts.embed_snippet(request.host_url, site)


@bp.get("/sites/<site_key>/setup")
@login_required
def site_setup(site_key: str) -> ResponseReturnValue:
    site = site_or_404(site_key)
    store = store_of(current_app)
    events = recent.recent_events(store, site)
    return render_template(
        "site_setup.html",
        site=site,
        snippet=_snippet(site),
        events=events,
        install_status=install_status(events),
        retention_choices=RETENTION_CHOICES,
        currencies=accounts.COMMON_CURRENCIES,
        timezones=_timezones(),
    )


STALE_AFTER = 3600  # seconds without an event before the setup page says to check the snippet


def install_status(events: list[dict[str, Any]], now: datetime | None = None) -> str:
    """One sentence on whether the snippet is sending: how long ago the newest event came."""
    if not events:
        return (
            "No events in the last 7 days: install the snippet (or check that it is still on "
            "your pages), then open a page of your site."
        )
    newest = _utc(events[0]["received_at"])
    if newest is None:
        return "Installed: events are arriving."
    age = max(0.0, ((now or datetime.now(UTC)) - newest).total_seconds())
    if age <= STALE_AFTER:
        return f"Installed: the newest event arrived {formatting.duration(age)} ago."
    return (
        f"The newest event arrived {formatting.duration(age)} ago. If your pages had visitors "
        "since, check that the snippet is still on them."
    )


@bp.get("/sites/<site_key>/events.ndjson.gz")
@login_required
def export_events(site_key: str) -> ResponseReturnValue:
    """All the site's events as gzipped NDJSON in the import format, streamed chunk by chunk
    (the API's `events:export`, compressed for a browser download)."""
    site = site_or_404(site_key)
    store = store_of(current_app)
    start, end = export.bounds(site.timezone, None, None)
    spans = export.plan(store, site.key, start, end)

    def body() -> Iterator[bytes]:
        packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
        for lines in export.iter_lines(store, site.key, start, end, spans):
            if packed := packer.compress(lines):
                yield packed
        yield packer.flush()

    return Response(
        body(),
        mimetype="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{site.key}-events.ndjson.gz"'},
    )


@bp.get("/sites/<site_key>/events/recent.json")
@login_required
def recent_events(site_key: str) -> ResponseReturnValue:
    """Polled by the setup page: the newest events, already formatted for display."""
    site = site_or_404(site_key)
    events = recent.recent_events(store_of(current_app), site)
    return jsonify(
        status=install_status(events),
        events=[
            {
                "time": formatting.clock(e["received_at"], site.timezone),
                "type": e["type"],
                "name": e["name"],
                "url": e["url"],
                "title": e["title"],
                "element_text": e["element_text"],
                "source": e["source"],
                "campaign": e["utm_campaign"],
                "keyword": e["utm_term"],
                "device": e["device"],
            }
            for e in events
        ],
    )


@bp.post("/sites/<site_key>/settings")
@login_required
def site_settings(site_key: str) -> ResponseReturnValue:
    site = site_or_404(site_key)
    try:
        name = request.form.get("name", site.name).strip()
        if not name or len(name) > 200:
            raise accounts.AccountError("site name must be 1 to 200 characters")
        domains = accounts.normalise_domains(request.form.get("domains", ""))
        timezone = accounts.validate_timezone(request.form.get("timezone", "UTC").strip())
        currency = accounts.validate_currency(request.form.get("currency", site.currency))
        raw_retention = request.form.get("retention_days", "0").strip() or "0"
        if not raw_retention.isdecimal() or int(raw_retention) > 36500:
            raise accounts.AccountError("retention must be a number of days (0 keeps everything)")
    except accounts.AccountError as exc:
        flash(str(exc), "error")
        return redirect(url_for("dashboard.site_setup", site_key=site.key) + "#settings")
    site.name, site.domains, site.timezone = name, domains, timezone
    site.retention_days, site.currency = int(raw_retention), currency
    db.session.commit()
    flash("Site settings saved.", "ok")
    return redirect(url_for("dashboard.site_setup", site_key=site.key) + "#settings")
