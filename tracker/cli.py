"""The `funnel` command line. Every command has --help; errors are one line and exit non-zero."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import sqlalchemy.exc
from flask import Flask
from tqdm import tqdm

from tracker.accounts import AccountError
from tracker.clickhouse import StoreUnavailableError
from tracker.datadir_lock import StoreLockedError
from tracker.mutations import MutationFailedError
from tracker.settings import Settings, SettingsError
from tracker.writer import ClickHouseRejectedError

if TYPE_CHECKING:
    from tracker.models import Site

F = TypeVar("F", bound=Callable[..., Any])

# Expected failures: shown as one line, never as a traceback.
_USER_ERRORS = (
    SettingsError,
    StoreLockedError,
    StoreUnavailableError,
    ClickHouseRejectedError,
    AccountError,
    MutationFailedError,
)


def friendly_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except _USER_ERRORS as exc:
            raise click.ClickException(str(exc)) from None
        except sqlalchemy.exc.OperationalError as exc:
            # The config store is down, unreachable or not a database: say which setting.
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise click.ClickException(
                f"FUNNEL_DATABASE_URL: the config store cannot be used: {reason}"
            ) from None

    return wrapper  # type: ignore[return-value]


def _app() -> Flask:
    from tracker import create_app

    return create_app()


def _site(key: str) -> Site:
    """The site with this key (inside an app context), or a one-line error."""
    from tracker import accounts
    from tracker.configdb import db

    site = accounts.site_by_key(db.session, key)
    if site is None:
        raise AccountError(f"no site with key {key!r} (`funnel sites` lists them)")
    return site


def progress(total: int, desc: str, unit: str) -> tqdm[Any]:
    """A progress bar on stderr that also reads sensibly in logs without a terminal."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        file=sys.stderr,
        mininterval=0.5,
        dynamic_ncols=True,
        ascii=not sys.stderr.isatty(),
    )


