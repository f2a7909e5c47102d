"""Claims extracted from real sentences of the seed reports and the labelled feed corpora."""

from __future__ import annotations

import pytest
import yaml

from bot.config import PACKAGE_DATA_DIR
from bot.extract import extract_claims
from bot.extract.claims import Claims
from bot.extract.document import split_sentences, story_text
from bot.extract.events import classify_event
from bot.extract.knowledge import Knowledge
from bot.extract.places import Gazetteer
from bot.extract.positions import ActorIndex


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    places = yaml.safe_load((PACKAGE_DATA_DIR / "places.yaml").read_text(encoding="utf-8"))["places"]
    actors = yaml.safe_load((PACKAGE_DATA_DIR / "actors.yaml").read_text(encoding="utf-8"))["actors"]
    return Knowledge(Gazetteer(places), ActorIndex(actors))


def claims_of(knowledge: Knowledge, title: str, body: str) -> Claims:
    return extract_claims(title, body, knowledge)


def test_figures_with_attribution_subset_and_earlier_batch(knowledge: Knowledge) -> None:
    body = (
        "ISLAMABAD: Dozens of soldiers from Afghanistan, fleeing after their border post was overrun by the "
        "Taliban, slipped across the border into Pakistan to seek refuge, the Inter-Services Public Relations "
        "said Monday.\n\nThe statement said a total of 46 members of the Afghanistan forces, including five "
        "officers, crossed the border late Sunday near the border town of Chitral in Khyber Pakhtunkhwa.\n\n"
        "Mentioning a similar incident, the statement said 35 Afghan soldiers who had asked for refuge on July 1 "
        "had also been handed over to Afghan govt authorities after due procedure."
    )
    claims = claims_of(knowledge, "Military grants refuge to fleeing Afghan soldiers", body)
    figures = {(f.phrase, f.measure): f for f in claims.figures}
    forty_six = figures[("46", "crossed:security:afghan")]
    assert (forty_six.low, forty_six.high, forty_six.actor_id) == (46, 46, "pakistan-military")
    assert ("five", "crossed:security:afghan:officer") in figures
    dozens = figures[("Dozens", "crossed:security:afghan")]
    assert dozens.vague and dozens.low <= 46 <= (dozens.high or 0)
    assert not any(f.phrase == "35" for f in claims.figures)  # another batch, on July 1
    assert claims.text[forty_six.start : forty_six.end] == "46"


def test_background_figures_are_not_incident_figures(knowledge: Knowledge) -> None:
    body = (
        "There are several border crossings between the two countries, which share a 2,600-kilometer "
        "historically open border. The insurgents are said to now control about half of Afghanistan's 419 "
        "district centres. Hundreds of Afghan army soldiers have fled to Tajikistan, Iran and Pakistan in "
        "recent weeks."
    )
    assert claims_of(knowledge, "Background", body).figures == ()


def test_places_roles_and_furniture(knowledge: Knowledge) -> None:
    body = (
        "The Afghan military commander requested refuge at the border crossing at Arundu in Chitral, which "
        "borders Afghanistan's Kunar province.\n\nIt added the repatriation took place just after midnight "
        "Monday at Nawa Pass border crossing in the Pakistani tribal district Bajaur.\n\nCheck Also\n\n"
        "Women's handicraft exhibition held in Balkh province"
    )
    claims = claims_of(knowledge, "Soldiers returned", body)
    roles = {(p.place_id, p.role) for p in claims.places}
    assert ("arandu", "crossed") in roles
    assert ("nawa-pass", "returned") in roles
    assert not any(p.place_id.startswith("balkh") for p in claims.places)  # page furniture
    assert knowledge.gazetteer.compatible("arandu", "chitral")  # Arandu lies in Chitral
    assert not knowledge.gazetteer.compatible("nawa-pass", "torkham")


