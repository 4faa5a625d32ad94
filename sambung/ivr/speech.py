"""Saying numbers, digit strings and rupiah amounts as Asterisk media: the ``say`` node's speller.

Pure: no I/O, no clock. ``say_media(kind, value, language)`` returns the media URIs to queue as
one prompt (``sound:...``, ``number:...``, ``digits:...``).

Indonesian (``id``)
    Asterisk has no Indonesian number rules (``number:`` falls back to English), so amounts are
    composed from prompt files of our own under ``sambung/num/`` in the ``id`` sounds folder.
    The set is :data:`INDONESIAN_NUMBER_WORDS`, 21 files::

        nol satu dua tiga empat lima enam tujuh delapan sembilan    the digits
        sepuluh sebelas seratus seribu                               the "se-" (one) forms
        belas puluh ratus ribu juta miliar triliun                   multipliers and scales

    The four "se-" words could be built from a "se" prefix plus the multiplier (18 files), but
    a spliced "se" + "ratus" sounds broken on a phone line; whole words cost four short files.
    Rules: 10 sepuluh, 11 sebelas, 12-19 "<n> belas", 20-99 "<n> puluh [<m>]", 100 seratus,
    200-999 "<n> ratus ...", 1000 seribu but 2000-999999 "<1..999> ribu", and
    "<1..999> juta / miliar / triliun" (1 000 000 is "satu juta": only ribu has a "se-" form).
    0 is "nol". The largest number said is 999 999 999 999 999 (999 triliun ...).

Other languages (English first)
    Asterisk's own rules: ``number:<n>`` and ``digits:<s>``, said in the playback's language.
    Asterisk parses ``number:`` into a C ``int`` (``%30d`` in res_stasis_playback), so anything
    from one billion up is split: ``number:<billions>``, ``sound:digits/billion``,
    ``number:<rest>``; ``digits/billion`` ships with Asterisk's English core sounds.

Money
    The amount said as a number, then ``sound:sambung/rupiah`` (a file of ours in every
    language's folder). Accepted values: plain integers (``"1250000"``) and decimals with a dot
    and one or two decimals (``"1250000.00"``, ``"1250000.5"``), rounded down to whole rupiah
    (rupiah has no sen in practice). Anything else is refused with a ``ValueError`` naming the
    value, in particular Indonesian thousands grouping (``"1.250.000"``) and three decimals
    (``"1.250"``): read as a decimal that would say "satu rupiah" for a debt of 1 250.

Digits
    Indonesian: one ``sound:sambung/num/<word>`` per digit (0 is "nol"). Other languages:
    ``digits:<s>``, Asterisk's say-digits, which plays ``digits/<d>`` per digit itself.
"""

from __future__ import annotations

import re
from typing import Final, Literal

SayKind = Literal["number", "digits", "money"]

NUMBER_PROMPT_DIR: Final = "sambung/num"
RUPIAH_PROMPT: Final = "sambung/rupiah"

MAX_NUMBER: Final = 10**15 - 1  # 999 triliun 999 miliar ... sembilan puluh sembilan

_DIGIT_WORDS: Final = (
    "nol",
    "satu",
    "dua",
    "tiga",
    "empat",
    "lima",
    "enam",
    "tujuh",
    "delapan",
    "sembilan",
)

# Groups of three digits above the units, largest first. Only ribu has a "se-" form for one.
_SCALES: Final = ((10**12, "triliun"), (10**9, "miliar"), (10**6, "juta"), (10**3, "ribu"))

INDONESIAN_NUMBER_WORDS: Final[tuple[str, ...]] = (
    *_DIGIT_WORDS,
    "sepuluh",
    "sebelas",
    "seratus",
    "seribu",
    "belas",
    "puluh",
    "ratus",
    *(word for _, word in _SCALES),
)
"""Every word :func:`indonesian_number_words` can say: one prompt file each under
``sambung/num/`` in the ``id`` sounds folder (``ops/prompts.py`` generates them)."""

# ASCII digits only: str.isdigit() and \d also accept "²" or Arabic-Indic digits.
_INTEGER = re.compile(r"[0-9]+")
_MONEY = re.compile(r"([0-9]+)(?:\.[0-9]{1,2})?")
_ASTERISK_INT_LIMIT: Final = 10**9  # below 2**31 - 1: safe for Asterisk's int parse


