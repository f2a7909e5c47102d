"""Tests for bot.extract.figures on real sentences from the seed reports and a few made-up ones."""

from __future__ import annotations

import pytest

from bot.extract.figures import Figure, extract_figures, split_sentences


def fig(text: str, phrase: str) -> Figure:
    """The single figure of `text` whose phrase is `phrase`."""
    found = [f for f in extract_figures(text) if f.phrase == phrase]
    assert len(found) == 1, [f.phrase for f in extract_figures(text)]
    return found[0]


def phrases(text: str) -> list[str]:
    return [f.phrase for f in extract_figures(text)]


def test_01_members_including_officers() -> None:
    s = (
        "The statement said that a total of 46 members of the Afghanistan forces, including five officers, "
        "crossed the border late Sunday near the border town of Chitral in Khyber Pakhtunkhwa."
    )
    assert phrases(s) == ["46", "five"]
    a, b = extract_figures(s)
    assert (a.low, a.high, a.counted, a.category, a.modifiers) == (46, 46, "member", "security", ("afghan",))
    assert (a.event, a.attribution, a.time_cue, a.background, a.part_of) == (
        "crossed", "The statement", None, False, None,
    )  # fmt: skip
    assert (b.low, b.high, b.counted, b.category, b.event, b.part_of) == (
        5,
        5,
        "officer",
        "security",
        "crossed",
        0,
    )
    assert b.attribution == "The statement"
    assert s[a.start : a.end] == "46" and (a.sentence_start, a.sentence_end) == (0, len(s))


def test_02_dozens_from_afghanistan() -> None:
    s = (
        "ISLAMABAD: Dozens of soldiers from Afghanistan, fleeing after their border post was overrun by the "
        "Taliban, slipped across the border into Pakistan to seek refuge, the Inter-Services Public Relations "
        "said Monday."
    )
    f = fig(s, "Dozens")
    assert (f.low, f.high, f.counted, f.category, f.modifiers) == (24, 99, "soldier", "security", ("afghan",))
    assert f.event == "crossed"  # main verb "slipped across" beats the parenthetical "fleeing"
    assert f.attribution == "the Inter-Services Public Relations"
    assert len(extract_figures(s)) == 1


def test_03_similar_incident_time_cue() -> None:
    s = (
        "Mentioning a similar incident, the statement said 35 Afghan soldiers who had asked for refuge on "
        "July 1 had also been “given safe passage into Pakistan and handed over to Afghan govt authorities "
        "after due procedure”."
    )
    assert phrases(s) == ["35"]
    f = fig(s, "35")
    assert (f.counted, f.modifiers, f.time_cue, f.attribution) == (
        "soldier",
        ("afghan",),
        "on July 1",
        "the statement",
    )
    assert f.event == "refuge"


def test_04_district_centres_background() -> None:
    s = "The insurgents are said to now control about half of Afghanistan’s 419 district centres."
    f = fig(s, "419")
    assert (f.low, f.background, f.counted, f.event, f.attribution) == (419, True, "centre", None, None)


def test_05_border_length_background() -> None:
    s = (
        "There are several border crossings between the two countries, which share a 2,600-kilometer "
        "historically open border."
    )
    f = fig(s, "2,600")
    assert (f.low, f.high, f.background) == (2600, 2600, True)
    assert all(g.background for g in extract_figures(s))


def test_06_hundreds_fled() -> None:
    s = (
        "Hundreds of Afghan army soldiers and civil officials have fled to neighbouring Tajikistan, Iran and "
        "Pakistan in recent weeks after Taliban offensives in border towns."
    )
    f = fig(s, "Hundreds")
    assert (f.low, f.high, f.counted, f.category, f.event, f.background) == (
        200, 999, "soldier", "security", "fled", False,
    )  # fmt: skip
    assert "afghan" in f.modifiers and f.time_cue == "in recent weeks"


def test_07_taken_refuge() -> None:
    s = (
        "The Pakistani military said on Monday that 46 Afghan soldiers have taken refuge in the country after "
        "losing control of military posts across the border following the advance of Taliban insurgents."
    )
    f = fig(s, "46")
    assert (f.counted, f.modifiers, f.event, f.attribution, f.time_cue) == (
        "soldier", ("afghan",), "refuge", "The Pakistani military", None,
    )  # fmt: skip


