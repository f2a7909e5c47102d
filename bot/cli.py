"""The `borderwatch` command line (click). Library errors become one-line `Error: ...` messages here."""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from bot import __version__, query, store
from bot.alerts.console import ConsoleSink
from bot.alerts.outbox import Sink, deliver_pending
from bot.config import DEFAULT_DB_PATH, Config, ConfigError, default_config_path, load_config, parse_config
from bot.corpus import CorpusError, read_corpus
from bot.cycle import Pipeline, build_pipeline, poll_feed, process_entry, run_cycle
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
    """Global options, resolved lazily."""

    def __init__(self, config_path: Path | None, db_path: Path) -> None:
        self.config_path = config_path
        self.db_path = db_path
        self._cfg: Config | None = None

    @property
    def cfg(self) -> Config:
        if self._cfg is None:
            path = self.config_path or default_config_path()
            try:
                self._cfg = load_config(path)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
        return self._cfg

    def open_db(self) -> Any:
        try:
            return store.open_db(self.db_path)
        except store.StoreError as exc:
            raise click.ClickException(str(exc)) from None

    def open_readonly(self) -> Any:
        try:
            return store.open_readonly(self.db_path)
        except store.StoreError as exc:
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    default="text",
    envvar="BORDERWATCH_LOG_FORMAT",
    help="Log lines as text or JSON",
)
@click.option("-v", "--verbose", count=True, help="More log output")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors")
@click.pass_context
def cli(
    ctx: click.Context, config_path: Path | None, db_path: Path, log_format: str, verbose: int, quiet: bool
) -> None:
    """Watch news about the Afghanistan-Pakistan border; alert when reports of one incident disagree or change."""
    _setup_logging(verbose, quiet, log_format)
    ctx.obj = Context(config_path, db_path)


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
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{path}: ok: {len(cfg.feeds)} feeds, {len(cfg.watch.keywords)} keywords")
    for feed in cfg.feeds:
        mode = "pages" if feed.fetch_articles else "feed text"
        click.echo(f"  {feed.name}: {feed.url} every {feed.interval:.0f}s ({mode})")
    for name in ("places.yaml", "actors.yaml"):
        click.echo(f"  {name}: {cfg.data_file(name)}")


# --- sinks and delivery ------------------------------------------------------------------------------


def make_sink(cfg: Config, db: Any) -> Sink:
    """Slack when SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL is set, else the console."""
    if os.environ.get("SLACK_BOT_TOKEN") or os.environ.get("SLACK_WEBHOOK_URL"):
        from bot.alerts.slack import SlackSetupError, make_slack_sink

        try:
            return make_slack_sink(cfg, db)
        except SlackSetupError as exc:
            raise click.ClickException(str(exc)) from None
    return ConsoleSink()


def _deliver(cfg: Config, db: Any, sink: Sink | None = None) -> int:
    return deliver_pending(db, sink or make_sink(cfg, db))


@cli.group()
def slack() -> None:
    """Slack commands (the token comes from SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL, never from a file)."""


@slack.command("test")
@pass_ctx
def slack_test(obj: Context) -> None:
    """Check the Slack token (auth.test) and post a test message to the default channel."""
    from bot.alerts.outbox import DeliveryError
    from bot.alerts.slack import SlackSetupError, check_slack

    try:
        result = check_slack(obj.cfg, obj.open_db())
    except SlackSetupError as exc:
        raise click.ClickException(str(exc)) from None
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


@contextmanager
def _pipeline(obj: Context, cfg: Config | None = None) -> Iterator[Pipeline]:
    db = obj.open_db()
    pipe = build_pipeline(cfg or obj.cfg, db)
    try:
        yield pipe
    finally:
        pipe.close()


