"""Slack delivery (issue 4), through the real slack-sdk against a Slack-compatible server on 127.0.0.1."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import store
from bot.alerts.console import ConsoleSink
from bot.alerts.outbox import deliver_pending
from bot.alerts.slack import (
    MAX_BLOCKS,
    SECTION_LIMIT,
    SlackSink,
    WebhookSink,
    check_slack,
    make_slack_sink,
    make_web_client,
    render_alert,
    route_channels,
)
from bot.config import Config, parse_config
from bot.errors import SlackSetupError
from bot.models import Alert, AlertDraft, Evidence
from tests.slack_server import CHANNELS, TOKEN, SlackServer, text_fields

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DESK, FEED = CHANNELS["border-desk"], CHANNELS["border-feed"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def slack():
    with SlackServer() as server:
        yield server


@pytest.fixture
def db(tmp_path):
    return store.open_db(tmp_path / "t.db")


def make_config(**slack: Any) -> Config:
    slack = {"channel": "#border-desk", "max_per_second": 1000, **slack}
    return parse_config(
        {"feeds": [], "watch": {"keywords": ["Afghan", "Taliban"]}, "slack": slack}, Path("t.yaml")
    )


def make_sink(server: SlackServer, db, token: str = TOKEN, timeout: float = 5.0, **slack: Any):
    env = {"SLACK_BOT_TOKEN": token, "SLACK_BASE_URL": server.base_url}
    return make_slack_sink(make_config(**slack), db, env, timeout=timeout)


def add_incident(
    db, incident_id: int, title: str = "Clash at Torkham", place: str = "Torkham", **more: Any
) -> None:
    db["incidents"].insert({"id": incident_id, "title": title, "place": place, **more}, replace=True)


def add_alert(
    db, kind: str, incident_id: int | None, summary: str, *, evidence: tuple[Evidence, ...] | None = None,
    details: dict[str, Any] | None = None, now: datetime = T0,
) -> int:  # fmt: skip
    evidence = evidence if evidence is not None else (
        Evidence("https://example.org/a", "Dawn", "2025-03-01T09:30:00+05:00", "Officials said 23 soldiers died."),
    )  # fmt: skip
    key = f"{kind}:{incident_id}:{summary}"
    alert_id = store.record_alert(
        db, AlertDraft(kind, incident_id, summary, evidence, key, details or {}), now
    )
    assert alert_id is not None
    return alert_id


def alert_row(db, alert_id: int) -> dict[str, Any]:
    return dict(db["alerts"].get(alert_id))


def stored_alert(db, alert_id: int) -> Alert:
    """The alert as the outbox reads it from the store."""
    return store.alert_from_row(alert_row(db, alert_id))


def as_alert(**row: Any) -> Alert:
    """An alert read through the store's converter from a row of `alerts` with these columns (the others
    empty): the JSON columns go in as stored text, malformed or not."""
    empty = {"id": 0, "kind": "", "incident_id": None, "summary": "", "evidence": None, "details": None,
             "created": "", "sending_since": None}  # fmt: skip
    return store.alert_from_row({**empty, **row})


# --- threads -----------------------------------------------------------------------------------------


def test_first_alert_is_the_parent_and_later_ones_reply_in_its_thread(slack, db):
    add_incident(db, 1, status="ongoing", articles=3, sources=2)
    add_incident(db, 2, title="Deportations from Karachi", place="Karachi")
    first = add_alert(db, "new_incident", 1, "New incident: clash at Torkham")
    conflict = add_alert(
        db, "figure_conflict", 1, "Figures conflict: killed soldiers — ISPR 23 vs Taliban 58"
    )
    other = add_alert(db, "new_incident", 2, "New incident: deportations")
    update = add_alert(db, "figure_change", 1, "Figure changed: ISPR now says 25")
    sink = make_sink(slack, db)

    assert deliver_pending(db, sink, T0) == 4

    parents, replies = slack.parents(DESK), slack.replies(DESK)
    assert [m["metadata"]["event_payload"]["alert_id"] for m in parents] == [first, other]
    assert [m["metadata"]["event_payload"]["alert_id"] for m in replies] == [conflict, update]
    assert all(m["thread_ts"] == parents[0]["ts"] for m in replies)
    assert [m["reply_broadcast"] for m in replies] == [True, False]  # conflicts are broadcast, changes not
    threads = list(db["slack_threads"].rows)
    assert [(t["incident_id"], t["ts"]) for t in threads] == [(1, parents[0]["ts"]), (2, parents[1]["ts"])]
    # The parent was edited to show the incident's current picture, above its first alert.
    assert [u["ts"] for u in slack.state.updates] == [parents[0]["ts"]] * 2
    picture = " ".join(text_fields(slack.state.updates[-1]["blocks"]))
    assert "Incident #1: Clash at Torkham" in picture and "status: ongoing" in picture
    assert "3 articles from 2 sources" in picture and "3 alerts" in picture and "ISPR now says 25" in picture
    assert "New incident: clash at Torkham" in picture
    for alert_id, message in [(first, parents[0]), (conflict, replies[0]), (other, parents[1])]:
        row = alert_row(db, alert_id)
        assert (row["channel"], row["ts"], row["delivered"]) == ("#border-desk", message["ts"], store.iso(T0))

    # A later alert of incident 1 joins the same thread: one parent per incident and channel.
    later = add_alert(db, "status_change", 1, "Status changed: border reopened", now=T0 + timedelta(hours=1))
    assert deliver_pending(db, sink, T0 + timedelta(hours=1)) == 1
    assert len(slack.parents(DESK)) == 2
    assert slack.replies(DESK)[-1]["thread_ts"] == parents[0]["ts"]
    assert slack.replies(DESK)[-1]["metadata"]["event_payload"]["alert_id"] == later
    assert deliver_pending(db, sink, T0 + timedelta(hours=2)) == 0
    assert len(slack.messages) == 5


def test_alerts_without_an_incident_stand_alone(slack, db):
    add_alert(db, "feed_failing", None, "Feed Dawn has failed 5 times in a row: HTTP 503", evidence=())
    add_alert(db, "feed_failing", None, "Feed TOLOnews has failed 5 times in a row: HTTP 503", evidence=())
    assert deliver_pending(db, make_sink(slack, db), T0) == 2
    assert len(slack.parents(DESK)) == 2 and not slack.replies() and not list(db["slack_threads"].rows)


# --- message design ------------------------------------------------------------------------------------


def test_message_shows_headline_sides_sources_quotes_and_links(slack, db):
    add_incident(db, 7)
    evidence = (
        Evidence(
            "https://example.org/ispr",
            "ISPR via Dawn",
            "2025-03-01T09:30:00+05:00",
            "23 soldiers were martyred",
        ),
        Evidence(
            "https://example.org/tolo",
            "TOLOnews",
            "2025-03-01T11:00:00+04:30",
            "58 Pakistani soldiers killed",
        ),
        Evidence(
            "https://example.org/voa", "VOA", "2025-03-01T12:00:00+00:00", "figures could not be verified"
        ),
    )
    details = {"place": "Kurram", "sides": [{"label": "ISPR", "value": 23, "sources": 2, "evidence": [0]},
                                            {"label": "Taliban", "value": 58, "sources": 1, "evidence": [1]}]}  # fmt: skip
    summary = "Figures conflict: killed Pakistani soldiers — ISPR 23 vs Taliban 58"
    add_alert(db, "figure_conflict", 7, summary, evidence=evidence, details=details)

    deliver_pending(db, make_sink(slack, db), T0)

    (message,) = slack.messages
    texts = text_fields(message["blocks"])
    assert texts[0] == f"*{summary}*"
    assert message["text"] == f"{summary} — Kurram"  # the plain fallback
    assert any("Kurram" in t and "incident #7" in t for t in texts)
    ispr = next(t for t in texts if t.startswith("*ISPR: 23*"))
    assert (
        "2 sources" in ispr
        and "23 soldiers were martyred" in ispr
        and "<https://example.org/ispr|article>" in ispr
    )
    assert "_ISPR via Dawn_" in ispr and "2025-03-01 04:30 UTC" in ispr
    taliban = next(t for t in texts if t.startswith("*Taliban: 58*"))
    assert "1 source" in taliban and "TOLOnews" in taliban and "2025-03-01 06:30 UTC" in taliban
    assert any("VOA" in t and "could not be verified" in t for t in texts)  # evidence no side claims
    assert message["unfurl_links"] is False


def test_sides_may_cite_their_evidence_by_url():
    evidence = [
        {"url": "https://example.org/a", "source": "Dawn", "published": "", "quote": "ISPR confirms"},
        {"url": "https://example.org/b", "source": "TOLOnews", "published": "", "quote": "Kabul denies"},
    ]
    sides = [
        {"label": "ISPR", "value": "asserts", "source": "Dawn", "evidence": "https://example.org/a"},
        {"label": "Kabul", "value": "denies", "source": "TOLOnews", "evidence": "https://example.org/b"},
    ]
    alert = as_alert(id=1, kind="position_conflict", summary="Positions conflict", evidence=json.dumps(evidence),
                     details=json.dumps({"sides": sides}))  # fmt: skip
    texts = text_fields(render_alert(alert).blocks)
    assert texts[2].startswith("*ISPR: asserts* · 1 source\n> “ISPR confirms”\n_Dawn_")
    assert texts[3].startswith("*Kabul: denies* · 1 source\n> “Kabul denies”\n_TOLOnews_")
    assert len(texts) == 4  # each piece of evidence shown once, under its side


def test_untrusted_text_pings_no_one_and_makes_no_link(slack, db):
    hostile = "<!channel> <https://evil.example|click>"
    add_incident(db, 3, title=hostile, place="<!here>")
    evidence = (
        Evidence(
            "https://evil.example/x|<!everyone>",
            "<@U0BOSS> & co",
            "<!date^0^x|y>",
            f"{hostile} <#C0DESK0001>",
        ),
        Evidence("javascript:alert(1)", "<!subteam^S1>", "2025-03-01T00:00:00Z", "> quoted & <b>bold</b>"),
    )
    details = {"place": "<!here>", "sides": [{"label": "<!channel>", "value": "<https://evil.example|58>",
                                              "sources": 1, "evidence": [0]}]}  # fmt: skip
    add_alert(db, "new_incident", 3, f"New incident: {hostile}", evidence=evidence)
    add_alert(db, "figure_conflict", 3, f"Figures conflict: {hostile}", evidence=evidence, details=details)

    assert deliver_pending(db, make_sink(slack, db), T0) == 2

    payloads = [c.params for c in slack.calls("chat.postMessage")] + slack.state.updates
    assert len(payloads) == 3  # parent, reply, parent edited
    texts = [t for p in payloads for t in text_fields({"text": p["text"], "blocks": p["blocks"]})]
    assert len(texts) > 10
    for text in texts:
        assert "<!" not in text and "<@" not in text and "<#" not in text and "<https://evil" not in text
        assert "<javascript" not in text
    assert "New incident: &lt;!channel&gt; &lt;https://evil.example|click&gt;" in payloads[0]["text"]
    assert any("&lt;@U0BOSS&gt; &amp; co" in t for t in texts)

    def mrkdwn_objects(value):
        if isinstance(value, dict):
            if value.get("type") == "mrkdwn":
                yield value
            for item in value.values():
                yield from mrkdwn_objects(item)
        elif isinstance(value, list):
            for item in value:
                yield from mrkdwn_objects(item)

    objects = [o for p in payloads for o in mrkdwn_objects(p["blocks"])]
    assert objects and all(o["verbatim"] is True for o in objects)


def test_huge_alert_is_cut_to_slacks_limits_and_still_sent(slack, db):
    evidence = tuple(Evidence(f"https://example.org/{i}", "Source " * 50, "2025-03-01T00:00:00Z", "word " * 2000)
                     for i in range(80))  # fmt: skip
    sides = [
        {"label": f"side {i}", "value": "x" * 5000, "sources": 3, "evidence": list(range(80))}
        for i in range(60)
    ]
    add_alert(db, "figure_conflict", None, "A" * 50_000, evidence=evidence, details={"sides": sides})

    message = render_alert(stored_alert(db, 1))
    assert len(message.blocks) <= MAX_BLOCKS
    assert all(len(t) <= SECTION_LIMIT for t in text_fields(message.blocks))
    assert len(message.text) <= SECTION_LIMIT and message.text.endswith("…")
    assert "more not shown" in text_fields(message.blocks[-1])[0]
    assert deliver_pending(db, make_sink(slack, db), T0) == 1  # the server enforces Slack's limits too
    assert len(slack.messages) == 1


def test_absent_details_and_evidence_are_tolerated():
    for alert in [
        {"id": 1, "kind": "status_change", "summary": "Status changed", "evidence": None, "details": None},
        {"id": 2, "kind": "odd_kind", "summary": "", "evidence": "not json", "details": "[1, 2]"},
        {"id": 3, "kind": "figure_conflict", "summary": "x", "evidence": "[{}, 5]",
         "details": json.dumps({"place": {"name": "Chaman"}, "sides": [{"evidence": [7, "a"]}, "junk"]})},
    ]:  # fmt: skip
        message = render_alert(as_alert(**alert))
        assert message.text and message.blocks
    assert "Chaman" in render_alert(as_alert(**alert)).text


# --- routing -----------------------------------------------------------------------------------------


def test_kind_rule_beats_the_default_channel(slack, db):
    add_incident(db, 1)
    cfg: dict[str, Any] = {
        "channel": "#border-feed",
        "routes": [{"channel": "#border-desk", "kinds": ["*_conflict"]}],
    }
    new = add_alert(db, "new_incident", 1, "New incident: clash")
    conflict = add_alert(db, "figure_conflict", 1, "Figures conflict: 23 vs 58")

    assert deliver_pending(db, make_sink(slack, db, **cfg), T0) == 2

    assert [m["metadata"]["event_payload"]["alert_id"] for m in slack.parents(FEED)] == [new]
    # In #border-desk the conflict is the incident's first message, so it opens the thread there.
    assert [m["metadata"]["event_payload"]["alert_id"] for m in slack.parents(DESK)] == [conflict]
    assert not slack.replies()
    assert (
        alert_row(db, new)["channel"] == "#border-feed"
        and alert_row(db, conflict)["channel"] == "#border-desk"
    )


def test_an_alert_can_go_to_several_channels_with_one_record_each(slack, db):
    add_incident(db, 1, place="Torkham border crossing")
    add_incident(db, 2, title="Deportations", place="Karachi")
    cfg: dict[str, Any] = {"channel": None, "routes": [{"channel": "#border-desk", "places": ["Torkham"]},
                                       {"channel": "#border-feed"}]}  # fmt: skip
    torkham = add_alert(db, "new_incident", 1, "New incident: clash at Torkham")
    karachi = add_alert(db, "new_incident", 2, "New incident: deportations")

    assert deliver_pending(db, make_sink(slack, db, **cfg), T0) == 2

    records = {(r["alert_id"], r["channel"]): r["ts"] for r in db["alert_deliveries"].rows}
    assert set(records) == {(torkham, "#border-desk"), (torkham, "#border-feed"), (karachi, "#border-feed")}
    row = alert_row(db, torkham)
    assert row["channel"] == "#border-desk, #border-feed"
    assert row["ts"] == f"{records[(torkham, '#border-desk')]}, {records[(torkham, '#border-feed')]}"
    assert len(slack.parents(DESK)) == 1 and len(slack.parents(FEED)) == 2


def test_routes_match_topics_and_places_case_insensitively():
    slack = make_config(
        channel="#all",
        routes=[{"channel": "#refugees", "topics": ["deport*", "refugee*"]},
                {"channel": "#kurram", "places": ["kurram"], "kinds": ["status_change"]}],
    ).slack  # fmt: skip
    alert = {"kind": "new_incident", "summary": "New incident: Pakistan DEPORTS Afghans", "details": "{}"}
    assert route_channels(slack, as_alert(**alert)) == ("#refugees",)
    status = {
        "kind": "status_change",
        "summary": "Status changed",
        "details": json.dumps({"place": "Kurram"}),
    }
    assert route_channels(slack, as_alert(**status)) == ("#kurram",)
    assert route_channels(slack, as_alert(**{**status, "kind": "figure_change"})) == ("#all",)
    assert route_channels(slack, as_alert(kind="x", summary="y"), {"incident_type": "refugees return"}) == (
        "#refugees",
    )


# --- order, retries and errors ---------------------------------------------------------------------------


def test_alerts_go_in_order_and_a_failure_holds_the_ones_behind_it(slack, db):
    ids = [add_alert(db, "new_incident", None, f"Alert number {n}") for n in range(5)]
    slack.fail("chat.postMessage", "error", error="internal_error", times=1)  # the first one fails
    sink = make_sink(slack, db)

    assert deliver_pending(db, sink, T0) == 0
    assert slack.messages == []  # nothing jumped the queue
    assert "internal_error" in alert_row(db, ids[0])["last_error"]
    assert deliver_pending(db, sink, T0 + timedelta(seconds=10)) == 0  # still backing off
    assert deliver_pending(db, sink, T0 + timedelta(minutes=5)) == 5
    assert [m["metadata"]["event_payload"]["alert_id"] for m in slack.messages] == ids


def test_429_delays_delivery_but_loses_nothing(slack, db):
    ids = [add_alert(db, "new_incident", n, f"New incident {n}") for n in range(3)]
    slack.fail("chat.postMessage", "429", retry_after=1)

    assert deliver_pending(db, make_sink(slack, db), T0) == 3

    statuses = [c.status for c in slack.calls("chat.postMessage")]
    assert statuses == [429, 200, 200, 200]  # waited out Retry-After, then went on
    assert [m["metadata"]["event_payload"]["alert_id"] for m in slack.messages] == ids


def test_a_long_retry_after_is_honoured_across_cycles(slack, db):
    alert = add_alert(db, "new_incident", 1, "New incident")
    slack.fail("chat.postMessage", "429", retry_after=120, times=3)  # the client gives up at once
    sink = make_sink(slack, db)

    assert deliver_pending(db, sink, T0) == 0
    assert "retry after 120s" in alert_row(db, alert)["last_error"]
    assert deliver_pending(db, sink, T0 + timedelta(seconds=100)) == 0
    assert len(slack.calls("chat.postMessage")) == 1  # nothing was tried before Retry-After passed
    slack.state.faults.clear()
    assert deliver_pending(db, sink, T0 + timedelta(seconds=121)) == 1
    assert len(slack.messages) == 1


def test_server_error_then_success(slack, db):
    alert = add_alert(db, "new_incident", 1, "New incident")
    slack.fail("chat.postMessage", "500")
    sink = make_sink(slack, db)

    assert deliver_pending(db, sink, T0) == 0
    row = alert_row(db, alert)
    assert row["delivered"] is None and "HTTP 500" in row["last_error"] and row["attempts"] == 1
    # A 500 may come after Slack stored the message: the next try looks before it posts again.
    assert deliver_pending(db, sink, T0 + timedelta(minutes=1)) == 1
    assert len(slack.calls("conversations.history")) == 1
    assert len(slack.messages) == 1 and alert_row(db, alert)["ts"] == slack.messages[0]["ts"]


def test_permanent_error_keeps_the_alert_queued_and_is_reported_once(slack, db, caplog):
    slack.state.not_in.add(DESK)
    cfg: dict[str, Any] = {
        "routes": [{"channel": "#border-desk", "kinds": ["new_incident"]}],
        "channel": "#border-feed",
    }
    stuck = add_alert(db, "new_incident", 1, "New incident: clash")
    other = add_alert(db, "figure_change", 2, "Figure changed")
    sink = make_sink(slack, db, **cfg)
    caplog.set_level(logging.DEBUG, logger="borderwatch")

    for minutes in (0, 2, 4, 6, 8):
        deliver_pending(db, sink, T0 + timedelta(minutes=minutes))

    reports = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(reports) == 1 and reports[0].levelno == logging.ERROR
    assert "not_in_channel" in reports[0].getMessage() and "#border-desk" in reports[0].getMessage()
    assert (
        alert_row(db, stuck)["delivered"] is None and "not_in_channel" in alert_row(db, stuck)["last_error"]
    )
    assert alert_row(db, other)["delivered"] is not None  # the other channel went on
    assert len(slack.calls("chat.postMessage")) == 3  # the stuck one tried at 0 and 6 min (every 5), 1 other

    slack.state.not_in.clear()  # somebody invited the bot
    assert deliver_pending(db, sink, T0 + timedelta(minutes=12)) == 1
    assert alert_row(db, stuck)["delivered"] is not None


def test_a_rejected_token_is_reported_without_the_token(slack, db, caplog, capfd):
    secret = "xoxb-1111-2222-SECRETSECRET"
    add_alert(db, "new_incident", 1, "New incident")
    caplog.set_level(logging.DEBUG)

    deliver_pending(db, make_sink(slack, db, token=secret), T0)

    assert "invalid_auth" in alert_row(db, 1)["last_error"]
    dump = "\n".join(db.conn.iterdump())
    out, err = capfd.readouterr()
    for text in (caplog.text, dump, out, err):
        assert secret not in text and "SECRETSECRET" not in text
    assert "invalid_auth: the token in SLACK_BOT_TOKEN was rejected" in caplog.text


# --- no duplicates after an interrupted send -------------------------------------------------------------


def test_message_accepted_then_connection_dropped_is_not_sent_twice(slack, db):
    alert = add_alert(db, "new_incident", 1, "New incident")
    slack.fail("chat.postMessage", "drop")  # Slack stores the message, we never hear back
    sink = make_sink(slack, db)

    assert deliver_pending(db, sink, T0) == 0
    assert len(slack.messages) == 1
    assert alert_row(db, alert)["sending_since"] == store.iso(T0)  # still in flight

    assert deliver_pending(db, sink, T0 + timedelta(minutes=1)) == 1

    assert len(slack.calls("chat.postMessage")) == 1 and len(slack.messages) == 1
    assert alert_row(db, alert)["ts"] == slack.messages[0]["ts"]
    assert (
        db["slack_threads"].get((1, "#border-desk"))["ts"] == slack.messages[0]["ts"]
    )  # the parent is known
    history = slack.calls("conversations.history")[0].params
    assert history["channel"] == DESK and history["include_all_metadata"] in ("1", "true")


def test_dropped_reply_is_found_in_its_thread(slack, db):
    add_alert(db, "new_incident", 1, "New incident")
    sink = make_sink(slack, db)
    deliver_pending(db, sink, T0)
    reply = add_alert(db, "figure_change", 1, "Figure changed")  # not broadcast: only in the thread
    slack.fail("chat.postMessage", "drop")

    assert deliver_pending(db, sink, T0 + timedelta(minutes=1)) == 0
    assert deliver_pending(db, sink, T0 + timedelta(minutes=2)) == 1

    assert len(slack.messages) == 2 and len(slack.calls("chat.postMessage")) == 2
    assert len(slack.calls("conversations.replies")) == 1
    assert alert_row(db, reply)["ts"] == slack.replies(DESK)[0]["ts"]


def test_answer_slower_than_the_timeout_is_not_sent_twice(slack, db):
    alert = add_alert(db, "new_incident", 1, "New incident")
    slack.fail("chat.postMessage", "slow", delay=3)
    sink = make_sink(slack, db, timeout=0.5)

    assert deliver_pending(db, sink, T0) == 0
    assert "no answer from Slack" in alert_row(db, alert)["last_error"]
    assert deliver_pending(db, sink, T0 + timedelta(minutes=1)) == 1
    assert len(slack.messages) == 1 and len(slack.calls("chat.postMessage")) == 1


def test_crash_before_the_send_sends_once(slack, db):
    alert = add_alert(db, "new_incident", 1, "New incident")
    db["alerts"].update(alert, {"sending_since": store.iso(T0)})  # marked in flight, then the process died

    assert deliver_pending(db, make_sink(slack, db), T0 + timedelta(minutes=5)) == 1

    assert len(slack.calls("conversations.history")) == 1 and len(slack.messages) == 1


# --- noise control -----------------------------------------------------------------------------------


def test_cooldown_coalesces_a_burst_into_one_reply(slack, db):
    add_incident(db, 1, status="ongoing", articles=6, sources=4)
    first = add_alert(db, "new_incident", 1, "New incident: clash at Torkham")
    burst = [add_alert(db, "figure_change", 1, "Figure changed: 25 killed"),
             add_alert(db, "figure_conflict", 1, "Figures conflict: ISPR 25 vs Taliban 58")]  # fmt: skip
    sink = make_sink(slack, db, cooldown="10m")

    assert deliver_pending(db, sink, T0) == 1  # the parent at once
    assert deliver_pending(db, sink, T0 + timedelta(minutes=5)) == 0  # the burst waits
    assert deliver_pending(db, sink, T0 + timedelta(minutes=11)) == 2

    (parent,), (reply,) = slack.parents(DESK), slack.replies(DESK)
    assert parent["metadata"]["event_payload"]["alert_id"] == first
    assert reply["thread_ts"] == parent["ts"] and reply["reply_broadcast"] is True  # holds a conflict
    assert reply["metadata"]["event_payload"] == {"alert_id": burst[0], "alert_ids": f"{burst[0]},{burst[1]}"}
    texts = " ".join(text_fields(reply["blocks"]))
    assert "2 changes since the last alert" in texts and "25 killed" in texts and "Taliban 58" in texts
    assert {alert_row(db, i)["ts"] for i in burst} == {reply["ts"]}
    (update,) = slack.state.updates
    assert update["ts"] == parent["ts"] and "6 articles from 4 sources" in " ".join(
        text_fields(update["blocks"])
    )


class FakeClock:
    """Monotonic time that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_posts_are_paced_to_one_per_second_per_channel(slack, db):
    clock = FakeClock()
    cfg = make_config(max_per_second=1, routes=[{"channel": "#border-feed", "kinds": ["status_change"]}])
    sink = SlackSink(make_web_client(TOKEN, slack.base_url), db, cfg.slack, clock=clock, sleep=clock.sleep)
    for n in range(3):
        add_alert(db, "new_incident", None, f"Alert {n}")

    deliver_pending(db, sink, T0)
    assert len(slack.messages) == 3 and clock.slept == [1.0, 1.0]  # 1 message/s in #border-desk

    clock.now += 0.25
    add_alert(db, "status_change", None, "Status changed")
    deliver_pending(db, sink, T0)
    assert len(slack.parents(FEED)) == 1 and clock.slept == [1.0, 1.0]  # #border-feed does not wait