class PartsBar:
    """A `progress` bar for a ClickHouse mutation, whose size is known only once it runs:
    the callback that `tracker.mutations.run_mutation` calls with (parts done, parts)."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.bar: tqdm[Any] | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if not total:
                return  # nothing to rewrite: no bar at all
            self.bar = progress(total, self.desc, "parts")
        self.bar.total = total  # run_mutation only ever raises it
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="funnel-tracker")
def main() -> None:
    """funnel-tracker: web visitor funnels from first click to sale.

    Settings come from FUNNEL_* environment variables (see the README).
    """


@main.command()
@friendly_errors
def migrate() -> None:
    """Create or upgrade the ClickHouse schema and the config database (idempotent)."""
    from tracker.app import settings_of, store_of
    from tracker.ch_migrations import migrate as ch_migrate
    from tracker.configdb import upgrade

    app = _app()
    settings = settings_of(app)
    upgrade(settings.database_url)
    applied = ch_migrate(store_of(app))
    if applied:
        click.echo(f"ClickHouse: applied {', '.join(applied)}")
    else:
        click.echo("ClickHouse: schema is up to date")
    click.echo("Config database: at the newest revision")


@main.command()
@click.option("--host", help="Address to bind (default FUNNEL_HOST or 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Port to bind (default FUNNEL_PORT or 8000)."
)
@click.option("--no-migrate", is_flag=True, help="Skip migrations before starting.")
@friendly_errors
def serve(host: str | None, port: int | None, no_migrate: bool) -> None:
    """Run the collector, API and dashboard under gunicorn.

    The embedded chdb:// store runs one worker with threads; a ClickHouse server runs
    FUNNEL_WORKERS workers (default 2 x cores + 1).
    """
    from tracker.serve import bind_address, check_host
    from tracker.serve import serve as run
    from tracker.settings import parse_host

    settings = Settings.from_env()
    name = "--host" if host is not None else "FUNNEL_HOST"
    host = settings.host if host is None else parse_host(name, host)
    check_host(host, name)
    bind = bind_address(host, port or settings.port)
    mode = (
        f"embedded store, 1 worker x {settings.threads} threads"
        if settings.embedded
        else f"ClickHouse server, {settings.default_workers()} workers"
    )
    click.echo(f"funnel-tracker on http://{bind} ({mode})", err=True)
    run(settings, bind=bind, migrate=not no_migrate)


@main.command("create-user")
@click.option("--email", required=True, help="Login email.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="At least 8 characters (prompted when omitted).",
)
@click.option(
    "--role",
    type=click.Choice(["admin", "marketer"]),
    default="marketer",
    show_default=True,
    help="admin manages users, sites and tokens.",
)
@click.option("--name", default="", help="Display name.")
@click.option("--site", "sites", multiple=True, help="Site key to make the user a member of.")
@friendly_errors
def create_user(email: str, password: str, role: str, name: str, sites: tuple[str, ...]) -> None:
    """Create a dashboard user."""
    from tracker import accounts
    from tracker.configdb import db

    with _app().app_context():
        user = accounts.create_user(db.session, email, password, role=role, name=name)
        for key in sites:
            accounts.add_member(db.session, user, _site(key))
        db.session.commit()
        click.echo(f"Created {role} {user.email}")


@main.command("create-site")
@click.option("--name", required=True, help="Site name shown in the dashboard.")
@click.option(
    "--domain",
    "domains",
    multiple=True,
    help="Hostname allowed to send events (repeatable; none means any).",
)
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone for reports.")
@click.option(
    "--currency", default="", help="ISO 4217 code sale values are in, e.g. EUR (default: none)."
)
@click.option("--owner", help="Email of a user to make a member.")
@click.option("--key", help="Public site key (generated when omitted).")
@click.option("--base-url", default=None, help="Public URL of this server, for the snippet.")
@friendly_errors
def create_site(
    name: str,
    domains: tuple[str, ...],
    timezone: str,
    currency: str,
    owner: str | None,
    key: str | None,
    base_url: str | None,
) -> None:
    """Create a site and print its embed snippet."""
    from tracker import accounts
    from tracker.configdb import db

    app = _app()
    settings: Settings = app.config["FUNNEL_SETTINGS"]
    with app.app_context():
        owner_user = None
        if owner:
            owner_user = accounts.user_by_email(db.session, owner)
            if owner_user is None:
                raise AccountError(f"no user with email {owner!r}")
        site = accounts.create_site(
            db.session,
            name,
            list(domains),
            timezone=timezone,
            owner=owner_user,
            key=key,
            currency=currency,
        )
        db.session.commit()
        url = base_url or f"http://{settings.host}:{settings.port}"
        click.echo(f"Created site {site.name!r} with key {site.key}")
        click.echo("Paste this into every page, before </head>:")
        click.echo(accounts.embed_snippet(url, site))


@main.command("sites")
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for scripts.")
@friendly_errors
def sites(as_json: bool) -> None:
    """List the sites: key (for --site and the API), name, time zone, domains, funnels."""
    import json

    from sqlalchemy import select

    from tracker import accounts
    from tracker.configdb import db
    from tracker.models import Site

    with _app().app_context():
        found = db.session.scalars(select(Site).order_by(Site.name)).all()
        items = [accounts.site_to_dict(db.session, site) for site in found]
    if as_json:
        click.echo(json.dumps({"sites": items}, indent=2))
        return
    if not items:
        click.echo("No sites yet: create one with `funnel create-site --name NAME`.")
        return
    rows = [
        (
            item["key"],
            item["name"],
            item["timezone"],
            ", ".join(item["domains"]) or "any",
            ", ".join(f"{f['id']}: {f['name']}" for f in item["funnels"]) or "none",
        )
        for item in items
    ]
    header = ("KEY", "NAME", "TIME ZONE", "DOMAINS", "FUNNELS")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]))


@main.command("create-token")
@click.option("--email", required=True, help="User the token acts as.")
@click.option("--name", default="", help="What the token is for.")
@click.option(
    "--read-only", is_flag=True, help="It may read reports and exports but change nothing."
)
@click.option(
    "--expires-days",
    type=click.IntRange(1, 3650),
    default=None,
    help="It stops working after this many days (default: when revoked).",
)
@friendly_errors
def create_token(email: str, name: str, read_only: bool, expires_days: int | None) -> None:
    """Create an API token (printed once; only its hash is stored)."""
    from tracker import accounts
    from tracker.configdb import db

    with _app().app_context():
        user = accounts.user_by_email(db.session, email)
        if user is None:
            raise AccountError(f"no user with email {email!r}")
        _, plain = accounts.create_token(
            db.session, user, name, read_only=read_only, expires_in_days=expires_days
        )
        db.session.commit()
        click.echo(plain)


@main.command()
@click.option(
    "--visitors",
    type=click.IntRange(1, 10_000_000),
    default=5000,
    show_default=True,
    help="How many visitors to simulate.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option(
    "--days",
    type=click.IntRange(1, 730),
    default=42,
    show_default=True,
    help="How many days of history, ending today.",
)
@friendly_errors
def demo(visitors: int, seed: int, days: int) -> None:
    """Create the demo site, an admin login and synthetic traffic (same seed, same events)."""
    from tracker.app import store_of
    from tracker.ch_migrations import migrate as ch_migrate
    from tracker.configdb import db, upgrade
    from tracker.demo_setup import ensure_demo_accounts, replace_demo_events

    app = _app()
    upgrade(app.config["FUNNEL_SETTINGS"].database_url)
    store = store_of(app)
    ch_migrate(store)
    with app.app_context():
        site, created_admin = ensure_demo_accounts(db.session)
        db.session.commit()
        with progress(visitors, "demo traffic", "visitors") as bar:
            total = replace_demo_events(store, site.key, visitors, seed, days, bar.update)
    click.echo(f"Demo site {site.name!r} (key {site.key}): {total} events from {visitors} visitors")
    from tracker.demo import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD

    note = "" if created_admin else " (existing account; password unchanged if you changed it)"
    click.echo(f"Log in as {DEMO_ADMIN_EMAIL} / {DEMO_ADMIN_PASSWORD}{note}")


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--site", "site_key", required=True, help="Key of the site the events belong to.")
@friendly_errors
def import_(file: Path, site_key: str) -> None:
    """Import historical events from FILE (JSON array or NDJSON, optionally gzipped).

    Idempotent by event id: importing the same file twice stores each event once.
    """
    from tracker.collector.state import collector_of
    from tracker.ingest.files import EventFileError, count_events, iter_events
    from tracker.ingest.importer import CHUNK, ImportSummary, import_chunk

    app = _app()
    with app.app_context():
        _site(site_key)  # fails early, before counting the file
        state = collector_of(app)
        try:
            # Reads the whole file, so a damaged or truncated one fails before any import.
            total_events = count_events(file)
        except EventFileError as exc:
            raise click.ClickException(f"{exc}; nothing was imported") from None
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        salt = state.salts.salt()
        total = ImportSummary()
        bad_lines: list[int] = []
        chunk: list[Any] = []
        with progress(total_events, "import", "events") as bar:

            def run() -> None:
                part = import_chunk(state.store, state.pipeline, site_key, chunk, salt)
                total.imported += part.imported
                total.existing += part.existing
                total.dropped.update(part.dropped)
                bar.update(len(chunk))
                chunk.clear()

            try:
                for event in iter_events(file, bad_lines):
                    chunk.append(event)
                    if len(chunk) >= CHUNK:
                        run()
            except EventFileError as exc:  # the file changed after it was counted
                raise click.ClickException(
                    f"{exc}; {total.imported} events were imported before that "
                    f"({total.existing} already present), and a re-run skips them"
                ) from None
            if chunk:
                run()
    if bad_lines:
        total.dropped["invalid_json"] += len(bad_lines)
    dropped = ", ".join(f"{n} {reason}" for reason, n in sorted(total.dropped.items()))
    click.echo(
        f"Imported {total.imported} events into {site_key} "
        f"({total.existing} already present; dropped: {dropped or 'none'})"
    )
    if bad_lines:
        shown = ", ".join(str(n) for n in bad_lines[:10])
        click.echo(f"Lines that are not JSON: {shown}", err=True)


@main.command("export")
@click.option("--site", "site_key", required=True, help="Key of the site whose events to export.")
@click.option(
    "--from",
    "date_from",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="First day, in the site's time zone (default: the oldest event).",
)
@click.option(
    "--to",
    "date_to",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Last day, inclusive (default: the newest event).",
)
@click.option(
    "--output",
    "-o",
    default="-",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path),
    help="File to write; gzipped when its name ends in .gz. Default: standard output.",
)
@friendly_errors
def export(site_key: str, date_from: Any, date_to: Any, output: Path) -> None:
    """Export a site's events as NDJSON that `funnel import` reads back.

    Each line is one event in the import format, ids included, so importing the file into
    another store (or under another site key) rebuilds the same events and the same reports.
    A file is written under a temporary name and renamed when complete.
    """
    import gzip
    import os
    from typing import BinaryIO

    from tracker.app import store_of
    from tracker.export import bounds, create_beside, iter_lines, plan

    app = _app()
    with app.app_context():
        site = _site(site_key)
        try:
            start, end = bounds(
                site.timezone,
                date_from.date() if date_from else None,
                date_to.date() if date_to else None,
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        to_stdout = str(output) == "-"
        tmp: Path | None = None
        raw: BinaryIO = sys.stdout.buffer
        if not to_stdout:
            # Before any query: a folder that cannot take the file fails at once.
            try:
                fd, tmp = create_beside(output)
            except OSError as exc:
                raise click.ClickException(f"cannot write {output}: {exc.strerror}") from None
            raw = os.fdopen(fd, "wb")
        target = gzip.GzipFile(fileobj=raw, mode="wb") if output.suffix == ".gz" else raw
        written = 0
        try:
            store = store_of(app)
            spans = plan(store, site.key, start, end)
            with progress(sum(n for _, _, n in spans), "export", "events") as bar:
                for lines in iter_lines(store, site.key, start, end, spans):
                    target.write(lines)
                    count = lines.count(b"\n")
                    written += count
                    bar.update(count)
            target.flush()
            if tmp is not None:
                target.close()
                raw.close()
                os.replace(tmp, output)
        except BaseException as exc:
            if tmp is not None:
                raw.close()
                tmp.unlink(missing_ok=True)
                if isinstance(exc, OSError):  # the disk filled up, say
                    reason = exc.strerror or exc
                    raise click.ClickException(f"cannot write {output}: {reason}") from None
            raise
    where = "standard output" if to_stdout else str(output)
    click.echo(f"Exported {written} events of {site.key} to {where}", err=True)


@main.command("create-link")
@click.option("--site", "site_key", required=True, help="Key of the site.")
@click.option(
    "--url", "--target", "target", required=True, help="Where the link leads (http/https)."
)
@click.option("--campaign", default="", help="utm_campaign.")
@click.option("--source", default="", help="utm_source, e.g. newsletter.")
@click.option("--medium", default="", help="utm_medium, e.g. email, cpc, social.")
@click.option("--keyword", default="", help="utm_term.")
@click.option("--content", default="", help="utm_content.")
@click.option("--base-url", default=None, help="Public URL of this server.")
@friendly_errors
def create_link(
    site_key: str,
    target: str,
    campaign: str,
    source: str,
    medium: str,
    keyword: str,
    content: str,
    base_url: str | None,
) -> None:
    """Create a tracked link: /r/CODE records a click and redirects to URL with utm tags."""
    from tracker import links
    from tracker.configdb import db

    app = _app()
    settings: Settings = app.config["FUNNEL_SETTINGS"]
    with app.app_context():
        site = _site(site_key)
        link = links.create_link(
            db.session, site, target, campaign, source, medium, keyword, content
        )
        db.session.commit()
        url = (base_url or f"http://{settings.host}:{settings.port}").rstrip("/")
        click.echo(f"Created link {link.code}: {url}/r/{link.code} -> {links.redirect_url(link)}")


@main.command()
@friendly_errors
def prune() -> None:
    """Delete events older than each site's data retention, and rewrite erased persons' data
    off disk (a running server does both daily)."""
    from tracker.app import store_of
    from tracker.configdb import db
    from tracker.erasure import purge_deleted
    from tracker.retention import prune as run_prune

    app = _app()
    bars: list[PartsBar] = []

    def bar(desc: str) -> PartsBar:
        bars.append(PartsBar(desc))
        return bars[-1]

    try:
        with app.app_context():
            pruned = run_prune(
                db.session, store_of(app), on_progress=lambda key: bar(f"pruning {key}")
            )
            purged = purge_deleted(store_of(app), wait=True, on_progress=bar("rewriting erased"))
    finally:
        for b in bars:
            b.close()
    for key, count in pruned:
        click.echo(f"Site {key}: deleted {count} expired events")
    if not pruned:
        click.echo("Nothing to delete: no site has events past its retention")
    if purged:
        click.echo("Erased persons: their data is now rewritten off disk")


@main.group()
def spool() -> None:
    """Inspect the collector's spool; store again events ClickHouse refused."""


