"""Incident grouping and comparison, end to end through the real pipeline on a real SQLite file.

Each case feeds short reports written the way wire copy and feed summaries are, and checks which alerts
the store holds afterwards (the semantics of issue 3).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_pipeline
from bot.config import REPO_CONFIG_DIR, parse_config
from bot.cycle import Pipeline, process_entry
from bot.models import Entry
from bot.store import open_db

T0 = datetime(2025, 10, 12, 6, 0, tzinfo=UTC)


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[Pipeline]:
    cfg = parse_config(
        {"watch": {"keywords": ["Afghan*", "Taliban", "Pakistan*"]}}, REPO_CONFIG_DIR / "watch.yaml"
    )
    pipeline = build_pipeline(cfg, open_db(tmp_path / "t.db"))
    yield pipeline
    pipeline.close()


def report(pipe: Pipeline, slug: str, source: str, title: str, body: str, hours: float) -> None:
    """Feed one report through the pipeline as `ingest` does."""
    when = T0 + timedelta(hours=hours)
    entry = Entry(f"https://example.org/t/{slug}", None, title, body, when, source)
    process_entry(pipe, entry, when, text=body, keep_all=True)


def alerts(pipe: Pipeline) -> list[dict[str, Any]]:
    return [dict(r) for r in pipe.db.table("alerts").rows_where(order_by="id")]


def kinds(pipe: Pipeline) -> list[str]:
    return [a["kind"] for a in alerts(pipe)]


def incident_of(pipe: Pipeline, slug: str) -> int | None:
    row = next(pipe.db.table("articles").rows_where("url = ?", [f"https://example.org/t/{slug}"]))
    return row["incident_id"]


CLASH_ISPR = (
    "Pakistan says 23 soldiers killed in border clashes with Afghan Taliban",
    "RAWALPINDI: Twenty-three Pakistani soldiers were killed in overnight clashes with Afghan Taliban forces "
    "along the border in Kurram, the Inter-Services Public Relations said on Sunday. The ISPR said more than "
    "200 Taliban fighters were killed in the exchange of fire.",
)
CLASH_TALIBAN = (
    "Taliban say 58 Pakistani soldiers killed in retaliatory border operations",
    "KABUL: Afghan Taliban forces killed 58 Pakistani soldiers in clashes along the border in Kurram, "
    "chief spokesman Zabihullah Mujahid said on Sunday. Mujahid said nine Taliban fighters died in the clashes.",
)


def test_sides_disagreeing_on_a_toll_is_one_conflict_and_a_repeat_stays_quiet(pipe: Pipeline) -> None:
    report(pipe, "ispr", "Dawn", *CLASH_ISPR, hours=0)
    report(pipe, "taliban", "TOLOnews", *CLASH_TALIBAN, hours=2)
    assert incident_of(pipe, "ispr") == incident_of(pipe, "taliban") is not None
    conflicts = [a for a in alerts(pipe) if a["kind"] == "figure_conflict"]
    # Two measures disagree: killed Pakistani soldiers (23 vs 58) and killed Taliban fighters (200+ vs 9).
    assert len(conflicts) == 2, [a["summary"] for a in conflicts]
    soldiers = next(a for a in conflicts if "Pakistani soldiers killed" in a["summary"])
    assert "twenty-three" in soldiers["summary"].lower() or "23" in soldiers["summary"]
    assert "58" in soldiers["summary"]
    fighters = next(a for a in conflicts if "Taliban fighters killed" in a["summary"])
    assert "more than 200" in fighters["summary"] and "nine" in fighters["summary"]
    cited = {e["url"] for e in json.loads(soldiers["evidence"])}
    assert cited == {"https://example.org/t/ispr", "https://example.org/t/taliban"}
    # A third outlet repeating the Taliban's figure strengthens a side but raises nothing new.
    report(pipe, "third", "Arab News", "Taliban claim 58 Pakistani soldiers killed in Kurram clashes",
           "KABUL: Taliban spokesman Zabihullah Mujahid said 58 Pakistani soldiers were killed in the clashes "
           "along the border in Kurram.", hours=3)  # fmt: skip
    assert kinds(pipe).count("figure_conflict") == 2
    # A new value on an already conflicting measure is news.
    report(pipe, "fourth", "Khaama Press", "Taliban now say 60 Pakistani soldiers killed in Kurram",
           "KABUL: Zabihullah Mujahid said 60 Pakistani soldiers were killed in the clashes along the border "
           "in Kurram.", hours=4)  # fmt: skip
    assert kinds(pipe).count("figure_conflict") + kinds(pipe).count("figure_change") == 3


def test_a_rising_toll_from_the_same_source_is_a_change_not_a_conflict(pipe: Pipeline) -> None:
    report(pipe, "a", "Dawn", *CLASH_ISPR, hours=0)
    report(pipe, "b", "Dawn", "Pakistan says toll in border clashes rises to 25 soldiers",
           "RAWALPINDI: The number of Pakistani soldiers killed in the clashes with Afghan Taliban forces along "
           "the border in Kurram rose to 25, the ISPR said on Monday, after two wounded soldiers died. The ISPR "
           "said 25 Pakistani soldiers were killed.", hours=20)  # fmt: skip
    changes = [a for a in alerts(pipe) if a["kind"] == "figure_change"]
    assert len(changes) == 1, kinds(pipe)
    assert "→" in changes[0]["summary"] and "25" in changes[0]["summary"]
    assert "figure_conflict" not in kinds(pipe)


SEED_LIKE = [
    ("s1", "Pakistani daily", "Military grants refuge to fleeing Afghan soldiers",
     "ISLAMABAD: A total of 46 members of the Afghanistan forces, including five officers, crossed the border "
     "late Sunday near the border town of Chitral, the ISPR said Monday. The soldiers would be returned to "
     "Kabul after due process, the statement said. The statement said 35 Afghan soldiers who had asked for "
     "refuge on July 1 had also been handed over to Afghan authorities.", 0),
    ("s2", "Afghanistan Times", "Afghan soldiers flee to Pakistan",
     "KABUL: At least 46 Afghan soldiers have fled to Pakistan after the Taliban stormed their posts, "
     "Pakistani officials said. Pakistan army said in a statement that dozens of Afghan soldiers requested "
     "refuge at the border crossing at Arundu in Chitral and were given safe passage.", 3),
    ("s3", "Al Jazeera", "Afghan soldiers who crossed border returned",
     "At least 46 Afghan soldiers who had sought refuge in Pakistan have been returned to their homeland, "
     "Pakistan's military said. They were handed over at Nawa Pass in Bajaur. The Afghan government earlier "
     "denied its troops had crossed into Pakistan. Hundreds of Afghan soldiers have fled to Tajikistan, Iran "
     "and Pakistan in recent weeks.", 8),
]  # fmt: skip


def test_agreeing_figures_places_and_an_earlier_batch_raise_no_conflict(pipe: Pipeline) -> None:
    for slug, source, title, body, hours in SEED_LIKE:
        report(pipe, slug, source, title, body, hours)
    ids = {incident_of(pipe, slug) for slug, *_ in SEED_LIKE}
    assert len(ids) == 1 and None not in ids
    got = kinds(pipe)
    assert got.count("new_incident") == 1
    # 46 / at least 46 / dozens agree; 35 is another batch; hundreds is background; Arundu lies in
    # Chitral; the hand-back point (Nawa Pass) is another event of the same incident.
    for kind in ("figure_conflict", "figure_change", "location_conflict", "position_change"):
        assert kind not in got, got
    assert "status_change" in got  # would be returned -> have been returned
    assert "position_conflict" in got  # the military confirms what Kabul denies


def test_the_same_kind_of_incident_far_away_stays_its_own(pipe: Pipeline) -> None:
    report(pipe, "kurram", "Dawn", *CLASH_ISPR, hours=0)
    report(pipe, "chaman", "Dawn", "Border clash at Chaman leaves three civilians dead",
           "QUETTA: Three civilians were killed when Pakistani and Afghan forces exchanged fire at the Chaman "
           "border crossing in Balochistan on Monday, officials said.", hours=20)  # fmt: skip
    assert incident_of(pipe, "kurram") != incident_of(pipe, "chaman")
    assert kinds(pipe).count("new_incident") == 2


def test_a_story_inside_pakistan_with_the_pakistani_taliban_opens_no_incident(pipe: Pipeline) -> None:
    report(pipe, "bannu", "Al Jazeera", "Bombing kills at least 12 in northwest Pakistan, police say",
           "Jaish al-Fursan, a group affiliated with the Pakistani Taliban, claimed responsibility for the attack "
           "on the Bannu cantonment.", hours=0)  # fmt: skip
    report(pipe, "bannu2", "Dawn", "Bannu attack toll rises to 18",
           "BANNU: The toll in the attack on the Bannu cantonment rose to 18, police said. The Tehreek-e-Taliban "
           "Pakistan denied involvement.", hours=5)  # fmt: skip
    assert incident_of(pipe, "bannu") is None and incident_of(pipe, "bannu2") is None
    assert alerts(pipe) == []


def test_border_closure_then_reopening_is_a_status_change(pipe: Pipeline) -> None:
    report(pipe, "c1", "Dawn", "Torkham border closed after Pakistan-Afghanistan firing",
           "LANDI KOTAL: The Torkham border crossing was closed for all traffic on Friday after security forces of "
           "Pakistan and Afghanistan exchanged fire over the construction of a border post, officials said.",
           hours=0)  # fmt: skip
    report(pipe, "c2", "Express Tribune", "Torkham reopens for trade after nine days",
           "LANDI KOTAL: The Torkham border crossing between Pakistan and Afghanistan was reopened on Sunday after "
           "a jirga agreed a ceasefire, and trade resumed, officials said.", hours=48)  # fmt: skip
    assert incident_of(pipe, "c1") == incident_of(pipe, "c2")
    statuses = [a for a in alerts(pipe) if a["kind"] == "status_change"]
    assert statuses, kinds(pipe)
    assert any("reopened" in a["summary"] or "ceasefire" in a["summary"] for a in statuses)


def test_an_actor_reversing_itself_is_a_position_change(pipe: Pipeline) -> None:
    report(pipe, "p1", "TOLOnews", "Afghan defence ministry denies Pakistani drone strike in Khost",
           "KABUL: The Afghan defence ministry denied reports that Pakistani drones struck a village in Khost near "
           "the border, saying the reports were baseless.", hours=0)  # fmt: skip
    report(pipe, "p2", "TOLOnews", "Afghan defence ministry confirms Pakistani drone strike in Khost",
           "KABUL: The Afghan defence ministry confirmed on Tuesday that Pakistani drones struck a village in Khost "
           "near the border, and said it would respond.", hours=26)  # fmt: skip
    assert incident_of(pipe, "p1") == incident_of(pipe, "p2")
    assert "position_change" in kinds(pipe)


def test_syndicated_copy_joins_the_incident_and_raises_nothing(pipe: Pipeline) -> None:
    report(pipe, "w1", "Dawn", *CLASH_ISPR, hours=0)
    before = kinds(pipe)
    title, body = CLASH_ISPR
    report(pipe, "w2", "The News", title, body.replace("on Sunday", "on Sunday morning"), hours=1)
    assert kinds(pipe) == before
    copy = next(pipe.db.table("articles").rows_where("url = ?", ["https://example.org/t/w2"]))
    assert copy["duplicate_of"] is not None and copy["incident_id"] == incident_of(pipe, "w1")