# --- the webhook and the console -------------------------------------------------------------------------


def test_webhook_posts_each_alert_on_its_own(slack, db):
    add_alert(db, "new_incident", 1, "New incident: <!channel>")
    add_alert(db, "figure_conflict", 1, "Figures conflict")
    sink = make_slack_sink(make_config(), db, {"SLACK_WEBHOOK_URL": slack.webhook_url})
    assert isinstance(sink, WebhookSink)

    assert deliver_pending(db, sink, T0) == 2

    assert [p["text"] for p in slack.state.webhook] == ["New incident: &lt;!channel&gt;", "Figures conflict"]
    assert all("thread_ts" not in p for p in slack.state.webhook)
    assert [alert_row(db, i)["channel"] for i in (1, 2)] == ["webhook", "webhook"]
    result = check_slack(make_config(), db, {"SLACK_WEBHOOK_URL": slack.webhook_url})
    assert result.mode == "incoming webhook" and "borderwatch is connected" in slack.state.webhook[-1]["text"]


def test_webhook_that_is_gone_is_reported_once_without_its_url(slack, db, caplog):
    add_alert(db, "new_incident", 1, "New incident")
    url = slack.webhook_url.replace("webhooksecret0001", "removedsecret0002")
    sink = make_slack_sink(make_config(), db, {"SLACK_WEBHOOK_URL": url})
    caplog.set_level(logging.DEBUG)

    deliver_pending(db, sink, T0)
    deliver_pending(db, sink, T0 + timedelta(minutes=10))

    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    assert "no_service" in caplog.text and "removedsecret0002" not in caplog.text
    assert "removedsecret0002" not in "\n".join(db.conn.iterdump())
    assert alert_row(db, 1)["delivered"] is None


