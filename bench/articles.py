"""Synthetic but realistic articles for the benchmarks, built from the sentences of the labelled corpora.

Every sentence comes from a real article body in `../shared/corpus/*/*.txt` (or the bundled seed
reports when the shared corpora are absent). A *story* takes one real article as its template and
moves it: its specific places (towns, crossings, districts) become other places of the gazetteer, its
figures other figures, its years another year, so that every story is a distinct incident. Several
outlets then report each story (a subset of its sentences, padded with context sentences to a
realistic length), some with a figure that disagrees, and some as wire copy of another outlet's text.

Off-topic text (for the 95% of feed items that are not about the border) is the same sentences with
every watched keyword replaced by a neutral word, so it reads like news but matches no keyword.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import yaml

from bot.config import PACKAGE_DATA_DIR
from bot.corpus import read_article_file
from bot.extract.places import SPECIFIC_KINDS
from bot.models import Entry

ROOT = Path(__file__).resolve().parent.parent
SHARED_CORPUS = ROOT.parent / "shared" / "corpus"
BUNDLED = ROOT / "bot" / "demo_data"

#: Outlets that report stories (names only; their URLs are made up under example hosts).
OUTLETS = (
    "Dawn", "The Express Tribune", "Pakistan Observer", "Arab News", "TOLOnews", "Pajhwok", "Khaama Press",
    "Al Jazeera", "BBC News", "Voice of America", "Reuters", "AFP", "The News", "Geo News", "Ariana News",
    "Times of India", "The Hindu", "Hindustan Times", "Radio Free Europe", "Amu TV", "Dunya News",
    "Samaa", "The Nation", "Daily Times", "Business Recorder", "Afghanistan International", "Tasnim",
)  # fmt: skip

_SENTENCE = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’)]))\s+(?=[A-Z\"“‘(])")
_NUMBER = re.compile(r"(?<![\d,.:/-])\b([1-9]\d{0,2})\b(?![\d,.:/%-])")
_YEAR = re.compile(r"\b(19[5-9]\d|20[0-3]\d)\b")
_MONTH = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December)\b"
)
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")  # fmt: skip
_FURNITURE = re.compile(
    r"^(accessibility links|breaking news|file\b|photo\b|home\b|read more|check also|share|advertisement)",
    re.IGNORECASE,
)
#: Watched keywords (config/watch.yaml) and what off-topic text says instead.
NEUTRAL = {
    "afghanistan": "Nepal", "afghans": "Nepalis", "afghan": "Nepali", "taliban": "ruling party",
    "durand line": "northern frontier", "torkham": "Birgunj", "chaman": "Raxaul", "spin boldak": "Jogbani",
    "ghulam khan": "Sunauli", "angoor adda": "Kakarbhitta", "kharlachi": "Bhairahawa", "bajaur": "Morang",
    "kurram": "Sunsari", "waziristan": "Terai", "paktika": "Jhapa", "khost": "Biratnagar", "kunar": "Ilam",
    "nangarhar": "Koshi",
}  # fmt: skip
_WATCHED = re.compile(r"\b(" + "|".join(sorted(NEUTRAL, key=len, reverse=True)) + r")\w*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Template:
    """One real article: its title and body sentences."""

    title: str
    sentences: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Article:
    """One generated article: an outlet's report of a story."""

    url: str
    source: str
    title: str
    text: str
    published: datetime
    story: int
    copy_of: int | None = None  # index of the article this is wire copy of, within the story

    def entry(self, feed_url: str | None = None) -> Entry:
        """The article as a pipeline Entry (its text is passed separately as `text=`)."""
        return Entry(self.url, self.url, self.title, self.text[:400], self.published, self.source, feed_url)


def corpus_files() -> list[Path]:
    """Article files of the shared corpora, else the bundled seed reports."""
    files = sorted(SHARED_CORPUS.glob("*/*.txt")) if SHARED_CORPUS.is_dir() else []
    return files or sorted(BUNDLED.glob("*.txt"))


def _sentences(body: str) -> list[str]:
    out = []
    for line in body.split("\n"):
        line = line.strip()
        if not line or _FURNITURE.match(line):
            continue
        for sentence in _SENTENCE.split(line):
            sentence = sentence.strip()
            if 30 <= len(sentence) <= 450 and sentence.count(" ") >= 5:
                out.append(sentence)
    return out


