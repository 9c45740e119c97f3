"""Schema access and validation of requests and scenes.

Like ``Sofa.verify``: :func:`check_request` / :func:`check_scene` return *every* issue (JSON
schema 2020-12 plus the semantic checks a schema cannot express), each naming the JSON path;
:func:`load_request` / :func:`load_scene` raise :class:`ValidationError` carrying that list.
"""

from __future__ import annotations

import codecs
import difflib
import importlib.util
import json
import math
import os
import stat
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal

from gravity.errors import QUOTE_LIMIT, Issue, ValidationError, quote

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator  # imported when a document is first checked (~0.1 s)

__all__ = [
    "schema",
    "json_path",
    "check_request",
    "check_scene",
    "check_document",
    "detect_kind",
    "read_json",
    "load_request",
    "load_scene",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT",
]

Kind = Literal["request", "scene"]

#: Largest JSON file Gravity reads. The largest valid documents are far smaller: a request of
#: 256 stems with 500-character hints is ~200 KB, a scene of 128 objects with 129 keyframes each
#: ~1.5 MB. Checked before reading, so /dev/zero or a 10 GB file costs nothing.
MAX_JSON_BYTES = 4 * 2**20
#: Deepest nesting of arrays and objects in a JSON file (a scene's keyframe values sit at 4).
#: A 100k-deep ``[[[...]]]`` would otherwise exhaust Python's recursion limit.
MAX_JSON_DEPTH = 32
#: Largest integer magnitude in a JSON file (int64), so that every number converts to a float or
#: a C integer; Python refuses to parse more than 4300 digits at all.
MAX_JSON_INT = 2**63 - 1
_SHAPE_RULES = frozenset({"depth", "maxItems", "maxLength", "integer"})  # issues that stop further checks
_PATH_PART = 40  # characters of a key a JSON path shows (a 1 MB unknown key must not become the path)


@lru_cache(maxsize=None)
def schema(kind: Kind) -> dict[str, Any]:
    """The JSON Schema for ``"request"`` or ``"scene"`` (shipped as package ``gravity_schemas``)."""
    name = f"{kind}.schema.json"
    # A source checkout has schemas/ beside gravity/; a wheel installs it as gravity_schemas.
    dirs = [Path(__file__).resolve().parent.parent / "schemas"]
    spec = importlib.util.find_spec("gravity_schemas")
    dirs += [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    for d in dirs:
        if (d / name).is_file():
            return json.loads((d / name).read_text(encoding="utf-8"))
    raise FileNotFoundError(f"{name} not found in {[str(d) for d in dirs]}")


@lru_cache(maxsize=None)
def _validator(kind: Kind) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema(kind))


@lru_cache(maxsize=None)
def _rule_validator(rule_type: str) -> Draft202012Validator | None:
    from jsonschema import Draft202012Validator

    s = schema("request")
    if f"rule_{rule_type}" not in s["$defs"]:
        return None
    return Draft202012Validator({"$ref": f"#/$defs/rule_{rule_type}", "$defs": s["$defs"]})


def json_path(parts: Iterable[Any]) -> str:
    """``["stems", 2, "class"]`` -> ``"stems[2].class"`` (``"$"`` for the root); a key longer
    than 40 characters is shortened (``kkkk...(200000 chars)``).
    """
    out = ""
    for p in parts:
        if isinstance(p, str) and len(p) > _PATH_PART:
            p = f"{p[:_PATH_PART]}...({len(p)} chars)"
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "$"


@lru_cache(maxsize=None)
def _limits(kind: Kind, keyword: str) -> tuple[int, dict[str, int]]:
    """A schema's ``keyword`` (``maxItems``, ``maxLength``) bounds: the largest anywhere, and per
    property name (the largest where a name occurs twice: never stricter than the schema).
    """
    largest = 0
    named: dict[str, int] = {}
    stack: list[Any] = [schema(kind)]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get(keyword), int):
                largest = max(largest, node[keyword])
            for name, sub in (node.get("properties") or {}).items():
                if isinstance(sub, dict) and isinstance(sub.get(keyword), int):
                    named[name] = max(named.get(name, 0), sub[keyword])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return largest, named


