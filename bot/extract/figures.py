"""Find the figures a news text gives for an incident ("at least 46 Afghan soldiers crossed ...").

Pure and regex-based (no I/O, no model); patterns are compiled at import.  Public API:
``extract_figures(text) -> list[Figure]`` and ``split_sentences(text) -> list[(start, end)]``.

Values (``high=None`` = open-ended): exact N -> (N, N); "at least N", "N-plus", "N+", "N or more" ->
(N, None); "more than / over / above N" -> (N+1, None); "nearly / almost / close to N" -> (0.9N, N);
"about / around / approximately / roughly / some / (an) estimated N" -> (0.85N, 1.15N); "up to / as many
as / at most N" -> (0, N); "fewer / less than, under, below N" -> (0, N-1); ranges "2,500-3,500",
"2,500 to 3,500", "between 20 and 30", "two or three".  Vague words: "(a) dozen" 12, "half a dozen" 6,
"dozens" (24, 99), "scores" (40, 199), "hundreds" (200, 999), "thousands" (2000, 99_999), "tens of
thousands" (20_000, 99_999), "hundreds of thousands" (200_000, 999_999), "millions" (2e6, 99_999_999),
"several X" (3X, 9X), "a few X" (2X, 5X), "a couple of X" (2X, 3X).  "a"/"an"/"one" count 1 only before
a person noun ("a soldier"; not "one of", "no one", "a spokesman").  Arabic-Indic digits are read.
Skipped (never returned): dates ("July 26", "Nov. 1"), years (1900-2100 unless a person noun follows),
clock times ("0035 PST", "5:30"), "No. 1", ordinals, digits glued to letters or in handles/codes
("@x1", "COVID-19", "F-16").  Returned with background=True (and no event/time cue/part_of): distances,
areas, durations, ages, percentages, money, scores, counts of places/things, descending "ranges" (3-1).
counted: head noun (the noun phrase ends at its first plural), lowercase singular, as written ("troops"
-> "troop", "forces" -> "force"), except people/persons/individuals/others/lives -> "person"; modifiers:
the words before it plus nationalities in "of the X forces"/"from X" (afghanistan/afg -> afghan,
pakistan/pak -> pakistani).  A figure with no noun copies noun and event from an earlier one of its
sentence ("Pakistan says 23 soldiers died, Taliban claim 58"); else a vague word ("Thousands joined") or
a figure with an event ("toll rose to 58") counts "person".  category follows counted.
event: (1) an event word at most 4 words left of the figure in its clause ("killed 46", "martyrdom of
one soldier"), or anywhere back in the clause after "to"/"at" ("the toll ... has risen to six"); else
(2) the first event word right of the noun phrase, before the next clause comma or figure; a phrase set
off by commas/dashes/brackets right after the noun phrase (", including ...,", ", fleeing ...,") is
skipped first, so the main verb wins ("Dozens of soldiers ..., fleeing ..., slipped across" -> crossed;
"46 soldiers who had sought refuge ... have been returned" -> refuge: no comma, the first verb wins);
"wounded ... succumbed/died" -> killed; else (3) an event word used as modifier ("five wounded
soldiers").  part_of: "including / among them / of whom" figures, figures inside a dash or bracket
after a figure ("Three people - two FC personnel and a civilian -"), "1.7 million of the 4 million";
subsets take their parent's event.  time_cue: a date or relative-time expression (not weekdays, "today")
in the figure's part of the sentence (split at the last comma between two figures), dates preferred
over markers ("another batch", "a similar incident").  attribution: "according to X", "X said / told /
reported / claimed ...", "X, the ISPR, said", "..., said a resident", a headline's "...: ISPR"; the one
in the figure's part of the sentence, else the sentence's first.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

__all__ = ["Figure", "extract_figures", "split_sentences"]


@dataclass(frozen=True, slots=True)
class Figure:
    """A number the text gives for something counted in an incident."""

    low: float
    high: float | None
    phrase: str
    counted: str
    category: str
    modifiers: tuple[str, ...]
    event: str | None
    attribution: str | None
    time_cue: str | None
    background: bool
    part_of: int | None
    start: int
    end: int
    sentence_start: int
    sentence_end: int


def _words(s: str) -> frozenset[str]:
    return frozenset(s.split())


def _table(**groups: str) -> dict[str, str]:
    return {w: key for key, ws in groups.items() for w in ws.split()}


_LEX = _table(
    security="soldier troop officer personnel police policeman cop guard force jawan sepoy commando "
    "paramilitary ranger serviceman trooper cadet constable sentry",
    civilian="civilian person woman child resident villager passenger man boy girl kid worker labourer laborer "
    "student pilgrim tribesman farmer driver infant baby shopkeeper teacher journalist worshipper trader "
    "citizen pakistani",
    militant="militant fighter terrorist insurgent khawarij khariji kharji attacker bomber gunman rebel jihadist "
    "taliban assailant extremist miscreant",
    migrant="refugee migrant afghan deportee family returnee immigrant evacuee national seeker",
)
_IRREG = _table(
    person="people persons individual individuals others lives", man="men", woman="women", child="children",
    policeman="policemen", gunman="gunmen", tribesman="tribesmen", serviceman="servicemen", foot="feet",
    inning="innings", personnel="personnel", police="police", khawarij="khawarij", taliban="taliban",
    corps="corps", series="series", headquarters="headquarters", news="news",
)  # fmt: skip
_BG = _words(
    "km kms kilometer kilometre mile meter metre foot acre hectare kanal square sq year month week day hour hr "
    "minute min decade century percent pc rupee rs dollar usd pkr afghani euro pound tonne ton kg kilogram "
    "litre liter run wicket over goal point ball inning match seat vote district centre center province fort "
    "post checkpost checkpoint village town city country crossing school house home building mosque tehsil "
    "time round page share megawatt mw storey floor degree age magnitude"
)
_NAT = {"afghanistan": "afghan", "afg": "afghan", "pakistan": "pakistani", "pak": "pakistani", "u.s.": "us"}
_NATIONS = _words("afghan afghanistan afg pakistani pakistan pak us u.s. american nato iranian indian chinese "
                  "tajik british russian uzbek")  # fmt: skip
_EVENT = _table(
    killed="kill kills killed killing dead die died dies dying death deaths martyred martyrdom martyrs shahadat "
    "slain perished lives toll fatalities massacred gunned neutralised neutralized eliminated succumbed succumb "
    "succumbs",
    injured="injured injuring injure injuries injury wounded wounding wound wounds hurt",
    crossed="crossed cross crosses slipped entered infiltrated",
    refuge="refuge asylum shelter sheltered sanctuary",
    returned="returned return returns returning repatriated repatriate repatriation handed",
    detained="detained detain detention held custody",
    arrested="arrested arrest arrests arresting apprehended nabbed",
    fled="fled flee fleeing flees escaped escape",
    deported="deported deport deportation deporting expelled expulsion evicted",
    displaced="displaced displacement",
    captured="captured capture seized abducted kidnapped",
    surrendered="surrendered surrender",
    missing="missing",
    sentenced="sentenced convicted jailed",
    attacked="attacked targeted",
)
_MONTHS = "january february march april may june july august september october november december jan feb " \
          "mar apr jun jul aug sep sept oct nov dec"  # fmt: skip
_DAYS = "monday tuesday wednesday thursday friday saturday sunday"
_STOP = _words(
    "a an the this that these those who whom whose which what have has had were was are is will would could "
    "should might can must be been being it its they their them he she his her we our in on at to into from "
    "by for with without after before as and or but nor including near across along while during since under "
    "over than about against between among amid said say says per through via if when where there not also "
    "all both each mostly mainly like until till of up out off down back onto upon within beyond inside "
    "outside behind following earlier later today yesterday tonight now last next ago recently late early "
    f"reportedly allegedly alone only just do did does according because then so night morning {_MONTHS} {_DAYS}"
)
_SKIP = _words("more other additional further another odd")
_ED_ADJ = _words(
    "armed unarmed unidentified suspected alleged undocumented unregistered registered trained retired"
)
_DIED = _words("died dies die succumbed succumb succumbs")
_LEFT_BOUND = _words(
    "and or but while as after before when with who which that by in from against during than"
)
_QUOTES = frozenset("\"'“”‘’«»")
_CLAUSE_PUNCT = frozenset(",;:–—")
_CONJ = frozenset({"and", "or", "as well as", "and also", ""})
_ATTR_VERBS = _words("said says say reported reports reporting told stated confirmed announced noted added "
                     "quoted disclosed revealed claimed claims claim")  # fmt: skip
_ATTR_STOP = _words("with and or but that which who whom in on at to into from by for as after before while "
                    "when is are was were be been being will would than because since where if then so not "
                    "although though however whereas")  # fmt: skip
_CLAIMED = _words("lives life responsibility")
_ATTR_JOIN = _words("at in for from and")  # "Customs officials at Torkham", "UNHCR and IOM"
_PRONOUNS = _words("it he she they we i you who which that this these those there")
_PRE_VERB_SKIP = _words(
    f"also further later earlier has have had reportedly on today yesterday night late {_DAYS}"
)
_OVER_PREV = _words("handed hand hands handing taken take takes took turned turn turning won win")
_CUE_TRIGGERS = _words(
    f"{_MONTHS} ago earlier later before previous previously last past recent batch similar"
)

_SMALL_WORDS = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                "sixteen seventeen eighteen nineteen").split()  # fmt: skip
_TENS_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_SMALL_VALUES = {w: i + 1 for i, w in enumerate(_SMALL_WORDS)} | {
    w: 20 + 10 * i for i, w in enumerate(_TENS_WORDS)
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "lakh": 10**5, "lac": 10**5,
           "crore": 10**7, "mn": 10**6, "bn": 10**9, "dozen": 12}  # fmt: skip
_VAGUE = {"dozens": (24, 99), "scores": (40, 199), "hundreds": (200, 999), "thousands": (2000, 99_999),
          "millions": (2 * 10**6, 99_999_999), "tens of thousands": (20_000, 99_999),
          "hundreds of thousands": (200_000, 999_999), "tens of millions": (2 * 10**7, 99_999_999),
          "hundreds of millions": (2 * 10**8, 999_999_999)}  # fmt: skip
_FEW = {"several": (3, 9), "a few": (2, 5), "few": (2, 5), "a couple of": (2, 3), "half a": (0.5, 0.5)}
_QUAL_KIND = _table(
    min="at_least no_fewer_than no_less_than a_minimum_of",
    gt="more_than over above upwards_of in_excess_of well_over just_over",
    near="nearly almost close_to just_under just_below",
    upto="up_to as_many_as a_maximum_of at_most no_more_than",
    lt="fewer_than less_than under below",
)  # anything else ("about", "some", ...) is approximate

_UNIT = "|".join(_SMALL_WORDS[:9])
_SMALL = rf"(?:(?:{'|'.join(_TENS_WORDS)})(?:[-\s](?:{_UNIT})\b)?|{'|'.join(_SMALL_WORDS[9:])}|{_UNIT})\b"
_SCALE = r"(?:hundred|thousand|million|billion|lakh|lac|crore)\b"
_WORDNUM = rf"(?:(?:{_SMALL}|an?)\s+{_SCALE}(?:[\s-]+(?:and\s+)?(?:{_SCALE}|{_SMALL}))*|{_SMALL})"
_DIG = (r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d,.]?\d)(?!:\d)(?:\s*(?:million|billion|thousand|hundred"
        r"|lakh|lac|crore|mn|bn)\b|%|(?:km|kms|kg)\b)?(?![^\W\d_])")  # fmt: skip
_VAGUE_RE = (r"(?:(?:tens|hundreds)\s+of\s+(?:thousands|millions)|dozens|scores|hundreds|thousands|millions"
             r"|(?:several|a\s+few|a\s+couple\s+of|few|half\s+a)\s+(?:dozen|hundred|thousand|million)"
             r"|an?\s+dozen|dozen)\b")  # fmt: skip
_NUM = rf"(?:{_VAGUE_RE}|{_DIG}|{_WORDNUM})"
_QUAL = (r"at\s+least|no\s+(?:fewer|less|more)\s+than|a\s+(?:minimum|maximum)\s+of|(?:well|just)\s+over"
         r"|more\s+than|over|above|upwards\s+of|in\s+excess\s+of|nearly|almost|close\s+to|just\s+(?:under"
         r"|below)|about|around|approximately|approx\.|roughly|some|an\s+estimated|estimated|up\s+to"
         r"|as\s+many\s+as|at\s+most|(?:fewer|less)\s+than|under|below")  # fmt: skip
_LB = r"(?<![\w@#/.:\-])"
_FIG_RE = re.compile(
    rf"{_LB}(?:(?P<q>{_QUAL})\s+)?(?:between\s+(?P<b1>{_NUM})\s+and\s+(?P<b2>{_NUM})|(?P<n1>{_NUM})"
    rf"(?:(?:\s*[-–—]\s*|\s+to\s+|\s+or\s+)(?P<n2>{_NUM}))?)(?P<p>\s*\+|-plus\b|\s+plus\b|\s+or\s+more\b)?",
    re.I,
)
_CORE_WORDS = [*_SMALL_VALUES, *_SCALES, *_VAGUE, "tens", "several", "few", "half"]
_CORE_SET = frozenset(w for w in _CORE_WORDS if " " not in w)
_DIGITS_RE = re.compile(r"\d+")
_YEAR_RE = re.compile(r"\b(?:19|20)\d\d\b")
_ARABIC_DIGITS_RE = re.compile(r"[\u0660-\u0669\u06f0-\u06f9]")
_TAIL_RE = re.compile(rf"{_LB}(?:(?:{_QUAL})\s+)?(?:between\s+)?(?:an?\s+|a\s+couple\s+of\s+)?$", re.I)
_W = r"\s+([^\W\d_][\w’'-]*)"
_A_RE = re.compile(rf"\b(?:an?)(?={_W}(?:{_W})?(?:{_W})?)", re.I)
_MON = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
        r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\b\.?")  # fmt: skip
_REFS = (
    "No|Nos|Article|Section|Clause|Chapter|Resolution|Page|Phase|Gate|Sector|Route|Flight|Vol|Act|Rule|Level"
)
_BEFORE_RE = re.compile(  # skip: "July 26", "No. 1"; bg: money, ages, magnitudes
    rf"(?:(?P<skip>\b{_MON}|\b(?:{_REFS})\.?)|(?P<bg>\$|US\$|€|£|\bRs\.?|\bPKR|\bUSD|\bAFN|\bAfs?\.?"
    r"|\b(?i:aged|ages?\s+of|magnitude)))\s*$"
)
_AFTER_RE = re.compile(  # skip: "26 July", "0035 PST"; bg: percentages
    rf"(?P<skip>(?:st|nd|rd|th)?\s+(?:of\s+)?{_MON}|\s*(?i:PST|PKT|GMT|UTC|IST|AFT|hrs\b|[ap]\.m\.|[ap]m\b))"
    r"|(?P<bg>\s*(?i:%|per\s*cent\b|percent\b))"
)
_TAIL_WORDS = _words("least than over above of nearly almost to about around approximately approx. roughly some "
                     "estimated as most under below between a an")  # fmt: skip
_INCL_ENDINGS = ("including", "incl.", "among them", "among whom", "of whom", "of them")
_OF_AFTER = re.compile(r"\s+of\b", re.I)
_OF_THE_RE = re.compile(r"\s+of\s+(?:the\s+)?$", re.I)  # "1.7 million of the 4 million Afghans"
_COMPOUND_RE = re.compile(r"-([^\W\d_]+(?:-[^\W\d_]+)*)")  # "2,600-kilometer", "eight-day", "12-year-old"
_PAREN_OPEN = {"(": ")", "-": "-", "–": "–", "—": "—"}
_HEADLINE_SOURCE = re.compile(r":\s*([A-Z][\w’'.-]*(?:\s+[\w’'.-]+){0,3})\s*$")  # "...: ISPR"
_OF_WHOM_AFTER = re.compile(r"\s+of\s+(?:whom|them)\b", re.I)
_CUE_DATE = re.compile(
    rf"\b(?:(?i:earlier|later)\s+(?i:in|on|this)\s+(?:(?i:early|mid|late)[-\s]+)?(?:{_MON}(?:\s+\d{{1,2}}\b)?"
    rf"|(?i:week|month|year))|(?i:on|in|since)\s+(?:(?i:early|mid|late)[-\s]+)?{_MON}(?:\s+\d{{1,2}}\b)?"
    rf"(?:,?\s+\d{{4}}\b)?|(?i:on)\s+\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MON}(?:,?\s+\d{{4}}\b)?"
    r"|(?i:in|since)\s+(?:19|20)\d\d\b|(?i:last|the\s+previous|the\s+past)\s+(?i:week|month|year|weekend)\b"
    r"|(?i:the\s+(?:day|night|week)\s+(?:before|earlier)|the\s+previous\s+day)"
    r"|(?i:(?:a|an|one|two|three|four|five|six|\d+)\s+(?:days?|weeks?|months?|years?)\s+(?:ago|earlier))"
    r"|(?i:in\s+recent\s+(?:days|weeks|months|years)))"
)
_CUE_MARK = re.compile(r"\b(?i:another\s+batch|(?:a\s+)?similar\s+(?:incident|case)|previously"
                       r"|previous\s+(?:batch|incident|group)|earlier\s+batch)\b")  # fmt: skip
_FULL_MONTH_DOT = re.compile(r"(?<=[A-Za-z]{4})\.$")  # "earlier in July." -> "earlier in July"
_CLAUSE_RE = re.compile(r"[,;:–—]")
_TOKEN_RE = re.compile(r"(?:[A-Za-z]\.){2,}|[^\W\d_]+(?:['’\-][^\W\d_]+)*|\d+(?:[.,]\d+)*|\S")
_DIGIT_MAP = {0x0660 + i: 0x30 + i for i in range(10)} | {0x06F0 + i: 0x30 + i for i in range(10)}

_TITLES = _words("mr mrs ms dr gen lt col maj capt brig sgt cpl pvt gov sen rep st jr sr prof rev hon adm cdr "
                 "insp supt dept govt mt vs")  # fmt: skip
_NUM_ABBR = _words(f"{_MONTHS} no nos vol art fig pp")
_BREAK_RE = re.compile(r"\n|[.!?…]+[\"'”’)\]]*(?=\s|$)")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (start, end) of `text`; newlines are hard breaks, abbreviations do not split."""
    spans: list[tuple[int, int]] = []
    cur, n = 0, len(text)
    for m in _BREAK_RE.finditer(text):
        if text[m.start()] != "\n":
            nxt = m.end()
            while nxt < n and text[nxt] in " \t\r\xa0":
                nxt += 1
            if nxt == n or text[nxt] == "\n":
                continue  # the newline (or the end) closes the sentence anyway
            if not (text[nxt].isupper() or text[nxt].isdigit() or text[nxt] in "\"'“‘([«"):
                continue
            if text[m.start()] == ".":
                j = m.start()
                while j > cur and (text[j - 1].isalnum() or text[j - 1] == "."):
                    j -= 1
                word = text[j : m.start()].lower()
                if word in _TITLES or (len(word) == 1 and text[j].isupper()) or "." in word:
                    continue
                if word in _NUM_ABBR and text[nxt].isdigit():
                    continue
        spans.append((cur, m.end()))
        cur = m.end()
    spans.append((cur, n))
    out = []
    for a, b in spans:
        chunk = text[a:b]
        stripped = chunk.strip()
        if stripped:
            a += len(chunk) - len(chunk.lstrip())
            out.append((a, a + len(stripped)))
    return out


