"""Settings declared once: a frozen config dataclass gives its CLI flags and its ``KEY=VALUE`` overrides.

Every field of a config dataclass (``LLMConfig``, ``RenderConfig``, ``TrainConfig``,
``DataConfig`` ...) is one setting. Its name, type, default and help are read from the class,
once (as llama-cpp-python builds its server CLI from its settings model):

* type from the annotation: ``int``, ``float``, ``str``, ``bool``, ``X | None`` (``none`` on the
  command line), ``Literal[...]`` (its values are the choices);
* default from the field;
* help: ``field(metadata={"help": ...})``, else the first sentence of the field's entry in the
  class docstring's ``Attributes`` (or ``Parameters``) section.

Other field metadata: ``choices`` (allowed values of a ``str`` field), ``flags`` (the option
strings where a flag keeps an older name, e.g. ``("--threads",)``; default ``--field-name``;
a ``bool`` also gets ``--no-...``) and ``metavar``.

:func:`add_arguments` adds one argparse group and :func:`from_args` reads it back;
:func:`parse_overrides`, :func:`build` and :func:`load` turn ``--set key=value`` items and JSON
presets into the dataclass. Every problem is a :class:`SettingsError`, one line naming the key
and what is allowed, e.g. ``--set n_train=abc: expected an integer``; the CLI exits 2 on it, like
argparse's own usage errors. Standard library only: training and the CLI both use it (no room
imports the CLI).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import inspect
import math
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence, TypeVar

from gravity.errors import GravityError, ValidationError, clip, quote

__all__ = [
    "Setting",
    "SettingsError",
    "settings",
    "convert",
    "build",
    "parse_overrides",
    "load",
    "add_arguments",
    "from_args",
    "describe",
]

T = TypeVar("T")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_NONE = ("none", "null")
_SECTIONS = ("Attributes", "Parameters")


class SettingsError(GravityError, ValueError):
    """A setting is unknown or its value has the wrong type or is out of range.

    The message is one line naming the key (and the file or flag it came from) and what is
    allowed. ``exit_code`` is 2, argparse's code for a usage error.
    """

    exit_code = 2


@dataclass(frozen=True)
class Setting:
    """One field of a config dataclass, as the CLI sees it.

    ``kind`` is ``int``, ``float``, ``str`` or ``bool`` (None: a type the CLI cannot parse, e.g.
    a tuple of targets); ``optional``: None is allowed; ``required``: the field has no default.
    """

    name: str
    kind: type | None
    optional: bool
    default: Any
    required: bool
    choices: tuple[Any, ...] | None
    help: str
    flags: tuple[str, ...]
    metavar: str | None

    @property
    def dest(self) -> str:
        """The argparse attribute: the first flag's name (``--llm-seed`` -> ``llm_seed``)."""
        return self.flags[0].lstrip("-").replace("-", "_")

    def expected(self) -> str:
        """What a value must be, in words (``an integer``, ``one of auto, none``)."""
        if self.choices is not None:
            text = "one of " + ", ".join(map(str, self.choices))
        else:
            names: dict[type | None, str] = {
                int: "an integer",
                float: "a number",
                bool: "true or false",
                str: "a string",
            }
            text = names.get(self.kind, "a value")
        return text + " or none" if self.optional else text


@functools.cache
def settings(cls: type) -> dict[str, Setting]:
    """The settings of a config dataclass, in field order (cached per class)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    docs = _field_docs(cls)
    out: dict[str, Setting] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        kind, optional, choices = _kind(hints[f.name])
        meta = f.metadata
        choices = tuple(meta["choices"]) if "choices" in meta else choices
        if f.default is not dataclasses.MISSING:
            default, required = f.default, False
        elif f.default_factory is not dataclasses.MISSING:
            default, required = f.default_factory(), False
        else:
            default, required = None, True
        flags = tuple(meta.get("flags", ())) or ("--" + f.name.replace("_", "-"),)
        out[f.name] = Setting(
            f.name,
            kind,
            optional,
            default,
            required,
            choices,
            meta.get("help", docs.get(f.name, "")),
            flags,
            meta.get("metavar"),
        )
    return out


def _kind(t: Any) -> tuple[type | None, bool, tuple[Any, ...] | None]:
    """(scalar type, None allowed, Literal choices) of an annotation."""
    optional = False
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        optional = len(args) < len(typing.get_args(t))
        if len(args) != 1:
            return None, optional, None
        t = args[0]
    if typing.get_origin(t) is Literal:
        values = typing.get_args(t)
        return type(values[0]), optional, values
    return (t if t in (int, float, str, bool) else None), optional, None


def _field_docs(cls: type) -> dict[str, str]:
    """First sentence of each field's entry in a numpydoc ``Attributes``/``Parameters`` section."""
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    out: dict[str, str] = {}
    i = 0
    while i < len(lines) - 1:
        if lines[i].strip() in _SECTIONS and set(lines[i + 1].strip()) == {"-"}:
            i += 2
            names: list[str] = []
            body: list[str] = []
            while i < len(lines) and not (
                lines[i].strip() and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
            ):
                line = lines[i]
                m = re.match(r"^([A-Za-z_][\w, ]*?)\s*:\s*\S", line)
                if m and not line[:1].isspace():
                    _store(out, names, body)
                    names, body = [n.strip() for n in m.group(1).split(",")], []
                elif line.strip():
                    body.append(line.strip())
                i += 1
            _store(out, names, body)
        else:
            i += 1
    return out


