"""The `borderwatch` command line (click): parse, call, print. Nothing else imports click.

Every `BorderwatchError` a command meets becomes an `Error: ...` message (one line a problem) and exit
status 1, in one place (`_Group.invoke`); the work itself is in `bot.app` (running the flow) and
`bot.query` (reading the store).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import click

from bot import __version__, app, query, store, views
from bot.config import DEFAULT_DB_PATH, Config, default_config_path, load_config
from bot.corpus import read_corpus
from bot.errors import BorderwatchError, DeliveryError, QueryError, QueryTimeoutError
from bot.output import choose_format, emit_rows

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("borderwatch")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {"time": self.formatTime(record), "level": record.levelname, "message": record.getMessage()}
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(payload, ensure_ascii=False)


def _setup_logging(verbose: int, quiet: bool, log_format: str) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger("borderwatch")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for noisy in ("httpx", "httpcore", "apscheduler", "trafilatura", "htmldate", "courlan"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Context:
    """Global options, resolved lazily.

    `apply_log_format`: set when neither --log-format nor BORDERWATCH_LOG_FORMAT was given, to switch
    logging to the config's `log_format` once the config is loaded (logging starts before that).
    """

    def __init__(
        self,
        config_path: Path | None,
        db_path: Path,
        apply_log_format: Callable[[str], None] | None = None,
    ) -> None:
        self.config_path = config_path
        self.db_path = db_path
        self._cfg: Config | None = None
        self._apply_log_format = apply_log_format

    @property
    def cfg(self) -> Config:
        """The config named by --config (or the default one), loaded on first use."""
        if self._cfg is None:
            self._cfg = load_config(self.config_path or default_config_path())
            if self._apply_log_format is not None:
                self._apply_log_format(self._cfg.log_format)
        return self._cfg


class _Group(click.Group):
    """A command group that prints any BorderwatchError as `Error: ...` (one line a problem; exit status 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BorderwatchError as exc:
            raise click.ClickException(str(exc)) from None


pass_ctx = click.make_pass_decorator(Context)


def output_options(func: F) -> F:
    """--table/--json/--nl/--csv/--tsv, as in sqlite-utils."""
    options = [
        click.option("--table", "fmt", flag_value="table", help="Output as a table"),
        click.option("--json", "fmt", flag_value="json", help="Output as a JSON array"),
        click.option("--nl", "fmt", flag_value="nl", help="Output newline-delimited JSON"),
        click.option("--csv", "fmt", flag_value="csv", help="Output as CSV"),
        click.option("--tsv", "fmt", flag_value="tsv", help="Output as TSV"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="borderwatch")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    envvar="BORDERWATCH_CONFIG",
    help="YAML config (default: config/watch.yaml; env BORDERWATCH_CONFIG)",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path),
    envvar="BORDERWATCH_DB",
    default=DEFAULT_DB_PATH,
    show_default=True,
    help="SQLite store (env BORDERWATCH_DB)",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    envvar="BORDERWATCH_LOG_FORMAT",
    help="Log lines as text or JSON (env BORDERWATCH_LOG_FORMAT; default: the config's log_format, else text)",
)
@click.option("-v", "--verbose", count=True, help="More log output")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: Path | None,
    db_path: Path,
    log_format: str | None,
    verbose: int,
    quiet: bool,
) -> None:
    """Watch news about the Afghanistan-Pakistan border; alert when reports of one incident disagree or change."""
    _setup_logging(verbose, quiet, log_format or "text")
    # The config's `log_format` applies only when neither the option nor the environment chose (issue 11).
    follow_config = partial(_setup_logging, verbose, quiet) if log_format is None else None
    ctx.obj = Context(config_path, db_path, follow_config)


# --- config ------------------------------------------------------------------------------------------


@cli.group()
def config() -> None:
    """Configuration commands."""


