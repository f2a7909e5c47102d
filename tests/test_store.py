"""The store's schema: migrations run in the order they are numbered, and an older store is upgraded."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from sqlite_utils import Database

from bot import store
from bot.store import schema
from tests.conftest import run_cli


def test_migrations_run_in_the_order_they_are_numbered(tmp_path: Path) -> None:
    db = store.open_db(tmp_path / "fresh.db")
    applied = [row[0] for row in db.execute("select name from _sqlite_migrations order by id")]
    assert applied == sorted(applied)
    assert applied[:3] == ["m001_initial", "m002_alert_deliveries", "m003_alerts_created_index"]


def test_a_store_from_before_the_glossary_keeps_its_incidents_under_the_new_names(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Database(sqlite3.connect(path))
    schema.migrations.apply(old, stop_before="m004_glossary_names")
    old.table("incidents").insert({"id": 7, "title": "Clash at Torkham", "event": "clash", "signature": "{}"})
    old.table("claims").insert({"id": 1, "incident_id": 7, "type": "position", "actor": "pakistan"})
    old.conn.commit()
    old.conn.close()

    db = store.open_db(path)
    incident = db.execute("select incident_type, profile from incidents where id = 7").fetchone()
    assert incident == ("clash", "{}")
    assert db.execute("select side from claims where id = 1").fetchone() == ("pakistan",)


def test_read_commands_work_on_a_store_made_before_the_glossary(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Database(sqlite3.connect(path))
    schema.migrations.apply(old, stop_before="m004_glossary_names")
    old.table("incidents").insert({"id": 3, "title": "Clash at Torkham", "event": "clash", "signature": "{}"})
    old.conn.commit()
    old.conn.close()

    listed = run_cli("--db", str(path), "incidents", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(i["id"], i["incident_type"]) for i in json.loads(listed.stdout)] == [(3, "clash")]
    shown = run_cli("--db", str(path), "incident", "3", "--table")
    assert shown.returncode == 0 and "type: clash" in shown.stdout, shown.stderr