@cache
def templates() -> tuple[Template, ...]:
    """The corpus articles, deduplicated by title."""
    seen: set[str] = set()
    out = []
    for path in corpus_files():
        entry, body = read_article_file(path)
        sentences = _sentences(body)
        if entry.title in seen or not sentences:
            continue
        seen.add(entry.title)
        out.append(Template(entry.title, tuple(dict.fromkeys(sentences))))
    return tuple(out)


@cache
def _places() -> tuple[dict[str, str], dict[str, list[str]]]:
    """Specific place names (lower-case name -> kind) and the names of each kind."""
    data = yaml.safe_load((PACKAGE_DATA_DIR / "places.yaml").read_text(encoding="utf-8"))
    kind_of: dict[str, str] = {}
    by_kind: dict[str, list[str]] = {}
    for place in data["places"]:
        if place.get("kind") not in SPECIFIC_KINDS or place.get("case_sensitive"):
            continue
        for name in [place["name"], *(place.get("aliases") or [])]:
            if name.isascii() and len(name) > 3:
                kind_of[name.lower()] = place["kind"]
        if place["name"].isascii():
            by_kind.setdefault(place["kind"], []).append(place["name"])
    return kind_of, by_kind


@cache
def _place_pattern() -> re.Pattern[str]:
    names = sorted(_places()[0], key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b", re.IGNORECASE)


_WORD_SPLIT = re.compile(r"\S+")


@cache
def padding_pool(size: int = 6000, seed: int = 11) -> tuple[str, ...]:
    """Novel sentences from a word-bigram Markov chain over the corpus, with places and figures taken out.

    The corpus holds only a few hundred sentences: padding drawn from them would make unrelated articles
    share whole sentences (and look like copies). Chain-made sentences read like the corpus but are
    distinct, so two articles share about as few word triples (the shingles of a fingerprint) as two
    real ones do.
    """
    rng = random.Random(seed)
    chain: dict[str, list[str]] = {}
    starts: list[str] = []
    pattern = _place_pattern()
    for template in templates():
        for sentence in template.sentences:
            sentence = re.sub(r"\d[\d,.]*", "several", pattern.sub("the area", sentence))
            words = _WORD_SPLIT.findall(sentence)
            if len(words) < 4:
                continue
            starts.append(words[0])
            for a, b in zip(words, words[1:], strict=False):
                chain.setdefault(a, []).append(b)
    out: set[str] = set()
    while len(out) < size:
        word = rng.choice(starts)
        words = [word]
        while len(words) < 40:
            following = chain.get(word)
            if not following:
                break
            word = rng.choice(following)
            words.append(word)
            if word[-1] in ".!?" and len(words) >= 8:
                break
        if len(words) < 8 or words[-1][-1] not in ".!?":
            continue
        out.add(" ".join(words))
    return tuple(sorted(out))


@cache
def neutral_pool() -> tuple[str, ...]:
    """Padding sentences with the watched keywords replaced: news-like text that is off-topic."""
    return tuple(neutralize(s) for s in padding_pool())


def neutralize(text: str) -> str:
    """`text` with every watched keyword replaced by a neutral word."""
    return _WATCHED.sub(lambda m: NEUTRAL[m.group(1).lower()], text)


@dataclass(frozen=True, slots=True)
class _Shape:
    """A template with its places, figures, years and months as format fields."""

    title: str
    sentences: tuple[str, ...]
    places: tuple[str, ...]  # lower-case names, field p0, p1, ...
    numbers: tuple[int, ...]  # field n0, n1, ...


def _shape(template: Template) -> _Shape:
    places: dict[str, str] = {}
    numbers: dict[str, str] = {}

    def fields(text: str) -> str:
        text = text.replace("{", "{{").replace("}", "}}")

        def place(m: re.Match[str]) -> str:
            return "{" + places.setdefault(m.group(1).lower(), f"p{len(places)}") + "}"

        def number(m: re.Match[str]) -> str:
            return "{" + numbers.setdefault(m.group(1), f"n{len(numbers)}") + "}"

        text = _place_pattern().sub(place, text)
        text = _YEAR.sub("{year}", text)
        text = _MONTH.sub("{month}", text)
        return _NUMBER.sub(number, text)

    title = fields(template.title)
    sentences = tuple(fields(s) for s in template.sentences)
    return _Shape(title, sentences, tuple(places), tuple(int(n) for n in numbers))


@cache
def shapes() -> tuple[_Shape, ...]:
    """Every template, prepared for moving."""
    return tuple(_shape(t) for t in templates())


class StoryMaker:
    """Makes stories (incidents) and their reports, deterministically from a seed."""

    def __init__(self, seed: int = 7, start: datetime | None = None, stories_per_day: float = 60.0) -> None:
        self.rng = random.Random(seed)
        self.start = start or datetime(2024, 1, 1, tzinfo=UTC)
        self.stories_per_day = stories_per_day
        self.shapes = shapes()
        self.padding = padding_pool()
        self.kind_of, self.by_kind = _places()
        self.story = 0

    def make_story(self, when: datetime | None = None) -> list[Article]:
        """2-8 reports of one new story, published over about a day from `when` (default: the schedule)."""
        rng = self.rng
        index = self.story
        self.story += 1
        when = when or self.start + timedelta(days=index / self.stories_per_day)
        shape = rng.choice(self.shapes)
        values: dict[str, object] = {"year": when.year, "month": MONTHS[when.month - 1]}
        for i, name in enumerate(shape.places):
            values[f"p{i}"] = rng.choice(self.by_kind[self.kind_of[name]])
        for i, number in enumerate(shape.numbers):
            values[f"n{i}"] = max(1, int(number * rng.uniform(0.6, 1.6)))
        title = shape.title.format(**values)
        outlets = rng.sample(OUTLETS, rng.randint(2, 8))
        articles: list[Article] = []
        for number, outlet in enumerate(outlets):
            published = when + timedelta(minutes=rng.randint(0, 26 * 60))
            host = outlet.lower().replace(" ", "") + ".example.com"
            url = f"https://{host}/{published:%Y/%m/%d}/story-{index}-{number}"
            if articles and rng.random() < 0.15:  # wire copy of an earlier report, lightly edited
                original = rng.randrange(len(articles))
                text = edit_words(articles[original].text, rng.uniform(0.0, 0.05), rng)
                copy = Article(url, outlet, articles[original].title, text, published, index, original)
                articles.append(copy)
                continue
            mine = dict(values)
            if shape.numbers and rng.random() < 0.25:  # this outlet counts differently
                key = f"n{rng.randrange(len(shape.numbers))}"
                mine[key] = int(str(mine[key])) + rng.randint(3, 40)
            # An outlet repeats some of the facts (sentences with a place or a figure) in its own words.
            kept = [
                edit_words(s.format(**mine), 0.05, rng)
                for i, s in enumerate(shape.sentences)
                if rng.random() < (0.5 if i == 0 or "{" in s else 0.15)
            ] or [shape.sentences[0].format(**mine)]
            size, target = sum(len(s) for s in kept), rng.randint(1500, 4000)
            while size < target:
                sentence = rng.choice(self.padding)
                kept.insert(rng.randint(1, len(kept)), sentence)
                size += len(sentence) + 2
            lead = title if rng.random() < 0.6 else f"{title.rstrip('.')}, {outlet} reports"
            articles.append(Article(url, outlet, lead, "\n\n".join(kept), published, index))
        return articles

    def articles(self, count: int) -> Iterator[Article]:
        """`count` articles, story after story in published order."""
        made = 0
        while made < count:
            for article in sorted(self.make_story(), key=lambda a: a.published):
                if made == count:
                    return
                made += 1
                yield article


def edit_words(text: str, fraction: float, rng: random.Random) -> str:
    """`text` with about `fraction` of its words replaced, dropped or doubled (copy-desk edits)."""
    words = text.split(" ")
    pool = [w for w in words if w.isalpha()] or ["the"]
    for _ in range(round(len(words) * fraction)):
        i = rng.randrange(len(words))
        action = rng.random()
        if action < 0.6:
            words[i] = rng.choice(pool)
        elif action < 0.8 and len(words) > 1:
            del words[i]
        else:
            words.insert(i, rng.choice(pool))
    return " ".join(words)


def offtopic_text(rng: random.Random, length: int) -> str:
    """News-like text of about `length` characters that matches no watched keyword."""
    pool = neutral_pool()
    parts: list[str] = []
    size = 0
    while size < length:
        sentence = rng.choice(pool)
        parts.append(sentence)
        size += len(sentence) + 1
    return " ".join(parts)