_Tok = tuple[int, int, str]


@dataclass(slots=True)
class _Draft:
    low: float
    high: float | None
    start: int
    end: int
    np_end: int
    counted: str
    category: str
    mods: tuple[str, ...]
    bg: bool
    vague: bool
    mod_event: str | None
    parent: int | None = None
    event: str | None = None
    time_cue: str | None = None
    attribution: str | None = None


def _is_word(w: str) -> bool:
    return w[0].isalpha()


def _norm(w: str) -> str:
    if "'" not in w and "’" not in w:
        return w
    for suffix in ("’s", "'s", "’", "'"):
        if w.endswith(suffix):
            return w[: -len(suffix)]
    return w


def _singular(w: str) -> str:
    w = _norm(w)
    if w in _IRREG:
        return _IRREG[w]
    if w.endswith("ies") and len(w) > 4 and w != "series":
        return w[:-3] + "y"
    if w.endswith(("ches", "shes", "sses", "xes")):
        return w[:-2]
    return w[:-1] if w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 2 else w


def _mod(w: str) -> str:
    w = _norm(w)
    return _NAT.get(w, w)


def _value(s: str) -> tuple[float, float, bool, bool]:
    """(low, high, vague, unit-suffix) of one number expression."""
    s = " ".join(s.lower().replace(",", "").split())
    if s in _VAGUE:
        return float(_VAGUE[s][0]), float(_VAGUE[s][1]), True, False
    if s[0].isdigit():
        digits = s.rstrip("abcdefghijklmnopqrstuvwxyz% ")
        v, rest = float(digits), s[len(digits) :].strip()
        scale = _SCALES.get(rest, 1)
        return v * scale, v * scale, False, rest not in _SCALES and rest != ""
    for few, (f_lo, f_hi) in _FEW.items():
        if s.startswith(few + " ") and s[len(few) + 1 :] in _SCALES:
            scale = _SCALES[s[len(few) + 1 :]]
            return float(f_lo * scale), float(f_hi * scale), True, False
    total = cur = 0
    for w in re.split(r"[\s-]+", s):
        if w in ("a", "an"):
            cur = 1
        elif w in _SMALL_VALUES:
            cur += _SMALL_VALUES[w]
        elif w in ("hundred", "dozen"):
            cur = (cur or 1) * _SCALES[w]
        elif w in _SCALES:
            total, cur = total + (cur or 1) * _SCALES[w], 0
    return float(total + cur), float(total + cur), "dozen" in s, False


