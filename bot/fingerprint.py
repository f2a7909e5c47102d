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
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
from courlan import normalize_url

from bot.models import Entry

#: Query parameters that only track the reader; dropped from the canonical URL.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "yclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "ref",
        "ref_src",
        "ref_url",
        "cmpid",
        "ito",
        "traffic_source",
        "at_medium",
        "at_campaign",
        "at_custom1",
        "at_custom2",
        "at_custom3",
        "at_custom4",
        "ocid",
        "ncid",
        "sr_share",
        "share",
        "cid",
        "amp",
        "outputtype",
        "output",
        "rss",
        "feed",
        "from",
        "src",
        "s_cid",
        "spm",
        "smid",
        "partner",
    }
)
_TRACKING_PREFIXES = ("utm_", "at_", "pk_", "mtm_", "hsa_", "oly_")

NUM_PERM = 64
BANDS = 16
ROWS = NUM_PERM // BANDS
#: Estimated Jaccard similarity of shingle sets above which two texts are one copy.
DUPLICATE_THRESHOLD = 0.6
_MIN_WORDS = 12

_WORD = re.compile(r"\w+", re.UNICODE)


def canonical_url(url: str) -> str:
    """The URL that identifies a page: lowercase scheme/host, no www/amp, no tracking, no fragment.

    >>> canonical_url("HTTPS://WWW.Example.org/a/amp/?utm_source=x&id=3#top")
    'https://example.org/a?id=3'
    """
    url = url.strip()
    try:
        url = normalize_url(url, strict=False)
    except (ValueError, AttributeError):
        pass
    parts = urlsplit(url)
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
        if key.lower() not in TRACKING_PARAMS and not key.lower().startswith(_TRACKING_PREFIXES)
    ]
    query.sort()
    return urlunsplit(((parts.scheme or "http").lower(), host, path, urlencode(query), ""))


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