def _shape_issues(doc: Any, depth: int = MAX_JSON_DEPTH, kind: Kind | None = None) -> list[Issue]:
    """Bounds on a document's shape, checked before any other work, and its non-finite numbers.

    Walks the document without recursion (a deep document must not exhaust the stack). Reports
    nesting deeper than ``depth``, integers beyond :data:`MAX_JSON_INT`, NaN/Infinity (JSON
    parsers accept them; a schema's number checks do not reject them) and, with ``kind``, the
    schema's ``maxItems``/``maxLength`` (the field's own where its name is known, else the
    largest anywhere; too long a list is not looked into). At most 20 shape issues.
    """
    items, items_by_name = _limits(kind, "maxItems") if kind else (None, {})
    text, text_by_name = _limits(kind, "maxLength") if kind else (None, {})
    issues: list[Issue] = []
    shape = 0
    stack: list[tuple[Any, tuple[Any, ...]]] = [(doc, ())]
    while stack and shape < 20:
        value, path = stack.pop()
        if isinstance(value, (dict, list)):
            if len(path) >= depth:
                issues.append(Issue(json_path(path), f"nested deeper than {depth} levels", "depth"))
                shape += 1
                continue
            most = items_by_name.get(path[-1], items) if path and items is not None else items
            if most is not None and len(value) > most:
                issues.append(Issue(json_path(path), f"{len(value):,} entries; the limit is {most}", "maxItems"))
                shape += 1
                continue
            if isinstance(value, dict):
                long = [k for k in value if text is not None and len(k) > text]
                for k in long[:3]:
                    msg = f"key {quote(k, 40)} is longer than {text} characters"
                    issues.append(Issue(json_path(path), msg, "maxLength"))
                    shape += 1
                kids = [(v, path + (k,)) for k, v in value.items()]
            else:
                kids = [(v, path + (n,)) for n, v in enumerate(value)]
            stack.extend(reversed(kids))  # depth first, in document order
        elif isinstance(value, str):
            most = text_by_name.get(path[-1], text) if path and text is not None else text
            if most is not None and len(value) > most:
                msg = f"text of {len(value):,} characters; the limit is {most}: {quote(value, 40)}"
                issues.append(Issue(json_path(path), msg, "maxLength"))
                shape += 1
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int):
            if abs(value) > MAX_JSON_INT:
                msg = f"{quote(value, 40)} is too large; the limit is +-2**63"
                issues.append(Issue(json_path(path), msg, "integer"))
                shape += 1
        elif isinstance(value, float) and not math.isfinite(value):
            issues.append(Issue(json_path(path), f"{value} is not a finite number", "finite"))
    return issues


