"""Migrations stay backward compatible for one release (docs/operations.md, "Upgrades").

A rolling upgrade runs ``sambung migrate`` first, while the engines of the previous release
still run on the new schema (the standby, then the active one, are restarted afterwards). So a
migration newer than the last release must not take away or change what that release's code
reads and writes. Refused in those migrations:

  * ``DROP TABLE``, and dropping a column (``ALTER TABLE ... DROP [COLUMN]``);
  * any ``RENAME`` (a table, a column, a constraint the code names);
  * changing a column's type (``ALTER COLUMN ... [SET DATA] TYPE``);
  * ``SET NOT NULL`` on a column the same migration neither adds with a default nor gives one
    (``SET DEFAULT``), and ``ADD COLUMN ... NOT NULL`` without a default: the previous
    release's INSERTs do not name the column.

A destructive change is done in two steps over two releases (add the new shape and write both;
a release later, drop the old one). The migration of the second step says so with a marker
comment that explains the plan, anywhere in the file::

    -- two-step: 0012 added calls.ended_reason and the engine of 1.4 writes both; nothing in
    -- 1.4 or later reads calls.end_cause, so dropping it here breaks no running engine.

Which migrations are released: ``RELEASED`` below, the versions and checksums of the
migrations shipped in the last release. The project has had no release yet, so every
migration that existed when this check was written (0001 to 0011) is the baseline. When a
release is cut, add its new migrations here (CONTRIBUTING.md's release steps). A released
migration never changes: its checksum is pinned too, as ``sambung/engine/db.py`` refuses an edited
one on any database that already ran it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from sambung.engine.db import Migration, load_migrations

# version -> (name, sha256 of the file): the migrations of the last release. No release yet:
# every migration present when this check was added is the baseline.
RELEASED: dict[int, tuple[str, str]] = {
    1: ("calls", "5079124ea33cf7123b41a792cf93e08eae9cc3dbfed1523ca0ea5d2a5f0aa571"),
    2: ("ivr", "d1fac4eb2f6446d8992d4d01b113046921af5c08060a34c3f2d11e7efafd9d2d"),
    3: ("acd", "006a472ca6b839629cdcab0ff3da889c237838c7a85b549dc99db64c3d303b64"),
    4: ("dialer", "e7c1ebdd7706a059cdcef9098e144d8583555ac4009c14b9fe1a40c9c8a0b3bd"),
    5: ("recordings", "281de371a7c6c3fca6129f4dd6f37dcf238750a18b121646854dd7fc50bd1847"),
    6: ("auth", "de1b3c02ceebf4200889d09d1e43db4d7c3b110a7618ef19d92c4dbe6d3acb35"),
    7: ("auth_limits_tickets", "90e88291c85a4cb73c77afb9999138ce40880077dd0778c2ca5734c7da6f0b6c"),
    8: ("preview_hold", "8b61a5f019f0c630f1a400073d592406332d06b8eb46e9b1ae525d3e23507fe1"),
    9: ("fact_spool_marks", "a513bee63c563588b8d2a6f76b39a42f7f9d1c77873b4e68f1fdb13174db19d0"),
    10: ("engine_lease", "0f9b555806dc160408eca6c5f552844c0a713061f9b167b8ccdaf173b330307e"),
    11: ("pending_callbacks", "add9366574d246cae9d01eb987db27ad036c3d16dd601eeb896f3d5b3979a44a"),
}

MARKER = re.compile(r"--\s*two-step:\s*(?P<why>\S.{19,})", re.IGNORECASE)

_IDENT = r'(?:"[^"]+"|[a-z_][a-z0-9_$]*)'
_QUALIFIED = rf"{_IDENT}(?:\.{_IDENT})?"


@dataclass(frozen=True)
class Problem:
    statement: str
    rule: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.statement}"


def strip_sql(sql: str) -> str:
    """The SQL without comments, string literals and dollar-quoted bodies (kept as ``''``), so
    that a word inside a comment or a default value is not read as a statement."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        elif c == "'":
            j = i + 1
            while j < n:
                if sql[j] == "'" and j + 1 < n and sql[j + 1] == "'":
                    j += 2
                elif sql[j] == "'":
                    break
                else:
                    j += 1
            out.append("''")
            i = j + 1
        elif c == "$" and (m := re.match(r"\$([a-z_][a-z0-9_]*)?\$", sql[i:], re.IGNORECASE)):
            tag = m.group(0)
            j = sql.find(tag, i + len(tag))
            out.append("''")
            i = n if j < 0 else j + len(tag)
        else:
            out.append(c)
            i += 1
    return "".join(out)


def statements(sql: str) -> list[str]:
    """Statements, lower-cased, whitespace folded, comments and literals stripped."""
    return [" ".join(s.split()).lower() for s in strip_sql(sql).split(";") if s.strip()]