@config.command("check")
@click.argument("file", required=False, type=click.Path(path_type=Path))
@pass_ctx
def config_check(obj: Context, file: Path | None) -> None:
    """Validate a config file without running anything, and list its feeds."""
    path = file or obj.config_path or default_config_path()
    cfg, knowledge = app.check_config(path)
    click.echo(f"{path}: ok: {len(cfg.feeds)} feeds, {len(cfg.watch.keywords)} keywords")
    for feed in cfg.feeds:
        mode = "pages" if feed.fetch_articles else "feed text"
        click.echo(f"  {feed.name}: {feed.url} every {feed.interval:.0f}s ({mode})")
    click.echo(
        f"  places: {len(knowledge.gazetteer.places)} from {', '.join(map(str, cfg.data_files('places')))}"
    )
    click.echo(
        f"  actors: {len(knowledge.actors.actors)} from {', '.join(map(str, cfg.data_files('actors')))}"
    )


# --- Slack -------------------------------------------------------------------------------------------


@cli.group()
def slack() -> None:
    """Slack commands (the token comes from SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL, never from a file)."""


@slack.command("test")
@pass_ctx
def slack_test(obj: Context) -> None:
    """Check the Slack token (auth.test) and post a test message to the default channel."""
    from bot.alerts.slack import check_slack

    try:
        result = check_slack(obj.cfg, store.open_db(obj.db_path))
    except DeliveryError as exc:
        raise click.ClickException(f"Slack: {exc}") from None
    if result.ts is None:
        click.echo(f"Slack ok ({result.mode}): test message posted to {result.channel}")
    else:
        click.echo(f"Slack ok ({result.mode}): team {result.team}, bot {result.bot}; "
                   f"test message posted to {result.channel}, ts {result.ts}")  # fmt: skip
    if result.missing_scopes:
        click.echo(f"warning: the token lacks {', '.join(result.missing_scopes)}: without them a send "
                   "interrupted by a crash cannot be checked (see config/slack-app-manifest.yaml)", err=True)  # fmt: skip


# --- polling -----------------------------------------------------------------------------------------


@cli.command()
@click.option("--once", is_flag=True, help="One cycle over every feed, deliver pending alerts, exit")
@pass_ctx
def poll(obj: Context, once: bool) -> None:
    """Poll every feed once and deliver pending alerts (use `run` to keep polling on a schedule)."""
    if not once:
        raise click.UsageError("poll needs --once; `borderwatch run` polls on a schedule")
    # The cycle logs its summary line; printing it here too showed it twice (issue 11).
    app.poll_once(obj.cfg, obj.db_path)


@cli.command()
@pass_ctx
def run(obj: Context) -> None:
    """Poll each feed on its own interval and deliver alerts, until SIGTERM or Ctrl-C."""
    app.run_forever(obj.cfg, obj.db_path)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--no-deliver", is_flag=True, help="Store alerts without delivering them")
@pass_ctx
def ingest(obj: Context, paths: tuple[Path, ...], no_deliver: bool) -> None:
    """Replay article files (corpus format) in published order through the pipeline."""
    from rich.progress import Progress

    entries = read_corpus(list(paths))
    with Progress(disable=not sys.stderr.isatty(), transient=True) as progress:
        task = progress.add_task("ingesting", total=len(entries))
        done = app.ingest_entries(
            obj.cfg, obj.db_path, entries, deliver=not no_deliver, advance=lambda: progress.advance(task)
        )
    click.echo(
        f"ingested {done.files} files: {done.stored} new articles or versions, {done.alerts} alerts, "
        f"{done.delivered} delivered",
        err=True,
    )


@cli.command()
@click.option("--delay", default=1.0, show_default=True, help="Seconds between poll cycles")
@pass_ctx
def demo(obj: Context, delay: float) -> None:
    """Serve the bundled seed reports on 127.0.0.1 and poll them, one new report per cycle."""
    db_path = None if obj.db_path == DEFAULT_DB_PATH else obj.db_path
    app.run_demo(obj.config_path or default_config_path(), db_path, delay, say=click.echo, headline=_cyan)