def _qualify(kind: str, lo: float, hi: float | None) -> tuple[float, float | None]:
    if kind == "min":
        return lo, None
    if kind == "gt":
        return (lo + 1 if lo.is_integer() else lo * 1.0001), None
    if kind == "near":
        return 0.9 * lo, hi
    if kind == "upto":
        return 0.0, hi
    if kind == "lt":
        top = lo if hi is None else hi
        return 0.0, (top - 1 if top.is_integer() else top * 0.9999)
    return 0.85 * lo, None if hi is None else 1.15 * hi


def _plural(w: str) -> bool:
    w = _norm(w)
    if w in _IRREG:
        return _IRREG[w] != w
    return w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3


def _chunk(toks: list[_Tok], i: int) -> list[int]:
    """Token indices of the noun-phrase words from token i on; ends at function words, verbs, a plural."""
    out: list[int] = []
    n = len(toks)
    while i < n and len(out) < 6:
        w = toks[i][2]
        if not _is_word(w) or w in _STOP:
            break
        if w in _SKIP:
            i += 1
            continue
        if w in _EVENT or (
            w.endswith(("ed", "ly")) and w not in _ED_ADJ and _singular(w) not in _LEX and w not in _BG
        ):
            nxt = toks[i + 1][2] if i + 1 < n else "."
            if out or not _is_word(nxt) or nxt in _STOP or nxt in _EVENT:
                break
        out.append(i)
        i += 1
        if _plural(w):
            break  # the head of an English noun phrase is its first plural noun
    while len(out) > 1 and toks[out[-1]][2].endswith("ing"):
        out.pop()
    return out


