"""Large stores for the ingest and query benchmarks, built once and cached under bench/.cache/.

Fast path: a few hundred generated articles go through the real pipeline (`process_entry`) into a small
*template* store; its incidents, claims, incident keys and alerts are the realistic rows that the large
stores repeat, story after story, with new ids and times. Articles themselves (generated text, FTS
index, a version row, 16 LSH band rows each) are inserted with sqlite-utils `insert_all` into a store
created by `bot.store.open_db`, so the schema, indexes and triggers are the real ones. Articles arrive
at a steady rate (about 200 a day from 40 stories), so a bigger store covers a longer time, as a real
one would: what the pipeline looks at around "now" is the same at every size, and only a step that
scans the store would cost more.

Band keys of stored articles are random (their signatures would be too costly to compute for 1M
articles): lookups cost the same index probes, and real copies among stored articles are not needed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bench.articles import Article, StoryMaker
from bench.measure import CACHE, ROOT
from bot import store
from bot.config import parse_config

VERSION = 2
STORIES_PER_DAY = 40.0
START = datetime(2010, 1, 1, tzinfo=UTC)
TEMPLATE_ARTICLES = 600
BATCH = 2000


def bench_config(path: Path | None = None) -> Any:
    """A config with the shipped watch keywords and no feeds."""
    watch = yaml.safe_load((ROOT / "config" / "watch.yaml").read_text(encoding="utf-8"))["watch"]
    return parse_config({"feeds": [], "watch": watch}, path or ROOT / "config" / "bench.yaml")


def entry_of(article: Article) -> Any:
    """The pipeline entry for a generated article (its full text goes in as `text=`)."""
    return article.entry()


@dataclass
class TemplateStory:
    """What the real pipeline made of one generated story."""

    incident: dict[str, Any] | None
    keys: list[str]
    claims: list[list[dict[str, Any]]]  # per article
    alerts: list[dict[str, Any]]
    joins_previous: bool = False


def template_store() -> Path:
    """The small store made by the real pipeline, cached."""
    path = CACHE / f"template-v{VERSION}.db"
    if path.exists():
        return path
    from bot.app import build_pipeline
    from bot.cycle import process_entry

    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    for leftover in CACHE.glob(partial.name + "*"):
        leftover.unlink()
    db = store.open_db(partial)
    pipe = build_pipeline(bench_config(), db)
    maker = StoryMaker(seed=99, start=datetime(2024, 1, 1, tzinfo=UTC), stories_per_day=STORIES_PER_DAY)
    for article in maker.articles(TEMPLATE_ARTICLES):
        process_entry(pipe, entry_of(article), article.published, text=article.text, keep_all=True)
    pipe.close()
    db.execute("pragma wal_checkpoint(truncate)")
    db.close()
    partial.rename(path)
    return path


def template_stories() -> list[TemplateStory]:
    """The template store's stories: incident, keys, claims per article, alerts."""
    conn = sqlite3.connect(template_store())
    conn.row_factory = sqlite3.Row
    articles = conn.execute("select id, url, incident_id from articles order by id").fetchall()
    by_story: dict[str, list[sqlite3.Row]] = defaultdict(list)
    for row in articles:
        by_story[row["url"].rsplit("story-", 1)[1].split("-")[0]].append(row)
    stories = []
    taken: set[int] = set()
    for rows in by_story.values():
        incident_id = next((r["incident_id"] for r in rows if r["incident_id"]), None)
        incident = None
        keys: list[str] = []
        alerts: list[dict[str, Any]] = []
        joins = incident_id in taken  # the pipeline put this story into an earlier story's incident
        if incident_id is not None and not joins:
            taken.add(incident_id)
            incident = dict(conn.execute("select * from incidents where id = ?", [incident_id]).fetchone())
            keys = [
                r[0]
                for r in conn.execute("select key from incident_keys where incident_id = ?", [incident_id])
            ]
            alerts = [
                dict(r) for r in conn.execute("select * from alerts where incident_id = ?", [incident_id])
            ]
        claims = [
            [dict(c) for c in conn.execute("select * from claims where article_id = ?", [r["id"]])]
            for r in rows
        ]
        stories.append(TemplateStory(incident, keys, claims, alerts, joins))
    conn.close()
    return stories


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """A cached store and what a benchmark needs to know about it."""

    path: Path
    articles: int
    incidents: int
    claims: int
    alerts: int
    first: datetime
    last: datetime
    build_seconds: float


def store_path(size: int) -> Path:
    """Where the store of `size` articles is cached."""
    return CACHE / f"store-{size}-v{VERSION}.db"


def build_store(size: int, log: Any = print) -> StoreInfo:
    """The cached store of `size` articles, built first if needed."""
    path = store_path(size)
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        data = json.loads(meta.read_text())
        return StoreInfo(path, data["articles"], data["incidents"], data["claims"], data["alerts"],
                         datetime.fromisoformat(data["first"]), datetime.fromisoformat(data["last"]),
                         data["build_seconds"])  # fmt: skip
    started = time.perf_counter()
    templates = template_stories()
    log(f"  building a store of {size:,} articles (cached in {path.relative_to(ROOT)}) ...")
    partial = path.with_suffix(".partial")
    for leftover in CACHE.glob(partial.name + "*"):
        leftover.unlink()
    db = store.open_db(partial)
    db.execute("pragma synchronous = off")
    db.execute("pragma cache_size = -262144")
    counts = _fill(db, size, templates)
    db.execute("analyze")
    db.execute("pragma wal_checkpoint(truncate)")
    db.close()
    partial.rename(path)
    for suffix in ("-wal", "-shm"):
        Path(str(partial) + suffix).unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    info = StoreInfo(path, size, counts["incidents"], counts["claims"], counts["alerts"], counts["first"],
                     counts["last"], seconds)  # fmt: skip
    meta.write_text(json.dumps({**{k: v for k, v in counts.items() if k not in ("first", "last")},
                                "articles": size, "first": counts["first"].isoformat(),
                                "last": counts["last"].isoformat(), "build_seconds": seconds}))  # fmt: skip
    log(f"  built in {seconds:.0f} s")
    return info


