"""Erasing a person's data from the dashboard: look the person up, show what would go, and
erase it on an explicit confirmation. The same service as the API and `funnel erase-person`."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required

from dashboard.access import me, site_or_404
from dashboard.blueprint import bp
from tracker import erasure
from tracker.app import store_of


@bp.get("/sites/<site_key>/erase")
@login_required
def erase_person(site_key: str) -> ResponseReturnValue:
    """The lookup form, and for `?person=` what erasing that person would delete."""
    site = site_or_404(site_key)
    wanted = request.args.get("person", "")
    found, error = None, None
    if wanted.strip():
        try:
            found = erasure.find_person(store_of(current_app), site, wanted)
        except erasure.ErasureError as exc:  # shown on the form, like any lookup result
            error = str(exc)
    return render_template("erase.html", site=site, wanted=wanted.strip(), found=found, error=error)


@bp.post("/sites/<site_key>/erase")
@login_required
def erase_person_confirmed(site_key: str) -> ResponseReturnValue:
    site = site_or_404(site_key)
    wanted = request.form.get("person", "")
    back = url_for("dashboard.erase_person", site_key=site.key, person=wanted.strip())
    if request.form.get("confirm") != "yes":
        flash("Tick the box to confirm that the data should be erased.", "error")
        return redirect(back)
    try:
        erasure.flush_spool(current_app)
        done = erasure.erase_person(
            store_of(current_app), site, wanted, by=f"{me().email} (dashboard)"
        )
    except (erasure.ErasureError, erasure.PendingEventsError) as exc:
        flash(str(exc), "error")
        return redirect(back)
    flash(
        f"Erased {done.events} event{'s' if done.events != 1 else ''} of person {done.person}. "
        "They are gone from every report now, and from disk within a day.",
        "ok",
    )
    return redirect(url_for("dashboard.erase_person", site_key=site.key))