def _noun_phrase(
    t: str, toks: list[_Tok], starts: list[int], pos: int
) -> tuple[str, str, tuple[str, ...], int, bool, str | None]:
    """(counted, category, modifiers, np_end, background-unit, modifier-event) after a number ending at pos."""
    if cm := _COMPOUND_RE.match(t, pos):  # "2,600-kilometer", "eight-day", "12-year-old", "46-member"
        word = cm.group(1).lower()
        head = _singular(word.split("-")[0])
        return head, _LEX.get(head, "other"), (), cm.end(), head in _BG or word.endswith("old"), None
    i, n = bisect_left(starts, pos), len(toks)
    if i < n and toks[i][2] == "of":
        i += 1
        while i < n and toks[i][2] in ("the", "these", "those", "its", "their", "whom", "them"):
            i += 1
    idx = _chunk(toks, i)
    if not idx:
        return "", "other", (), pos, False, None
    words = [toks[k][2] for k in idx]
    counted = _singular(words[-1])
    category = _LEX.get(counted, "other")
    mods = [_mod(w) for w in words[:-1]]
    bg = category == "other" and any(_singular(w) in _BG for w in words)
    np_end, k = toks[idx[-1]][1], idx[-1] + 1
    if k < n and toks[k][2] in ("of", "from"):  # "members of the Afghan forces", "soldiers from Afghanistan"
        j = k + 1
        while j < n and toks[j][2] in ("the", "its", "their"):
            j += 1
        sub = _chunk(toks, j)
        sub_words = [toks[x][2] for x in sub]
        if sub and toks[k][2] == "of" and counted == "member":
            category = _LEX.get(_singular(sub_words[-1]), "other")
            mods += [_mod(w) for w in sub_words[:-1]] + [_mod(w) for w in sub_words[-1:] if w in _NATIONS]
            np_end = toks[sub[-1]][1]
        elif sub and all(
            w in _NATIONS or not t[toks[x][0]].islower() for x, w in zip(sub, sub_words, strict=True)
        ):
            mods += [_mod(w) for w in sub_words if w in _NATIONS]
            np_end = toks[sub[-1]][1]
    mod_event = next((_EVENT[w] for w in words[:-1] if w in _EVENT), None)
    return counted, category, tuple(dict.fromkeys(mods)), np_end, bg, mod_event