def _cyan(text: str) -> None:
    click.secho(text, fg="cyan")


# --- reading the store -------------------------------------------------------------------------------


@cli.command()
@click.option("--pending", is_flag=True, help="Only alerts not yet delivered, with their next attempt")
@click.option("--limit", default=50, show_default=True)
@click.option(
    "--retry",
    is_flag=True,
    help="Clear the wait of every undelivered alert (after fixing a token or channel): the next delivery, "
    "by `poll --once` or within 15s by a running `run`, tries them now. Sends nothing itself.",
)
@output_options
@pass_ctx
def alerts(obj: Context, pending: bool, limit: int, retry: bool, fmt: str | None) -> None:
    """Recent alerts, newest first, with delivery state; --retry to try undelivered ones now."""
    if retry:
        # Only the wait is cleared: delivery stays with the process that holds the store (issue 11).
        db = store.open_db(obj.db_path)
        try:
            waiting = store.clear_retry_waits(db)
        finally:
            db.close()
        if not waiting:
            click.echo("no undelivered alert is waiting for a retry", err=True)
            return
        plural = "" if waiting == 1 else "s"
        click.echo(f"cleared the wait of {waiting} undelivered alert{plural}: the next `poll --once`, "
                   "or a running `run` within 15s, tries to deliver them", err=True)  # fmt: skip
        return
    with _reading(obj) as db:
        _emit(views.list_alerts(db, pending, limit), fmt)


@cli.command()
@output_options
@pass_ctx
def feeds(obj: Context, fmt: str | None) -> None:
    """Each feed's health: last poll, status, ETag use, errors, backoff."""
    with _reading(obj) as db:
        _emit(query.execute(db, views.FEED_HEALTH_SQL), fmt)


@cli.command()
@click.option(
    "--check",
    is_flag=True,
    help="Exit 1, saying why in one line, when no configured feed is healthy or deliveries have failed "
    "for longer than health.delivery_failing_after (for a container HEALTHCHECK; reads the config)",
)
@output_options
@pass_ctx
def status(obj: Context, check: bool, fmt: str | None) -> None:
    """One-screen health: feeds ok/failing, pending alerts, last poll, store size. Exit 1 if unusable."""
    if check:
        cfg = obj.cfg  # only the config's feeds count: a removed feed keeps its row (issue 11)
        feeds = [(feed.name, feed.url) for feed in cfg.feeds if feed.enabled]
        with _reading(obj) as db:
            health = views.check_health(db, feeds, datetime.now(UTC), cfg.health.delivery_failing_after)
        click.echo(f"{'ok' if health.healthy else 'unhealthy'}: {health.reason}")
        if not health.healthy:
            sys.exit(1)
        return
    with _reading(obj) as db:
        row = views.store_status(db)
    row["store_bytes"] = sum(
        p.stat().st_size for p in obj.db_path.parent.glob(obj.db_path.name + "*") if p.is_file()
    )
    fmt = fmt or ("json" if not sys.stdout.isatty() else "table")
    if fmt == "table":
        for key, value in row.items():
            click.echo(f"{key:>15}: {value}")
    else:
        emit_rows([row], None, fmt)  # type: ignore[arg-type]


# --- querying the store (issue 5): SQL, tables, rows, search, conflicts, changes, serve ----------------


@contextmanager
def _reading(obj: Context) -> Iterator[Any]:
    """The store opened read-only (`mode=ro`), closed afterwards; a damaged page met by any read in the
    block is one `Error:` line naming the store (`store.reading`)."""
    with store.reading(obj.db_path) as db:
        yield db


def _emit(result: query.QueryResult | query.QueryStream, fmt: str | None) -> None:
    emit_rows(result.rows, result.columns, choose_format(fmt))