def _store(out: dict[str, str], names: list[str], body: list[str]) -> None:
    if not names:
        return
    text = _plain(" ".join(body))
    first = re.split(r"(?<!e\.g\.)(?<!i\.e\.)(?<=[.!?])\s+", text, maxsplit=1)[0]
    for n in names:
        out[n] = first


def _plain(text: str) -> str:
    """Docstring markup as plain text: ``:mod:`~a.b``` -> ``a.b``, ````x```` -> ``x``."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "")


def _label(where: str, key: str) -> str:
    return f"{where} {key}" if where.startswith("-") else f"{where}: {key}" if where else key


def _unknown(cls: type, key: str, where: str) -> SettingsError:
    names = list(settings(cls))
    near = difflib.get_close_matches(key, names, n=1) if len(key) < 100 else []
    hint = f" (did you mean {near[0]}?)" if near else ""
    return SettingsError(f"{_label(where, clip(key, 60))}: unknown setting{hint}; allowed: {', '.join(names)}")


def convert(setting: Setting, value: Any, where: str = "") -> Any:
    """``value`` (a command-line string or a JSON value) as the setting's type.

    Strings are parsed (``true``/``false``, ``none`` for an optional field); JSON values must
    already have the type (an integral float counts as an integer). Raises :class:`SettingsError`
    ``"<where>: expected ..."``; ``where`` names the key and value, e.g. ``--set n_train=abc``.
    """
    where = where or f"{setting.name}={quote(value)}"
    bad = SettingsError(f"{where}: expected {setting.expected()}")
    if isinstance(value, str):
        value = value.strip()
        if setting.optional and value.lower() in _NONE:
            return None
    if value is None:
        if setting.optional:
            return None
        raise bad
    kind = setting.kind
    if kind is None:
        raise TypeError(f"{setting.name}: this setting's type cannot be given as a value")
    v: Any
    if kind is bool:
        if isinstance(value, bool):
            v = value
        elif isinstance(value, str) and value.lower() in _TRUE + _FALSE:
            v = value.lower() in _TRUE
        else:
            raise bad
    elif isinstance(value, bool):  # a JSON true is not a number
        raise bad
    elif kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise bad from None
        if not isinstance(value, int):
            raise bad
        v = value
    elif kind is float:
        try:
            v = float(value) if isinstance(value, (int, float, str)) else math.nan
        except ValueError:
            raise bad from None
        if not math.isfinite(v):
            raise bad
    else:
        if not isinstance(value, str):
            raise bad
        v = value
    if setting.choices is not None and v not in setting.choices:
        raise bad
    return v


def _typed(cls: type, values: Mapping[str, Any], where: str) -> dict[str, Any]:
    spec = settings(cls)
    out = {}
    for key, value in values.items():
        if key not in spec:
            raise _unknown(cls, key, where)
        out[key] = convert(spec[key], value, f"{_label(where, key)}={quote(value)}")
    return out


def _construct(cls: type[T], values: Mapping[str, Any]) -> T:
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:  # the class's own checks (ranges, combinations)
        raise SettingsError(f"{cls.__name__}: {exc}") from None


def build(cls: type[T], values: Mapping[str, Any], source: str = "") -> T:
    """The dataclass from a mapping (a JSON preset, a saved config); unknown keys and values of
    the wrong type raise :class:`SettingsError` naming ``source`` (a file) and the key.
    """
    return _construct(cls, _typed(cls, values, source or cls.__name__))


def parse_overrides(cls: type, items: Sequence[str], flag: str = "--set") -> dict[str, Any]:
    """``KEY=VALUE`` items (``--set n_train=24000 p_hint=0.6``) as typed values of ``cls``'s fields.

    Raises :class:`SettingsError`: ``--set bogus: unknown setting; allowed: a, b, c`` or
    ``--set n_train=abc: expected an integer``.
    """
    spec = settings(cls)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            first = next(iter(spec.values()))
            raise SettingsError(f"{flag} {clip(item)}: expected KEY=VALUE, e.g. {first.name}={first.default}")
        if key not in spec:
            raise _unknown(cls, key, flag)
        out[key] = convert(spec[key], raw, f"{flag} {key}={clip(raw)}")
    return out


def load(cls: type[T], preset: str | Path | None = None, overrides: Sequence[str] = (), flag: str = "--set") -> T:
    """A JSON preset file (optional; a ``_comment`` key is ignored) with ``KEY=VALUE`` overrides on top."""
    values: dict[str, Any] = {}
    if preset:
        from gravity.schema import read_json  # the one bounded JSON reader (size, UTF-8, depth, FIFOs)

        try:
            doc = read_json(preset)
        except ValidationError as exc:
            raise SettingsError(f"{preset}: not a JSON preset ({exc.issues[0].message})") from None
        if not isinstance(doc, dict):
            raise SettingsError(f"{preset}: expected a JSON object of {cls.__name__} settings")
        doc.pop("_comment", None)
        values.update(_typed(cls, doc, str(preset)))
    values.update(parse_overrides(cls, overrides, flag))
    return _construct(cls, values)


def describe(cls: type) -> str:
    """``key=default`` for every setting, comma-separated (for the help of ``--set``)."""
    return ", ".join(f"{s.name}={'none' if s.default is None else s.default}" for s in settings(cls).values())


class _Parse:
    """argparse ``type=``: one setting's string parser (its errors read ``expected an integer``)."""

    def __init__(self, setting: Setting) -> None:
        self.setting = setting
        self.__name__ = setting.expected()

    def __call__(self, text: str) -> Any:
        s = self.setting
        try:
            return convert(dataclasses.replace(s, choices=None), text, repr(text))  # argparse checks choices
        except SettingsError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    title: str | None = None,
    skip: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> argparse._ArgumentGroup:
    """Add one flag per field of ``cls`` (except ``skip``) to a new argument group of ``parser``.

    ``defaults`` replaces some fields' defaults for this command (``gravity eval`` samples
    greedily). A bool gets ``--flag/--no-flag``. Read the values back with :func:`from_args`.
    """
    group = parser.add_argument_group(title or f"{cls.__name__} settings")
    for s in settings(cls).values():
        if s.name in skip:
            continue
        if s.kind is None:
            raise TypeError(f"{cls.__name__}.{s.name}: no command-line form for this type; skip it")
        default = (defaults or {}).get(s.name, s.default)
        shown = ("on" if default else "off") if s.kind is bool else default
        text = (s.help.rstrip(".") + ("" if default is None else f" (default: {shown})")).replace("%", "%%")
        if s.kind is bool:
            group.add_argument(*s.flags, dest=s.dest, default=default, action=argparse.BooleanOptionalAction, help=text)
        else:
            group.add_argument(
                *s.flags,
                dest=s.dest,
                default=default,
                type=_Parse(s),
                choices=s.choices,
                required=s.required,
                metavar=s.metavar or (None if s.choices else s.name.upper()),
                help=text,
            )
    return group


def from_args(cls: type[T], args: argparse.Namespace, **fixed: Any) -> T:
    """The dataclass from the flags :func:`add_arguments` added (fields without a flag keep their
    defaults; ``fixed`` wins over both). The class's own checks raise :class:`SettingsError`.
    """
    spec = settings(typing.cast(type, cls))
    values = {s.name: getattr(args, s.dest) for s in spec.values() if hasattr(args, s.dest)}
    try:
        return _construct(cls, {**values, **fixed})
    except SettingsError as exc:  # "LLMConfig: timeout_s=-5.0: ..." -> "--timeout -5.0: ...": the flag typed
        text = str(exc).removeprefix(f"{cls.__name__}: ")
        for s in spec.values():
            if text.startswith(f"{s.name}=") and hasattr(args, s.dest) and s.name not in fixed:
                raise SettingsError(f"{s.flags[0]} {text[len(s.name) + 1 :]}") from None
        raise