@spool.command("status")
@friendly_errors
def spool_status() -> None:
    """Events each spool slot holds that are not stored yet, and frames set aside."""
    from tracker import quarantine

    root = Settings.from_env().spool_dir
    slots = quarantine.status(root)
    if not slots:
        click.echo(f"No spool under {root} yet.")
        return
    for s in slots:
        owner = "in use by a running process" if s.in_use else "free"
        click.echo(
            f"{s.name} ({owner}): {s.waiting_rows} events waiting ({s.waiting_bytes} bytes), "
            f"{s.set_aside_frames} frames set aside ({s.set_aside_rows} events)"
        )
    if any(s.set_aside_frames for s in slots):
        click.echo(
            "Set-aside frames were refused by ClickHouse; after fixing the cause run "
            "`funnel spool retry`."
        )


@spool.command("retry")
@friendly_errors
def spool_retry() -> None:
    """Insert the frames ClickHouse refused (spool/slot-N/rejected.log) again, once the
    cause is fixed (e.g. a column type changed by hand). Frames still refused stay set aside."""
    from tracker import quarantine
    from tracker.app import store_of

    app = _app()
    root = app.config["FUNNEL_SETTINGS"].spool_dir
    waiting = quarantine.pending(root)
    if not waiting:
        click.echo("No frames are set aside.")
        return
    with progress(len(waiting), "retrying", "frames") as bar:
        result = quarantine.retry(store_of(app), root, bar.update)
    click.echo(f"Stored {result.stored_rows} events ({result.stored_frames} frames).")
    if result.refused_frames:
        raise click.ClickException(
            f"{result.refused_frames} frames ({result.refused_rows} events) are still refused "
            f"and stay set aside: {result.last_reason}"
        )