def _params_option(func: F) -> F:
    return click.option(
        "-p",
        "--param",
        "params",
        type=(str, str),
        multiple=True,
        metavar="NAME VALUE",
        help="Value of a :NAME parameter in the SQL (repeatable)",
    )(func)


@cli.command("query")
@click.argument("sql")
@_params_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=query.DEFAULT_TIMEOUT,
    show_default=True,
    help="Stop the query after this many seconds",
)
@output_options
@pass_ctx
def query_command(
    obj: Context, sql: str, params: tuple[tuple[str, str], ...], timeout: float, fmt: str | None
) -> None:
    """Run SQL on the store, read-only (writes fail inside SQLite), with :named parameters.

    Rows are written as they are read: --csv, --tsv, --nl and --json print any number of rows in little
    memory; a table shows the first 1,000. The time limit covers reading every row.
    """
    with _reading(obj) as db:
        try:
            with query.stream(db, sql, dict(params), timeout) as result:
                _emit(result, fmt)
        except QueryTimeoutError as exc:
            raise QueryTimeoutError(f"{exc} (raise it with --timeout)") from None
        except BrokenPipeError:  # `query ... --csv | head`: the reader has had enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            sys.exit(1)


@cli.command()
@click.option("--counts", is_flag=True, help="Include row counts")
@click.option("--columns", is_flag=True, help="Include column names")
@output_options
@pass_ctx
def tables(obj: Context, counts: bool, columns: bool, fmt: str | None) -> None:
    """List the store's tables (the FTS index's shadow tables left out)."""
    with _reading(obj) as db:
        result = query.list_tables(db, counts, columns)
    chosen = choose_format(fmt)
    rows = result.rows
    if columns and chosen not in ("json", "nl"):
        rows = [{**row, "columns": ", ".join(row["columns"])} for row in rows]
    emit_rows(rows, result.columns, chosen)


@cli.command()
@click.argument("table")
@click.option("--where", help="SQL condition, e.g. 'source = :source' with -p source VOA")
@_params_option
@click.option("-o", "--order", help="SQL order, e.g. 'published desc'")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True, help="Most rows to show")
@output_options
@pass_ctx
def rows(
    obj: Context,
    table: str,
    where: str | None,
    params: tuple[tuple[str, str], ...],
    order: str | None,
    limit: int,
    fmt: str | None,
) -> None:
    """Rows of one table, filtered and ordered with SQL fragments."""
    with _reading(obj) as db:
        _emit(query.select_rows(db, table, where, dict(params), order, limit), fmt)


@cli.command()
@click.argument("term")
@click.option("--source", help="Only outlets whose name contains this (case-insensitive)")
@click.option("--since", help="Published at or after: 30m, 2h, 1d or an ISO date")
@click.option("--until", help="Published at or before: an ISO date (the whole day) or date-time")
@click.option("--incident", "incident_id", type=int, help="Only reports of this incident")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--quote", is_flag=True, help="Search the words as typed, not as FTS5 syntax (OR, NEAR, x*)")
@output_options
@pass_ctx
def search(
    obj: Context,
    term: str,
    source: str | None,
    since: str | None,
    until: str | None,
    incident_id: int | None,
    limit: int,
    quote: bool,
    fmt: str | None,
) -> None:
    """Full-text search of the articles, best match first, with a snippet marking the matches **so**."""
    now = datetime.now(UTC)
    with _reading(obj) as db:
        start = query.parse_since(since, now) if since else None
        end = query.parse_until(until, now) if until else None
        try:
            result = query.search_articles(db, term, source, start, end, incident_id, limit, quote)
        except QueryError as exc:  # FTS5 reads `-`, `:` and quotes as syntax
            if not quote and not isinstance(exc, QueryTimeoutError):
                raise QueryError(f"{exc} (add --quote to search the words as typed)") from None
            raise
        _emit(result, fmt)


