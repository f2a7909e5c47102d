"""What extraction knows about the world: the gazetteer (places) and the actors, loaded once.

The shipped files are package data (`bot/data/places.yaml`, `bot/data/actors.yaml`); a user's config
extends them with its own files (`data: {places: [...], actors: [...]}`). A file that is missing or
malformed is a `ConfigError` naming the file (and the line, for YAML syntax).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError
from bot.extract.places import Gazetteer
from bot.extract.positions import ActorIndex

#: libyaml's loader when PyYAML has it: the gazetteer loads several times faster.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Knowledge:
    """What extraction knows about the world: the gazetteer and the actors."""

    gazetteer: Gazetteer
    actors: ActorIndex


def read_entries(path: Path, key: str) -> list[dict[str, Any]]:
    """The list under `key:` in the YAML file at `path`; every entry needs an id and a name."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{path}:{mark.line + 1 if mark else '?'}: invalid YAML") from None
    entries = data.get(key) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected a list under `{key}:`")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("id") or not entry.get("name"):
            raise ConfigError(f"{path}: {key}[{index}]: each entry needs an id and a name")
    return entries


def load_knowledge(place_files: Sequence[Path], actor_files: Sequence[Path]) -> Knowledge:
    """The gazetteer and actors from these files, later files extending earlier ones.

    Loaded once per set of files and kept: a process builds its pipeline (and a test suite many
    pipelines) from the same few files, and the gazetteer's automaton is the slow part.
    """
    return _load(tuple(map(Path, place_files)), tuple(map(Path, actor_files)))


@functools.lru_cache(maxsize=8)
def _load(place_files: tuple[Path, ...], actor_files: tuple[Path, ...]) -> Knowledge:
    places = [entry for path in place_files for entry in read_entries(path, "places")]
    actors = [entry for path in actor_files for entry in read_entries(path, "actors")]
    return Knowledge(Gazetteer(places), ActorIndex(actors))
