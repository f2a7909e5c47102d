"""Config: `borderwatch config check` names file, line and key in one line; keywords match as promised."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.config import load_config
from bot.errors import ConfigError
from bot.watch import compile_watch
from tests.conftest import FaultTally, run_cli

MINIMAL = """\
feeds:
  - name: Loopback News
    url: http://127.0.0.1:8000/feed.xml
    fetch_articles: false
watch:
  keywords: [Afghan, Taliban]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bot.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_minimal_config_from_the_issue_checks_ok(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    result = run_cli("config", "check", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"{path}: ok: 1 feeds, 2 keywords"
    assert "Loopback News: http://127.0.0.1:8000/feed.xml every 600s (feed text)" in result.stdout
    cfg = load_config(path)
    assert cfg.feeds[0].fetch_articles is False and cfg.watch.keywords == ("Afghan", "Taliban")


BAD = [
    (
        "misspelt key",
        MINIMAL.replace("    fetch_articles: false", "    fetch_article: false"),
        ":4: feeds[0].fetch_article: unknown key",
    ),
    (
        "misspelt top-level key",
        MINIMAL + "slak:\n  channel: '#x'\n",
        ":7: slak: unknown key",
    ),
    (
        "wrong type",
        MINIMAL.replace("fetch_articles: false", "fetch_articles: sometimes"),
        ":4: feeds[0].fetch_articles: Input should be a valid boolean, unable to interpret input",
    ),
    (
        "keywords not a list",
        MINIMAL.replace("keywords: [Afghan, Taliban]", "keywords: {Afghan: 1}"),
        ":6: watch.keywords: Input should be a valid tuple",
    ),
    (
        "bad URL in the second feed",
        MINIMAL.replace("watch:", "  - name: Second\n    url: ftp://example.org/feed\nwatch:"),
        ":6: feeds[1].url: not an http(s) URL",
    ),
    (
        "bad interval",
        MINIMAL.replace("fetch_articles: false", "fetch_articles: false\n    interval: often"),
        ":5: feeds[0].interval: not a duration like 10m, 90s or 2h: 'often'",
    ),
    (
        "negative interval",
        MINIMAL.replace("fetch_articles: false", "fetch_articles: false\n    interval: -5"),
        ":5: feeds[0].interval: must be a positive duration",
    ),
    (
        "missing keywords",
        MINIMAL.replace("  keywords: [Afghan, Taliban]\n", "  exclude: [cricket]\n"),
        ":5: watch.keywords: required key is missing",
    ),
    (
        "bad network range",
        MINIMAL + "network:\n  allow_private: [127.0.0.0/33]\n",
        ":8: network.allow_private: not an IP network: '127.0.0.0/33'",
    ),
    (
        "invalid YAML",
        MINIMAL.replace("keywords: [Afghan, Taliban]", "keywords: [Afghan, Taliban"),
        ":7: expected ',' or ']', but got '<stream end>'",
    ),
]


@pytest.mark.parametrize(("case", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_one_line_naming_file_line_and_key(
    tmp_path: Path, case: str, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == f"{path}{expected}"


def test_config_check_prints_the_error_in_one_line_and_exits_1(tmp_path: Path) -> None:
    # One subprocess run for the CLI contract; the cases above go through the same load_config.
    path = write(tmp_path, BAD[4][1])
    result = run_cli("config", "check", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: {path}:6: feeds[1].url: not an http(s) URL\n"


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    result = run_cli("config", "check", str(tmp_path / "nope.yaml"))
    assert (
        result.returncode == 1 and result.stderr == f"Error: {tmp_path / 'nope.yaml'}: no such config file\n"
    )


# --- keyword matching ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The AFGHAN army withdrew", True),
        ("afghan soldiers", True),
        ("Afghanistan's border", False),
        ("Afghans fled", False),
        ("Taliban-led forces", True),
        ("Talibanisation of the region", False),
        ("pro-Taliban fighters", True),
    ],
)
def test_keywords_are_case_insensitive_whole_words(text: str, expected: bool) -> None:
    assert compile_watch(("Afghan", "Taliban")).matches(text) is expected


def test_star_keyword_matches_any_ending() -> None:
    watch = compile_watch(("Afghan*",))
    assert all(watch.matches(t) for t in ("Afghan", "Afghans", "Afghanistan", "AFGHANISTAN's"))
    assert not watch.matches("Pakistan")


@pytest.mark.parametrize(
    ("keyword", "text", "expected"),
    [
        ("طالبان", "پاکستانی طالبان نے سرحد پر حملہ کیا", True),  # Urdu
        ("طالبان", "«طالبان»، گفتند", True),  # Dari, inside guillemets and before a comma
        ("طالبان", "طالبانو حمله وکړ", False),  # Pashto inflected form is another word
        ("طالبان", "طالِبان", True),  # a short-vowel mark does not hide the word
        ("طالبان", "طالـبان", True),  # nor a tatweel
        ("کابل", "كابل", True),  # Arabic kaf in the text, Persian keheh in the keyword
        ("افغان", "افغانستان کی سرحد", False),
        ("افغان", "افغان‌ها", False),  # the zero-width non-joiner keeps افغان‌ها one word
        ("افغان*", "افغان‌ها و افغانستان", True),
        ("طورخم", "Torkham (طورخم) crossing", True),
        ("Durand Line", "along the Durand\nLine", True),
    ],
)
def test_keywords_are_unicode_safe(keyword: str, text: str, expected: bool) -> None:
    assert compile_watch((keyword,)).matches(text) is expected


def test_exclude_words_win_over_keywords() -> None:
    watch = compile_watch(("Afghan*", "Taliban"), ("cricket", "T20"))
    assert not watch.matches("Afghan cricket team wins", "")
    assert not watch.matches("Afghanistan v Pakistan", "the T20 final")
    assert watch.matches("Afghan border reopens", "trade resumes")
    assert not watch.matches("Cricket: Taliban approve league")
    assert not compile_watch(("Afghan",)).matches("nothing here")


def test_config_check_loads_every_data_file_the_config_names(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "data:\n  places: [missing.yaml]\n")
    result = run_cli("config", "check", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"Error: {tmp_path / 'missing.yaml'}: no such file"


def test_poll_with_a_missing_data_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "data:\n  actors: [extra-actors.yaml]\n")
    (tmp_path / "extra-actors.yaml").write_text("actors:\n  - id: x\n", encoding="utf-8")
    result = run_cli("--config", str(path), "--db", str(tmp_path / "st.db"), "poll", "--once")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().endswith(
        f"Error: {tmp_path / 'extra-actors.yaml'}: actors[0]: each entry needs an id and a name"
    )


def test_a_user_data_file_extends_the_shipped_gazetteer(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "data:\n  places: [my-places.yaml]\n")
    (tmp_path / "my-places.yaml").write_text(
        "places:\n  - {id: test-post, name: Zarghun Post, kind: town, lat: 31.0, lon: 66.5}\n",
        encoding="utf-8",
    )
    result = run_cli("config", "check", str(path))
    assert result.returncode == 0, result.stderr
    places = next(line for line in result.stdout.splitlines() if line.strip().startswith("places:"))
    assert "bot/data/places.yaml" in places and "my-places.yaml" in places


def test_a_gazetteer_beside_the_config_but_not_listed_is_named_in_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    (tmp_path / "places.yaml").write_text("places:\n  - {id: x, name: X}\n", encoding="utf-8")
    result = run_cli("config", "check", str(path))
    assert result.returncode == 0, result.stderr
    assert f"{tmp_path / 'places.yaml'} is not read: list it under `data:` in {path}" in result.stderr


# --- issue 11: what `config check` let through, and every error at once ---------------------------------


def feeds_yaml(*feeds: tuple[str, str]) -> str:
    """MINIMAL with these (name, url) feeds instead of its one."""
    lines = ["feeds:"]
    for name, url in feeds:
        lines += [f"  - name: {name}", f"    url: {url}"]
    return "\n".join(lines) + "\nwatch:\n  keywords: [Afghan, Taliban]\n"


MORE_BAD = [
    (
        "sub-second interval",
        MINIMAL.replace("fetch_articles: false", "fetch_articles: false\n    interval: 0.5"),
        ":5: feeds[0].interval: must be at least 1s: 0.5",
    ),
    (
        "sub-second interval with a unit",
        MINIMAL.replace("fetch_articles: false", "fetch_articles: false\n    interval: 0.2s"),
        ":5: feeds[0].interval: must be at least 1s: '0.2s'",
    ),
    (
        "misspelt route kind",
        MINIMAL + "slack:\n  routes:\n    - channel: '#desk'\n      kinds: ['*_conflict', status_chnage]\n",
        ":10: slack.routes[0].kinds[1]: not an alert kind: 'status_chnage' (did you mean 'status_change'?)",
    ),
    (
        "route kind glob that matches no kind",
        MINIMAL + "slack:\n  routes:\n    - channel: '#desk'\n      kinds: ['*_conflit']\n",
        ":10: slack.routes[0].kinds[0]: matches no alert kind: '*_conflit'",
    ),
    (
        "route kind in the wrong case",
        MINIMAL + "slack:\n  routes:\n    - channel: '#desk'\n      kinds: [Figure_Conflict]\n",
        ":10: slack.routes[0].kinds[0]: not an alert kind: 'Figure_Conflict' (did you mean 'figure_conflict'?)",
    ),
    (
        "misspelt broadcast kind",
        MINIMAL + "slack:\n  broadcast_kinds:\n    - figure_conflict\n    - nonsense\n",
        ":10: slack.broadcast_kinds[1]: not an alert kind: 'nonsense' (alert kinds: new_incident, "
        "figure_conflict, figure_change, location_conflict, location_change, position_conflict, "
        "position_change, status_change, feed_failing)",
    ),
    (
        "two feeds with one name",
        feeds_yaml(("Dawn", "http://127.0.0.1:8000/a.xml"), ("Dawn", "http://127.0.0.1:8000/b.xml")),
        ":4: feeds[1].name: same name as feeds[0]",
    ),
    (
        "two feeds with one URL",
        feeds_yaml(("Dawn", "http://127.0.0.1:8000/a.xml"), ("Dawn again", "HTTP://127.0.0.1:8000/a.xml")),
        ":5: feeds[1].url: same URL as feeds[0]",
    ),
]


@pytest.mark.parametrize(("case", "text", "expected"), MORE_BAD, ids=[b[0] for b in MORE_BAD])
def test_config_check_refuses_what_run_would_die_on_or_ignore(
    tmp_path: Path, case: str, text: str, expected: str, fault_tally: FaultTally
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == f"{path}{expected}"
    fault_tally.record(f"config: {case}", faults=1)


def test_route_kind_globs_that_match_a_kind_are_accepted_and_broadcast_globs_are_expanded(
    tmp_path: Path,
) -> None:
    # `broadcast_kinds` is compared by name when a reply is sent: a glob is expanded here, at load time.
    text = MINIMAL + (
        "slack:\n  routes:\n    - channel: '#desk'\n      kinds: ['*_conflict', status_change]\n"
        "  broadcast_kinds: ['*_conflict', status_change, '*_conflict']\n"
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.slack.routes[0].kinds == ("*_conflict", "status_change")
    assert cfg.slack.broadcast_kinds == (
        "figure_conflict",
        "location_conflict",
        "position_conflict",
        "status_change",
    )


def test_config_check_shows_every_error_one_line_each(tmp_path: Path, fault_tally: FaultTally) -> None:
    text = (
        "feeds:\n"
        "  - name: Dawn\n"
        "    url: ftp://example.org/feed\n"
        "    interval: 0.5\n"
        "  - name: Dawn\n"
        "    url: http://127.0.0.1:8000/feed.xml\n"
        "    fetch_article: false\n"
        "watch:\n"
        "  keywords: [Afghan]\n"
        "slack:\n"
        "  broadcast_kinds: [figure_conflit]\n"
    )
    path = write(tmp_path, text)
    expected = [
        f"{path}:3: feeds[0].url: not an http(s) URL",
        f"{path}:4: feeds[0].interval: must be at least 1s: 0.5",
        f"{path}:5: feeds[1].name: same name as feeds[0]",
        f"{path}:7: feeds[1].fetch_article: unknown key",
        f"{path}:11: slack.broadcast_kinds[0]: not an alert kind: 'figure_conflit' "
        "(did you mean 'figure_conflict'?)",
    ]
    result = run_cli("config", "check", str(path))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "Error: " + "\n".join(expected) + "\n"
    shown = result.stderr.splitlines()
    fault_tally.record("config: five errors in one file", faults=len(expected))
    assert len(shown) == len(expected)


def write_with_gazetteer_beside(tmp_path: Path, extra: str = "") -> Path:
    """A config with no feeds and a `places.yaml` beside it that it does not list: `poll` warns once."""
    (tmp_path / "places.yaml").write_text("places:\n  - {id: x, name: X}\n", encoding="utf-8")
    return write(tmp_path, "feeds: []\nwatch:\n  keywords: [Afghan]\n" + extra)


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "is not read: list it under" in line]


def test_log_format_json_in_the_config_takes_effect(tmp_path: Path) -> None:
    path = write_with_gazetteer_beside(tmp_path, "log_format: json\n")
    result = run_cli("--config", str(path), "--db", str(tmp_path / "st.db"), "poll", "--once")
    assert result.returncode == 0, result.stderr
    [line] = warning_lines(result.stderr)
    record = json.loads(line)
    assert record["level"] == "WARNING" and record["message"].startswith(str(tmp_path / "places.yaml"))


@pytest.mark.parametrize(
    ("args", "env"),
    [(("--log-format", "text"), {}), ((), {"BORDERWATCH_LOG_FORMAT": "text"})],
    ids=["option", "environment"],
)
def test_the_log_format_option_wins_over_the_config(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str]
) -> None:
    path = write_with_gazetteer_beside(tmp_path, "log_format: json\n")
    result = run_cli(*args, "--config", str(path), "--db", str(tmp_path / "st.db"), "poll", "--once", env=env)
    assert result.returncode == 0, result.stderr
    [line] = warning_lines(result.stderr)
    assert not line.startswith("{") and " WARNING " in line