def test_08_at_least_fled() -> None:
    s = (
        "At least 46 Afghan soldiers have fled to Pakistan after clashing with Taliban militants in tumultuous "
        "border areas, Pakistani officials said on Monday."
    )
    assert phrases(s) == ["At least 46"]
    f = fig(s, "At least 46")
    assert (f.low, f.high, f.counted, f.category, f.modifiers) == (
        46,
        None,
        "soldier",
        "security",
        ("afghan",),
    )
    assert (f.event, f.attribution) == ("fled", "Pakistani officials")


def test_09_video_caption_clock_time() -> None:
    s = (
        "video of 46 Afg soldiers including 5 officers who have been returned to Afghan govt authorities at "
        "Nawapass Bajaur today at 0035 PST"
    )
    assert phrases(s) == ["46", "5"]  # the clock time 0035 is skipped
    a, b = extract_figures(s)
    assert (a.counted, a.modifiers, a.event) == ("soldier", ("afghan",), "returned")
    assert (b.counted, b.event, b.part_of) == ("officer", "returned", 0)


def test_10_another_batch_earlier_in_july() -> None:
    s = (
        "The Pakistan army said the soldiers who sought refuge will be returned to Afghanistan after due "
        "process, similar to the case of another batch of 35 soldiers earlier in July."
    )
    f = fig(s, "35")
    assert (f.counted, f.time_cue, f.attribution, f.background) == (
        "soldier",
        "earlier in July",
        "The Pakistan army",
        False,
    )


def test_11_security_forces_refuge() -> None:
    s = (
        "The Pakistani military said the 46 Afghan security forces, including five officers, were given "
        "“refuge and safe passage” into Pakistan “on their own request” Sunday night after the men were "
        "unable to hold their military posts across the border."
    )
    a, b = extract_figures(s)
    assert (a.phrase, a.counted, a.category, a.event) == ("46", "force", "security", "refuge")
    assert a.modifiers[0] == "afghan"
    assert (b.phrase, b.counted, b.part_of, b.event) == ("five", "officer", 0, "refuge")
    assert a.attribution == b.attribution == "The Pakistani military"


def test_12_in_early_july() -> None:
    s = (
        "The Pakistani army noted that in early July it had also given “refuge/safe passage” to a group of 35 "
        "Afghan border forces under similar circumstances before they were handed over to Kabul."
    )
    assert phrases(s) == ["35"]
    f = fig(s, "35")
    assert (f.counted, f.category, f.time_cue, f.attribution) == (
        "force",
        "security",
        "in early July",
        "The Pakistani army",
    )


def test_13_years_of_presence() -> None:
    s = (
        "The Taliban intensified their offensive after the United States announced in April that it would "
        "withdraw its troops by September. With America's departure, 20 years of foreign military presence "
        "will end."
    )
    f = fig(s, "20")
    assert (f.counted, f.background, f.sentence_start) == ("year", True, s.index("With"))


def test_14_fence_and_forts() -> None:
    s = (
        "Pakistan rejects the accusations and says it has over the past five years unilaterally constructed "
        "a robust fence and hundreds of new forts along most of the Afghan frontier"
    )
    assert phrases(s) == ["five", "hundreds"]
    assert all(f.background for f in extract_figures(s))


def test_15_strikes_killed_people() -> None:
    s = (
        "A Taliban spokesman reported that Pakistani air strikes in Afghanistan's Paktika province killed 46 "
        "people, mostly women and children."
    )
    assert phrases(s) == ["46"]
    f = fig(s, "46")
    assert (f.counted, f.category, f.event, f.attribution) == (
        "person",
        "civilian",
        "killed",
        "A Taliban spokesman",
    )


def test_16_civilians_reported_killed() -> None:
    s = (
        "46 civilians, mostly women and children, are reported killed in airstrikes by Pakistani jets in "
        "Afghanistan's Paktika province."
    )
    f = fig(s, "46")
    assert (f.counted, f.category, f.event, f.attribution, f.start) == (
        "civilian",
        "civilian",
        "killed",
        None,
        0,
    )


