"""One exception tree (like httpx's `_exceptions.py`): every problem a user can act on is a `BorderwatchError`.

Library modules raise the most specific class; `bot.cli` turns any `BorderwatchError` into one
`Error: ...` line, in one place. The message says what and where (a file, a key, a URL, a channel).

    BorderwatchError
    ├── ConfigError        a config or data file that cannot be used
    ├── StoreError         a store that cannot be opened or written
    │   ├── StoreDamagedError  not a SQLite file, or a damaged one
    │   ├── StoreAccessError   a store, folder or lock file this user cannot write (or a directory)
    │   ├── StoreBusyError     another process held the write lock past the wait
    │   └── StoreWriteError    a write the store refused (disk I/O error)
    │       └── StoreFullError the disk (or the store's size limit) is full
    ├── CorpusError        an article file that does not follow the corpus format
    ├── FetchError         a feed or page that cannot be fetched within the limits
    ├── QueryError         a query the store refuses
    │   └── QueryTimeoutError
    ├── ServeError         the web view cannot start
    ├── SlackSetupError    Slack configured but unusable (no token, no channel)
    └── DeliveryError      a send that failed (kept queued and retried)
"""

from __future__ import annotations


class BorderwatchError(Exception):
    """Base of every error borderwatch reports to its user: one line a problem (a config may have several)."""


class ConfigError(BorderwatchError):
    """A configuration or data file that cannot be used; the message names file and key."""


class StoreError(BorderwatchError):
    """A store that cannot be used (newer schema, unreadable file)."""


class StoreDamagedError(StoreError):
    """A store file that is not a SQLite database or is damaged (truncated, overwritten pages)."""


class StoreAccessError(StoreError):
    """A store, its folder or its lock file that cannot be opened or written (permissions, a directory)."""


class StoreBusyError(StoreError):
    """Another process held the store's write lock for longer than the wait (BORDERWATCH_BUSY_TIMEOUT)."""


class StoreWriteError(StoreError):
    """A write SQLite could not make (a disk I/O error, a file-size limit or quota): the poll stops there."""


class StoreFullError(StoreWriteError):
    """SQLite reported SQLITE_FULL: the disk, or the store's page limit, is full."""


class CorpusError(BorderwatchError):
    """An article file that does not follow the corpus format."""


class FetchError(BorderwatchError):
    """A feed or page that could not be fetched or read within the limits."""


class QueryError(BorderwatchError):
    """A query the store refused (bad SQL, a write, an unknown table)."""


class QueryTimeoutError(QueryError):
    """A query that ran past its time limit."""


class ServeError(BorderwatchError):
    """The Datasette web view cannot start."""


class SlackSetupError(BorderwatchError):
    """Slack cannot be used as configured (no token, no default channel)."""


class DeliveryError(BorderwatchError):
    """A send that failed.

    `permanent`: needs a person (bad token, unknown channel); `uncertain`: the destination may have
    accepted the message (timeout, dropped connection, 5xx); `retry_after`: seconds the destination
    asked us to wait; `every_channel`: the error is not about one channel (a revoked token).
    """

    def __init__(
        self,
        message: str,
        permanent: bool = False,
        *,
        uncertain: bool = False,
        retry_after: float | None = None,
        every_channel: bool = False,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.uncertain = uncertain
        self.retry_after = retry_after
        self.every_channel = every_channel
        self.code = code
