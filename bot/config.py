"""Load and validate the YAML configuration (feeds, watched keywords, Slack routing, network).

`load_config(path)` returns a frozen, typed `Config`; every problem is a `ConfigError` whose message
names the file and the key path, e.g. `config/watch.yaml: feeds[2].url: not an http(s) URL`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.errors import ConfigError
from bot.incidents.kinds import broadcast_names

#: The user's config folder when the package runs from a checkout (`pip install -e .`); absent in a wheel.
REPO_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
#: The gazetteer and the actors, shipped inside the package (`bot/data/`): a plain wheel install has them.
PACKAGE_DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_CONFIG_PATH = Path("config/watch.yaml")
DEFAULT_DB_PATH = Path("state/borderwatch.db")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}


def parse_duration(value: str | int | float) -> float:
    """Seconds in a duration such as `10m`, `90s`, `2h`, `1d` or a bare number of seconds."""
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError("must be a positive duration")
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"not a duration like 10m, 90s or 2h: {value!r}")
    seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if seconds <= 0:
        raise ValueError("must be a positive duration")
    return seconds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeedConfig(_Strict):
    """One feed to poll."""

    name: str = Field(min_length=1)
    url: str
    interval: float = 600.0
    fetch_articles: bool = True
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/$.?#][^\s]*$", value, re.IGNORECASE):
            raise ValueError("not an http(s) URL")
        return value

    @field_validator("interval", mode="before")
    @classmethod
    def _check_interval(cls, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError("not a duration like 10m, 90s or 2h")
        return parse_duration(value)


class WatchConfig(_Strict):
    """What makes an entry on-topic."""

    keywords: tuple[str, ...] = Field(min_length=1)
    exclude: tuple[str, ...] = ()

    @field_validator("keywords", "exclude")
    @classmethod
    def _no_blank(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not word.strip() for word in value):
            raise ValueError("keywords must not be blank")
        return tuple(word.strip() for word in value)


class SlackRoute(_Strict):
    """Send alerts that match every given condition to `channel`."""

    channel: str = Field(min_length=1)
    kinds: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()


class SlackConfig(_Strict):
    """Where alerts go; the token itself only ever comes from the environment."""

    channel: str | None = None
    routes: tuple[SlackRoute, ...] = ()
    broadcast_kinds: tuple[str, ...] = broadcast_names()
    cooldown: float = 0.0
    max_per_second: float = 1.0

    @field_validator("cooldown", mode="before")
    @classmethod
    def _check_cooldown(cls, value: Any) -> float:
        if value in (0, "0"):
            return 0.0
        return parse_duration(value)


class NetworkConfig(_Strict):
    """HTTP behaviour: limits, and which non-public address ranges may be fetched on purpose."""

    allow_private: tuple[str, ...] = ()
    timeout: float = Field(default=20.0, gt=0)
    max_bytes: int = Field(default=5_000_000, gt=0)
    max_redirects: int = Field(default=5, ge=0, le=20)
    user_agent: str | None = None

    @field_validator("allow_private")
    @classmethod
    def _check_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"not an IP network: {network!r}") from exc
        return value


class DataConfig(_Strict):
    """Extra gazetteer/actor files that extend the shipped ones."""

    places: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()


class Config(_Strict):
    """The whole configuration."""

    feeds: tuple[FeedConfig, ...] = ()
    watch: WatchConfig
    slack: SlackConfig = SlackConfig()
    network: NetworkConfig = NetworkConfig()
    data: DataConfig = DataConfig()
    failing_after: int = Field(default=5, ge=1, description="consecutive errors before a feed-failing notice")
    path: Path | None = None
    log_format: Literal["text", "json"] = "text"

    def data_files(self, kind: Literal["places", "actors"]) -> list[Path]:
        """The shipped file of `kind` (package data), then the user's files that extend it (`data:`),
        resolved against the config's folder."""
        base = self.path.parent if self.path is not None else Path.cwd()
        return [PACKAGE_DATA_DIR / f"{kind}.yaml", *(base / p for p in getattr(self.data, kind))]

    def unlisted_data_files(self) -> list[Path]:
        """`places.yaml` or `actors.yaml` beside the config but not named under `data:`: before 0.2 such a
        file replaced the shipped one; now it is read only when listed, so say so."""
        if self.path is None:
            return []
        listed = {p.resolve() for kind in ("places", "actors") for p in self.data_files(kind)}
        beside = [self.path.parent / f"{kind}.yaml" for kind in ("places", "actors")]
        return [p for p in beside if p.exists() and p.resolve() not in listed]


def _key_path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def _describe(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _line_of(text: str, key_loc: tuple[int | str, ...]) -> int | None:
    """Line number of the YAML node at `key_loc` (or of its nearest existing parent), for the error message.

    Walks the composed YAML tree, so `feeds[2].url` points at the third feed's `url:`, not the first.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line: int = node.start_mark.line + 1
    for part in key_loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    line = key.start_mark.line + 1
                    child = value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def parse_config(data: Any, path: Path, text: str = "") -> Config:
    """Validate already-loaded YAML data as a Config; errors name `path` and the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping with feeds: and watch:")
    try:
        return Config.model_validate({**data, "path": path})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        line = _line_of(text, loc) if text else None
        where = f"{path}:{line}" if line else str(path)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{where}: {_key_path(loc)}: {_describe(first)}{more}") from None


def load_config(path: Path | str) -> Config:
    """Read and validate the YAML file at `path`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{where}: {problem}") from None
    return parse_config(data, path, text)


def default_config_path() -> Path:
    """`$BORDERWATCH_CONFIG`, else `config/watch.yaml` (relative to the working directory, else the repo)."""
    env = os.environ.get("BORDERWATCH_CONFIG")
    if env:
        return Path(env)
    if DEFAULT_CONFIG_PATH.exists():
        return DEFAULT_CONFIG_PATH
    return REPO_CONFIG_DIR / "watch.yaml"
