"""Fingerprints: canonical URLs, text hashes that ignore cosmetics, near-duplicate signatures."""

from __future__ import annotations

import pytest

from bot.fingerprint import canonical_url, content_hash, is_near_duplicate, minhash_signature, similarity
from tests.conftest import seed_items

BASE = "https://news.example.org/2021/07/afghan-soldiers"


@pytest.mark.parametrize(
    "variant",
    [
        BASE,
        BASE + "?utm_source=twitter&utm_medium=social&utm_campaign=share",
        BASE + "?UTM_SOURCE=rss",
        BASE + "?fbclid=IwAR2xyz",
        BASE + "?gclid=Cj0KCQjw&msclkid=abc",
        BASE + "#comments",
        BASE + "/",
        BASE + "/amp",
        BASE + "/amp/",
        BASE + ".amp",
        BASE + "?outputType=amp",
        "https://NEWS.Example.ORG/2021/07/afghan-soldiers",
        "HTTPS://news.example.org/2021/07/afghan-soldiers",
        "https://www.news.example.org/2021/07/afghan-soldiers",
        "https://amp.news.example.org/2021/07/afghan-soldiers",
        "https://news.example.org:443/2021/07/afghan-soldiers",
        "https://news.example.org//2021/07//afghan-soldiers",
        "  " + BASE + "?utm_source=x#top  ",
    ],
)
def test_tracking_variants_share_one_canonical_url(variant: str) -> None:
    assert canonical_url(variant) == "https://news.example.org/2021/07/afghan-soldiers"


def test_meaningful_query_parameters_are_kept_and_sorted() -> None:
    assert (
        canonical_url("https://example.org/story?p=2&id=17&utm_source=x")
        == "https://example.org/story?id=17&p=2"
    )
    assert canonical_url("https://example.org/story?id=17") != canonical_url(
        "https://example.org/story?id=18"
    )


def test_different_paths_hosts_and_ports_stay_apart() -> None:
    assert canonical_url("https://example.org/a") != canonical_url("https://example.org/b")
    assert canonical_url("https://example.org/a") != canonical_url("https://example.com/a")
    assert canonical_url("http://127.0.0.1:8000/a") == "http://127.0.0.1:8000/a"


def test_content_hash_ignores_whitespace_case_and_punctuation_only() -> None:
    text = "Afghan officials said 46 soldiers crossed the border near Chitral."
    assert content_hash(text) == content_hash(
        "  afghan officials said 46 soldiers, crossed the border -- near Chitral!\n"
    )
    assert content_hash(text) != content_hash(text.replace("46", "47"))


def test_syndicated_copy_with_a_few_words_changed_is_a_near_duplicate() -> None:
    items = seed_items()
    body = items[0].body
    copy = body.replace("Dozens of", "Scores of").replace("slipped", "crossed").replace("Monday", "on Monday")
    assert is_near_duplicate(minhash_signature(body), minhash_signature(copy))
    other = minhash_signature(items[4].body)
    assert not is_near_duplicate(minhash_signature(body), other)
    assert similarity(minhash_signature(body), other) < 0.3  # type: ignore[arg-type]


def test_tiny_texts_get_no_signature() -> None:
    assert minhash_signature("Afghan soldiers cross") is None
    assert not is_near_duplicate(None, minhash_signature(seed_items()[0].body))


@pytest.mark.parametrize(
    "query",
    [
        "cid=101",
        "id=7",
        "from=rss",
        "src=11",
        "page=2",
        "output=1",
        "feed=1",
        "rss=1",
        "share=1",
        "uid=5",
        "gallery=3",
        "refresh=1",
        "storyid=9",
        "p=2",
    ],  # fmt: skip
)
def test_parameters_that_may_name_the_story_are_kept(query: str) -> None:
    """Issue 11: only known trackers are dropped; `story.php?cid=101` and `?cid=202` stay two stories."""
    assert canonical_url(f"https://example.org/story.php?{query}&utm_source=x") == (
        f"https://example.org/story.php?{query}"
    )


@pytest.mark.parametrize(
    "tracker",
    [
        "utm_campaign=x",
        "ref=rss",
        "s_cid=abc",
        "mc_eid=1",
        "at_medium=soc",
        "ocid=msn",
        "ito=bbc",
        "smid=tw",
        "_ga=1.2",
        "igshid=x",
        "yclid=1",
        "campaignid=4",
        "traffic_source=rss",
        "amp=1",
    ],  # fmt: skip
)
def test_known_trackers_are_dropped(tracker: str) -> None:
    assert canonical_url(f"https://example.org/story.php?cid=7&{tracker}") == (
        "https://example.org/story.php?cid=7"
    )


def test_an_item_address_keeps_its_fragment_and_an_anchor_does_not() -> None:
    from bot.fingerprint import is_item_address, item_address

    address = item_address("http://example.org/feed.xml", "cms 4411")
    assert address == "http://example.org/feed.xml#item=cms%204411" and is_item_address(address)
    assert canonical_url(address) == address
    assert canonical_url(item_address("http://example.org/feed.xml", "cms 4412")) != canonical_url(address)
    assert canonical_url("http://example.org/feed.xml#top") == "http://example.org/feed.xml"


def test_a_link_that_is_no_valid_url_identifies_itself() -> None:
    assert canonical_url(" http://example.org:port/a ") == "http://example.org:port/a"