def _alter_actions(stmt: str) -> tuple[str, list[str]] | None:
    """``ALTER TABLE [IF EXISTS] [ONLY] t action, action...``: the table and its actions."""
    m = re.match(
        rf"alter table (?:if exists )?(?:only )?(?P<table>{_QUALIFIED})\s*\*? (?P<rest>.*)", stmt
    )
    if m is None:
        return None
    # Commas inside parentheses (a CHECK, a column list) do not separate actions.
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in m.group("rest"):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return m.group("table"), [p for p in parts if p]


def destructive(sql: str) -> list[Problem]:
    """Every statement of one migration that would break the previous release's code."""
    found: list[Problem] = []
    stmts = statements(sql)
    # Columns this migration gives a default (SET DEFAULT, or added with DEFAULT): a later
    # SET NOT NULL on them leaves the previous release's INSERTs working.
    defaulted: set[tuple[str, str]] = set()
    for stmt in stmts:
        alter = _alter_actions(stmt)
        if alter is None:
            continue
        table, actions = alter
        for a in actions:
            set_default = re.match(rf"alter (?:column )?(?P<col>{_IDENT}) set default\b", a)
            added = re.match(rf"add (?:column )?(?:if not exists )?(?P<col>{_IDENT}) ", a)
            with_default = added if added and " default " in f" {a} " else None
            for m in (set_default, with_default):
                if m is not None:
                    defaulted.add((table, m.group("col")))
    for stmt in stmts:
        if re.match(r"drop table\b", stmt):
            found.append(Problem(stmt, "DROP TABLE"))
            continue
        if re.match(r"alter (?:table|index|sequence|view|type|schema) .*\brename\b", stmt):
            found.append(Problem(stmt, "RENAME"))
            continue
        alter = _alter_actions(stmt)
        if alter is None:
            continue
        table, actions = alter
        for a in actions:
            if re.match(r"drop (?:column )?(?!constraint\b)", a) and not re.match(
                r"drop (?:constraint|not null|default|identity|expression)\b", a
            ):
                found.append(Problem(stmt, "DROP COLUMN"))
            elif m := re.match(rf"alter (?:column )?(?P<col>{_IDENT}) (?:set data )?type\b", a):
                found.append(Problem(stmt, f"ALTER COLUMN {m.group('col')} TYPE"))
            elif m := re.match(rf"alter (?:column )?(?P<col>{_IDENT}) set not null\b", a):
                if (table, m.group("col")) not in defaulted:
                    found.append(Problem(stmt, f"SET NOT NULL on {m.group('col')} without default"))
            elif (
                m := re.match(rf"add (?:column )?(?:if not exists )?(?P<col>{_IDENT}) ", a)
            ) and not a.startswith(("add constraint", "add primary", "add unique", "add check")):
                padded = f" {a} "
                if " not null " in padded and " default " not in padded:
                    found.append(
                        Problem(stmt, f"ADD COLUMN {m.group('col')} NOT NULL without default")
                    )
    return found


def marker(sql: str) -> str | None:
    """The two-step plan the migration states, or None."""
    m = MARKER.search(sql)
    return m.group("why").strip() if m else None