def _schema_issues(validator: Draft202012Validator, doc: Any, prefix: tuple = (), dispatch: bool = True) -> list[Issue]:
    issues: list[Issue] = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        path = prefix + tuple(err.absolute_path)
        inst = err.instance
        # A rule failing oneOf: validate against the sub-schema its "type" names, for precise messages.
        if dispatch and err.validator == "oneOf" and len(path) >= 2 and path[-2] == "rules":
            sub = _rule_validator(inst.get("type")) if isinstance(inst, dict) else None
            if sub is not None:
                found = _schema_issues(sub, inst, path, dispatch=False)
                issues.extend(found or [Issue(json_path(path), "give exactly one of track_class or track_id", "oneOf")])
                continue
            types = sorted(k[5:] for k in schema("request")["$defs"] if k.startswith("rule_"))
            issues.append(
                Issue(
                    json_path(path + ("type",)),
                    f"unknown rule type {quote(inst.get('type') if isinstance(inst, dict) else inst)}; "
                    f"expected one of {types}",
                    "enum",
                )
            )
            continue
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            for key in sorted(set(inst) - set(allowed)):
                issues.append(
                    Issue(
                        json_path(path + (key,)),
                        f"unknown key {quote(key, 60)}; allowed keys: {allowed}",
                        "additionalProperties",
                    )
                )
            continue
        if err.validator == "not":
            issues.append(Issue(json_path(path), "give track_class or track_id, not both", "not"))
            continue
        if err.validator == "oneOf":
            issues.append(Issue(json_path(path), "give exactly one of track_class or track_id", "oneOf"))
            continue
        msg = err.message
        if err.validator == "enum":
            close = (
                difflib.get_close_matches(str(inst), [str(v) for v in err.validator_value], n=3)
                if len(str(inst)) < 100
                else []
            )
            msg = f"{quote(inst)} is not allowed; " + (
                f"did you mean {' or '.join(map(repr, close))}?" if close else f"expected one of {err.validator_value}"
            )
        elif err.validator == "maxLength" and isinstance(inst, str):
            msg = f"{len(inst):,} characters; the limit is {err.validator_value}: {quote(inst, 60)}"
        elif err.validator == "maxItems" and isinstance(inst, list):
            msg = f"{len(inst):,} entries; the limit is {err.validator_value}"
        elif len(msg) > QUOTE_LIMIT + 100:  # jsonschema quotes the whole instance ("... is not of type ...")
            try:
                msg = msg.replace(repr(inst), quote(inst))
            except ValueError:  # repr of an integer beyond Python's digit limit
                pass
            msg = msg if len(msg) <= 2 * QUOTE_LIMIT else msg[: 2 * QUOTE_LIMIT] + "..."
        issues.append(Issue(json_path(path), msg, str(err.validator)))
    return issues