def _draft(t: str, toks: list[_Tok], starts: list[int], m: re.Match[str], s0: int) -> _Draft | None:
    """A figure from a _FIG_RE or _A_RE match, or None when the number is no figure (date, year, ...)."""
    start, end, gd = m.start(), m.end(), m.groupdict()
    q, is_a = gd.get("q"), "n1" not in gd
    core, core2 = (m.group(), None) if is_a else (gd["n1"], gd["n2"]) if gd["n1"] else (gd["b1"], gd["b2"])
    if (
        q
        and q.lower() == "over"
        and t[max(s0, start - 12) : start].lower().split()[-1:] in ([w] for w in _OVER_PREV)
    ):
        q, start = None, m.start("n1") if gd["n1"] else m.start("b1")  # "handed over 46 soldiers"
    plain = core.isdigit()
    mb, ma = _BEFORE_RE.search(t, max(s0, start - 14), start), _AFTER_RE.match(t, end, end + 16)
    if plain and ((mb and mb["skip"]) or (ma and ma["skip"]) or (len(core) > 1 and core[0] == "0")):
        return None
    if plain and len(core) == 4 and 1900 <= int(core) <= 2100 and core2 and core2.isdigit():
        return None  # "2021-07-12", "2020-21"
    lo, hi, vague, suffix = (1.0, 1.0, False, False) if is_a else _value(core)
    counted, category, mods, np_end, bg, mod_ev = _noun_phrase(t, toks, starts, end)
    if plain and not core2 and len(core) == 4 and 1900 <= lo <= 2100 and category == "other":
        return None  # a year
    if (is_a or (core.lower() == "one" and not core2)) and (category == "other" or _OF_AFTER.match(t, end)):
        return None
    high: float | None = hi
    if core2:
        lo2, hi2, _, _ = _value(core2)
        bg, high = bg or lo2 < lo, max(hi, hi2)
    if gd.get("p"):
        high = None
    if q:
        lo, high = _qualify(_QUAL_KIND.get("_".join(q.lower().split()), "approx"), lo, high)
    bg = bg or suffix or bool(mb and mb["bg"]) or bool(ma and ma["bg"])
    high = None if high is None else round(high, 4)
    return _Draft(round(lo, 4), high, start, end, np_end, counted, category, mods, bg, vague, mod_ev)