def test_transliterations_are_one_place(knowledge: Knowledge) -> None:
    gazetteer = knowledge.gazetteer
    for a, b in (("Arandu", "Arundu"), ("Nawa Pass", "Nawapass"), ("Spin Boldak", "Spin Buldak")):
        (first,), (second,) = gazetteer.find(f"near {a}"), gazetteer.find(f"near {b}")
        assert first.place_id == second.place_id


def test_positions_confirm_deny_and_rebuttal(knowledge: Knowledge) -> None:
    body = (
        "The Afghan government earlier denied its troops had crossed into Pakistan.\n\n"
        "\u201cThis issue is not true. No Afghan military personnel have taken refuge in Pakistan,\u201d said "
        "General Ajmal Omer Shinwari, spokesman for the Afghan National Defense and Security Forces.\n\n"
        "Pakistan's military dismissed the Afghan denial, saying the border crossing by Afghanistan's military "
        "personnel is \u201cconfirmed.\u201d"
    )
    claims = claims_of(knowledge, "Afghan soldiers who crossed border returned", body)
    stances = {(s.actor_id, s.stance) for s in claims.statements}
    assert ("afghan-armed-forces-spokesperson", "denies") in stances
    assert ("pakistan-military", "asserts") in stances
    assert any(s.side == "afghanistan" and s.stance == "denies" for s in claims.statements)


def test_country_as_speaker_and_clauses(knowledge: Knowledge) -> None:
    claims = claims_of(
        knowledge,
        "Settled Afghans forced to flee Pakistan",
        "Pakistan says deportations are to protect 'welfare and security', but Afghan embassy decries move as "
        "'harassment'.",
    )
    assert {(s.side, s.stance) for s in claims.statements} == {
        ("pakistan", "asserts"),
        ("afghanistan", "opposes"),
    }


def test_status_tense(knowledge: Knowledge) -> None:
    # No incident type in these one-liners: status needs the crossing type, given by the title.
    would = claims_of(knowledge, "Afghan soldiers granted refuge", "The soldiers would be returned to Kabul.")
    have = claims_of(knowledge, "Afghan soldiers granted refuge", "The soldiers have been returned to Kabul.")
    assert [(s.axis, s.state) for s in would.status] == [
        ("custody", "crossed"),
        ("custody", "to be returned"),
    ]
    assert ("custody", "returned") in [(s.axis, s.state) for s in have.status]


@pytest.mark.parametrize(
    ("title", "lead", "event"),
    [
        ("Pakistan air strikes in Afghanistan spark Taliban warning of retaliation", "", "airstrike"),
        (
            "On cusp of war? Afghan forces hit back after deadly Pak airstrikes",
            "retaliatory strikes",
            "retaliation",
        ),
        ("Over dozen militants killed as Pak forces foil Afghan Border infiltration", "", "infiltration"),
        ("Tension at Torkham", "THE tense exchange of fire at the Torkham border", "clash"),
        ("Photos: Dozens of Afghans deported by Pakistan authorities", "", "deportation"),
        ("Babar Azam returns as Pakistan unveil playing XI", "", None),
    ],
)
def test_incident_type(title: str, lead: str, event: str | None) -> None:
    assert classify_event(title, lead) == event


def test_scope_needs_both_sides_or_the_border(knowledge: Knowledge) -> None:
    inside = claims_of(
        knowledge,
        "Bombing kills at least 12 in northwest Pakistan, police say",
        "Jaish al-Fursan, a group affiliated with the Pakistani Taliban, claimed responsibility for the attack.",
    )
    border = claims_of(knowledge, "Tension at Torkham", "The tense exchange of fire at the Torkham border.")
    assert not inside.in_scope and border.in_scope


def test_sentences_keep_offsets_and_abbreviations() -> None:
    text = "Gen. Ajmal Omar Shinwari said it. Nearly 1.7 million Afghans must leave by Nov. 1.\nNext line"
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == [
        "Gen. Ajmal Omar Shinwari said it.",
        "Nearly 1.7 million Afghans must leave by Nov. 1.",
        "Next line",
    ]
    assert story_text("Home / News / X\nBody.") == " " * len("Home / News / X") + "\nBody."
