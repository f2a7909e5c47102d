"""Fingerprints of an article: canonical URL, hash of the normalised text, near-duplicate signature.

`entry_key(entry)` is what identifies a feed item before its page is fetched (canonical URL, hash of
title and summary); `fingerprint(key, title, text)` adds the text's hash and MinHash, once per text.
Pure functions, no I/O. The near-duplicate signature is a MinHash (datasketch) over word 3-shingles;
its LSH band keys are stored in SQLite so that candidates come from an index, never from a scan.
"""

from __future__ import annotations

import functools
import hashlib
import re
import struct
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import numpy as np
from courlan import normalize_url
from courlan.clean import TRACKERS_RE

from bot.models import Entry

#: Trackers of news sites that courlan's list lacks: BBC (`ito`, `at_*`), MSN (`ocid`, `ncid`), the New
#: York Times (`smid`), Adobe campaigns (`cmpid`), Alibaba (`spm`), Reddit (`sr_share`), HubSpot (`hsa_*`).
_MORE_TRACKERS = frozenset({"ito", "ocid", "ncid", "smid", "cmpid", "spm", "sr_share"})
_MORE_TRACKER_PREFIXES = ("at_", "hsa_")
#: Whole parameter names that courlan's pattern counts as trackers (it looks for `cid`, `eid` and `uid`
#: inside names such as `s_cid` or `mc_eid`) but that many CMSs use alone as the story's id:
#: `story.php?cid=101` and `story.php?cid=202` are two stories (issue 11).
_STORY_ID_PARAMS = frozenset({"cid", "eid", "uid"})
#: The fragment that addresses a feed item without a link of its own: `FEED_URL#item=ID` (issue 11).
_ITEM_FRAGMENT = "item="

NUM_PERM = 64
BANDS = 16
ROWS = NUM_PERM // BANDS
#: Estimated Jaccard similarity of shingle sets above which two texts are one copy.
DUPLICATE_THRESHOLD = 0.6
_MIN_WORDS = 12

_WORD = re.compile(r"\w+", re.UNICODE)


def canonical_url(url: str) -> str:
    """The URL that identifies a page: lowercase scheme/host, no www/amp, no tracking, no fragment.

    Only query parameters known to track the reader are dropped (courlan's list, read as whole words);
    every other parameter may name the story and is kept (issue 11).

    >>> canonical_url("HTTPS://WWW.Example.org/a/amp/?utm_source=x&id=3#top")
    'https://example.org/a?id=3'
    >>> canonical_url("http://example.org/story.php?cid=101&fbclid=x")
    'http://example.org/story.php?cid=101'
    """
    url = url.strip()
    try:
        return _canonical(url)
    except ValueError:
        # No valid URL (a bad port, a broken IPv6 literal): the link as written still identifies its entry.
        return url


def _canonical(url: str) -> str:
    parts = urlsplit(url)
    try:
        # courlan normalises scheme, host (punycode), default port and path; the query is read below,
        # not by courlan, whose cleaning also drops story ids such as `cid`.
        bare = urlsplit(normalize_url(urlunsplit(parts._replace(query="", fragment="")), strict=False))
        parts = bare._replace(query=parts.query, fragment=parts.fragment)
    except (ValueError, AttributeError):
        pass
    host = (parts.hostname or "").lower().rstrip(".")
    for prefix in ("www.", "amp.", "m."):
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix) :]
    if parts.port and not (
        (parts.scheme == "http" and parts.port == 80) or (parts.scheme == "https" and parts.port == 443)
    ):
        host = f"{host}:{parts.port}"
    path = re.sub(r"/+", "/", parts.path or "/")
    path = re.sub(r"(/amp)+(?=/|$)|\.amp(?=$|\.html?$)", "", path, flags=re.IGNORECASE)
    path = path.rstrip("/") or "/"
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not is_tracking_param(key) and not _is_amp_marker(key, value)
    ]
    query.sort()
    # Any other fragment is a place within the page; an item fragment is the identity of a linkless entry.
    fragment = parts.fragment if parts.fragment.startswith(_ITEM_FRAGMENT) else ""
    return urlunsplit(((parts.scheme or "http").lower(), host, path, urlencode(query), fragment))


def is_tracking_param(name: str) -> bool:
    """True when a query parameter only tracks the reader (courlan's tracker list, plus a few news sites').

    courlan's pattern finds its words anywhere in a name (`ga` in `gallery`, `ref` in `refresh`);
    a word counts here only when the name ends with it (or with it and `id`, or it is followed by a
    non-letter), so `gallery=3` and `refresh=1` stay, `utm_source` and `refid` go.

    >>> [is_tracking_param(n) for n in ("utm_source", "fbclid", "ref", "s_cid", "cid", "id", "gallery", "src")]
    [True, True, True, True, False, False, False, False]
    """
    name = name.lower()
    if name in _STORY_ID_PARAMS:
        return False
    if name in _MORE_TRACKERS or name.startswith(_MORE_TRACKER_PREFIXES):
        return True
    for match in TRACKERS_RE.finditer(name):
        rest = name[match.end() :]
        if match.group().endswith("_") or rest in ("", "id") or not rest[0].isalpha():
            return True
    return False


