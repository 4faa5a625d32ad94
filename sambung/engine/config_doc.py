"""Write ``docs/configuration.md``, the settings reference, from the settings model.

Run ``python -m sambung.engine.config_doc`` after changing ``engine/config.py`` (``--check`` only
compares); ``tests/unit/test_config_doc.py`` fails while the committed file differs.

Every key is listed with its type, default, constraints and description. A description is the
field's ``description=`` or, where it has none, the comment above the field (or at the end of
its line) in ``engine/config.py``: those comments already say what a key does, and copying
them into ``description=`` would leave two texts to keep in step.
"""

from __future__ import annotations

import argparse
import ast
import enum
import inspect
import io
import sys
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from sambung.engine import config
from sambung.engine.config import ENV_PREFIX, ENV_SHORTCUTS, FILE_SUFFIX, INTERNAL_KEYS, Settings

DOC = Path("docs/configuration.md")
COMMAND = "python -m sambung.engine.config_doc"


# ---- descriptions from the source -------------------------------------------------------------


@cache
def _comments() -> dict[tuple[str, str], str]:
    """(class name, field name) -> the comment above the field or at the end of its line."""
    source = inspect.getsource(config)
    lines = source.splitlines()
    full: dict[int, str] = {}  # line -> text of a comment alone on its line
    trailing: dict[int, str] = {}  # line -> text of a comment after code
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.COMMENT:
            continue
        row, col = tok.start
        text = tok.string.lstrip("#").strip()
        if lines[row - 1][:col].strip():
            trailing[row] = text
        else:
            full[row] = text
    out: dict[tuple[str, str], str] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
                continue
            above: list[str] = []
            row = item.lineno - 1
            while row in full:
                above.insert(0, full[row])
                row -= 1
            end = item.end_lineno or item.lineno
            after = [trailing[r] for r in range(item.lineno, end + 1) if r in trailing]
            text = " ".join([*above, *after]).strip()
            if text:
                out[node.name, item.target.id] = text
    return out


def description(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    if info.description:
        return info.description
    for cls in model.__mro__:
        if (cls.__name__, name) in _comments():
            return _comments()[cls.__name__, name]
    return ""


# ---- types, defaults, constraints -------------------------------------------------------------


def _strip(tp: Any) -> tuple[Any, list[Any]]:
    """The type without Annotated and None, its metadata, and whether None is allowed."""
    meta: list[Any] = []
    while True:
        origin = get_origin(tp)
        args = get_args(tp)
        if hasattr(tp, "__metadata__"):  # Annotated[X, ...]
            meta += list(tp.__metadata__)
            tp = args[0]
            continue
        if args and type(None) in args and origin is not Literal:
            rest = [a for a in args if a is not type(None)]
            if len(rest) == 1:
                tp = rest[0]
                continue
        return tp, meta


def _allows_none(tp: Any) -> bool:
    while hasattr(tp, "__metadata__"):
        tp = get_args(tp)[0]
    return get_origin(tp) is not Literal and type(None) in get_args(tp)


def _constraints(meta: list[Any]) -> list[str]:
    out: list[str] = []
    for m in meta:
        if isinstance(m, FieldInfo):  # Annotated[int, Field(ge=0)]: its constraints inside
            out += _constraints(m.metadata)
            continue
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(m, attr, None)
            if isinstance(m, annotated_types.BaseMetadata) and value is not None:
                out.append(f"{sign} {value}")
        pattern = getattr(m, "pattern", None)
        if pattern:
            out.append(f"matches `{pattern}`")
        for attr, text in (("min_length", "at least {} long"), ("max_length", "at most {} long")):
            value = getattr(m, attr, None)
            if value is not None:
                out.append(text.format(value))
    return out


def type_text(tp: Any, field_meta: list[Any] | None = None) -> str:
    """A key's type as a settings file spells it, constraints included (pydantic moves a
    field's own constraints from its annotation into ``field_meta``)."""
    inner, meta = _strip(tp)
    meta = [*meta, *(field_meta or [])]
    base = _type_name(inner)
    constraints = _constraints(meta)
    text = f"{base}, {', '.join(constraints)}" if constraints else base
    return f"{text}, or unset" if _allows_none(tp) else text


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(f"`{_toml(a)}`" for a in get_args(tp))
    if origin is list:
        return f"list of ({type_text(get_args(tp)[0])})"
    if origin is dict:
        key, value = get_args(tp)
        return f"table of name ({type_text(key)}) to ({type_text(value)})"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "table"
    names = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}
    if tp is SecretStr:
        return "string (secret)"
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _toml(value: Any) -> str:
    """A value as written in a settings file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path | enum.Enum):
        return '"' + str(getattr(value, "value", value)) + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, BaseModel):
        return _toml(value.model_dump(mode="json", exclude_defaults=True))
    return str(value)


def default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if value is PydanticUndefined or value is None:
        return "unset"
    if isinstance(value, SecretStr):
        # A development value, refused beyond loopback (engine/credentials.py): not to be
        # copied from a reference.
        return "a development value: set your own"
    if isinstance(value, BaseModel):
        return "see the table"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return "; ".join(f"`{_toml(v)}`" for v in value)
    if isinstance(value, dict) and value and isinstance(next(iter(value.values())), BaseModel):
        return ", ".join(f"`{k}`" for k in value) + " (defaults)"
    return f"`{_toml(value)}`"


# ---- walking the model ------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One table of the settings file: its dotted path, whether it is an entry of a list of
    tables (``[[path]]``), its model, and the variable prefix that sets its keys from the
    environment (None inside a list, which is set whole, and at the top level)."""

    path: str
    listed: bool
    model: type[BaseModel]
    env: str | None

    @property
    def header(self) -> str:
        if not self.path:
            return "Top level"
        return f"`[[{self.path}]]`" if self.listed else f"`[{self.path}]`"

    @property
    def anchor(self) -> str:
        """The anchor GitHub gives the heading."""
        text = self.header.lower().replace(" ", "-")
        return "".join(c for c in text if c.isalnum() or c in "-_")