def _event_at(toks: list[_Tok], k: int) -> str | None:
    w = toks[k][2]
    prev = toks[k - 1][2] if k > 0 else ""
    nxt = toks[k + 1][2] if k + 1 < len(toks) else ""
    if w == "passage":
        return "refuge" if prev == "safe" else None
    if w == "sent":
        return "returned" if nxt == "back" else None
    if w == "removed":
        return "deported" if prev == "forcibly" else None
    if w == "taken" and nxt == "prisoner":
        return "captured"
    if w == "hell" and prev == "to":  # ISPR: "terrorists were sent to hell"
        return "killed"
    return _EVENT.get(w)


def _left_event(toks: list[_Tok], k: int) -> str | None:
    """An event word just before token k+1 in its clause ("killed 46", "martyrdom of one soldier")."""
    i, seen = k, 0
    while i >= 0 and seen < 4:
        w = toks[i][2]
        if w not in _QUOTES:
            if not _is_word(w) or w in _LEFT_BOUND:
                break
            if ev := _event_at(toks, i):
                return ev
            seen += 1
        i -= 1
    if k >= 0 and toks[k][2] in (
        "to",
        "at",
    ):  # "the toll ... has risen to six", "raising the number ... to 25"
        for i in range(k - 1, max(-1, k - 16), -1):
            if toks[i][2] in _CLAUSE_PUNCT:
                break
            if ev := _event_at(toks, i):
                return ev
    return None


def _right_event(
    toks: list[_Tok], starts: list[int], k: int, stop: int, skips: list[tuple[int, int]]
) -> str | None:
    """The first event word after the noun phrase (token k on) in its clause, before `stop`."""

    def scan(a: int, b: int) -> str | None:
        found = None
        for x in range(a, b):
            if toks[x][2] in _CLAUSE_PUNCT and toks[x][2] != "-":
                break
            if any(p <= toks[x][0] < q for p, q in skips):
                continue
            if found == "injured" and toks[x][2] in _DIED:
                return "killed"  # "two soldiers wounded in the clash succumbed to their injuries"
            if found is None and (found := _event_at(toks, x)) not in (None, "injured"):
                return found
        return found

    b = bisect_left(starts, stop)
    if k < b and toks[k][2] in _PAREN_OPEN or (k < b and toks[k][2] == ","):  # skip ", including ...," first
        closer = _PAREN_OPEN.get(toks[k][2], ",")
        close = next((x for x in range(k + 1, b) if toks[x][2] == closer), b)
        return scan(close + 1, b) or scan(k + 1, close)
    return scan(k, b)


def _np_left(t: str, toks: list[_Tok], words: list[str], last: int) -> str | None:
    """The noun phrase ending at token `last` ("the Inter-Services Public Relations", "Customs officials at
    Torkham"), or None when there is none or it is a pronoun."""
    k = last
    while k >= 0 and last - k < 9 and _is_word(words[k]) and words[k] not in _PRONOUNS:
        w = words[k]
        if w in _ATTR_STOP or (w.endswith("ed") and w not in _ED_ADJ):
            joined = w in _ATTR_JOIN and k < last and k > 0 and t[toks[k + 1][0]].isupper()
            if not (joined and _is_word(words[k - 1]) and words[k - 1] not in _ATTR_STOP):
                break
        k -= 1
    if k == last:
        return None
    text = t[toks[k + 1][0] : toks[last][1]]
    return text[:-2] if text.endswith(("'s", "’s")) else text  # "the Pakistani military's claim"


