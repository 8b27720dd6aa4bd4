"""Matching (server/screening/match.py): one Latin form, blocking, the outcome rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.screening.match import (
    MATCH,
    NO_MATCH,
    POSSIBLE_MATCH,
    ListIndex,
    Subject,
    Thresholds,
    normalise_name,
    overall,
)
from server.screening.parse import ListEntry

ENTRIES = [
    ListEntry("T-1", "person", "800315312341", ("Жұмабаев Ғалым Серікұлы",), "1980-03-15",
              "KZ", ""),
    ListEntry("T-2", "person", "", ("Щербаков Юрий", "Shcherbakov Yury"), "1975", "RU", ""),
    ListEntry("T-3", "entity", "100540012345", ("ЖШС «Ромашка»",), "", "", ""),
    ListEntry("T-4", "person", "", ("Хасанов Ёкуб",), "1990-01-01", "", ""),
]
INDEX = ListIndex.build("terrorist", 1, ENTRIES)
T = Thresholds()


@pytest.mark.parametrize(("cyrillic", "latin"), [
    ("Жұмабаев Ғалым", "Zhumabayev Galym"),
    ("Щербаков Юрий", "Shcherbakov Iurii"),
    ("Хасанов Ёкуб", "Khasanov Yokub"),
    ("Цой Виктор", "Tsoy Viktor"),
    ("Ахметов Ержан", "Akhmetov Yerzhan"),
    ("Фёдоров Пётр", "Fedorov Piotr"),
    ("Қасымов Нұрсұлтан", "Kassymov Nursultan"),
])
def test_cyrillic_and_latin_spellings_share_one_form(cyrillic: str, latin: str) -> None:
    assert normalise_name(cyrillic) == normalise_name(latin)


def test_word_order_and_case_do_not_count() -> None:
    assert normalise_name("IVANOV Ivan") == normalise_name("иван иванов")


def test_exact_iin_is_a_match_whatever_the_name() -> None:
    hits = INDEX.screen(Subject(iin_bin="800315312341", name="Somebody Else"), T)
    assert [(h.entry.ref, h.outcome, h.basis) for h in hits] == [("T-1", MATCH, "iin_bin")]


def test_latin_name_with_the_same_birth_date_is_a_match() -> None:
    hits = INDEX.screen(Subject(name="Zhumabayev Galym Serikuly", birth_date="1980-03-15"), T)
    assert hits[0].entry.ref == "T-1" and hits[0].outcome == MATCH
    assert hits[0].basis == "name+birth_date"


def test_name_without_a_birth_date_is_a_possible_match() -> None:
    hits = INDEX.screen(Subject(name="Khasanov Yokub"), T)
    assert [(h.entry.ref, h.outcome) for h in hits] == [("T-4", POSSIBLE_MATCH)]


def test_year_only_birth_date_of_the_entry_gives_a_possible_match() -> None:
    hits = INDEX.screen(Subject(name="Shcherbakov Yuri", birth_date="1975-06-01"), T)
    assert overall(hits) == POSSIBLE_MATCH and hits[0].entry.ref == "T-2"


def test_a_near_name_with_another_birth_year_is_no_match() -> None:
    # similar (86.9: possible without dates) but born another year: nothing
    assert overall(INDEX.screen(Subject(name="Khasanov Ayub"), T)) == POSSIBLE_MATCH
    hits = INDEX.screen(Subject(name="Khasanov Ayub", birth_date="1961-01-01"), T)
    assert overall(hits) == NO_MATCH


def test_a_very_close_name_with_another_birth_date_stays_a_possible_match() -> None:
    hits = INDEX.screen(Subject(name="Khasanova Yokub", birth_date="1961-01-01"), T)
    assert overall(hits) == POSSIBLE_MATCH and hits[0].basis == "name"


def test_unrelated_names_do_not_match() -> None:
    assert INDEX.screen(Subject(name="Иванов Иван", birth_date="1980-03-15"), T) == []
    assert overall([]) == NO_MATCH


def test_blocking_only_scores_names_sharing_a_key() -> None:
    assert INDEX.candidates(normalise_name("Zhumabayev Galym")) != []
    assert INDEX.candidates(normalise_name("Ivanov Ivan")) == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_normalised_names_are_lower_ascii_letters_and_spaces(name: str) -> None:
    norm = normalise_name(name)
    assert all(c == " " or "a" <= c <= "z" for c in norm)
    assert norm == normalise_name(norm)  # a fixed point: screening the form again agrees


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(ENTRIES), st.sampled_from([str.upper, str.lower, str.title]))
def test_every_listed_name_finds_its_entry(entry: ListEntry, case: object) -> None:
    for name in entry.names:
        hits = INDEX.screen(Subject(name=case(name)), T)  # type: ignore[operator]
        assert entry.ref in {h.entry.ref for h in hits}