def indonesian_number_words(n: int) -> tuple[str, ...]:
    """``n`` in Indonesian words, e.g. 1250000 -> satu juta dua ratus lima puluh ribu."""
    _check_range(n)
    if n == 0:
        return ("nol",)
    words: list[str] = []
    for scale, name in _SCALES:
        group = n // scale % 1000
        if group == 0:
            continue
        if group == 1 and name == "ribu":
            words.append("seribu")
        else:
            words.extend(_below_thousand(group))
            words.append(name)
    words.extend(_below_thousand(n % 1000))
    return tuple(words)


def indonesian_number_prompts(n: int) -> tuple[str, ...]:
    """The prompt names (``sambung/num/<word>``) that say ``n`` in Indonesian."""
    return tuple(f"{NUMBER_PROMPT_DIR}/{w}" for w in indonesian_number_words(n))


def say_media(kind: SayKind, value: str, language: str) -> tuple[str, ...]:
    """Media URIs that say ``value`` as a ``number``, ``digits`` or ``money`` in ``language``.

    Raises ``ValueError`` naming the value when it cannot be said (not a non-negative
    integer, too large, a malformed amount, an empty digit string).
    """
    indonesian = _is_indonesian(language)
    if kind == "digits":
        if not _INTEGER.fullmatch(value):
            raise ValueError(f"cannot say {value!r} as digits: expected 0-9 only")
        if indonesian:
            return tuple(f"sound:{NUMBER_PROMPT_DIR}/{_DIGIT_WORDS[int(d)]}" for d in value)
        return (f"digits:{value}",)
    if kind == "number":
        n = _parse_integer(value)
    elif kind == "money":
        n = _parse_money(value)
    else:
        raise ValueError(f"cannot say {value!r}: unknown kind {kind!r}")
    said = _indonesian_media(n) if indonesian else _asterisk_number_media(n)
    if kind == "money":
        return (*said, f"sound:{RUPIAH_PROMPT}")
    return said


def _below_thousand(n: int) -> list[str]:
    """1..999 (0 says nothing: it is a group with no words)."""
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds == 1:
        words.append("seratus")
    elif hundreds > 1:
        words += [_DIGIT_WORDS[hundreds], "ratus"]
    tens, units = divmod(rest, 10)
    if rest == 10:
        words.append("sepuluh")
    elif rest == 11:
        words.append("sebelas")
    elif tens == 1:
        words += [_DIGIT_WORDS[units], "belas"]
    else:
        if tens > 1:
            words += [_DIGIT_WORDS[tens], "puluh"]
        if units:
            words.append(_DIGIT_WORDS[units])
    return words


def _indonesian_media(n: int) -> tuple[str, ...]:
    return tuple(f"sound:{p}" for p in indonesian_number_prompts(n))


def _asterisk_number_media(n: int) -> tuple[str, ...]:
    if n < _ASTERISK_INT_LIMIT:
        return (f"number:{n}",)
    billions, rest = divmod(n, 10**9)
    media = (f"number:{billions}", "sound:digits/billion")
    return (*media, f"number:{rest}") if rest else media


def _is_indonesian(language: str) -> bool:
    # Asterisk language codes are "id"; accept a region too ("id_ID", "id-ID").
    return re.split(r"[_-]", language, maxsplit=1)[0].lower() == "id"


def _parse_integer(value: str) -> int:
    if value.startswith("-") and _INTEGER.fullmatch(value[1:]):
        raise ValueError(f"cannot say {value!r}: negative numbers are not said")
    if not _INTEGER.fullmatch(value):
        raise ValueError(f"cannot say {value!r} as a number: expected digits 0-9 only")
    return _in_range(value, value)


def _parse_money(value: str) -> int:
    if value.startswith("-") and _MONEY.fullmatch(value[1:]):
        raise ValueError(f"cannot say {value!r}: negative amounts are not said")
    m = _MONEY.fullmatch(value)
    if m is None:
        raise ValueError(
            f"cannot say {value!r} as money: expected whole rupiah (1250000) or a dot "
            "and one or two decimals (1250000.00); no thousands separators"
        )
    return _in_range(m.group(1), value)  # whole rupiah: the decimals are dropped


def _in_range(digits: str, value: str) -> int:
    # Compare lengths before int(): a long enough string would hit Python's int-parsing limit.
    significant = digits.lstrip("0")
    if len(significant) > len(str(MAX_NUMBER)):
        raise ValueError(f"cannot say {value!r}: larger than {MAX_NUMBER} (999 triliun ...)")
    return int(digits)


def _check_range(n: int) -> None:
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"cannot say {n}: only 0..{MAX_NUMBER} are said")