def _model_of(tp: Any) -> tuple[type[BaseModel], str] | None:
    """The model a field holds and how: "table", "list" or "named" (a table of name to it)."""
    inner, _ = _strip(tp)
    origin = get_origin(inner)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return inner, "table"
    if origin is list:
        item, _ = _strip(get_args(inner)[0])
        if isinstance(item, type) and issubclass(item, BaseModel):
            return item, "list"
    if origin is dict:
        item, _ = _strip(get_args(inner)[1])
        if isinstance(item, type) and issubclass(item, BaseModel):
            return item, "named"
    return None


def _child(parent: Section, name: str, how: str, model: type[BaseModel]) -> Section:
    path = f"{parent.path}.{name}" if parent.path else name
    env = parent.env if parent.path else ENV_PREFIX
    if how == "list" or env is None:
        return Section(f"{path}.<name>" if how == "named" else path, how == "list", model, None)
    if how == "named":
        return Section(f"{path}.<name>", False, model, f"{env}{name.upper()}__<NAME>__")
    return Section(path, False, model, f"{env}{name.upper()}__")


def sections(parent: Section | None = None) -> Iterator[Section]:
    """Every table of the settings, depth first in the order of the model."""
    parent = parent or Section("", False, Settings, None)
    yield parent
    for name, info in parent.model.model_fields.items():
        held = _model_of(info.annotation)
        if name not in INTERNAL_KEYS and held is not None:
            yield from sections(_child(parent, name, held[1], held[0]))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


INTRO = f"""# Settings reference

<!-- Generated from sambung/engine/config.py by `{COMMAND}`; do not edit by hand. -->

Sambung reads its settings once, at start: the defaults below, then the TOML file named by
`-c` or `$SAMBUNG_CONFIG`, then the environment. `sambung check-config` reports every problem
at once, each with the file (or the variable), the key and what was expected. Relative paths
in the file are taken from the file's folder. A key not listed here is refused (a typo until
proven otherwise).

## Environment

- `{ENV_PREFIX}<SECTION>__<KEY>` sets a key, for example
  `{ENV_PREFIX}ENGINE__SPOOL_DIR=/var/lib/sambung/spool`; a deeper key adds parts, as in
  `{ENV_PREFIX}ACD__CALLBACKS__START=09:00`. Each table below names its prefix.
- A list or a table is given as JSON, for example
  `{ENV_PREFIX}HTTP__ALLOWED_ORIGINS='["https://a.example", "https://b.example"]'`. A JSON
  array replaces the file's list; a JSON object is merged key by key into the file's table. A
  list of tables (`[[acd.queues]]`) is set whole, as a JSON array of objects.
- `NAME{FILE_SUFFIX}`, for any variable here, names a file whose content is NAME's value (a
  trailing newline is dropped): how Docker and compose secrets and systemd credentials
  (`$CREDENTIALS_DIRECTORY`) hand secrets over, for example
  `{ENV_PREFIX}ARI__PASSWORD{FILE_SUFFIX}=/run/secrets/ari_password`. Setting both NAME and
  NAME{FILE_SUFFIX} is an error.
"""

_SHORTCUT_TEXT = {
    "DATABASE_URL": "sets",
    "SAMBUNG_API_TOKEN": "adds an admin token to",
    "SAMBUNG_METRICS_TOKEN": "adds a token named `prometheus` with the role `metrics` to",
}


def render() -> str:
    out = INTRO.splitlines()
    out += [f"- `{name}` {_SHORTCUT_TEXT[name]} `{key}`." for name, key in ENV_SHORTCUTS.items()]
    everything = list(sections())
    out += ["", "## Tables", ""]
    out += [f"- [{s.header}](#{s.anchor})" for s in everything[1:]]
    for s in everything:
        out += ["", f"## {s.header}", ""]
        if s.model is not Settings and s.model.__doc__:
            out += [inspect.cleandoc(s.model.__doc__), ""]
        if s.env:
            out += [f"From the environment: `{s.env}<KEY>`.", ""]
        elif s.listed:
            out += ["From the environment: the whole list, as a JSON array of objects.", ""]
        out += ["| key | type | default | description |", "|---|---|---|---|"]
        for name, info in s.model.model_fields.items():
            if name in INTERNAL_KEYS:
                continue
            held = _model_of(info.annotation)
            if held is None:
                typ = type_text(info.annotation, info.metadata)
            else:
                sub = _child(s, name, held[1], held[0])
                kind = {"table": "table", "list": "list of tables", "named": "tables by name"}
                typ = f"{kind[held[1]]}: see [{sub.header}](#{sub.anchor})"
            row = [f"`{name}`", typ, default_text(info), description(s.model, name, info)]
            out.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(out) + "\n"


def missing_descriptions() -> list[str]:
    """Keys with neither a description nor a comment, as dotted paths."""
    found: list[str] = []
    for s in sections():
        for name, info in s.model.model_fields.items():
            held = _model_of(info.annotation) is not None  # described by its own table
            if name not in INTERNAL_KEYS and not held and not description(s.model, name, info):
                found.append(f"{s.path}.{name}" if s.path else name)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    parser.add_argument("--output", type=Path, default=DOC, help=f"default {DOC}")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