def _cli_actor() -> str:
    """Who runs a command, for audit lines: the operating-system user."""
    import getpass

    try:
        return f"{getpass.getuser()} (command line)"
    except (KeyError, OSError):  # no passwd entry in some containers
        return "the command line"


@main.command("erase-person")
@click.argument("person_id")
@click.option("--site", "site_key", required=True, help="Key of the site.")
@click.option("--dry-run", is_flag=True, help="Only show what would be erased.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@friendly_errors
def erase_person(person_id: str, site_key: str, dry_run: bool, yes: bool) -> None:
    """Erase every stored event of a person (a request to be forgotten).

    PERSON_ID is a visitor or user id; the whole person it belongs to is erased: every
    browser and device stitched to the same user, and every event carrying that user id.
    Waits until the data is rewritten off disk.
    """
    from tracker import erasure
    from tracker.app import store_of

    app = _app()
    with app.app_context():
        site = _site(site_key)
        store = store_of(app)
        try:
            if not dry_run:
                erasure.flush_spool(app)
            found = erasure.find_person(store, site, person_id)
        except (erasure.ErasureError, erasure.PendingEventsError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(
            f"Person {found.person}: {found.events} events from {found.first_seen} to "
            f"{found.last_seen}, visitor ids: {', '.join(found.visitors) or 'none'}"
        )
        if dry_run:
            return
        if not yes:
            click.confirm("Erase them permanently?", abort=True)
        click.echo("Erasing and rewriting the affected data on disk…", err=True)
        rewrite = PartsBar("rewriting")
        try:
            done = erasure.erase_person(
                store, site, person_id, wait=True, on_progress=rewrite, by=_cli_actor()
            )
        finally:
            rewrite.close()
        click.echo(f"Erased {done.events} events of person {done.person}")
        if not done.purged:
            click.echo(
                "They are gone from every report; ClickHouse finishes removing them from disk "
                "in the background.",
                err=True,
            )


if __name__ == "__main__":
    main()
