"""Config: `borderwatch config check` names file, line and key in one line; keywords match as promised."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_config
from bot.errors import ConfigError
from bot.watch import compile_watch
from tests.conftest import run_cli

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