def test_console_sink_prints_and_records(db):
    add_alert(db, "new_incident", 1, "New incident: clash")
    stream = io.StringIO()
    assert deliver_pending(db, ConsoleSink(stream), T0) == 1
    assert "NEW INCIDENT" in stream.getvalue() and alert_row(db, 1)["channel"] == "console"
    assert deliver_pending(db, ConsoleSink(stream), T0) == 0


def test_no_channel_no_token_are_setup_errors(slack, db):
    with pytest.raises(SlackSetupError, match="slack.channel"):
        make_slack_sink(make_config(channel=None), db, {"SLACK_BOT_TOKEN": TOKEN})
    with pytest.raises(SlackSetupError, match="SLACK_BOT_TOKEN"):
        make_slack_sink(make_config(), db, {})
    env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_BASE_URL": slack.base_url}
    result = check_slack(make_config(), db, env)
    assert (result.team, result.bot, result.ts) == (
        "Borderwatch Test",
        "borderwatch",
        slack.messages[0]["ts"],
    )
    assert result.missing_scopes == ()
    slack.state.scopes = "chat:write, channels:read"
    missing = check_slack(make_config(), db, env).missing_scopes
    assert missing == ("chat:write.public", "channels:history", "groups:history", "groups:read")


# --- the command line ----------------------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BORDERWATCH_"))}
    return {**env, **extra}