def _fill(db: Any, size: int, templates: list[TemplateStory]) -> dict[str, Any]:
    rng = random.Random(size)
    maker = StoryMaker(seed=size, start=START, stories_per_day=STORIES_PER_DAY)
    counts: dict[str, Any] = {"incidents": 0, "claims": 0, "alerts": 0, "first": None, "last": None}
    articles: list[dict[str, Any]] = []
    versions: list[dict[str, Any]] = []
    bands: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    incidents: list[dict[str, Any]] = []
    keys: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    article_id = 0

    def flush(force: bool = False) -> None:
        if len(articles) < BATCH and not force:
            return
        with db.atomic():
            for table, rows in (("incidents", incidents), ("articles", articles), ("article_versions", versions),
                                ("article_bands", bands), ("claims", claims), ("incident_keys", keys),
                                ("alerts", alerts)):  # fmt: skip
                if rows:
                    _insert(db, table, rows)
                    rows.clear()

    while article_id < size:
        story = maker.make_story()  # in the order made: a wire copy's `copy_of` points back into it
        span = (min(a.published for a in story), max(a.published for a in story))
        template = templates[maker.story % len(templates)]
        incident_id = counts["incidents"] if template.joins_previous and counts["incidents"] else None
        if template.incident is not None:
            counts["incidents"] += 1
            incident_id = counts["incidents"]
            row = dict(template.incident)
            row.update(id=incident_id, title=story[0].title, first_seen=store.iso(span[0]),
                       last_seen=store.iso(span[1]), first_published=store.iso(span[0]),
                       last_published=store.iso(span[1]), articles=len(story),
                       sources=len({a.source for a in story}))  # fmt: skip
            incidents.append(row)
            keys.extend({"key": k, "incident_id": incident_id} for k in template.keys)
            for alert in template.alerts:
                counts["alerts"] += 1
                when = span[1]
                alerts.append({**alert, "id": counts["alerts"], "incident_id": incident_id,
                               "dedupe_key": f"{alert['dedupe_key']}#{incident_id}", "created": store.iso(when),
                               "delivered": store.iso(when + timedelta(seconds=2))})  # fmt: skip
        ids: list[int] = []
        for number, article in enumerate(story):
            if article_id >= size:
                break
            article_id += 1
            ids.append(article_id)
            published = store.iso(article.published)
            counts["first"] = min(counts["first"] or article.published, article.published)
            counts["last"] = max(counts["last"] or article.published, article.published)
            text_hash = hashlib.sha256(article.text.encode()).hexdigest()
            duplicate_of = ids[article.copy_of] if article.copy_of is not None else None
            articles.append({
                "id": article_id, "url": article.url, "canonical_url": article.url, "guid": article.url,
                "feed_id": None, "source": article.source, "title": article.title, "published": published,
                "fetched": published, "updated": None, "text": article.text, "text_hash": text_hash,
                "signature": rng.randbytes(256), "duplicate_of": duplicate_of, "incident_id": incident_id,
                "on_topic": 1, "in_scope": int(incident_id is not None), "version": 1, "summary_only": 0,
                "entry_hash": text_hash,
            })  # fmt: skip
            versions.append({"article_id": article_id, "version": 1, "title": article.title, "text": article.text,
                             "text_hash": text_hash, "fetched": published})  # fmt: skip
            bands.extend(
                {"band_key": rng.getrandbits(64) - 2**63, "article_id": article_id} for _ in range(16)
            )
            if incident_id is not None and duplicate_of is None and template.claims:
                for claim in template.claims[number % len(template.claims)]:
                    counts["claims"] += 1
                    claims.append({**claim, "id": counts["claims"], "incident_id": incident_id,
                                   "article_id": article_id, "url": article.url, "source": article.source,
                                   "published": published, "seen": published})  # fmt: skip
        flush()
    flush(force=True)
    return counts


def _insert(db: Any, table: str, rows: list[dict[str, Any]]) -> None:
    """Rows with the same keys, inserted with one executemany (sqlite-utils' insert_all spends more time
    preparing rows in Python than SQLite spends storing them)."""
    columns = list(rows[0])
    names = ", ".join(f"[{c}]" for c in columns)
    marks = ", ".join("?" * len(columns))
    db.conn.executemany(
        f"insert into [{table}] ({names}) values ({marks})", [tuple(r[c] for c in columns) for r in rows]
    )


def copy_store(info: StoreInfo, target: Path) -> Path:
    """A private copy of a cached store (the benchmark writes into it), flushed to disk first so that the
    copy's write-back does not land inside the measured run (SQLite's checkpoints call fsync)."""
    shutil.copyfile(info.path, target)
    with open(target, "rb+") as handle:
        os.fsync(handle.fileno())
    return target


def measured_articles(info: StoreInfo, count: int, seed: int = 2024) -> Iterator[Article]:
    """`count` new articles whose stories start just before the store's last article (so they meet its
    recent incidents), at the store's own rate."""
    maker = StoryMaker(seed=seed, start=info.last - timedelta(days=1), stories_per_day=STORIES_PER_DAY)
    return maker.articles(count)
