"""The store: the only code that writes SQL. One module per table family; rows become typed values here.

`db` opens the file and converts times; `schema` holds the migrations in order; `feeds`, `articles`,
`incidents`, `alerts` (the outbox) and `deliveries` (per channel, and Slack's threads) read and write
their tables. The names below are the store's public face: callers write `store.open_db(path)`,
`store.record_alert(db, draft, now)`.
"""

from __future__ import annotations

from bot.store.alerts import (
    alert_from_row,
    count_articles_and_alerts,
    mark_delivered,
    pending_alerts,
    record_alert,
)
from bot.store.articles import (
    add_article_version,
    article_incident,
    find_article,
    find_near_duplicate,
    insert_article,
    set_article_incident,
    set_entry_hash,
)
from bot.store.db import (
    checkpoint,
    from_iso,
    iso,
    open_db,
    open_readonly,
    rows,
    transaction,
)
from bot.store.deliveries import (
    Delivery,
    channel_id,
    first_alert_of_message,
    forget_thread,
    last_delivered,
    load_alert_deliveries,
    load_deliveries,
    mark_in_flight,
    record_failure,
    record_sent,
    save_channel_id,
    save_thread,
    tally_alerts,
    thread_ts,
)
from bot.store.feeds import (
    load_feed_state,
    mark_failing_notified,
    save_feed_state,
    save_validators,
)
from bot.store.incidents import (
    candidate_profiles,
    insert_claims,
    insert_incident,
    load_claims,
    load_incident_row,
    load_profile,
    save_incident,
)

__all__ = [
    "count_articles_and_alerts",
    "Delivery",
    "add_article_version",
    "alert_from_row",
    "article_incident",
    "candidate_profiles",
    "channel_id",
    "checkpoint",
    "find_article",
    "find_near_duplicate",
    "first_alert_of_message",
    "forget_thread",
    "from_iso",
    "insert_article",
    "insert_claims",
    "insert_incident",
    "iso",
    "last_delivered",
    "load_alert_deliveries",
    "load_claims",
    "load_deliveries",
    "load_feed_state",
    "load_incident_row",
    "load_profile",
    "mark_delivered",
    "mark_failing_notified",
    "mark_in_flight",
    "open_db",
    "open_readonly",
    "pending_alerts",
    "record_alert",
    "record_failure",
    "record_sent",
    "rows",
    "save_channel_id",
    "save_feed_state",
    "save_incident",
    "save_thread",
    "save_validators",
    "set_article_incident",
    "set_entry_hash",
    "tally_alerts",
    "thread_ts",
    "transaction",
]