def _borderwatch(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_cli_slack_test(slack, tmp_path):
    env = _env(SLACK_BOT_TOKEN=TOKEN, SLACK_BASE_URL=slack.base_url)
    envs = {"ok": env, "bad": {**env, "SLACK_BOT_TOKEN": "xoxb-wrong-SECRET"}, "none": _env()}
    # Started together: each run is a fresh interpreter, and they do not share a store.
    running = {
        name: subprocess.Popen([sys.executable, "-m", "bot", "--db", str(tmp_path / f"{name}.db"), "slack", "test"],
                               env=e, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, e in envs.items()
    }  # fmt: skip
    results = {name: (p.communicate(timeout=120), p.returncode) for name, p in running.items()}

    (out, err), code = results["ok"]
    assert code == 0, err
    (message,) = slack.messages
    assert out.strip() == (f"Slack ok (bot token): team Borderwatch Test, bot borderwatch; "
                           f"test message posted to #border-desk, ts {message['ts']}")  # fmt: skip
    assert message["channel"] == DESK
    (out, err), code = results["bad"]
    assert (
        code == 1 and err.strip() == "Error: Slack: invalid_auth: the token in SLACK_BOT_TOKEN was rejected"
    )
    assert "SECRET" not in out + err
    (out, err), code = results["none"]
    assert code == 1
    assert err.strip() == "Error: neither SLACK_BOT_TOKEN nor SLACK_WEBHOOK_URL is set in the environment"


def test_cli_ingest_delivers_to_slack_end_to_end(slack, tmp_path, seed_dir):
    db_path = tmp_path / "e2e.db"
    env = _env(SLACK_BOT_TOKEN=TOKEN, SLACK_BASE_URL=slack.base_url)
    done = _borderwatch(
        "--db", str(db_path), "ingest", *map(str, sorted(seed_dir.glob("*.txt"))), env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr

    listed = _borderwatch("--db", str(db_path), "alerts", "--json", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    alerts = sorted(json.loads(listed.stdout), key=lambda a: a["id"])
    assert alerts and len(slack.messages) == len(alerts)  # one message per alert
    by_ts = {m["ts"]: m for m in slack.messages}
    parents: dict[int, str] = {}
    for alert in alerts:
        assert alert["delivered"] and alert["channel"] == "#border-desk" and alert["ts"] in by_ts
        message = by_ts[alert["ts"]]
        assert message["metadata"]["event_payload"]["alert_id"] == alert["id"]
        if alert["incident_id"] not in parents:
            parents[alert["incident_id"]] = alert["ts"]
            assert message["thread_ts"] is None  # the incident's first alert opens its thread
        else:
            assert message["thread_ts"] == parents[alert["incident_id"]]
    assert len(slack.parents()) == len(parents)
    assert len(slack.replies()) == len(alerts) - len(parents)
    assert f"{len(alerts)} delivered" in done.stderr


def test_the_minimal_config_works_and_the_manifest_asks_for_every_scope(slack, db):
    import yaml

    from bot.alerts.slack import SCOPES

    minimal = {
        "feeds": [],
        "watch": {"keywords": ["Afghan", "Taliban"]},
        "slack": {"channel": "#border-desk"},
    }
    env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_BASE_URL": slack.base_url}
    sink = make_slack_sink(parse_config(minimal, Path("minimal.yaml")), db, env)
    add_alert(db, "new_incident", 1, "New incident")
    assert deliver_pending(db, sink, T0) == 1 and slack.messages[0]["channel"] == DESK

    manifest = yaml.safe_load((ROOT / "config" / "slack-app-manifest.yaml").read_text())
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(SCOPES)


def test_a_deleted_parent_starts_a_new_thread(slack, db):
    add_alert(db, "new_incident", 1, "New incident")
    sink = make_sink(slack, db)
    deliver_pending(db, sink, T0)
    slack.state.messages.clear()  # somebody deleted the parent in Slack
    later = add_alert(db, "figure_change", 1, "Figure changed")

    assert deliver_pending(db, sink, T0 + timedelta(minutes=1)) == 1

    (parent,) = slack.parents(DESK)
    assert parent["metadata"]["event_payload"]["alert_id"] == later and not slack.replies()
    assert db["slack_threads"].get((1, "#border-desk"))["ts"] == parent["ts"]


def test_an_interrupted_coalesced_reply_is_found_for_all_its_alerts(slack, db):
    add_alert(db, "new_incident", 1, "New incident")
    burst = [add_alert(db, "figure_change", 1, f"Figure changed to {n}") for n in (25, 27)]
    sink = make_sink(slack, db, cooldown="10m")
    deliver_pending(db, sink, T0)
    slack.fail("chat.postMessage", "drop")

    assert deliver_pending(db, sink, T0 + timedelta(minutes=11)) == 0
    assert deliver_pending(db, sink, T0 + timedelta(minutes=12)) == 2

    (reply,) = slack.replies(DESK)
    assert len(slack.calls("chat.postMessage")) == 2
    assert [alert_row(db, i)["ts"] for i in burst] == [reply["ts"], reply["ts"]]
