"""pyinstrument sessions reduced to what the report needs: top functions by own time, and stage totals."""

from __future__ import annotations

from collections import defaultdict
from typing import Any


def _walk(
    frame: Any, stack: tuple[str, ...], parent: str, own: dict[str, float], inclusive: dict[str, float]
) -> None:
    name = frame.function or "?"
    if name.startswith("["):  # pyinstrument's synthetic "[self]"/"[await]" frames: time of the parent itself
        own[parent] += frame.time
        return
    key = f"{name} ({frame.file_path_short or '?'}:{frame.line_no})"
    if name not in stack:  # count a recursive function once per stack
        inclusive[name] += frame.time
    if not frame.children:
        own[key] += frame.time
    for child in frame.children:
        _walk(child, (*stack, name), key, own, inclusive)


def summarize(
    profiler: Any, stages: dict[str, tuple[str, ...]] | None, wall: float, top: int = 15
) -> dict[str, Any]:
    """Top functions by own (self) time, and the inclusive time of each stage's functions."""
    root = profiler.last_session.root_frame()
    own: dict[str, float] = defaultdict(float)
    inclusive: dict[str, float] = defaultdict(float)
    if root is not None:
        _walk(root, (), "?", own, inclusive)
    total = root.time if root is not None else wall
    ranked = sorted(own.items(), key=lambda kv: kv[1], reverse=True)[:top]
    result: dict[str, Any] = {
        "total_s": total,
        "top_self": [{"function": k, "seconds": v, "percent": 100 * v / total} for k, v in ranked],
    }
    if stages:
        result["stages"] = {
            stage: {"seconds": sum(inclusive.get(f, 0.0) for f in names),
                    "percent": 100 * sum(inclusive.get(f, 0.0) for f in names) / total}
            for stage, names in stages.items()
        }  # fmt: skip
    result["text"] = profiler.output_text(unicode=False, color=False)
    return result