@contextmanager
def _single_instance(db_path: Path) -> Iterator[None]:
    """Refuse a second `run` on the same store."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = db_path.with_name(db_path.name + ".lock")
    handle = open(lock_path, "a+")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise click.ClickException(
            f"another borderwatch run is already using {db_path} (lock {lock_path})"
        ) from None
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


# --- polling -----------------------------------------------------------------------------------------


@cli.command()
@click.option("--once", is_flag=True, help="One cycle over every feed, deliver pending alerts, exit")
@pass_ctx
def poll(obj: Context, once: bool) -> None:
    """Poll every feed once and deliver pending alerts (use `run` to keep polling on a schedule)."""
    if not once:
        raise click.UsageError("poll needs --once; `borderwatch run` polls on a schedule")
    with _single_instance(obj.db_path), _pipeline(obj) as pipe:
        sink = make_sink(pipe.cfg, pipe.db)
        summary = run_cycle(pipe, deliver=lambda: _deliver(pipe.cfg, pipe.db, sink))
    click.echo(summary.line(), err=True)


@cli.command()
@pass_ctx
def run(obj: Context) -> None:
    """Poll each feed on its own interval and deliver alerts, until SIGTERM or Ctrl-C."""
    from bot.scheduler import build_scheduler, stop_on_signals

    with _single_instance(obj.db_path), _pipeline(obj) as pipe:
        sink = make_sink(pipe.cfg, pipe.db)

        def poll_one(index: int) -> None:
            from bot.cycle import CycleSummary

            summary = CycleSummary(feeds=1)
            started = time.monotonic()
            try:
                poll_feed(pipe, index, datetime.now(UTC), summary)
            except Exception:
                summary.errors += 1
                logger.exception("feed %s: poll failed", pipe.cfg.feeds[index].name)
            if summary.polled or summary.errors:
                summary.elapsed = time.monotonic() - started
                logger.info("%s (%s)", summary.line(), pipe.cfg.feeds[index].name)

        def deliver() -> None:
            with pipe.lock:
                try:
                    _deliver(pipe.cfg, pipe.db, sink)
                except Exception:
                    logger.exception("delivery failed")
                pipe.db.execute("pragma wal_checkpoint(passive)")

        scheduler = build_scheduler(pipe.cfg, poll_one, deliver)
        stop_on_signals(scheduler)
        logger.info(
            "borderwatch %s running: %d feeds, store %s", __version__, len(pipe.cfg.feeds), obj.db_path
        )
        scheduler.start()
        deliver()
        logger.info("borderwatch stopped")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--no-deliver", is_flag=True, help="Store alerts without delivering them")
@pass_ctx
def ingest(obj: Context, paths: tuple[Path, ...], no_deliver: bool) -> None:
    """Replay article files (corpus format) in published order through the pipeline."""
    try:
        entries = read_corpus(list(paths))
    except CorpusError as exc:
        raise click.ClickException(str(exc)) from None
    with _pipeline(obj) as pipe:
        stored = alerts = 0
        show = sys.stderr.isatty()
        from rich.progress import Progress

        with Progress(disable=not show, transient=True) as progress:
            task = progress.add_task("ingesting", total=len(entries))
            for entry in entries:
                now = entry.published or datetime.now(UTC)
                outcome = process_entry(pipe, entry, now, text=entry.summary, keep_all=True)
                stored += int(outcome.stored or outcome.new_version)
                alerts += outcome.alerts
                progress.advance(task)
        delivered = 0 if no_deliver else _deliver(pipe.cfg, pipe.db)
    click.echo(
        f"ingested {len(entries)} files: {stored} new articles or versions, {alerts} alerts, "
        f"{delivered} delivered",
        err=True,
    )


@cli.command()
@click.option("--delay", default=1.0, show_default=True, help="Seconds between poll cycles")
@pass_ctx
def demo(obj: Context, delay: float) -> None:
    """Serve the bundled seed reports on 127.0.0.1 and poll them, one new report per cycle."""
    from bot.demo import FeedServer, demo_items

    items = demo_items()
    with FeedServer(items) as server, tempfile.TemporaryDirectory() as tmp:
        db_path = obj.db_path if obj.db_path != DEFAULT_DB_PATH else Path(tmp) / "demo.db"
        cfg = parse_config(
            {
                "feeds": [{"name": "Loopback News", "url": server.feed_url, "interval": "1m"}],
                "watch": {"keywords": ["Afghan*", "Taliban"]},
                "network": {"allow_private": ["127.0.0.0/8"], "timeout": 10},
            },
            obj.config_path or default_config_path(),
        )
        click.echo(f"demo: serving {len(items)} seed reports at {server.feed_url}; store {db_path}\n")
        db = store.open_db(db_path)
        pipe = build_pipeline(cfg, db)
        sink = ConsoleSink()
        try:
            for shown in range(1, len(items) + 1):
                server.reveal(shown)
                item = items[shown - 1]
                click.secho(
                    f"--- poll {shown}: the feed now shows {item.entry.source}: {item.entry.title}", fg="cyan"
                )
                summary = run_cycle(pipe, now=item.entry.published, deliver=lambda: deliver_pending(db, sink))
                click.echo(f"    ({summary.new} new article, {summary.alerts} alerts)\n")
                time.sleep(delay)
            summary = run_cycle(pipe, deliver=lambda: deliver_pending(db, sink))
            click.secho(
                f"--- poll {len(items) + 1}: nothing new (not modified: {summary.not_modified})", fg="cyan"
            )
        finally:
            pipe.close()
        counts = (
            db.execute("select count(*) from articles").fetchone()[0],
            db.execute("select count(*) from alerts").fetchone()[0],
        )
        click.echo(f"\ndemo done: {counts[0]} articles, {counts[1]} alerts.")


# --- reading the store -------------------------------------------------------------------------------


@cli.command()
@click.option("--pending", is_flag=True, help="Only alerts not yet delivered")
@click.option("--limit", default=50, show_default=True)
@output_options
@pass_ctx
def alerts(obj: Context, pending: bool, limit: int, fmt: str | None) -> None:
    """Recent alerts, newest first, with delivery state."""
    db = obj.open_readonly()
    where = "where delivered is null" if pending else ""
    rows = store.rows(
        db,
        f"select id, kind, incident_id, summary, created, delivered, channel, ts, attempts, last_error "
        f"from alerts {where} order by id desc limit ?",
        [limit],
    )
    emit_rows(rows, None, choose_format(fmt))


@cli.command()
@output_options
@pass_ctx
def feeds(obj: Context, fmt: str | None) -> None:
    """Each feed's health: last poll, status, ETag use, errors, backoff."""
    with _reading(obj) as db:
        _emit(query.execute(db, query.FEED_HEALTH_SQL), fmt)