def _attributions(t: str, toks: list[_Tok], s1: int) -> list[tuple[int, str]]:
    """(offset, source words) for every "according to X" / "X said, reported, claimed ..." in a sentence."""
    words = [tk[2] for tk in toks]
    found: list[tuple[int, str]] = []
    for v, w in enumerate(words):
        if w == "according" and v + 2 < len(words) and words[v + 1] == "to":
            j = v + 2
            while j < len(words) and j - v < 18 and words[j][0].isalnum():
                j += 1
            if j > v + 2:
                found.append((toks[v][0], t[toks[v + 2][0] : toks[j - 1][1]]))
            continue
        if w not in _ATTR_VERBS or (w.startswith("claim") and not _CLAIMED.isdisjoint(words[v + 1 : v + 3])):
            continue  # "claimed lives", "claimed responsibility" are no attributions
        last = v - 1
        while last >= 0 and words[last] in _PRE_VERB_SKIP:
            last -= 1
        np = None
        if last > 0 and words[last] == ",":  # "X, who spoke ..., said" / "X's media wing, the ISPR, said"
            c = next((x for x in range(last - 1, -1, -1) if words[x] == ","), -1)
            if c > 0 and words[c + 1] in ("who", "which", "speaking", "talking"):
                np = _np_left(t, toks, words, c - 1)
            elif (
                c >= 0
                and c + 1 < last
                and all(_is_word(x) and x not in _ATTR_STOP for x in words[c + 1 : last])
            ):
                np = t[toks[c + 1][0] : toks[last - 1][1]]
        elif last >= 0:
            np = _np_left(t, toks, words, last)
        if (
            np is None
            and w in ("said", "says", "added", "told")
            and (last < 0 or words[last] in _QUOTES | {","})
        ):
            j = v + 1  # inverted: '..., said a resident of Borki'
            while j < len(words) and j - v < 8 and _is_word(words[j]) and words[j] not in _ATTR_STOP:
                j += 1
            if j > v + 1 and words[v + 1] not in _PRONOUNS:
                np = t[toks[v + 1][0] : toks[j - 1][1]]
        if np:
            found.append((toks[v][0], np))
    if not found and (m := _HEADLINE_SOURCE.search(t, toks[0][0] if toks else 0, s1)):
        found.append((m.start(1), m.group(1)))
    return found


def _cue_ok(t: str, ds: list[_Draft], family: set[int], d: _Draft, pos: int, s0: int, s1: int) -> bool:
    """False when the cue sits in a comma-clause that holds another figure but not `d` ("47% ... last year")."""
    a = max((m.end() for m in _CLAUSE_RE.finditer(t, s0, pos)), default=s0)
    m = _CLAUSE_RE.search(t, pos, s1)
    b = m.start() if m else s1
    return a <= d.start < b or not any(a <= e.start < b for x, e in enumerate(ds) if x not in family)


def _nearest(items: list[tuple[int, str]], a: int, b: int, pos: int) -> str | None:
    inside = [(abs(p - pos), text) for p, text in items if a <= p < b]
    return min(inside)[1] if inside else None


def _parts(t: str, low: str, ds: list[_Draft], s0: int) -> None:
    """Link subsets: "46 ..., including five officers", "Three people - two FC personnel and a civilian -",
    "1.7 million of the 4 million Afghans"."""
    for k, d in enumerate(ds):
        if d.bg or d.parent is not None:
            continue
        prev = ds[k - 1] if k else None
        if prev and prev.parent is not None and t[prev.np_end : d.start].strip(" ,").lower() in _CONJ:
            d.parent = prev.parent  # "among them five children and two women"
        elif low[max(s0, d.start - 30) : d.start].rstrip(" ,:\t").endswith(
            _INCL_ENDINGS
        ) or _OF_WHOM_AFTER.match(t, d.end):
            d.parent = next((p for p in range(k - 1, -1, -1) if not ds[p].bg and ds[p].parent is None), None)
        elif not d.counted and k + 1 < len(ds) and _OF_THE_RE.match(t[d.end : ds[k + 1].start]):
            g = ds[k + 1]
            d.counted, d.category, d.mods, d.parent = g.counted, g.category, g.mods, k + 1
        rest = t[d.np_end : d.np_end + 3].lstrip(" ")
        if rest[:1] in _PAREN_OPEN and (rest[:1] == "(" or t[d.np_end : d.np_end + 1] == " "):
            close = t.find(_PAREN_OPEN[rest[0]], t.index(rest[0], d.np_end) + 1)
            for c in ds[k + 1 :]:
                if c.start < close and not c.bg and c.parent is None:
                    c.parent = k