def test_17_million_afghans_deadline_not_a_figure() -> None:
    s = (
        "The government has given 1.7 million Afghans it says are living illegally in the country until "
        "Nov. 1 to leave voluntarily or be forcibly removed."
    )
    assert phrases(s) == ["1.7 million"]
    f = fig(s, "1.7 million")
    assert (f.low, f.high, f.counted, f.category, f.attribution) == (
        1_700_000,
        1_700_000,
        "afghan",
        "migrant",
        None,
    )
    assert len(split_sentences(s)) == 1


def test_18_queue_and_crossings() -> None:
    s = (
        "Thousands joined a snaking queue that stretched 7 kilometers at the busiest border point on "
        "Wednesday, with border officials reporting at least 29,000 people crossed into Afghanistan the day "
        "before."
    )
    assert phrases(s) == ["Thousands", "7", "at least 29,000"]
    th, km, n = extract_figures(s)
    assert (th.low, th.high, th.counted, th.background, th.event, th.time_cue) == (
        2000, 99_999, "person", False, None, None,
    )  # fmt: skip
    assert (km.background, km.counted) == (True, "kilometer")
    assert (n.low, n.high, n.counted, n.event, n.time_cue) == (
        29_000,
        None,
        "person",
        "crossed",
        "the day before",
    )
    assert n.attribution == th.attribution == "border officials"


def test_19_nearly() -> None:
    s = (
        "Nearly 1.7 million undocumented Afghans ordered to leave the country by Wednesday as 'holding "
        "centres' are set up."
    )
    f = fig(s, "Nearly 1.7 million")
    assert (f.low, f.high, f.counted, f.category) == (1_530_000, 1_700_000, "afghan", "migrant")
    assert f.modifiers == ("undocumented",)


def test_20_some_two_million() -> None:
    s = (
        "The crackdown on undocumented migrants mostly affecting some two million Afghans living in "
        "Pakistan without papers."
    )
    f = fig(s, "some two million")
    assert (f.low, f.high, f.counted, f.category) == (1_700_000, 2_300_000, "afghan", "migrant")


def test_21_martyred_and_terrorists_with_bombers() -> None:
    s = (
        "RAWALPINDI – Five soldiers were martyred and 16 terrorists, including four suicide bombers were "
        "killed as an attack on Bannu…"
    )
    a, b, c = extract_figures(s)
    assert (a.phrase, a.counted, a.category, a.event, a.part_of) == (
        "Five",
        "soldier",
        "security",
        "killed",
        None,
    )
    assert (b.phrase, b.counted, b.category, b.event, b.part_of) == (
        "16",
        "terrorist",
        "militant",
        "killed",
        None,
    )
    assert (c.phrase, c.counted, c.category, c.event, c.part_of) == (
        "four",
        "bomber",
        "militant",
        "killed",
        1,
    )


def test_22_martyrdom_of_one_soldier() -> None:
    s = (
        "A suicide bomber hit Frontier Corps (FC) convoy in Kalat district, Balochistan, causing martyrdom of "
        "one soldier and injuries…"
    )
    f = fig(s, "one")
    assert (f.low, f.high, f.counted, f.category, f.event) == (1, 1, "soldier", "security", "killed")


def test_23_lives_and_injured() -> None:
    s = (
        "KHUZDAR – A deadly explosion in Nal Tehsil of Khuzdar claimed lives of three individuals and left "
        "five others injured."
    )
    assert phrases(s) == ["three", "five"]
    a, b = extract_figures(s)
    assert (a.counted, a.category, a.event, a.attribution) == ("person", "civilian", "killed", None)
    assert (b.counted, b.category, b.event) == ("person", "civilian", "injured")


def test_24_cricket_runs() -> None:
    s = "Opener Fakhar Zaman marked his return with 81 runs as Pakistan beat Bangladesh in Kolkata."
    assert [(f.phrase, f.background) for f in extract_figures(s)] == [("81", True)]


def test_25_percent_stake() -> None:
    s = "A Saudi company has expressed interest in acquiring majority ownership of 77.42 percent in Shell Pakistan Ltd."
    assert [(f.phrase, f.low, f.background) for f in extract_figures(s)] == [("77.42", 77.42, True)]


def test_26_over_dozen_headline() -> None:
    f = fig("Over dozen militants killed as Pak forces foil Afghan Border infiltration", "Over dozen")
    assert (f.low, f.high, f.counted, f.category, f.event) == (13, None, "militant", "militant", "killed")


