"""Tracked links: create, list (with click counts), copy and delete `/r/{code}` links."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required

import tracker.links as link_service
from dashboard.access import site_or_404
from dashboard.blueprint import bp
from tracker import accounts
from tracker.app import store_of
from tracker.configdb import db
from tracker.models import Site

LINK_FIELDS = ("target_url", "campaign", "source", "medium", "keyword", "content")


def _render(
    site: Site, form: dict[str, str], error: str | None, status: int
) -> ResponseReturnValue:
    items = link_service.list_links(db.session, store_of(current_app), site)
    base = request.host_url.rstrip("/")
    return (
        render_template("links.html", site=site, links=items, form=form, error=error, base=base),
        status,
    )


@bp.route("/sites/<site_key>/links", methods=["GET", "POST"])
@login_required
def links(site_key: str) -> ResponseReturnValue:
    site = site_or_404(site_key)
    form = dict.fromkeys(LINK_FIELDS, "")
    if request.method == "GET":
        return _render(site, form, None, 200)
    form = {k: request.form.get(k, "").strip() for k in LINK_FIELDS}
    try:
        link = link_service.create_link(db.session, site, **form)
    except accounts.AccountError as exc:
        db.session.rollback()
        return _render(site, form, str(exc), 422)
    db.session.commit()
    flash(f"Tracked link /r/{link.code} created.", "ok")
    return redirect(url_for("dashboard.links", site_key=site.key))


@bp.post("/sites/<site_key>/links/<code>/delete")
@login_required
def delete_link(site_key: str, code: str) -> ResponseReturnValue:
    site = site_or_404(site_key)
    try:
        link_service.delete_link(db.session, site, code)
    except accounts.AccountError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(f"Tracked link /r/{code} deleted.", "ok")
    return redirect(url_for("dashboard.links", site_key=site.key))
