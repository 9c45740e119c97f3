"""Schema access and validation of requests and scenes.

Like ``Sofa.verify``: :func:`check_request` / :func:`check_scene` return *every* issue (JSON
schema 2020-12 plus the semantic checks a schema cannot express), each naming the JSON path;
:func:`load_request` / :func:`load_scene` raise :class:`ValidationError` carrying that list.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
import difflib
import importlib.util
from pathlib import Path
from typing import Any, Iterable, Literal

from jsonschema import Draft202012Validator

from gravity.errors import Issue, ValidationError

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
]

Kind = Literal["request", "scene"]


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
    return Draft202012Validator(schema(kind))


@lru_cache(maxsize=None)
def _rule_validator(rule_type: str) -> Draft202012Validator | None:
    s = schema("request")
    if f"rule_{rule_type}" not in s["$defs"]:
        return None
    return Draft202012Validator({"$ref": f"#/$defs/rule_{rule_type}", "$defs": s["$defs"]})


def json_path(parts: Iterable[Any]) -> str:
    """``["stems", 2, "class"]`` -> ``"stems[2].class"`` (``"$"`` for the root)."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "$"


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
                    f"unknown rule type {inst.get('type') if isinstance(inst, dict) else inst!r}; "
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
                        f"unknown key {key!r}; allowed keys: {allowed}",
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
            close = difflib.get_close_matches(str(inst), [str(v) for v in err.validator_value], n=3)
            msg = f"{inst!r} is not allowed; " + (
                f"did you mean {' or '.join(map(repr, close))}?" if close else f"expected one of {err.validator_value}"
            )
        issues.append(Issue(json_path(path), msg, str(err.validator)))
    return issues


def _finite_issues(doc: Any, path: tuple = ()) -> list[Issue]:
    """JSON parsers accept NaN/Infinity; a schema's number checks do not reject them."""
    if isinstance(doc, float) and not math.isfinite(doc):
        return [Issue(json_path(path), f"{doc} is not a finite number", "finite")]
    if isinstance(doc, dict):
        return [i for k, v in doc.items() for i in _finite_issues(v, path + (k,))]
    if isinstance(doc, list):
        return [i for n, v in enumerate(doc) for i in _finite_issues(v, path + (n,))]
    return []


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


def check_request(doc: Any) -> list[Issue]:
    """Every issue in a request document (schema + semantics); empty when valid."""
    issues = _finite_issues(doc) + _schema_issues(_validator("request"), doc)
    if not issues and isinstance(doc, dict):
        issues += _request_semantics(doc)
    return issues


def check_scene(doc: Any) -> list[Issue]:
    """Every issue in a scene document (schema + semantics); empty when valid."""
    issues = _finite_issues(doc) + _schema_issues(_validator("scene"), doc)
    if not issues and isinstance(doc, dict):
        issues += _scene_semantics(doc)
    return issues


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


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a missing file or broken JSON raises :class:`ValidationError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(
            [Issue("$", f"cannot read file: {getattr(exc, 'strerror', None) or exc}", "io")], str(p)
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            [Issue("$", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", "json")], str(p)
        ) from None


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