def test_27_repatriated_dozens() -> None:
    s = (
        'Pakistan said Monday it "amicably" repatriated dozens of Afghan soldiers and police personnel to '
        "authorities in Afghanistan a day after they had crossed the border"
    )
    assert phrases(s) == ["dozens"]
    f = fig(s, "dozens")
    assert (f.counted, f.modifiers, f.event, f.attribution) == (
        "soldier",
        ("afghan",),
        "returned",
        "Pakistan",
    )


@pytest.mark.parametrize(
    ("text", "phrase", "expected"),
    [
        (
            "Two Pakistani soldiers were killed in the attack.",
            "Two",
            (2, 2, "soldier", ("pakistani",), "killed"),
        ),
        (
            "The blast hit a convoy, killing 23 Pakistani soldiers.",
            "23",
            (23, 23, "soldier", ("pakistani",), "killed"),
        ),
        ("The death toll rose to 58 on Tuesday.", "58", (58, 58, "person", (), "killed")),
        ("A bomb went off in Quetta, injuring 29 others.", "29", (29, 29, "person", (), "injured")),
        (
            "Forces killed ten Afghan Taliban fighters.",
            "ten",
            (10, 10, "fighter", ("afghan", "taliban"), "killed"),
        ),
        ("Police arrested a dozen suspects.", "a dozen", (12, 12, "suspect", (), "arrested")),
        (
            "There are 2,500-3,500 US soldiers in the country.",
            "2,500-3,500",
            (2500, 3500, "soldier", ("us",), None),
        ),
        ("Some 7,000 NATO troops remain.", "Some 7,000", (5950, 8050, "troop", ("nato",), None)),
        ("۴۶ Afghan soldiers crossed the border.", "۴۶", (46, 46, "soldier", ("afghan",), "crossed")),
        (
            "More than 1,000 refugees were deported.",
            "More than 1,000",
            (1001, None, "refugee", (), "deported"),
        ),
        ("Up to 300 families were displaced.", "Up to 300", (0, 300, "family", (), "displaced")),
        ("Fewer than 40 migrants returned.", "Fewer than 40", (0, 39, "migrant", (), "returned")),
        ("About 20 to 30 men were detained.", "About 20 to 30", (17, 34.5, "man", (), "detained")),
        ("Between 20 and 30 refugees fled.", "Between 20 and 30", (20, 30, "refugee", (), "fled")),
        ("Two or three children were hurt.", "Two or three", (2, 3, "child", (), "injured")),
        (
            "A 500-plus contingent of Afghans surrendered.",
            "500-plus",
            (500, None, "contingent", (), "surrendered"),
        ),
        ("Forty-six soldiers crossed over.", "Forty-six", (46, 46, "soldier", (), "crossed")),
        ("Forty six soldiers crossed over.", "Forty six", (46, 46, "soldier", (), "crossed")),
        ("Half a million Afghans have left.", "Half a million", (500_000, 500_000, "afghan", (), None)),
        (
            "Tens of thousands of refugees returned.",
            "Tens of thousands",
            (20_000, 99_999, "refugee", (), "returned"),
        ),
        ("Several hundred people were displaced.", "Several hundred", (300, 900, "person", (), "displaced")),
        (
            "Thirteen Khawarij terrorists were sent to hell.",
            "Thirteen",
            (13, 13, "terrorist", ("khawarij",), "killed"),
        ),
        ("Officials said 60 more civilians died.", "60", (60, 60, "civilian", (), "killed")),
        ("Forces handed over 46 Afghan soldiers.", "46", (46, 46, "soldier", ("afghan",), "returned")),
        ("A soldier was killed in Kurram.", "A", (1, 1, "soldier", (), "killed")),
        ("Two suicide bombings rocked the city.", "Two", (2, 2, "bombing", ("suicide",), None)),
        ("Five wounded soldiers were evacuated.", "Five", (5, 5, "soldier", ("wounded",), "injured")),
    ],
)
def test_values_and_nouns(text: str, phrase: str, expected: tuple[object, ...]) -> None:
    f = fig(text, phrase)
    assert (f.low, f.high, f.counted, f.modifiers, f.event) == expected
    assert not f.background