@cli.command()
@click.option("--check", is_flag=True, help="Exit 1 when no feed is healthy (for a container HEALTHCHECK)")
@output_options
@pass_ctx
def status(obj: Context, check: bool, fmt: str | None) -> None:
    """One-screen health: feeds ok/failing, pending alerts, last poll, store size. Exit 1 if unusable."""
    db = obj.open_readonly()
    one = functools.partial(lambda sql: db.execute(sql).fetchone()[0])
    size = sum(p.stat().st_size for p in obj.db_path.parent.glob(obj.db_path.name + "*") if p.is_file())
    row = {
        "feeds": one("select count(*) from feeds"),
        "feeds_failing": one("select count(*) from feeds where consecutive_errors > 0 and not retired"),
        "feeds_retired": one("select count(*) from feeds where retired"),
        "articles": one("select count(*) from articles"),
        "incidents": one("select count(*) from incidents"),
        "alerts": one("select count(*) from alerts"),
        "alerts_pending": one("select count(*) from alerts where delivered is null"),
        "last_poll": one("select max(last_checked) from feeds"),
        "store_bytes": size,
    }
    if check:
        healthy = row["feeds"] - row["feeds_failing"] - row["feeds_retired"]
        click.echo(
            f"feeds healthy={healthy} failing={row['feeds_failing']} pending alerts={row['alerts_pending']}"
        )
        if row["feeds"] and healthy <= 0:
            sys.exit(1)
        return
    fmt = fmt or ("json" if not sys.stdout.isatty() else "table")
    if fmt == "table":
        for key, value in row.items():
            click.echo(f"{key:>15}: {value}")
    else:
        emit_rows([row], None, fmt)  # type: ignore[arg-type]


# --- querying the store (issue 5): SQL, tables, rows, search, conflicts, changes, serve ----------------