def _is_amp_marker(key: str, value: str) -> bool:
    """`?amp`, `?amp=1` or `?outputType=amp`: the AMP rendering of the page, like a path ending in /amp."""
    return (key.lower() == "amp" and value.lower() in ("", "1", "true")) or value.lower() == "amp"


def item_address(feed_url: str, item_id: str) -> str:
    """The address of a feed item that has no link: the feed's URL with the item's id as fragment."""
    return f"{feed_url.split('#', 1)[0]}#{_ITEM_FRAGMENT}{quote(item_id, safe='')}"


def is_item_address(url: str) -> bool:
    """True for an address made by `item_address` (there is no page to fetch at it)."""
    return urlsplit(url).fragment.startswith(_ITEM_FRAGMENT)


def normalize_text(text: str) -> str:
    """Text reduced to what matters for a content comparison: NFKC, lowercase, words only."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(text))


def content_hash(text: str) -> str:
    """SHA-256 of the normalised text: whitespace and punctuation-only edits keep the same hash."""
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()


def _word_shingles(words: list[str]) -> set[bytes]:
    if len(words) < 3:
        return {w.encode("utf-8") for w in words}
    return {" ".join(words[i : i + 3]).encode("utf-8") for i in range(len(words) - 2)}


def minhash_signature(text: str) -> bytes | None:
    """MinHash signature (NUM_PERM uint32 values) of the text's word 3-shingles; None for tiny texts."""
    words = normalize_text(text).split()
    if len(words) < _MIN_WORDS:
        return None
    minhash, template = _minhash()
    sketch = minhash(num_perm=NUM_PERM, seed=7, permutations=template.permutations, scheme=template.scheme)
    sketch.update_batch(list(_word_shingles(words)))
    return np.asarray(sketch.hashvalues, dtype=np.uint32).tobytes()


@functools.lru_cache(maxsize=1)
def _minhash() -> tuple[Any, Any]:
    """datasketch's MinHash class and a template whose permutations every article reuses (made once).

    Imported here, not at the top: datasketch pulls in scipy, a second of start-up that only storing an
    article needs."""
    from datasketch import MinHash

    # The scheme is named: datasketch 2.0 changed its default, and stored signatures must stay comparable.
    return MinHash, MinHash(num_perm=NUM_PERM, seed=7, scheme="affine32")


def band_keys(signature: bytes) -> list[int]:
    """One signed 64-bit key per LSH band: two texts sharing any key are near-duplicate candidates."""
    keys = []
    for band in range(BANDS):
        chunk = signature[band * ROWS * 4 : (band + 1) * ROWS * 4]
        digest = hashlib.blake2b(bytes([band]) + chunk, digest_size=8).digest()
        keys.append(struct.unpack(">q", digest)[0])
    return keys


def similarity(signature_a: bytes, signature_b: bytes) -> float:
    """Estimated Jaccard similarity of two MinHash signatures."""
    a = np.frombuffer(signature_a, dtype=np.uint32)
    b = np.frombuffer(signature_b, dtype=np.uint32)
    if a.shape != b.shape:
        return 0.0
    return float(np.count_nonzero(a == b)) / float(len(a))


def is_near_duplicate(signature_a: bytes | None, signature_b: bytes | None) -> bool:
    """True when two signatures are copies of one text (syndicated wire copy, light edits)."""
    if signature_a is None or signature_b is None:
        return False
    return similarity(signature_a, signature_b) >= DUPLICATE_THRESHOLD


@dataclass(frozen=True, slots=True)
class EntryKey:
    """What identifies a feed item before its page is fetched: an unchanged item needs no fetch."""

    canonical_url: str
    entry_hash: str


@dataclass(frozen=True)
class Fingerprint:
    """Every fingerprint of one article text: identity, exact copy (hash) and near copy (MinHash).

    The MinHash is computed on first use and kept: only a text stored as a new article needs it (an
    unchanged or edited article is known by its URL and text hash), and it is the costly part.
    """

    canonical_url: str
    entry_hash: str
    text_hash: str
    body: str = field(repr=False)

    @functools.cached_property
    def signature(self) -> bytes | None:
        """The MinHash of title and text (None for a tiny text)."""
        return minhash_signature(self.body)


def entry_key(entry: Entry) -> EntryKey:
    """The canonical URL of an entry's link and the hash of its title and summary."""
    return EntryKey(canonical_url(entry.link), content_hash(entry.title + "\n" + entry.summary))


def fingerprint(key: EntryKey, title: str, text: str) -> Fingerprint:
    """The fingerprint of an entry's article: its key, and the hash (and, when asked, MinHash) of its text."""
    body = title + "\n" + text
    return Fingerprint(key.canonical_url, key.entry_hash, content_hash(body), body)