# ---- the rules, on examples -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("DROP TABLE calls;", "DROP TABLE"),
        ("drop table if exists old_calls cascade;", "DROP TABLE"),
        ("ALTER TABLE calls DROP COLUMN hotline;", "DROP COLUMN"),
        ("ALTER TABLE calls DROP hotline;", "DROP COLUMN"),
        ("ALTER TABLE IF EXISTS ONLY calls DROP COLUMN IF EXISTS x;", "DROP COLUMN"),
        ("ALTER TABLE calls RENAME COLUMN hotline TO line;", "RENAME"),
        ("ALTER TABLE calls RENAME TO calls_v2;", "RENAME"),
        ("ALTER TABLE calls RENAME CONSTRAINT a TO b;", "RENAME"),
        ("ALTER TABLE calls ALTER COLUMN hangup_cause TYPE bigint;", "ALTER COLUMN hangup_cause"),
        ("ALTER TABLE calls ALTER hangup_cause SET DATA TYPE text;", "ALTER COLUMN hangup_cause"),
        ("ALTER TABLE calls ALTER COLUMN hotline SET NOT NULL;", "SET NOT NULL on hotline"),
        ("ALTER TABLE calls ADD COLUMN region text NOT NULL;", "ADD COLUMN region NOT NULL"),
        (
            "ALTER TABLE calls ADD COLUMN a text, DROP COLUMN b;",
            "DROP COLUMN",
        ),
        (
            "ALTER TABLE calls ALTER COLUMN hotline SET DEFAULT 'x';\n"
            "ALTER TABLE other ALTER COLUMN hotline SET NOT NULL;",
            "SET NOT NULL on hotline",
        ),
    ],
)
def test_given_a_destructive_statement_then_it_is_named(sql: str, rule: str) -> None:
    problems = destructive(sql)
    assert problems, sql
    assert any(p.rule.startswith(rule) for p in problems), problems


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE t (a text NOT NULL, b int NOT NULL DEFAULT 0);",
        "ALTER TABLE dial_records ADD COLUMN held_by text;",
        "ALTER TABLE calls ADD COLUMN n int NOT NULL DEFAULT 0;",
        "ALTER TABLE calls ADD COLUMN IF NOT EXISTS n int DEFAULT 0 NOT NULL;",
        "ALTER TABLE calls DROP CONSTRAINT calls_direction_check;\n"
        "ALTER TABLE calls ADD CONSTRAINT calls_direction_check CHECK (direction IN ('a', 'b'));",
        "ALTER TABLE calls ALTER COLUMN hotline DROP NOT NULL;",
        "ALTER TABLE calls ALTER COLUMN hotline SET DEFAULT '', ALTER COLUMN hotline SET NOT NULL;",
        "ALTER TABLE calls ADD COLUMN tier text DEFAULT 'a';\n"
        "ALTER TABLE calls ALTER COLUMN tier SET NOT NULL;",
        "CREATE INDEX calls_x ON calls (hotline);\nDROP INDEX IF EXISTS calls_y;",
        "-- DROP TABLE calls; only a comment\nCREATE TABLE t (note text DEFAULT 'drop table x');",
        "/* ALTER TABLE calls DROP COLUMN a; */ SELECT 1;",
        "CREATE FUNCTION f() RETURNS void AS $$ BEGIN DROP TABLE tmp; END $$ LANGUAGE plpgsql;",
        "INSERT INTO t VALUES ('rename; drop table x');",
    ],
)
def test_given_an_additive_statement_then_nothing_is_named(sql: str) -> None:
    assert destructive(sql) == []


def test_the_marker_needs_a_stated_plan() -> None:
    assert marker("-- two-step: 0012 writes both columns; 1.4 reads only the new one\n") == (
        "0012 writes both columns; 1.4 reads only the new one"
    )
    assert marker("-- two-step: ok\n") is None  # a plan, not a token
    assert marker("-- TWO-STEP: the engine of 1.4 stopped reading column x\n") is not None
    assert marker("DROP TABLE x;") is None


# ---- the project's migrations -----------------------------------------------------------------


def _migrations() -> list[Migration]:
    return load_migrations()


def test_released_migrations_are_unchanged() -> None:
    by_version = {m.version: m for m in _migrations()}
    for version, (name, checksum) in sorted(RELEASED.items()):
        m = by_version.get(version)
        assert m is not None, f"released migration {version:04d}_{name}.sql is gone"
        assert m.name == name, f"released migration {version:04d} was renamed to {m.name}"
        assert m.checksum == checksum, (
            f"released migration {version:04d}_{name}.sql was edited: a database that ran it "
            "refuses it (sambung/engine/db.py). Put the change in a new migration."
        )


def incompatible(migrations: list[Migration], last_released: int) -> list[str]:
    """The migrations after ``last_released`` that break its code without a stated plan."""
    failures = []
    for m in migrations:
        if m.version <= last_released:
            continue
        problems = destructive(m.sql)
        if problems and marker(m.sql) is None:
            listed = "\n    ".join(str(p) for p in problems)
            failures.append(f"{m.version:04d}_{m.name}.sql:\n    {listed}")
    return failures


def test_given_a_new_destructive_migration_then_only_a_stated_plan_lets_it_through() -> None:
    old = Migration(1, "calls", "CREATE TABLE calls (a text, b text);")
    drop = "ALTER TABLE calls DROP COLUMN b;"
    plan = "-- two-step: 0002 stopped reading calls.b in release 1.1; dropped in 1.2\n"
    assert incompatible([old, Migration(2, "drop_b", drop)], last_released=1) == [
        "0002_drop_b.sql:\n    DROP COLUMN: alter table calls drop column b"
    ]
    assert incompatible([old, Migration(2, "drop_b", plan + drop)], last_released=1) == []
    # Released migrations are not judged again: they already ran everywhere.
    assert incompatible([old, Migration(2, "drop_b", drop)], last_released=2) == []


def test_migrations_after_the_last_release_are_backward_compatible() -> None:
    last = max(RELEASED)
    failures = incompatible(_migrations(), last)
    assert not failures, (
        "migrations newer than the last release "
        f"({last:04d}) would break the engines of that release during a rolling upgrade "
        "(docs/operations.md, Upgrades); split the change over two releases, or state the "
        "two-step plan in a '-- two-step: ...' comment in the migration:\n" + "\n".join(failures)
    )
