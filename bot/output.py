"""Print rows as a table (on a terminal), JSON, newline-delimited JSON, CSV or TSV, like sqlite-utils: row by
row as they come, so that a large result is never held (a table shows its first TABLE_ROWS)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from itertools import chain, islice
from typing import Any, Literal, TextIO

Format = Literal["table", "json", "nl", "csv", "tsv"]


def choose_format(explicit: str | None, stream: TextIO | None = None) -> Format:
    """The explicit format, else a table on a terminal and JSON otherwise."""
    if explicit:
        return explicit  # type: ignore[return-value]
    stream = stream or sys.stdout
    return "table" if stream.isatty() else "json"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


#: Most rows a table shows (issue 11): rich holds every row of a table it draws, and a table of millions of
#: rows is read by nobody; --csv, --tsv and --nl stream every row instead.
TABLE_ROWS = 1000


def emit_rows(
    rows: Iterable[dict[str, Any]],
    columns: Sequence[str] | None,
    fmt: Format,
    stream: TextIO | None = None,
    notices: TextIO | None = None,
) -> None:
    """Write `rows` in `fmt` as they come, holding none but a table's first TABLE_ROWS (issue 11); `columns`
    fixes the order (else the first row's keys). A table that leaves rows out says how many on `notices`
    (stderr)."""
    stream = stream or sys.stdout
    remaining = iter(rows)
    if columns:
        cols = list(columns)
    else:
        first = next(remaining, None)
        cols = list(first) if first is not None else []
        remaining = remaining if first is None else chain([first], remaining)
    if fmt == "json":
        _write_json(remaining, stream)
    elif fmt == "nl":
        for row in remaining:
            stream.write(json.dumps(_jsonable(row), ensure_ascii=False, default=str) + "\n")
    elif fmt in ("csv", "tsv"):
        writer = csv.writer(stream, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        writer.writerow(cols)
        for row in remaining:
            writer.writerow([_cell(row.get(c)) for c in cols])
    else:
        _write_table(list(islice(remaining, TABLE_ROWS)), cols, stream)
        left = sum(1 for _ in remaining)
        if left:
            stream.flush()
            (notices or sys.stderr).write(
                f"{TABLE_ROWS:,} rows shown; {left:,} more left out of the table: "
                "use --csv, --tsv or --nl for every row\n"
            )


def _write_json(rows: Iterable[dict[str, Any]], stream: TextIO) -> None:
    """A JSON array, one row at a time, as `json.dumps(rows, indent=2)` would write it whole."""
    stream.write("[")
    wrote = False
    for row in rows:
        stream.write(",\n" if wrote else "\n")
        text = json.dumps(_jsonable(row), indent=2, ensure_ascii=False, default=str)
        stream.write("  " + text.replace("\n", "\n  "))  # JSON text has no raw newline inside a value
        wrote = True
    stream.write("\n]\n" if wrote else "]\n")


def _write_table(rows: Sequence[dict[str, Any]], cols: Sequence[str], stream: TextIO) -> None:
    """A rich table (as wide as the terminal; 200 columns when not on one)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold", highlight=False)
    for col in cols:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in cols))
    Console(file=stream, width=None if stream.isatty() else 200, markup=False).print(table)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (f"<{len(v)} bytes>" if isinstance(v, bytes) else v) for k, v in row.items()}
