"""Benchmark 3: near-duplicates. Recall on wire copy with 0-20% of the words edited, false merges among
distinct articles (many of them reports of one story by different outlets), and time per article:
ours (`minhash_signature`, `band_keys` rows in a real store, `find_near_duplicate`) beside datasketch's
`MinHashLSH` (in memory, same shingles, same 64 permutations, candidates verified at the same threshold).
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.articles import Article, StoryMaker, edit_words
from bench.measure import Row
from bot import store
from bot.fingerprint import (
    DUPLICATE_THRESHOLD,
    NUM_PERM,
    band_keys,
    content_hash,
    minhash_signature,
    normalize_text,
)

LEVELS = (0.0, 0.05, 0.10, 0.15, 0.20)
GOAL_RECALL = 0.95
GOAL_FALSE = 1.0


@dataclass(frozen=True, slots=True)
class Doc:
    """One article of the stream: `original` is the index of the article it copies (None: distinct)."""

    index: int
    source: str
    text: str
    original: int | None
    level: float | None


def dataset(distinct: int, copies_per_level: int, seed: int = 5) -> list[Doc]:
    """`distinct` different articles (several per story), then wire copies of some at each edit level."""
    rng = random.Random(seed)
    originals: list[Article] = []
    maker = StoryMaker(seed=seed)
    while len(originals) < distinct:
        originals.extend(a for a in maker.make_story() if a.copy_of is None)
    originals = originals[:distinct]
    docs = [Doc(i, a.source, a.title + "\n" + a.text, None, None) for i, a in enumerate(originals)]
    for level in LEVELS:
        for i in rng.sample(range(distinct), copies_per_level):
            text = edit_words(docs[i].text, level, rng)
            docs.append(Doc(len(docs), f"Wire {len(docs)}", text, i, level))
    return docs


def _ours(docs: list[Doc]) -> tuple[list[int | None], float]:
    """Each doc's match (index of the doc it was merged with, or None) and the seconds spent deduplicating."""
    matches: list[int | None] = []
    spent = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-dup-") as tmp:
        db = store.open_db(Path(tmp) / "dup.db")
        for doc in docs:
            started = time.perf_counter()
            signature = minhash_signature(doc.text)
            found = store.find_near_duplicate(db, signature, doc.source)
            spent += time.perf_counter() - started
            with db.atomic():
                db.conn.execute(
                    "insert into articles (id, url, canonical_url, source, title, text, text_hash, signature, "
                    "duplicate_of) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [doc.index + 1, f"https://x/{doc.index}", f"https://x/{doc.index}", doc.source, "",
                     doc.text[:200], content_hash(doc.text), signature, found],
                )  # fmt: skip
                started = time.perf_counter()
                if signature is not None:  # the band rows, as store.insert_article writes them
                    db.table("article_bands").insert_all(
                        ({"band_key": k, "article_id": doc.index + 1} for k in band_keys(signature)),
                        ignore=True,
                    )
                spent += time.perf_counter() - started
            matches.append(found - 1 if found is not None else None)
        db.close()
    return matches, spent


def _datasketch(docs: list[Doc]) -> tuple[list[int | None], float]:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=DUPLICATE_THRESHOLD, num_perm=NUM_PERM)
    sketches: dict[int, tuple[Any, str, int]] = {}
    matches: list[int | None] = []
    started = time.perf_counter()
    for doc in docs:
        words = normalize_text(doc.text).split()
        shingles = {" ".join(words[i : i + 3]).encode("utf-8") for i in range(len(words) - 2)}
        sketch = MinHash(num_perm=NUM_PERM, seed=7)
        sketch.update_batch(list(shingles))
        found = None
        for key in sorted(lsh.query(sketch)):
            other, source, root = sketches[key]
            if source != doc.source and sketch.jaccard(other) >= DUPLICATE_THRESHOLD:
                found = root
                break
        sketches[doc.index] = (sketch, doc.source, found if found is not None else doc.index)
        lsh.insert(doc.index, sketch)
        matches.append(found)
    return matches, time.perf_counter() - started


def _score(docs: list[Doc], matches: list[int | None], root: Callable[[int], int]) -> dict[str, Any]:
    recall: dict[float, list[bool]] = {level: [] for level in LEVELS}
    false = 0
    distinct = 0
    for doc, match in zip(docs, matches, strict=True):
        if doc.original is None:
            distinct += 1
            false += int(match is not None)
        else:
            assert doc.level is not None
            recall[doc.level].append(match is not None and root(match) == doc.original)
    return {
        "recall": {level: sum(v) / len(v) if v else 0.0 for level, v in recall.items()},
        "false_per_1000": 1000 * false / max(distinct, 1),
        "false": false,
        "distinct": distinct,
    }


def run(distinct: int, copies_per_level: int, details: dict[str, Any]) -> list[Row]:
    """Run both methods on the same stream; returns the table rows."""
    docs = dataset(distinct, copies_per_level)

    def root_of(matches: list[int | None]) -> Callable[[int], int]:
        def root(index: int) -> int:
            while docs[index].original is not None and matches[index] is not None:
                index = matches[index]  # type: ignore[assignment,unused-ignore]
            return index

        return root

    ours, ours_s = _ours(docs)
    theirs, theirs_s = _datasketch(docs)
    ours_score = _score(docs, ours, root_of(ours))
    theirs_score = _score(docs, theirs, root_of(theirs))
    details["neardup"] = {"docs": len(docs), "ours": ours_score, "datasketch": theirs_score,
                          "ours_seconds": ours_s, "datasketch_seconds": theirs_s}  # fmt: skip
    name = f"3 near-duplicates ({distinct} distinct + {copies_per_level}/level copies)"
    rows = []
    for level in LEVELS:
        goal = f">= {GOAL_RECALL:g}" if level == 0.05 else ""
        met = ours_score["recall"][level] >= GOAL_RECALL if level == 0.05 else None
        rows.append(Row(name, f"recall, {level:.0%} of words edited", "", ours_score["recall"][level],
                        {"MinHashLSH": theirs_score["recall"][level]}, goal, met))  # fmt: skip
    rows.append(Row(name, "false merges per 1,000 distinct articles", "", ours_score["false_per_1000"],
                    {"MinHashLSH": theirs_score["false_per_1000"]}, f"<= {GOAL_FALSE:g}",
                    ours_score["false_per_1000"] <= GOAL_FALSE,
                    f"{ours_score['false']} of {ours_score['distinct']} (several reports per story)"))  # fmt: skip
    per_ours, per_theirs = 1000 * ours_s / len(docs), 1000 * theirs_s / len(docs)
    rows.append(Row(name, "time per article (signature + lookup + index)", "ms", per_ours,
                    {"MinHashLSH": per_theirs}, "faster than MinHashLSH", per_ours < per_theirs,
                    "ours includes SQLite band lookups and inserts; MinHashLSH is in memory"))  # fmt: skip
    return rows