@contextmanager
def _reading(obj: Context) -> Iterator[Any]:
    """The store opened read-only (`mode=ro`); a QueryError inside becomes a one-line `Error: ...`."""
    db = obj.open_readonly()
    try:
        yield db
    except query.QueryError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        db.close()


def _emit(result: query.QueryResult, fmt: str | None) -> None:
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
    """Run SQL on the store, read-only (writes fail inside SQLite), with :named parameters."""
    with _reading(obj) as db:
        _emit(query.execute(db, sql, dict(params), timeout), fmt)


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
        except query.QueryError as exc:  # FTS5 reads `-`, `:` and quotes as syntax
            if not quote and not isinstance(exc, query.QueryTimeoutError):
                raise query.QueryError(f"{exc} (add --quote to search the words as typed)") from None
            raise
        _emit(result, fmt)


@cli.command()
@click.option("--incident", "incident_id", type=int, help="Only conflicts of this incident")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@output_options
@pass_ctx
def conflicts(obj: Context, incident_id: int | None, limit: int, fmt: str | None) -> None:
    """Conflicts between reports (*_conflict alerts), newest first, with both sides' source, quote and URL."""
    with _reading(obj) as db:
        result = query.list_conflicts(db, incident_id, limit)
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
    """What moved: new incidents and *_change alerts raised since then, oldest first."""
    with _reading(obj) as db:
        _emit(query.list_changes(db, query.parse_since(since, datetime.now(UTC))), fmt)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind")
@click.option("--port", type=click.IntRange(0, 65535), default=8001, show_default=True, help="0: a free port")
@pass_ctx
def serve(obj: Context, host: str, port: int) -> None:
    """Browse the store in Datasette, read-only, with canned queries and a map (needs borderwatch[web])."""
    from bot.serve import ServeError, run_datasette

    try:
        status = run_datasette(obj.db_path, host, port)
    except ServeError as exc:
        raise click.ClickException(str(exc)) from None
    if status:
        sys.exit(status if status > 0 else 1)


@cli.command()
@click.option("--limit", default=50, show_default=True)
@output_options
@pass_ctx
def incidents(obj: Context, limit: int, fmt: str | None) -> None:
    """Incidents, latest first: type, place, status, reports, independent sources, alerts."""
    db = obj.open_readonly()
    found = store.rows(
        db,
        """select i.id, i.event, i.place, i.status, i.first_published, i.last_published, i.articles,
                  i.sources, (select count(*) from alerts a where a.incident_id = i.id) as alerts, i.title
           from incidents i order by i.last_published desc, i.id desc limit ?""",
        [limit],
    )
    emit_rows(found, None, choose_format(fmt))


@cli.command()
@click.argument("incident_id", type=int)
@output_options
@pass_ctx
def incident(obj: Context, incident_id: int, fmt: str | None) -> None:
    """One incident's timeline: its reports, its claims side by side with sources, and its alerts."""
    db = obj.open_readonly()
    head = next(store.rows(db, "select * from incidents where id = ?", [incident_id]), None)
    if head is None:
        raise click.ClickException(f"no incident {incident_id} in {obj.db_path}")
    reports = list(
        store.rows(
            db,
            "select published, source, title, url, version, duplicate_of from articles "
            "where incident_id = ? order by published, id",
            [incident_id],
        )
    )
    claims = list(
        store.rows(
            db,
            "select c.published, c.source, c.type, c.measure, c.value, c.source_key as said_by, c.quote, c.url "
            "from claims c where c.incident_id = ? order by c.type, c.measure, c.published, c.id",
            [incident_id],
        )
    )
    raised = list(
        store.rows(
            db,
            "select id, kind, created, summary, delivered, ts from alerts where incident_id = ? order by id",
            [incident_id],
        )
    )
    chosen = choose_format(fmt)
    if chosen in ("json", "nl"):
        payload = {"incident": head, "reports": reports, "claims": claims, "alerts": raised}
        click.echo(
            json.dumps(payload, indent=2 if chosen == "json" else None, ensure_ascii=False, default=str)
        )
        return
    click.secho(f"Incident #{head['id']}: {head['title']}", bold=True)
    click.echo(
        f"  type: {head['event']}  place: {head['place'] or '?'}  status: {head['status'] or '?'}  "
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
