"""Load and validate the YAML configuration (feeds, watched keywords, Slack routing, network).

`load_config(path)` returns a frozen, typed `Config`; any problem is a `ConfigError` whose message has one
line per problem, each naming the file, line and key path, e.g.
`config/watch.yaml:9: feeds[2].url: not an http(s) URL`.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.errors import ConfigError
from bot.incidents.kinds import ALERT_KINDS, broadcast_names

#: The user's config folder when the package runs from a checkout (`pip install -e .`); absent in a wheel.
REPO_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
#: The gazetteer and the actors, shipped inside the package (`bot/data/`): a plain wheel install has them.
PACKAGE_DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_CONFIG_PATH = Path("config/watch.yaml")
DEFAULT_DB_PATH = Path("state/borderwatch.db")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}
#: The shortest feed interval: a job's misfire grace time is `int(interval)` (scheduler.py), and APScheduler
#: refuses 0, so a sub-second interval passed `config check` and then killed `run` (issue 11).
MIN_INTERVAL = 1.0


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
        seconds = parse_duration(value)
        if seconds < MIN_INTERVAL:
            raise ValueError(f"must be at least {MIN_INTERVAL:.0f}s: {value!r}")
        return seconds


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


def _check_kind_pattern(pattern: str) -> str:
    """An alert kind's name, or an fnmatch pattern (`*_conflict`) that matches at least one: a misspelt
    kind would otherwise route or broadcast nothing, silently (issue 11)."""
    names = [kind.name for kind in ALERT_KINDS]
    if any(fnmatchcase(name, pattern) for name in names):
        return pattern
    if any(c in pattern for c in "*?["):
        raise ValueError(f"matches no alert kind: {pattern!r}")
    close = difflib.get_close_matches(pattern.lower(), names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"alert kinds: {', '.join(names)}"
    raise ValueError(f"not an alert kind: {pattern!r} ({hint})")


#: An alert kind's name or a pattern matching some (`*_conflict`), as `fnmatch.fnmatchcase` reads it.
KindPattern = Annotated[str, AfterValidator(_check_kind_pattern)]


class SlackRoute(_Strict):
    """Send alerts that match every given condition to `channel`."""

    channel: str = Field(min_length=1)
    kinds: tuple[KindPattern, ...] = ()
    places: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()


class SlackConfig(_Strict):
    """Where alerts go; the token itself only ever comes from the environment."""

    channel: str | None = None
    routes: tuple[SlackRoute, ...] = ()
    broadcast_kinds: tuple[KindPattern, ...] = broadcast_names()
    cooldown: float = 0.0
    max_per_second: float = 1.0

    @field_validator("broadcast_kinds")
    @classmethod
    def _expand_broadcast_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # The sink compares names (`kind in broadcast_kinds`): expand patterns here, once, in table order.
        return tuple(k.name for k in ALERT_KINDS if any(fnmatchcase(k.name, p) for p in value))

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


class HealthConfig(_Strict):
    """What `status --check` (the container's health check) calls unhealthy, besides no healthy feed."""

    #: An alert whose delivery has failed and that is older than this makes the check fail (issue 11).
    delivery_failing_after: float = 1800.0

    @field_validator("delivery_failing_after", mode="before")
    @classmethod
    def _check_delivery_failing_after(cls, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError("not a duration like 30m, 90s or 2h")
        return parse_duration(value)


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
    health: HealthConfig = HealthConfig()
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


def _line_of(root: yaml.Node | None, key_loc: tuple[int | str, ...]) -> int | None:
    """Line number of the YAML node at `key_loc` (or of its nearest existing parent), for the error message.

    Walks the composed YAML tree, so `feeds[2].url` points at the third feed's `url:`, not the first.
    """
    if root is None:
        return None
    node = root
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


def _compose(text: str) -> yaml.Node | None:
    """The YAML node tree of `text` (for line numbers), or None."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader) if text else None
    except yaml.YAMLError:
        return None


def _feed_key(field: str, value: str) -> str:
    """What makes two feeds the same: the name as written; the URL with scheme and host in lower case."""
    if field == "url":
        try:
            parts = urlsplit(value.strip())
        except ValueError:
            return value
        return parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()).geturl()
    return value.strip()


def _duplicate_feeds(data: dict[str, Any]) -> list[tuple[tuple[int | str, ...], str]]:
    """A feed with the name or URL of an earlier one (issue 11): two feeds with one URL would share one
    poll state, and two with one name cannot be told apart in `borderwatch feeds` or in alerts.

    Read from the raw data, so a duplicate is reported together with the file's other errors.
    """
    feeds = data.get("feeds")
    if not isinstance(feeds, list):
        return []
    problems: list[tuple[tuple[int | str, ...], str]] = []
    for field, label in (("name", "name"), ("url", "URL")):
        first_at: dict[str, int] = {}
        for index, feed in enumerate(feeds):
            value = feed.get(field) if isinstance(feed, dict) else None
            if not isinstance(value, str) or not value.strip():
                continue
            earlier = first_at.setdefault(_feed_key(field, value), index)
            if earlier != index:
                problems.append((("feeds", index, field), f"same {label} as feeds[{earlier}]"))
    return problems


def parse_config(data: Any, path: Path, text: str = "") -> Config:
    """Validate already-loaded YAML data as a Config.

    Every problem is reported at once, in file order, one line each: `path:line: key.path: what`.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping with feeds: and watch:")
    problems = _duplicate_feeds(data)
    try:
        cfg = Config.model_validate({**data, "path": path})
    except ValidationError as exc:
        problems += [(tuple(error["loc"]), _describe(error)) for error in exc.errors()]
    else:
        if not problems:
            return cfg
    root = _compose(text)
    located = [(_line_of(root, loc), loc, message) for loc, message in problems]
    # Sorted by line (stable: problems on one line keep pydantic's order); lines unknown come first.
    located.sort(key=lambda item: item[0] or 0)
    # One line each, so `Error: ` (click) prefixes the first and every line still names file and line.
    raise ConfigError(
        "\n".join(f"{_where(path, line)}: {_key_path(loc)}: {msg}" for line, loc, msg in located)
    )


def _where(path: Path, line: int | None) -> str:
    return f"{path}:{line}" if line else str(path)


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
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{_where(path, mark.line + 1 if mark is not None else None)}: {problem}") from None
    return parse_config(data, path, text)


def default_config_path() -> Path:
    """`$BORDERWATCH_CONFIG`, else `config/watch.yaml` (relative to the working directory, else the repo)."""
    env = os.environ.get("BORDERWATCH_CONFIG")
    if env:
        return Path(env)
    if DEFAULT_CONFIG_PATH.exists():
        return DEFAULT_CONFIG_PATH
    return REPO_CONFIG_DIR / "watch.yaml"