def _link(t: str, low: str, toks: list[_Tok], starts: list[int], ds: list[_Draft], s0: int, s1: int) -> None:
    """Set part_of, event, time cue and attribution of the drafts of one sentence."""
    _parts(t, low, ds, s0)
    main = [k for k, d in enumerate(ds) if not d.bg and d.parent is None]
    attrs = _attributions(t, toks, s1)
    for d in ds:
        d.attribution = attrs[0][1] if attrs else None
    if not main:
        return
    cues: list[tuple[int, str]] = []
    marks: list[tuple[int, str]] = []
    if not _CUE_TRIGGERS.isdisjoint(tk[2] for tk in toks) or _YEAR_RE.search(t, s0, s1):
        cues = [(m.start(), m.group()) for m in _CUE_DATE.finditer(t, s0, s1)]
        marks = [(m.start(), m.group()) for m in _CUE_MARK.finditer(t, s0, s1)]
    bounds = [s0]  # a cue belongs to the figure on its side of the last clause comma between two figures
    for p in range(1, len(main)):
        gap_start, gap_end = ds[main[p - 1]].np_end, ds[main[p]].start
        bounds.append(max((m.end() for m in _CLAUSE_RE.finditer(t, gap_start, gap_end)), default=gap_end))
    bounds.append(s1)
    regions: dict[int, tuple[int, int, int, list[tuple[int, int]]]] = {}
    chained: dict[int, int] = {}
    for p, k in enumerate(main):
        cur, q, a = ds[k].np_end, p + 1, chained.get(p, bounds[p])
        skips = [(c.start, c.np_end) for c in ds if c.parent == k]
        while q < len(main) and t[cur : ds[main[q]].start].strip(" ,").lower() in _CONJ:
            skips.append(
                (ds[main[q]].start, ds[main[q]].np_end)
            )  # "Three soldiers and five civilians were ..."
            chained[q] = a
            cur, q = ds[main[q]].np_end, q + 1
        regions[k] = (a, bounds[q], ds[main[q]].start if q < len(main) else s1, skips)
    for k in sorted(range(len(ds)), key=lambda x: ds[x].parent is not None):  # parents first
        d = ds[k]
        if d.bg:
            continue
        top = d.parent if d.parent is not None else k
        a, b, stop, skips = regions[top]
        own = _left_event(toks, bisect_left(starts, d.start) - 1)
        own = own or _right_event(toks, starts, bisect_left(starts, d.np_end), stop, skips) or d.mod_event
        d.event = (ds[d.parent].event or own) if d.parent is not None else own
        if not d.counted and d.event is None:  # "Pakistan says 23 soldiers died, Taliban claim 58"
            prev = next((ds[x] for x in reversed(main) if x < k and ds[x].counted and ds[x].event), None)
            if prev:
                d.counted, d.category, d.event = prev.counted, prev.category, prev.event
        if not d.counted and (d.vague or d.event):
            d.counted, d.category = "person", "civilian"
        d.attribution = _nearest(attrs, a, b, d.start) or d.attribution
        if cues or marks:
            family = {top} | {x for x, c in enumerate(ds) if c.parent == top}
            ok = [(p, c) for p, c in cues if a <= p < b and _cue_ok(t, ds, family, d, p, s0, s1)]
            ok = ok or [(p, c) for p, c in marks if a <= p < b and _cue_ok(t, ds, family, d, p, s0, s1)]
            d.time_cue = (
                _FULL_MONTH_DOT.sub("", min(ok, key=lambda x: abs(x[0] - d.start))[1]) if ok else None
            )


def _number_starts(t: str, low: str) -> list[int]:
    """Start offsets of digit runs and number words: C-speed scans instead of one big alternation."""
    found = [m.start() for m in _DIGITS_RE.finditer(low)]
    for w in _CORE_SET:
        i = low.find(w)
        while i >= 0:
            j = i + len(w)
            if (i == 0 or not low[i - 1].isalnum()) and (j == len(low) or not low[j].isalnum()):
                found.append(i)
            i = low.find(w, j)
    return sorted(found)


def extract_figures(text: str) -> list[Figure]:
    """Every figure in `text`, in text order, background ones included and flagged."""
    t = text.translate(_DIGIT_MAP) if _ARABIC_DIGITS_RE.search(text) else text
    low = t.lower()
    if len(low) != len(t):  # a few characters lowercase to two
        low = "".join(ch.lower()[0] for ch in t)
    spans = split_sentences(t)
    sent_starts = [a for a, _ in spans]
    by_sentence: dict[int, list[re.Match[str]]] = {}
    last_end = -1
    for p in _number_starts(t, low):  # then the full pattern around each number
        si = bisect_right(sent_starts, p) - 1
        if p < last_end or si < 0 or p >= spans[si][1]:
            continue
        s0, s1 = spans[si]
        prev = low[max(s0, p - 16) : p].split()[-1:]
        tail = _TAIL_RE.search(t, max(s0, p - 28), p) if prev and prev[0] in _TAIL_WORDS else None
        m = _FIG_RE.match(t, tail.start(), s1) if tail else None
        m = m if m and m.end() > p else _FIG_RE.match(t, p, s1)
        if m:
            by_sentence.setdefault(si, []).append(m)
            last_end = m.end()
    for m in _A_RE.finditer(t):
        si = bisect_right(sent_starts, m.start()) - 1
        if (
            si >= 0
            and m.end() <= spans[si][1]
            and any(g and _singular(g.lower()) in _LEX for g in m.groups())
        ):
            found = by_sentence.setdefault(si, [])
            if not any(f.start() <= m.start() < f.end() for f in found):
                found.append(m)
    out: list[Figure] = []
    for si in sorted(by_sentence):
        s0, s1 = spans[si]
        toks = [(*m.span(), m.group()) for m in _TOKEN_RE.finditer(low, s0, s1)]
        starts = [tk[0] for tk in toks]
        ds = sorted(
            (d for m in by_sentence[si] if (d := _draft(t, toks, starts, m, s0)) is not None),
            key=lambda d: d.start,
        )
        if not ds:
            continue
        _link(t, low, toks, starts, ds, s0, s1)
        base = len(out)
        for d in ds:
            parent = None if d.parent is None else base + d.parent
            out.append(Figure(
                d.low, d.high, text[d.start : d.end].strip(), d.counted, d.category, d.mods, d.event,
                d.attribution, d.time_cue, d.bg, parent, d.start, d.end, s0, s1,
            ))  # fmt: skip
    return out
