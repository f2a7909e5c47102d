"""Print rows as a table (on a terminal), JSON, newline-delimited JSON, CSV or TSV, like sqlite-utils."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
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


def emit_rows(
    rows: Iterable[dict[str, Any]], columns: Sequence[str] | None, fmt: Format, stream: TextIO | None = None
) -> None:
    """Write `rows` in `fmt`; `columns` fixes the order (else the first row's keys)."""
    stream = stream or sys.stdout
    materialised = list(rows)
    cols = list(columns) if columns else (list(materialised[0].keys()) if materialised else [])
    if fmt == "json":
        stream.write(
            json.dumps([_jsonable(r) for r in materialised], indent=2, ensure_ascii=False, default=str) + "\n"
        )
    elif fmt == "nl":
        for row in materialised:
            stream.write(json.dumps(_jsonable(row), ensure_ascii=False, default=str) + "\n")
    elif fmt in ("csv", "tsv"):
        writer = csv.writer(stream, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        writer.writerow(cols)
        for row in materialised:
            writer.writerow([_cell(row.get(c)) for c in cols])
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(show_lines=False, header_style="bold", highlight=False)
        for col in cols:
            table.add_column(col, overflow="fold")
        for row in materialised:
            table.add_row(*(_cell(row.get(c)) for c in cols))
        Console(file=stream, width=None if stream.isatty() else 200, markup=False).print(table)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (f"<{len(v)} bytes>" if isinstance(v, bytes) else v) for k, v in row.items()}