@cli.command()
@click.option("--incident", "incident_id", type=int, help="Only conflicts of this incident")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@output_options
@pass_ctx
def conflicts(obj: Context, incident_id: int | None, limit: int, fmt: str | None) -> None:
    """Conflicts between reports (conflict alerts), newest first, with both sides' source, quote and URL."""
    with _reading(obj) as db:
        result = views.list_conflicts(db, incident_id, limit)
    chosen = choose_format(fmt)
    if chosen != "table":
        emit_rows(result.rows, result.columns, chosen)
        return

    def side(row: dict[str, Any], s: str) -> str:  # 15 columns are unreadable on a terminal: one cell a side
        claim = f"{row[s + '_claim']}\n" if row[s + "_claim"] else ""
        return f"{claim}{row[s + '_source']}: \u201c{row[s + '_quote']}\u201d\n{row[s + '_url']}"

    rows = [{"id": r["id"], "kind": r["kind"], "incident_id": r["incident_id"], "summary": r["summary"],
             "side_a": side(r, "a"), "side_b": side(r, "b")} for r in result.rows]  # fmt: skip
    emit_rows(rows, ["id", "kind", "incident_id", "summary", "side_a", "side_b"], chosen)


@cli.command()
@click.option("--since", default="1d", show_default=True, help="30m, 2h, 1d (before now) or an ISO date")
@output_options
@pass_ctx
def changes(obj: Context, since: str, fmt: str | None) -> None:
    """What moved: new incidents and change alerts raised since then, oldest first."""
    with _reading(obj) as db:
        _emit(views.list_changes(db, query.parse_since(since, datetime.now(UTC))), fmt)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind")
@click.option("--port", type=click.IntRange(0, 65535), default=8001, show_default=True, help="0: a free port")
@pass_ctx
def serve(obj: Context, host: str, port: int) -> None:
    """Browse the store in Datasette, read-only, with canned queries and a map (needs borderwatch[web])."""
    from bot.serve import run_datasette

    status = run_datasette(obj.db_path, host, port)
    if status:
        sys.exit(status if status > 0 else 1)


@cli.command()
@click.option("--limit", default=50, show_default=True)
@output_options
@pass_ctx
def incidents(obj: Context, limit: int, fmt: str | None) -> None:
    """Incidents, latest first: type, place, status, reports, independent sources, alerts."""
    with _reading(obj) as db:
        _emit(views.list_incidents(db, limit), fmt)


@cli.command()
@click.argument("incident_id", type=int)
@output_options
@pass_ctx
def incident(obj: Context, incident_id: int, fmt: str | None) -> None:
    """One incident's timeline: its reports, its claims side by side with sources, and its alerts."""
    with _reading(obj) as db:
        detail = views.incident_detail(db, incident_id)
    if detail is None:
        raise click.ClickException(f"no incident {incident_id} in {obj.db_path}")
    head, reports, claims, raised = detail.incident, detail.reports, detail.claims, detail.alerts
    chosen = choose_format(fmt)
    if chosen in ("json", "nl"):
        payload = {"incident": head, "reports": reports, "claims": claims, "alerts": raised}
        click.echo(
            json.dumps(payload, indent=2 if chosen == "json" else None, ensure_ascii=False, default=str)
        )
        return
    click.secho(f"Incident #{head['id']}: {head['title']}", bold=True)
    click.echo(
        f"  type: {head['incident_type']}  place: {head['place'] or '?'}  status: {head['status'] or '?'}  "
        f"reports: {head['articles']}  independent sources: {head['sources']}"
    )
    click.secho("\nReports", bold=True)
    emit_rows(reports, ["published", "source", "title", "version", "duplicate_of", "url"], chosen)
    click.secho("\nClaims (side by side: one line per source and value)", bold=True)
    emit_rows(claims, ["type", "measure", "value", "said_by", "source", "published", "quote"], chosen)
    click.secho("\nAlerts", bold=True)
    emit_rows(raised, ["id", "kind", "created", "summary", "delivered", "ts"], chosen)


def main() -> None:
    """Entry point for `python -m bot`."""
    cli()
