"""The say node's speller: Indonesian number words written out by hand, properties, media."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sambung.ivr.speech import (
    INDONESIAN_NUMBER_WORDS,
    MAX_NUMBER,
    indonesian_number_prompts,
    indonesian_number_words,
    say_media,
)

# Written out by hand, not generated: the reference for the speller.
CASES: list[tuple[int, str]] = [
    (0, "nol"),
    (1, "satu"),
    (2, "dua"),
    (9, "sembilan"),
    (10, "sepuluh"),
    (11, "sebelas"),
    (12, "dua belas"),
    (15, "lima belas"),
    (16, "enam belas"),
    (19, "sembilan belas"),
    (20, "dua puluh"),
    (21, "dua puluh satu"),
    (30, "tiga puluh"),
    (45, "empat puluh lima"),
    (68, "enam puluh delapan"),
    (99, "sembilan puluh sembilan"),
    (100, "seratus"),
    (101, "seratus satu"),
    (110, "seratus sepuluh"),
    (111, "seratus sebelas"),
    (112, "seratus dua belas"),
    (199, "seratus sembilan puluh sembilan"),
    (200, "dua ratus"),
    (250, "dua ratus lima puluh"),
    (807, "delapan ratus tujuh"),
    (999, "sembilan ratus sembilan puluh sembilan"),
    (1000, "seribu"),
    (1001, "seribu satu"),
    (1010, "seribu sepuluh"),
    (1100, "seribu seratus"),
    (1999, "seribu sembilan ratus sembilan puluh sembilan"),
    (2000, "dua ribu"),
    (2500, "dua ribu lima ratus"),
    (10000, "sepuluh ribu"),
    (11000, "sebelas ribu"),
    (12000, "dua belas ribu"),
    (21000, "dua puluh satu ribu"),
    (50000, "lima puluh ribu"),
    (99999, "sembilan puluh sembilan ribu sembilan ratus sembilan puluh sembilan"),
    (100000, "seratus ribu"),
    (101000, "seratus satu ribu"),
    (111111, "seratus sebelas ribu seratus sebelas"),
    (125000, "seratus dua puluh lima ribu"),
    (
        999999,
        "sembilan ratus sembilan puluh sembilan ribu sembilan ratus sembilan puluh sembilan",
    ),
    (1000000, "satu juta"),
    (1000001, "satu juta satu"),
    (1001000, "satu juta seribu"),
    (1250000, "satu juta dua ratus lima puluh ribu"),
    (2000000, "dua juta"),
    (10000000, "sepuluh juta"),
    (11500000, "sebelas juta lima ratus ribu"),
    (100000000, "seratus juta"),
    (1000000000, "satu miliar"),
    (1001001001, "satu miliar satu juta seribu satu"),
    (2500000000, "dua miliar lima ratus juta"),
    (1000000000000, "satu triliun"),
    (1000000001000, "satu triliun seribu"),
    (7000000000007, "tujuh triliun tujuh"),
    (
        MAX_NUMBER,
        "sembilan ratus sembilan puluh sembilan triliun "
        "sembilan ratus sembilan puluh sembilan miliar "
        "sembilan ratus sembilan puluh sembilan juta "
        "sembilan ratus sembilan puluh sembilan ribu "
        "sembilan ratus sembilan puluh sembilan",
    ),
]


@pytest.mark.parametrize(("n", "words"), CASES, ids=[str(n) for n, _ in CASES])
def test_given_a_number_when_spelled_in_indonesian_then_the_words_match_the_table(
    n: int, words: str
) -> None:
    assert " ".join(indonesian_number_words(n)) == words


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 40


def test_prompts_are_the_words_under_sambung_num() -> None:
    assert indonesian_number_prompts(1250000) == (
        "sambung/num/satu",
        "sambung/num/juta",
        "sambung/num/dua",
        "sambung/num/ratus",
        "sambung/num/lima",
        "sambung/num/puluh",
        "sambung/num/ribu",
    )


def test_the_declared_prompt_set_is_the_smallest_one_used() -> None:
    used = {w for n, _ in CASES for w in indonesian_number_words(n)}
    assert used == set(INDONESIAN_NUMBER_WORDS)
    assert len(INDONESIAN_NUMBER_WORDS) == len(set(INDONESIAN_NUMBER_WORDS)) == 21


@pytest.mark.parametrize("n", [-1, MAX_NUMBER + 1, 10**18])
def test_given_a_number_out_of_range_when_spelled_then_value_error(n: int) -> None:
    with pytest.raises(ValueError, match=str(n)):
        indonesian_number_words(n)


# ---- an independent reader: words back into a number -----------------------------------------

_UNIT = {w: i for i, w in enumerate(INDONESIAN_NUMBER_WORDS[:10])}
_SCALE = {"ribu": 10**3, "juta": 10**6, "miliar": 10**9, "triliun": 10**12}


def read_indonesian(words: tuple[str, ...]) -> int:
    """Reads the words left to right the way a listener adds them up.

    Deliberately built differently from the speller: a running group (below a thousand) that
    each scale word multiplies into the total; "se-" words are one of their multiplier.
    """
    total = group = pending = 0
    for w in words:
        if w in _UNIT:
            assert pending == 0, f"two digits in a row in {words}"
            pending = _UNIT[w]
        elif w == "sepuluh":
            group += 10
        elif w == "sebelas":
            group += 11
        elif w == "belas":
            group, pending = group + 10 + pending, 0
        elif w == "puluh":
            group, pending = group + 10 * pending, 0
        elif w == "seratus":
            group += 100
        elif w == "ratus":
            group, pending = group + 100 * pending, 0
        elif w == "seribu":
            total += 1000
        elif w in _SCALE:
            total, group, pending = total + (group + pending) * _SCALE[w], 0, 0
        else:
            raise AssertionError(f"unknown word {w!r} in {words}")
    return total + group + pending


def _group_numbers() -> st.SearchStrategy[int]:
    """Numbers built from three-digit groups that favour 0, 1, 10-19 and 100-119: the edges."""
    edge = st.sampled_from([0, 0, 0, 1, 1, 2, 9, 10, 11, 12, 19, 20, 21, 99, 100, 101, 110, 111])
    group = st.one_of(edge, st.integers(0, 999))
    return st.lists(group, min_size=1, max_size=5).map(
        lambda gs: sum(g * 1000**i for i, g in enumerate(gs))
    )


numbers = st.one_of(st.integers(0, MAX_NUMBER), _group_numbers())


@given(numbers)
def test_property_reading_the_words_back_gives_the_number(n: int) -> None:
    assert read_indonesian(indonesian_number_words(n)) == n


@given(numbers)
def test_property_one_is_never_said_as_satu_before_a_multiplier(n: int) -> None:
    words = indonesian_number_words(n)
    pairs = list(pairwise(words))
    for bad in ("ratus", "puluh", "belas"):
        assert ("satu", bad) not in pairs, words
    # "satu ribu" is right only as the end of a larger multiplier: 21 000 "dua puluh satu
    # ribu", 101 000 "seratus satu ribu"; a thousand on its own is always "seribu".
    for i, pair in enumerate(pairs):
        if pair == ("satu", "ribu"):
            assert i > 0, words
            assert words[i - 1] in {"puluh", "ratus", "seratus"}, words


@given(numbers)
def test_property_the_words_are_never_empty_and_come_from_the_declared_set(n: int) -> None:
    words = indonesian_number_words(n)
    assert words
    assert set(words) <= set(INDONESIAN_NUMBER_WORDS)
    assert indonesian_number_prompts(n) == tuple(f"sambung/num/{w}" for w in words)
    assert ("nol" in words) == (n == 0)


@given(numbers)
def test_property_indonesian_number_media_are_our_prompt_files(n: int) -> None:
    media = say_media("number", str(n), "id")
    assert media == tuple(f"sound:sambung/num/{w}" for w in indonesian_number_words(n))


@given(numbers, st.sampled_from(["id", "en"]), st.sampled_from(["", ".0", ".00", ".5", ".99"]))
def test_property_money_adds_exactly_one_trailing_rupiah(n: int, lang: str, cents: str) -> None:
    media = say_media("money", f"{n}{cents}", lang)
    assert media[-1] == "sound:sambung/rupiah"
    assert media.count("sound:sambung/rupiah") == 1
    assert media[:-1] == say_media("number", str(n), lang)


@given(st.text(alphabet="0123456789", min_size=1, max_size=40))
def test_property_indonesian_digits_are_one_prompt_per_digit(s: str) -> None:
    media = say_media("digits", s, "id")
    assert len(media) == len(s)
    for d, m in zip(s, media, strict=True):
        assert m == "sound:sambung/num/" + indonesian_number_words(int(d))[0]


@given(st.text(alphabet="0123456789", min_size=1, max_size=40))
def test_property_english_digits_are_asterisks_say_digits(s: str) -> None:
    assert say_media("digits", s, "en") == (f"digits:{s}",)


# ---- say_media: the value as text, both languages --------------------------------------------

MEDIA: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("number", "0", "en", ("number:0",)),
    ("number", "42", "en", ("number:42",)),
    ("number", "007", "en", ("number:7",)),
    ("number", "999999999", "en", ("number:999999999",)),
    # Asterisk reads number: into a C int; from a billion up we say the billions ourselves.
    ("number", "1000000000", "en", ("number:1", "sound:digits/billion")),
    ("number", "2500000000", "en", ("number:2", "sound:digits/billion", "number:500000000")),
    (
        "number",
        "999999999999999",
        "en",
        ("number:999999", "sound:digits/billion", "number:999999999"),
    ),
    ("digits", "0812", "en", ("digits:0812",)),
    ("money", "1250000", "en", ("number:1250000", "sound:sambung/rupiah")),
    ("money", "1250000.99", "en", ("number:1250000", "sound:sambung/rupiah")),
    ("money", "0", "en", ("number:0", "sound:sambung/rupiah")),
    ("number", "12", "id", ("sound:sambung/num/dua", "sound:sambung/num/belas")),
    ("number", "0", "id", ("sound:sambung/num/nol",)),
    (
        "digits",
        "0812",
        "id",
        (
            "sound:sambung/num/nol",
            "sound:sambung/num/delapan",
            "sound:sambung/num/satu",
            "sound:sambung/num/dua",
        ),
    ),
    (
        "money",
        "1250000.00",
        "id",
        (
            "sound:sambung/num/satu",
            "sound:sambung/num/juta",
            "sound:sambung/num/dua",
            "sound:sambung/num/ratus",
            "sound:sambung/num/lima",
            "sound:sambung/num/puluh",
            "sound:sambung/num/ribu",
            "sound:sambung/rupiah",
        ),
    ),
    ("money", "1000.5", "id", ("sound:sambung/num/seribu", "sound:sambung/rupiah")),
    ("number", "11", "id_ID", ("sound:sambung/num/sebelas",)),
    ("number", "11", "ID-id", ("sound:sambung/num/sebelas",)),
    # Languages other than Indonesian get Asterisk's own rules.
    ("number", "21", "fr", ("number:21",)),
]


@pytest.mark.parametrize(("kind", "value", "lang", "media"), MEDIA)
def test_given_a_value_when_said_then_these_media(
    kind: str, value: str, lang: str, media: tuple[str, ...]
) -> None:
    assert say_media(kind, value, lang) == media  # type: ignore[arg-type]


BAD: list[tuple[str, str, str]] = [
    ("number", "-1", "negative"),
    ("money", "-1250000", "negative"),
    ("money", "-5.00", "negative"),
    ("number", "", "digits 0-9"),
    ("number", "12.5", "digits 0-9"),
    ("number", " 12", "digits 0-9"),
    ("number", "+12", "digits 0-9"),
    ("number", "1_000", "digits 0-9"),
    ("number", "١٢", "digits 0-9"),  # Arabic-Indic digits: int() takes them, Asterisk does not
    ("number", "1000000000000000", "larger than"),
    ("number", "9" * 5000, "larger than"),  # past Python's int-parsing limit: still our error
    ("money", "1000000000000000.00", "larger than"),
    ("money", "1.250.000", "as money"),
    ("money", "1.250", "as money"),
    ("money", "1,250,000", "as money"),
    ("money", "1250000,00", "as money"),
    ("money", "Rp 1250000", "as money"),
    ("money", "1250000.", "as money"),
    ("money", ".5", "as money"),
    ("money", "1e6", "as money"),
    ("money", "", "as money"),
    ("digits", "", "as digits"),
    ("digits", "08-12", "as digits"),
    ("digits", "12a", "as digits"),
]


@pytest.mark.parametrize(("kind", "value", "message"), BAD)
@pytest.mark.parametrize("lang", ["id", "en"])
def test_given_a_value_that_cannot_be_said_then_value_error_names_it(
    kind: str, value: str, message: str, lang: str
) -> None:
    with pytest.raises(ValueError, match=message) as err:
        say_media(kind, value, lang)  # type: ignore[arg-type]
    assert repr(value) in str(err.value)


def test_given_an_unknown_kind_then_value_error() -> None:
    with pytest.raises(ValueError, match="unknown kind 'date'"):
        say_media("date", "12", "en")  # type: ignore[arg-type]