def test_headline_attribution_claim() -> None:
    f = fig("58 Pakistani soldiers killed, Taliban claim", "58")
    assert (f.counted, f.modifiers, f.event, f.attribution) == (
        "soldier",
        ("pakistani",),
        "killed",
        "Taliban",
    )


def test_according_to_and_two_clauses() -> None:
    s = "Sixteen terrorists killed, five soldiers martyred in North Waziristan, according to the ISPR."
    a, b = extract_figures(s)
    assert (a.counted, a.event, b.counted, b.event) == ("terrorist", "killed", "soldier", "killed")
    assert a.attribution == b.attribution == "the ISPR"


def test_attribution_skips_relative_clause_and_pronouns() -> None:
    s = "A Pakistani official, who spoke on condition of anonymity, said two soldiers were wounded."
    assert fig(s, "two").attribution == "A Pakistani official"
    assert fig("He said 12 people were wounded.", "12").attribution is None
    assert (
        fig("The Taliban claimed responsibility for the attack that killed 12 police.", "12").attribution
        is None
    )


def test_time_cue_stays_in_its_clause() -> None:
    s = "Hundreds of thousands of Afghans were deported in 2023, tens of thousands of refugees returned."
    a, b = extract_figures(s)
    assert (a.time_cue, b.time_cue) == ("in 2023", None)
    s = "More than 1,600 civilians were killed in the first half, a 47% increase over the same period last year."
    assert fig(s, "More than 1,600").time_cue is None
    s = "Three soldiers and five civilians were killed on July 1, officials said."
    assert [f.time_cue for f in extract_figures(s)] == ["on July 1", "on July 1"]


def test_elliptical_figure_and_clause_attribution() -> None:
    a, b = extract_figures("Pakistan says 23 soldiers died, Taliban claim 58: what we know")
    assert (a.counted, a.event, a.attribution) == ("soldier", "killed", "Pakistan")
    assert (b.phrase, b.counted, b.category, b.event, b.attribution) == (
        "58",
        "soldier",
        "security",
        "killed",
        "Taliban",
    )
    s = "Pakistan's military says 25 of its soldiers were killed; the Taliban say nine of their fighters died."
    a, b = extract_figures(s)
    assert (a.counted, a.event, a.attribution) == ("soldier", "killed", "Pakistan's military")
    assert (b.counted, b.event, b.attribution) == ("fighter", "killed", "the Taliban")


@pytest.mark.parametrize(
    ("text", "phrase", "source"),
    [
        ("Pakistan's military media wing, the ISPR, said 23 soldiers were killed.", "23", "the ISPR"),
        (
            "Customs officials at Torkham said about 1,500 people crossed.",
            "about 1,500",
            "Customs officials at Torkham",
        ),
        (
            "Over 250,000 Afghans have returned since 15 September, UNHCR and IOM said.",
            "Over 250,000",
            "UNHCR and IOM",
        ),
        (
            '"Two children were hurt," said a resident of Borki, a village near the border.',
            "Two",
            "a resident of Borki",
        ),
        (
            "He dismissed the Pakistani military's claim that more than 200 Afghan fighters had been killed.",
            "more than 200",
            "the Pakistani military",
        ),
        ("23 soldiers martyred, over 200 Taliban fighters killed in border clashes: ISPR", "23", "ISPR"),
        (
            "Pedestrians stayed, although officials said a few dozen patients crossed.",
            "a few dozen",
            "officials",
        ),
    ],
)
def test_attribution_shapes(text: str, phrase: str, source: str) -> None:
    assert fig(text, phrase).attribution == source


def test_tolls_that_rise() -> None:
    s = (
        "The death toll from Tuesday's earthquake in Herat's Zindajan district has risen to six, with 27 people "
        "injured, provincial officials said."
    )
    a, b = extract_figures(s)
    assert (a.phrase, a.counted, a.event, b.phrase, b.event) == ("six", "person", "killed", "27", "injured")
    assert a.attribution == b.attribution == "provincial officials"
    s = (
        "Two soldiers wounded in Saturday night's clashes with Afghan Taliban forces in Kurram succumbed to their "
        "injuries at the Combined Military Hospital in Peshawar, the ISPR said on Monday, raising the number of "
        "soldiers martyred in the fighting to 25."
    )
    a, b = extract_figures(s)
    assert (a.counted, a.event, b.phrase, b.event, a.attribution) == (
        "soldier",
        "killed",
        "25",
        "killed",
        "the ISPR",
    )


