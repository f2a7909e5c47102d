"""The store: the only code that writes SQL. One module per table family; rows become typed values here.

`db` opens the file and converts times; `schema` holds the migrations in order; `feeds`, `articles`,
`incidents` and `alerts` read and write their tables. The names below are the store's public face:
callers write `store.open_db(path)`, `store.record_alert(db, draft, now)`.
"""

from __future__ import annotations

from bot.errors import StoreError
from bot.store.alerts import mark_delivered, pending_alerts, record_alert
from bot.store.articles import (
    add_article_version,
    find_article,
    find_near_duplicate,
    insert_article,
    set_article_incident,
)
from bot.store.db import (
    BUSY_TIMEOUT_MS,
    from_iso,
    insert_many,
    insert_row,
    iso,
    open_db,
    open_readonly,
    rows,
    transaction,
)
from bot.store.feeds import load_feed_state, save_feed_state
from bot.store.schema import migrations

__all__ = [
    "BUSY_TIMEOUT_MS",
    "StoreError",
    "add_article_version",
    "find_article",
    "find_near_duplicate",
    "from_iso",
    "insert_article",
    "insert_many",
    "insert_row",
    "iso",
    "mark_delivered",
    "migrations",
    "open_db",
    "open_readonly",
    "pending_alerts",
    "record_alert",
    "rows",
    "save_feed_state",
    "set_article_incident",
    "transaction",
    "load_feed_state",
]