def _request_semantics(req: dict[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    stems = req.get("stems", [])
    ids: dict[str, int] = {}
    for n, s in enumerate(stems):
        sid = s.get("id") if isinstance(s, dict) else None
        if sid in ids:
            issues.append(Issue(f"stems[{n}].id", f"duplicate stem id {sid!r} (first at stems[{ids[sid]}])", "unique"))
        elif sid is not None:
            ids[sid] = n
    for n, r in enumerate(req.get("rules", [])):
        if not isinstance(r, dict):
            continue
        p = f"rules[{n}]"
        if "track_id" in r and r["track_id"] not in ids:
            issues.append(
                Issue(f"{p}.track_id", f"no stem has id {r['track_id']!r}; stem ids: {sorted(ids)}", "reference")
            )
        for m, sid in enumerate(r.get("ids", [])):
            if sid not in ids:
                issues.append(Issue(f"{p}.ids[{m}]", f"no stem has id {sid!r}", "reference"))
        t = r.get("type")
        if t == "width" and r.get("min", 0) > r.get("max", 1):
            issues.append(Issue(p, f"width min {r['min']} > max {r['max']}", "width"))
        if t == "anchor" and "tolerance_m" in r and "dist_m" not in r:
            issues.append(Issue(f"{p}.tolerance_m", "tolerance_m needs dist_m", "anchor"))
        if t == "zone":
            explicit = [k for k in ("az_min", "az_max", "el_min", "el_max") if k in r]
            if "region" in r and explicit:
                issues.append(Issue(p, f"give either region or explicit bounds {explicit}, not both", "zone"))
            elif "region" not in r and not explicit:
                issues.append(Issue(p, "zone needs a region or az_min/az_max/el_min/el_max", "zone"))
            elif ("az_min" in r) != ("az_max" in r):
                issues.append(Issue(p, "give az_min and az_max together", "zone"))
            elif r.get("el_min", -90) > r.get("el_max", 90):
                issues.append(Issue(p, f"el_min {r['el_min']} > el_max {r['el_max']}", "zone"))
    return issues


def _scene_semantics(scene: dict[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    seen_ids: dict[str, int] = {}
    seen_stems: dict[str, int] = {}
    for n, o in enumerate(scene.get("objects", [])):
        if not isinstance(o, dict):
            continue
        oid = str(o.get("id"))
        if oid in seen_ids:
            issues.append(
                Issue(f"objects[{n}].id", f"duplicate object id {oid!r} (first at objects[{seen_ids[oid]}])", "unique")
            )
        else:
            seen_ids[oid] = n
        for sid in o.get("stems", [oid]):
            if sid in seen_stems and seen_stems[sid] != n:
                issues.append(
                    Issue(
                        f"objects[{n}].stems", f"stem {sid!r} already belongs to objects[{seen_stems[sid]}]", "unique"
                    )
                )
            seen_stems.setdefault(sid, n)
        motion = o.get("motion")
        if (
            isinstance(motion, list)
            and motion
            and all(isinstance(k, dict) and isinstance(k.get("t"), (int, float)) for k in motion)
        ):
            ts = [k["t"] for k in motion]
            if ts[0] != 0 or ts[-1] != 1:
                issues.append(
                    Issue(
                        f"objects[{n}].motion",
                        f"keyframes must start at t=0 and end at t=1, got {ts[0]}..{ts[-1]}",
                        "motion",
                    )
                )
            if any(b <= a for a, b in zip(ts, ts[1:], strict=False)):
                issues.append(Issue(f"objects[{n}].motion", "keyframe times must strictly increase", "motion"))
    return issues


def _check(kind: Kind, doc: Any) -> list[Issue]:
    """Shape bounds first (the schema's largest ``maxItems`` and ``maxLength`` anywhere, nesting
    depth, integer size): a document beyond them is not validated further, so a 100k-stem list
    or a 1 MB string costs one pass and a short message. Then the schema and the semantics.
    """
    issues = _shape_issues(doc, kind=kind)
    if any(i.rule in _SHAPE_RULES for i in issues):
        return issues
    nonfinite = {i.path for i in issues}  # the schema's "nan is not of type 'integer'" says it again
    issues += [i for i in _schema_issues(_validator(kind), doc) if i.path not in nonfinite]
    if not issues and isinstance(doc, dict):
        issues += _request_semantics(doc) if kind == "request" else _scene_semantics(doc)
    return issues


def check_request(doc: Any) -> list[Issue]:
    """Every issue in a request document (bounds, schema, semantics); empty when valid.

    The bounds are the schema's: at most 256 stems and 256 rules, hints of at most 500
    characters, a prompt of at most 2000, ids of at most 64 (``request.schema.json``).
    """
    return _check("request", doc)


def check_scene(doc: Any) -> list[Issue]:
    """Every issue in a scene document (bounds, schema, semantics); empty when valid."""
    return _check("scene", doc)


def detect_kind(doc: Any) -> Kind | None:
    """Guess whether a document is a request (has ``stems``) or a scene (has ``objects``)."""
    if isinstance(doc, dict):
        if "stems" in doc:
            return "request"
        if "objects" in doc or "bed" in doc:
            return "scene"
    return None


def check_document(doc: Any) -> tuple[Kind | None, list[Issue]]:
    """Validate a request or scene, whichever it is."""
    kind = detect_kind(doc)
    if kind is None:
        return None, [Issue("$", "neither a request (needs 'stems') nor a scene (needs 'objects')", "kind")]
    return kind, (check_request(doc) if kind == "request" else check_scene(doc))


def _io_error(p: Path, message: str) -> ValidationError:
    return ValidationError([Issue("$", message, "io")], str(p))


_WIDE_BOMS = (  # UTF-32 LE first: its mark starts with UTF-16 LE's
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def _decode(data: bytes, p: Path) -> str:
    """UTF-8 text of a JSON file (a UTF-8 byte-order mark is dropped, as RFC 8259 allows)."""
    data = data.removeprefix(codecs.BOM_UTF8)
    for bom, name in _WIDE_BOMS:
        if data.startswith(bom):
            raise _io_error(p, f"the file is {name} text; save it as UTF-8 (JSON files are UTF-8, RFC 8259)")
    if b"\x00" in data[:4]:  # UTF-16/32 without a byte-order mark: ASCII characters with NUL bytes
        raise _io_error(p, "NUL bytes: UTF-16 or UTF-32 text, or not text at all; JSON files are UTF-8 (RFC 8259)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _io_error(
            p, f"not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} column {col}; save the file as UTF-8"
        ) from None


def _read_bounded(p: Path) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_JSON_BYTES`, else a :class:`ValidationError`.

    Opened without blocking (a FIFO's open would wait for a writer) and checked on the open
    descriptor, so a file swapped for a FIFO or a device between a check and the read is caught.
    """
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise _io_error(p, f"cannot read file: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _io_error(p, "is a folder, not a JSON file")
        if not stat.S_ISREG(st.st_mode):
            raise _io_error(p, "not a regular file (a FIFO, device or socket); give a JSON file")
        if st.st_size > MAX_JSON_BYTES:
            raise _io_error(p, f"{st.st_size:,} bytes; a JSON file may have at most {MAX_JSON_BYTES:,}")
        chunks: list[bytes] = []
        left = MAX_JSON_BYTES + 1  # never more, should the file grow meanwhile
        while left > 0 and (chunk := os.read(fd, min(left, 2**20))):
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise _io_error(p, f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_JSON_BYTES:
        raise _io_error(p, f"more than {MAX_JSON_BYTES:,} bytes; a JSON file may have at most that")
    return data


def parse_json(data: bytes, source: str | Path = "") -> Any:
    """Parse JSON bytes within Gravity's bounds; any problem raises :class:`ValidationError`.

    UTF-8 text (a byte-order mark allowed), nested at most :data:`MAX_JSON_DEPTH` deep, integers
    within :data:`MAX_JSON_INT`. ``source`` names the bytes' origin in the error. The one JSON
    parser for files (:func:`read_json`) and for files named over OSC (:mod:`bridge.files`).
    """
    p = Path(source)
    text = _decode(data, p)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            [Issue("$", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", "json")], str(source)
        ) from None
    except RecursionError:
        raise ValidationError(
            [Issue("$", f"nested deeper than {MAX_JSON_DEPTH} levels", "depth")], str(source)
        ) from None
    except ValueError:  # an integer beyond Python's parsing limit (sys.get_int_max_str_digits)
        msg = f"an integer of more than {sys.get_int_max_str_digits()} digits; the limit is +-2**63"
        raise ValidationError([Issue("$", msg, "integer")], str(source)) from None
    shape = [i for i in _shape_issues(doc) if i.rule in _SHAPE_RULES]
    if shape:
        raise ValidationError(shape, str(source))
    return doc


def read_json(path: str | Path) -> Any:
    """Read a JSON file within Gravity's bounds; any problem raises :class:`ValidationError`.

    Only a regular file (not a folder, FIFO or device: a FIFO would block, ``/dev/zero`` never
    ends) of at most :data:`MAX_JSON_BYTES`, then :func:`parse_json`. The one issue names the
    file and what is wrong.
    """
    return parse_json(_read_bounded(Path(path)), path)


def _load(path: str | Path, checker: Any) -> dict[str, Any]:
    doc = read_json(path)
    issues = checker(doc)
    if issues:
        raise ValidationError(issues, str(path))
    return doc


def load_request(path: str | Path) -> dict[str, Any]:
    """Read and validate a request file; raises :class:`ValidationError` listing every issue."""
    return _load(path, check_request)


def load_scene(path: str | Path) -> dict[str, Any]:
    """Read and validate a scene file; raises :class:`ValidationError` listing every issue."""
    return _load(path, check_scene)