def test_breakdowns() -> None:
    s = (
        "Three people - two Frontier Corps personnel and a civilian truck driver - were wounded on the Pakistani "
        "side."
    )
    a, b, c = extract_figures(s)
    assert (a.phrase, a.counted, a.event) == ("Three", "person", "injured")
    assert (b.counted, b.category, b.modifiers, b.part_of, b.event) == (
        "personnel", "security", ("frontier", "corps"), 0, "injured",
    )  # fmt: skip
    assert (c.phrase, c.counted, c.part_of) == ("a", "driver", 0)
    s = '"Eight civilians were martyred, among them five children and two women," he said.'
    assert [(f.counted, f.part_of, f.event) for f in extract_figures(s)] == [
        ("civilian", None, "killed"), ("child", 0, "killed"), ("woman", 0, "killed"),
    ]  # fmt: skip
    s = "Officials estimate that about 1.7 million of the more than four million Afghans have no documents."
    a, b = extract_figures(s)
    assert (a.counted, a.category, a.part_of, b.low, b.high) == ("afghan", "migrant", 1, 4_000_001, None)


def test_compounds_and_iso_dates() -> None:
    assert [
        (f.phrase, f.counted, f.background)
        for f in extract_figures("Trade resumed after the eight-day closure.")
    ] == [("eight", "day", True)]
    assert fig("Pakistan named a 17-member squad for the two-match series.", "two").background
    assert fig("A 4.9-magnitude earthquake jolted Herat.", "4.9").background
    assert extract_figures("published: 2025-10-12T11:20:00+05:00\nIn the 2020-21 season") == []


def test_not_figures() -> None:
    s = (
        "On 26 July 2021 at 10:30 the No. 1 priority was COVID-19, G-20 and F-16 jets, @sumrkhan1 wrote "
        "in #Pak2023 on Nov. 1, the 1st time one of the soldiers spoke; no one was hurt in 2019."
    )
    assert extract_figures(s) == []
    assert phrases("A Taliban spokesman said a total of 46 soldiers and a group of them left.") == ["46"]


@pytest.mark.parametrize(
    "text",
    [
        "A 12-year-old boy was hurt.",  # the age is background, "A ... boy" is a figure of 1
        "The fence cost $500 million.",
        "Pakistan won by 5 wickets.",
        "It rose by 12 per cent.",
        "They walked 100 km in 48 hours.",
        "The match ended 3-1.",
    ],
)
def test_background_numbers(text: str) -> None:
    digits = [f for f in extract_figures(text) if f.phrase[0].isdigit()]
    assert digits and all(f.background and f.event is None for f in digits)


def test_split_sentences() -> None:
    s = (
        "Pakistan returns 46 soldiers\n"
        "Maj. Gen. Babar Iftikhar told Mr. Khan in the U.S. capital that 1.7 million left by Nov. 1. "
        "“They crossed,” he said. J. K. Rowling wrote No. 5! Is it true? Yes…\n\n"
        "Shell Pakistan Ltd. Another one."
    )
    got = [s[a:b] for a, b in split_sentences(s)]
    assert got == [
        "Pakistan returns 46 soldiers",
        "Maj. Gen. Babar Iftikhar told Mr. Khan in the U.S. capital that 1.7 million left by Nov. 1.",
        "“They crossed,” he said.",
        "J. K. Rowling wrote No. 5!",
        "Is it true?",
        "Yes…",
        "Shell Pakistan Ltd.",
        "Another one.",
    ]


def test_offsets_and_order_in_article() -> None:
    text = "Headline: 46 soldiers return\nAt least 46 Afghan soldiers fled. Officials said five officers were among them."
    figs = extract_figures(text)
    assert [f.phrase for f in figs] == ["46", "At least 46", "five"]
    for f in figs:
        assert text[f.start : f.end] == f.phrase
        assert f.sentence_start <= f.start < f.end <= f.sentence_end
    assert figs[0].sentence_end == text.index("\n")
