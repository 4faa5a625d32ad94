"""Debtor lists: CSV rows to records, every bad row reported with its line and reasons. Pure.

Columns (header names, case and spaces ignored):

    account_id*  name*  phone1*  phone2  phone3  amount_due*  due_date | days_past_due*
    timezone | province  language  ...any other column: context for the agent

A row with a bad required field is rejected, with every fault listed; a bad ``phone2`` or
``phone3`` is reported but the row imports with its good numbers. A valid number of a type
the campaign does not dial (``phone_types``: a toll-free 0800 number when only mobiles and
fixed lines are allowed) is reported as ``phone_type_not_allowed`` in any phone column; the
row still imports if another of its numbers may be dialled, because the data is right and
only the campaign's choice leaves that number out. A number on the
do-not-call list is taken off the record (reported as suppressed), and a record left with no
number, or whose account is on the list, is suppressed. Rows with the same account id merge:
numbers are joined in order (at most three; extra ones are reported), other fields come from
the later row. The report accounts for every row:

    total_rows == len(records) + rows merged into an earlier one + rejected + suppressed

Amounts: ``1250000``, ``1250000.50``, ``Rp 1.250.000`` or ``1.250.000,50`` (Indonesian
grouping). A dot followed by exactly three digits is read as grouping when the number has
more than one such group or no other decimal point (``1.250`` is one thousand two hundred
fifty rupiah, which is what a collections list means: rupiah have no cents in practice).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, InvalidOperation

from sambung.dialer.phones import (
    DEFAULT_PHONE_TYPES,
    InvalidPhone,
    PhoneInfo,
    classify,
    normalise_phone,
    zone_for_province,
    zone_from_column,
)
from sambung.engine.errors import SambungError

REQUIRED = ("account_id", "name", "phone1", "amount_due")
PHONES = ("phone1", "phone2", "phone3")
KNOWN = {
    *REQUIRED,
    "phone2",
    "phone3",
    "due_date",
    "days_past_due",
    "timezone",
    "province",
    "language",
}
MAX_PHONES = 3
PROGRESS_EVERY = 500
_GROUPED = re.compile(r"^\d{1,3}(\.\d{3})+(,\d{1,2})?$")
_PLAIN = re.compile(r"^\d+([.,]\d{1,2})?$")


class ListFileError(SambungError):
    """The whole file is unusable (no header, a required column missing)."""

    error_id = "dialer.list_invalid"
    title = "Debtor list is not usable"
    http_status = 400


@dataclass(frozen=True)
class ImportSpec:
    as_of: date
    # (bucket name, min days past due, max days past due or None for open-ended)
    buckets: tuple[tuple[str, int, int | None], ...]
    default_zone: str = "Asia/Jakarta"
    default_language: str = "id"
    dnc_numbers: frozenset[str] = frozenset()
    dnc_accounts: frozenset[str] = frozenset()
    # The number types (dialer.phones.PHONE_TYPES) the campaign dials, in its own order.
    phone_types: tuple[str, ...] = DEFAULT_PHONE_TYPES


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    value: str
    reason_id: str
    message: str


@dataclass(frozen=True)
class DebtorRecord:
    account_id: str
    name: str
    phones: tuple[str, ...]
    amount_due: Decimal
    due_date: date | None
    days_past_due: int
    bucket: str
    zone: str
    zone_source: str  # column, province, phone, default
    language: str
    extra: tuple[tuple[str, str], ...] = ()
    lines: tuple[int, ...] = ()


@dataclass(frozen=True)
class ImportReport:
    records: tuple[DebtorRecord, ...]
    errors: tuple[RowError, ...]
    # (line, account id, the phone or None for the whole account, reason)
    suppressed: tuple[tuple[int, str, str | None, str], ...]
    # (account id, the lines merged into one record)
    merged: tuple[tuple[str, tuple[int, ...]], ...]
    total_rows: int
    rejected_lines: tuple[int, ...] = ()


def parse_amount(text: str) -> Decimal:
    t = text.strip()
    for prefix in ("rp.", "rp", "idr"):
        if t.lower().startswith(prefix):
            t = t[len(prefix) :].strip()
    t = t.replace(" ", "")
    if _GROUPED.match(t):
        t = t.replace(".", "").replace(",", ".")
    elif _PLAIN.match(t):
        t = t.replace(",", ".")
    else:
        raise ValueError("not an amount")
    value = Decimal(t)
    if value < 0:
        raise ValueError("negative")
    return value.quantize(Decimal("0.01"))


def bucket_for(days: int, buckets: tuple[tuple[str, int, int | None], ...]) -> str | None:
    for name, lo, hi in buckets:
        if days >= lo and (hi is None or days <= hi):
            return name
    return None


@dataclass
class _Acc:
    record: DebtorRecord
    lines: list[int] = field(default_factory=list)


def _norm_header(h: str) -> str:
    return "_".join(h.strip().lower().split())


def parse_list(
    lines: Iterable[str],
    spec: ImportSpec,
    *,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration as err:
        raise ListFileError("the list is empty: it needs a header line") from err
    except csv.Error as err:
        raise ListFileError(f"line 1: {err}") from err
    cols = [_norm_header(h) for h in header]
    missing = [c for c in REQUIRED if c not in cols]
    if "due_date" not in cols and "days_past_due" not in cols:
        missing.append("due_date or days_past_due")
    if missing:
        raise ListFileError(f"the header has no {', '.join(missing)} column (line 1)")
    dupes = sorted({c for c in cols if cols.count(c) > 1 and c})
    if dupes:
        raise ListFileError(f"the header names {', '.join(dupes)} twice (line 1)")

    errors: list[RowError] = []
    suppressed: list[tuple[int, str, str | None, str]] = []
    accounts: dict[str, _Acc] = {}
    rejected: list[int] = []
    total = 0
    while True:
        line_no = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            total += 1
            errors.append(RowError(line_no, "", "", "bad_csv", f"not a CSV row: {err}"))
            rejected.append(line_no)
            continue
        line_no = reader.line_num  # the row's last physical line (quoted newlines)
        if not any(cell.strip() for cell in row):
            continue  # a blank line is not a row
        total += 1
        if progress is not None and total % PROGRESS_EVERY == 0:
            progress(total)
        if len(row) != len(cols):
            errors.append(
                RowError(
                    line_no,
                    "",
                    "",
                    "column_count",
                    f"{len(row)} fields, the header has {len(cols)}",
                )
            )
            rejected.append(line_no)
            continue
        values = {c: v.strip() for c, v in zip(cols, row, strict=True)}
        rec, row_errors, fatal = _record(values, line_no, spec)
        errors += row_errors
        if fatal or rec is None:
            rejected.append(line_no)
            continue
        outcome = _apply_dnc(rec, line_no, spec, suppressed)
        if outcome is None:
            continue
        acc = accounts.get(outcome.account_id)
        if acc is None:
            accounts[outcome.account_id] = _Acc(outcome, [line_no])
        else:
            acc.lines.append(line_no)
            acc.record = _merge(acc.record, outcome, line_no, errors)
    if progress is not None:
        progress(total)
    records = tuple(replace(a.record, lines=tuple(a.lines)) for a in accounts.values())
    merged = tuple(
        (a.record.account_id, tuple(a.lines)) for a in accounts.values() if len(a.lines) > 1
    )
    return ImportReport(
        records, tuple(errors), tuple(suppressed), merged, total, tuple(sorted(set(rejected)))
    )


def _record(
    v: Mapping[str, str], line: int, spec: ImportSpec
) -> tuple[DebtorRecord | None, list[RowError], bool]:
    errs: list[RowError] = []

    def bad(column: str, reason: str, message: str) -> None:
        errs.append(RowError(line, column, v.get(column, ""), reason, message))

    account = v.get("account_id", "")
    if not account:
        bad("account_id", "missing", "the account id is empty")
    elif len(account) > 64:
        bad("account_id", "too_long", "the account id is longer than 64 characters")
    name = v.get("name", "")
    if not name:
        bad("name", "missing", "the name is empty")
    phones: list[PhoneInfo] = []
    for col in PHONES:
        raw = v.get(col, "")
        if not raw:
            if col == "phone1":
                bad(col, "missing", "the first phone number is empty")
            continue
        try:
            info = classify(raw)
        except InvalidPhone as err:
            bad(col, err.reason, err.detail)
            continue
        if info.kind not in spec.phone_types:
            bad(
                col,
                "phone_type_not_allowed",
                f"a {info.kind} number; the campaign's phone_types allow "
                f"{', '.join(spec.phone_types)}",
            )
            continue
        if all(p.e164 != info.e164 for p in phones):
            phones.append(info)
    amount = Decimal(0)
    try:
        amount = parse_amount(v.get("amount_due", ""))
    except (ValueError, InvalidOperation):
        bad("amount_due", "bad_amount", "not an amount (e.g. 1250000 or Rp 1.250.000)")
    due: date | None = None
    days: int | None = None
    if v.get("due_date"):
        try:
            due = date.fromisoformat(v["due_date"])
            days = max(0, (spec.as_of - due).days)
        except ValueError:
            bad("due_date", "bad_date", "not a date YYYY-MM-DD")
    elif v.get("days_past_due"):
        raw_days = v["days_past_due"]
        if raw_days.isdigit() and int(raw_days) <= 100000:
            days = int(raw_days)
        else:
            bad("days_past_due", "bad_days", "not a whole number of days")
    else:
        bad("due_date", "missing", "neither a due date nor days past due")
    bucket = bucket_for(days, spec.buckets) if days is not None else None
    if days is not None and bucket is None:
        bad("days_past_due", "no_bucket", f"{days} days past due falls in no configured bucket")
    language = (v.get("language") or spec.default_language).lower()
    if language not in ("id", "en"):
        bad("language", "bad_language", "the language is id or en")
    zone, source = _zone(v, phones, spec, bad)
    # Faults in phone2/phone3 alone do not stop a row that has a good first number, and a
    # number the campaign does not dial is no fault in the data: the row imports on its others.
    fatal = (
        any(
            e.column not in ("phone2", "phone3") and e.reason_id != "phone_type_not_allowed"
            for e in errs
        )
        or not phones
    )
    if fatal:
        return None, errs, True
    assert days is not None
    assert bucket is not None
    extra = tuple((k, val) for k, val in v.items() if k not in KNOWN and k and val)
    return (
        DebtorRecord(
            account_id=account,
            name=name,
            phones=tuple(p.e164 for p in phones),
            amount_due=amount,
            due_date=due,
            days_past_due=days,
            bucket=bucket,
            zone=zone,
            zone_source=source,
            language=language,
            extra=extra,
            lines=(line,),
        ),
        errs,
        False,
    )


def _zone(
    v: Mapping[str, str],
    phones: list[PhoneInfo],
    spec: ImportSpec,
    bad: Callable[[str, str, str], None],
) -> tuple[str, str]:
    if v.get("timezone"):
        z = zone_from_column(v["timezone"])
        if z is None:
            bad("timezone", "bad_zone", "the time zone is WIB, WITA, WIT or Asia/...")
            return spec.default_zone, "default"
        return z, "column"
    if v.get("province"):
        z = zone_for_province(v["province"])
        if z is None:
            bad("province", "unknown_province", "not one of Indonesia's 38 provinces")
            return spec.default_zone, "default"
        return z, "province"
    for p in phones:
        if p.zone is not None:
            return p.zone, "phone"
    return spec.default_zone, "default"


def _apply_dnc(
    rec: DebtorRecord,
    line: int,
    spec: ImportSpec,
    suppressed: list[tuple[int, str, str | None, str]],
) -> DebtorRecord | None:
    if rec.account_id in spec.dnc_accounts:
        suppressed.append((line, rec.account_id, None, "dnc_account"))
        return None
    kept = tuple(p for p in rec.phones if p not in spec.dnc_numbers)
    for p in rec.phones:
        if p in spec.dnc_numbers:
            suppressed.append((line, rec.account_id, p, "dnc_number"))
    if not kept:
        suppressed.append((line, rec.account_id, None, "no_phone_left"))
        return None
    return replace(rec, phones=kept)


def _merge(old: DebtorRecord, new: DebtorRecord, line: int, errs: list[RowError]) -> DebtorRecord:
    phones = list(old.phones)
    for p in new.phones:
        if p in phones:
            continue
        if len(phones) >= MAX_PHONES:
            errs.append(
                RowError(line, "phone", p, "too_many_phones", "a fourth number for the account")
            )
            continue
        phones.append(p)
    return replace(new, phones=tuple(phones))


def parse_dnc(lines: Iterable[str]) -> frozenset[str]:
    """A do-not-call file: one number per line, ``#`` comments; a bad line is an error.

    Any valid Indonesian number is taken, whatever its type or the campaign's phone_types:
    refusing a call is always allowed.
    """
    out: set[str] = set()
    for i, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            out.add(normalise_phone(text))
        except InvalidPhone as err:
            raise ListFileError(f"line {i}: {err.detail}") from err
    return frozenset(out)
