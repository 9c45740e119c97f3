"""Written expectations: a small declarative checker for what an engineer expects of a scene.

A session (``examples/sessions/*.json``) carries a request and the checks an immersive-music
engineer wrote *before* looking at any proposer's output; :func:`check_expectations` judges a
scene against them and :func:`check_pair` judges two scenes of the same stems (a verse and its
chorus). Each check is a JSON object ``{"check": NAME, ...}``; the vocabulary (:data:`CHECKS`,
:data:`PAIR_CHECKS`) is documented in ``examples/sessions/README.md``.

Conventions: azimuth degrees, positive = left, wrapped to (-180, 180]; an azimuth range
``[lo, hi]`` runs counter-clockwise (towards the left) from ``lo`` to ``hi``, so ``[150, -150]``
is the rear; elevation degrees, positive up; distance metres; width and reverb send 0..1;
speeds degrees per second. Positions are judged over the whole motion path (sampled at 129
times plus every keyframe time) unless a check says ``"at": t``. A stem folded into a grouped
object is judged at its object.

Hostile input: an unknown check name, a stem the request does not have, a missing or badly
typed parameter raise :class:`ExpectationError` naming the source file and the check.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from gravity.critic import Card, contrast, critique
from gravity.errors import GravityError
from gravity.motion import angle_between, path_speed_deg_s, positions_at, wrap_az
from gravity.request import Request
from gravity.rules import EPS_DEG, REGIONS, in_region
from gravity.scene import Scene, SceneObject

__all__ = [
    "ExpectationError",
    "Result",
    "CHECKS",
    "PAIR_CHECKS",
    "CARD_METRICS",
    "validate_checks",
    "check_expectations",
    "check_pair",
    "Session",
    "Pair",
    "load_sessions",
]

T_GRID = np.linspace(0.0, 1.0, 129)  # normalised section times every path is sampled at
LEAD_AZ_DEG, LEAD_EL_DEG, LEAD_WIDTH = 12.0, (-10.0, 20.0), 0.3  # "anchored" defaults [Dolby]
LOW_AZ_DEG, LOW_EL_DEG, LOW_WIDTH = 5.0, (-10.0, 10.0), 0.2  # "centred" defaults: on the horizon [Apple]
MOVING_DEG = 10.0  # "moving": the path spans at least this many degrees
SPEED_CAP_DEG_S = 60.0
PATH_FRONT_DEG = 100.0

# Every numeric card field a "card" / "more" check may name (bools count as 0/1).
CARD_METRICS: tuple[str, ...] = tuple(
    f.name for f in fields(Card) if f.type in ("int", "float", "bool") and f.name != "parts"
)


class ExpectationError(GravityError, ValueError):
    """A check list that cannot be judged: unknown check, unknown stem, bad parameter."""


@dataclass(frozen=True)
class Result:
    """The verdict on one check: the check as written, whether it held, and what was measured."""

    check: Mapping[str, Any]
    passed: bool
    detail: str

    def line(self) -> str:
        """``"ok   mirrored bgv_l,bgv_r: az 35.0 / -35.0"``-style one-liner."""
        c = self.check
        stems = c.get("stems", "")
        who = c.get("stem") or (",".join(stems) if isinstance(stems, list) else stems) or c.get("metric", "")
        name = f"{c.get('check')} {who}" if who else str(c.get("check"))
        return f"{'ok  ' if self.passed else 'FAIL'} {name}: {self.detail}"


# ----------------------------------------------------------------------------- a scene, ready to judge
class _View:
    """A request and a scene: each stem's object, paths on a common time grid, the card on demand."""

    def __init__(self, request: Request, scene: Mapping[str, Any] | Scene) -> None:
        self.request = request
        self.scene = scene if isinstance(scene, Scene) else Scene.from_dict(scene)
        objs = self.scene.objects
        kf_t = np.concatenate([o.keyframes[:, 0] for o in objs]) if objs else np.zeros(0)
        self.t = np.union1d(T_GRID, np.clip(kf_t, 0.0, 1.0))
        self.paths = [positions_at(o.keyframes, self.t) for o in objs]  # (T, 3) each
        self.of: dict[str, int] = {s: i for i, o in enumerate(objs) for s in o.stems}
        self._card: Card | None = None

    def obj(self, stem: str) -> SceneObject:
        return self.scene.objects[self.index(stem)]

    def index(self, stem: str) -> int:
        if stem not in self.of:
            raise ExpectationError(f"stem {stem!r} is in no object of the scene")
        return self.of[stem]

    def path(self, stem: str, at: float | None = None) -> np.ndarray:
        """(T, 3) az, el, dist over the section, or (1, 3) at normalised time ``at``."""
        o = self.obj(stem)
        return self.paths[self.index(stem)] if at is None else np.atleast_2d(o.position_at(float(at)))

    def targets(self, c: Mapping[str, Any]) -> list[str]:
        """The stems a check names (``stem``, a ``stems`` list, or ``"all"``)."""
        s = c.get("stems", [c["stem"]] if "stem" in c else [])
        return [x.id for x in self.request.stems] if s == "all" else list(s)

    @property
    def card(self) -> Card:
        if self._card is None:
            self._card = critique(self.request, self.scene)
        return self._card


def _f(x: float) -> str:
    return f"{x:.1f}"


def _in_az(az: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Azimuths inside the counter-clockwise range lo -> hi (degrees; lo > hi wraps through 180)."""
    span = (hi - lo) % 360.0 if hi != lo else 0.0
    if lo <= hi and hi - lo >= 360.0:
        span = 360.0
    return np.mod(np.asarray(az) - lo, 360.0) <= span + 1e-9


def _range_ok(v: float, c: Mapping[str, Any]) -> bool:
    return c.get("min", -math.inf) - 1e-9 <= v <= c.get("max", math.inf) + 1e-9


# ----------------------------------------------------------------------------- single-scene checks
def _position(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    p = v.path(c["stem"], c.get("at"))
    ok = True
    parts = []
    if "az" in c:
        ok &= bool(np.all(_in_az(p[:, 0], *c["az"])))
        parts.append(f"az {_f(p[:, 0].min())}..{_f(p[:, 0].max())}")
    for key, col in (("el", 1), ("dist", 2)):
        if key in c:
            lo, hi = c[key]
            ok &= bool(np.all((p[:, col] >= lo - 1e-9) & (p[:, col] <= hi + 1e-9)))
            parts.append(f"{key} {_f(p[:, col].min())}..{_f(p[:, col].max())}")
    return ok, ", ".join(parts)


def _anchor_like(
    v: _View, c: Mapping[str, Any], az_tol: float, el_range: tuple[float, float], max_width: float
) -> tuple[bool, str]:
    bad = []
    for s in v.targets(c):
        p, o = v.path(s), v.obj(s)
        worst_az, lo_el, hi_el = float(np.abs(p[:, 0]).max()), float(p[:, 1].min()), float(p[:, 1].max())
        why = []
        if worst_az > c.get("tol", az_tol) + 1e-9:
            why.append(f"|az| {_f(worst_az)}")
        if lo_el < el_range[0] - 1e-9 or hi_el > el_range[1] + 1e-9:
            why.append(f"el {_f(lo_el)}..{_f(hi_el)}")
        if o.width > c.get("max_width", max_width) + 1e-9:
            why.append(f"width {o.width:g}")
        if not o.is_static:
            why.append("moves")
        if why:
            bad.append(f"{s} " + " ".join(why))
    return not bad, "; ".join(bad) or "all within"


def _anchored(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    return _anchor_like(v, c, LEAD_AZ_DEG, LEAD_EL_DEG, LEAD_WIDTH)


def _centred(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    return _anchor_like(v, c, LOW_AZ_DEG, LOW_EL_DEG, LOW_WIDTH)


def _mirrored(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    a, b = c["stems"]
    pa, pb = v.path(a), v.path(b)
    lo, hi, tol = c.get("min_abs_az", 25.0), c.get("max_abs_az", 180.0), c.get("tol", 20.0)
    az_a, az_b = pa[:, 0], pb[:, 0]
    asym = np.abs(wrap_az(az_a + az_b))  # 0 when b is a's mirror image about the median plane
    ok_t = (
        (az_a * az_b < 0)
        & (np.minimum(np.abs(az_a), np.abs(az_b)) >= lo - 1e-9)
        & (np.maximum(np.abs(az_a), np.abs(az_b)) <= hi + 1e-9)
        & (asym <= tol + 1e-9)
    )
    k = int(np.argmin(ok_t)) if not ok_t.all() else int(np.argmax(asym))
    return bool(ok_t.all()), f"az {_f(az_a[k])} / {_f(az_b[k])} (asymmetry {_f(asym[k])})"


def _closest(v: _View, stems: Sequence[str]) -> tuple[float, str]:
    """Smallest great-circle angle over the path between any two of ``stems``, and the pair."""
    best, who = math.inf, ""
    for i, a in enumerate(stems):
        for b in stems[i + 1 :]:
            if v.index(a) == v.index(b):
                return 0.0, f"{a}~{b} share an object"
            pa, pb = v.path(a), v.path(b)
            ang = float(np.min(angle_between(pa[:, 0], pa[:, 1], pb[:, 0], pb[:, 1])))
            if ang < best:
                best, who = ang, f"{a}~{b} {_f(ang)} deg"
    return best, who


def _spread(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    ang, who = _closest(v, v.targets(c))
    return ang >= c.get("min_sep_deg", 15.0) - 1e-9, f"closest {who}"


def _order(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    stems = v.targets(c)
    az = np.stack([v.path(s, c.get("at"))[:, 0] for s in stems])  # (stems, T), positive = left
    ok_t = np.all(np.diff(az, axis=0) < 0, axis=0)
    k = int(np.argmin(ok_t))
    return bool(ok_t.all()), "az " + " > ".join(f"{s} {_f(a)}" for s, a in zip(stems, az[:, k], strict=True))


def _region(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    inside = "in" in c
    region = c["in"] if inside else c["not_in"]
    bad = []
    for s in v.targets(c):
        p = v.path(s, c.get("at"))
        # the rule engine's own zone test and quantisation tolerance (0.1 deg)
        hit = in_region(region, p[:, 0], p[:, 1], EPS_DEG if inside else -EPS_DEG)
        wrong = ~hit if inside else hit
        if wrong.any():
            k = int(np.argmax(wrong))
            bad.append(f"{s} at ({_f(p[k, 0])}, {_f(p[k, 1])})")
    if not bad:
        return True, f"all {'in' if inside else 'out of'} {region}"
    return False, ("outside: " if inside else "inside: ") + ", ".join(bad)


def _static(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    moving = [s for s in v.targets(c) if not v.obj(s).is_static]
    return not moving, f"moving: {', '.join(moving)}" if moving else "all static"


def _diameter(p: np.ndarray) -> float:
    """Largest great-circle angle between any two points of a path (degrees)."""
    ang = angle_between(p[:, None, 0], p[:, None, 1], p[None, :, 0], p[None, :, 1])
    return float(np.max(ang))


def _moving(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    s = c["stem"]
    span = _diameter(v.path(s))
    return span >= c.get("min_deg", MOVING_DEG) - 1e-9 and not v.obj(s).is_static, f"path spans {_f(span)} deg"


def _max_speed(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    skip = {v.index(s) for s in c.get("except", [])}
    chosen = {v.index(s) for s in v.targets(c)} if ("stems" in c or "stem" in c) else set(range(len(v.paths)))
    section_s = v.request.section_s
    speeds = {i: path_speed_deg_s(v.scene.objects[i].keyframes, section_s) for i in sorted(chosen - skip)}
    if not speeds:
        return True, "no object judged"
    i = max(speeds, key=lambda k: speeds[k])
    return speeds[i] <= c.get("max", SPEED_CAP_DEG_S) + 1e-6, f"fastest {v.scene.objects[i].id} {_f(speeds[i])} deg/s"


def _path_front(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    worst = float(np.abs(v.path(c["stem"])[:, 0]).max())
    return worst <= c.get("max_abs_az", PATH_FRONT_DEG) + 1e-9, f"max |az| {_f(worst)}"


def _stat(v: _View, c: Mapping[str, Any], what: str, get: Callable[[str], float]) -> tuple[bool, str]:
    vals = {s: get(s) for s in v.targets(c)}
    bad = [s for s, x in vals.items() if not _range_ok(x, c)]
    shown = bad or list(vals)
    return not bad, ", ".join(f"{s} {what} {vals[s]:.{1 if 'el' in what else 2}f}" for s in shown)


def _el_max(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    return _stat(v, c, "max el", lambda s: float(v.path(s)[:, 1].max()))


def _el_min(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    return _stat(v, c, "min el", lambda s: float(v.path(s)[:, 1].min()))


def _width(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    return _stat(v, c, "width", lambda s: v.obj(s).width)


def _reverb(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    return _stat(v, c, "reverb", lambda s: v.obj(s).reverb_send)


def _wetter(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    far, near = c["stems"]
    of, on = v.obj(far), v.obj(near)
    df, dn = float(v.path(far)[:, 2].mean()), float(v.path(near)[:, 2].mean())
    ok = v.index(far) != v.index(near) and of.reverb_send > on.reverb_send + 1e-9 and df >= dn - 1e-9
    return ok, f"reverb {of.reverb_send:.2f} vs {on.reverb_send:.2f}, dist {df:.2f} vs {dn:.2f} m"


def _card(v: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    x = float(getattr(v.card, c["metric"]))
    return _range_ok(x, c), f"{c['metric']} {x:.3f}"


# ----------------------------------------------------------------------------- pair checks
def _bigger(a: _View, b: _View, _c: Mapping[str, Any]) -> tuple[bool, str]:
    d = contrast(a.card, b.card)
    return d.bigger, d.summary()


def _span(v: _View, stems: Sequence[str]) -> float:
    """Time-averaged largest great-circle angle between any two of ``stems`` (degrees)."""
    ps = [v.path(s) for s in stems]
    best = np.zeros(len(v.t))
    for i, p in enumerate(ps):
        for q in ps[i + 1 :]:
            best = np.maximum(best, angle_between(p[:, 0], p[:, 1], q[:, 0], q[:, 1]))
    return float(best.mean())


def _wider(a: _View, b: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    delta = c.get("min_delta", 0.0)
    if "stem" in c:
        wa, wb = a.obj(c["stem"]).width, b.obj(c["stem"]).width
        return wb > wa + delta + 1e-9, f"width {wa:.2f} -> {wb:.2f}"
    sa, sb = _span(a, c["stems"]), _span(b, c["stems"])
    return sb > sa + delta + 1e-9, f"span {_f(sa)} -> {_f(sb)} deg"


def _more(a: _View, b: _View, c: Mapping[str, Any]) -> tuple[bool, str]:
    m = c["metric"]
    xa, xb = float(getattr(a.card, m)), float(getattr(b.card, m))
    return xb > xa + c.get("min_delta", 0.0) + 1e-9, f"{m} {xa:.3f} -> {xb:.3f}"


# ----------------------------------------------------------------------------- vocabulary
@dataclass(frozen=True)
class _Spec:
    """One check kind: its function, required and optional parameters (name -> kind)."""

    fn: Callable[..., tuple[bool, str]]
    required: Mapping[str, str]
    optional: Mapping[str, str]


_STEM, _STEMS, _STEMS_ALL = "stem", "stems", "stems|all"
_NUM, _RANGE, _AZ_RANGE, _T = "number", "range", "az_range", "time"
_REGION, _METRIC = "region", "metric"
_TARGETS = {"stem": _STEM, "stems": _STEMS}

CHECKS: dict[str, _Spec] = {
    "position": _Spec(_position, {"stem": _STEM}, {"az": _AZ_RANGE, "el": _RANGE, "dist": _RANGE, "at": _T}),
    "anchored": _Spec(_anchored, {}, {**_TARGETS, "tol": _NUM, "max_width": _NUM}),
    "centred": _Spec(_centred, {}, {**_TARGETS, "tol": _NUM, "max_width": _NUM}),
    "mirrored": _Spec(_mirrored, {"stems": "pair"}, {"min_abs_az": _NUM, "max_abs_az": _NUM, "tol": _NUM}),
    "spread": _Spec(_spread, {"stems": _STEMS}, {"min_sep_deg": _NUM}),
    "order": _Spec(_order, {"stems": _STEMS}, {"at": _T}),
    "region": _Spec(_region, {"stems": _STEMS_ALL}, {"in": _REGION, "not_in": _REGION, "at": _T}),
    "static": _Spec(_static, {}, {"stem": _STEM, "stems": _STEMS_ALL}),
    "moving": _Spec(_moving, {"stem": _STEM}, {"min_deg": _NUM}),
    "max_speed": _Spec(_max_speed, {}, {**_TARGETS, "max": _NUM, "except": _STEMS}),
    "path_front": _Spec(_path_front, {"stem": _STEM}, {"max_abs_az": _NUM}),
    "el_max": _Spec(_el_max, {}, {"stem": _STEM, "stems": _STEMS_ALL, "min": _NUM, "max": _NUM}),
    "el_min": _Spec(_el_min, {}, {"stem": _STEM, "stems": _STEMS_ALL, "min": _NUM, "max": _NUM}),
    "width": _Spec(_width, {}, {"stem": _STEM, "stems": _STEMS_ALL, "min": _NUM, "max": _NUM}),
    "reverb": _Spec(_reverb, {}, {"stem": _STEM, "stems": _STEMS_ALL, "min": _NUM, "max": _NUM}),
    "wetter": _Spec(_wetter, {"stems": "pair"}, {}),
    "card": _Spec(_card, {"metric": _METRIC}, {"min": _NUM, "max": _NUM}),
}
PAIR_CHECKS: dict[str, _Spec] = {
    "bigger": _Spec(_bigger, {}, {}),
    "wider": _Spec(_wider, {}, {**_TARGETS, "min_delta": _NUM}),
    "more": _Spec(_more, {"metric": _METRIC}, {"min_delta": _NUM}),
}
# checks that judge named stems need one of "stem" / "stems"
_NEEDS_TARGET = {"anchored", "centred", "static", "el_max", "el_min", "width", "reverb", "wider"}
_NEEDS_BOUND = {"el_max", "el_min", "width", "reverb", "card"}  # without a bound they would always pass


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _param_issue(kind: str, x: Any, stems: set[str]) -> str | None:
    """What is wrong with parameter value ``x`` of the given kind (None when it is fine)."""
    if kind == _NUM:
        return None if _is_num(x) else f"must be a number, got {x!r}"
    if kind == _T:
        return None if _is_num(x) and 0.0 <= x <= 1.0 else f"must be a time 0..1, got {x!r}"
    if kind in (_RANGE, _AZ_RANGE):
        if not (isinstance(x, list) and len(x) == 2 and all(_is_num(y) for y in x)):
            return f"must be [lo, hi], got {x!r}"
        return None if kind == _AZ_RANGE or x[0] <= x[1] else f"must have lo <= hi, got {x!r}"
    if kind == _REGION:
        return None if x in REGIONS else f"unknown region {x!r} (known: {', '.join(REGIONS)})"
    if kind == _METRIC:
        return None if x in CARD_METRICS else f"unknown card metric {x!r} (known: {', '.join(CARD_METRICS)})"
    if kind == _STEM:
        return None if x in stems else f"{x!r} is not in the request"
    if kind == _STEMS_ALL and x == "all":
        return None
    names = x if isinstance(x, list) else None
    if not names or not all(isinstance(n, str) for n in names) or (kind == "pair" and len(names) != 2):
        want = (
            "two stem ids" if kind == "pair" else "a non-empty list of stem ids" + (' or "all"' * (kind == _STEMS_ALL))
        )
        return f"must be {want}, got {x!r}"
    unknown = [n for n in names if n not in stems]
    return f"{unknown} not in the request" if unknown else None


def _issues(c: Any, specs: Mapping[str, _Spec], stems: set[str]) -> list[str]:
    if not isinstance(c, Mapping) or not isinstance(c.get("check"), str):
        return [f'must be an object with a "check" name, got {c!r}']
    name = c["check"]
    if name not in specs:
        return [f"unknown check {name!r} (known: {', '.join(specs)})"]
    spec = specs[name]
    out = [f"missing parameter {k!r}" for k in spec.required if k not in c]
    allowed = {"check", *spec.required, *spec.optional}
    out += [f"unknown parameter {k!r} (takes {', '.join(sorted(allowed - {'check'}))})" for k in c if k not in allowed]
    kinds = {**spec.optional, **spec.required}
    for k, x in c.items():
        if k in kinds and (why := _param_issue(kinds[k], x, stems)):
            out.append(f"{k} {why}")
    if name in _NEEDS_TARGET and "stem" not in c and "stems" not in c:
        out.append('needs "stem" or "stems"')
    if "stem" in c and "stems" in c:
        out.append('takes "stem" or "stems", not both')
    if name in _NEEDS_BOUND and "min" not in c and "max" not in c:
        out.append('needs "min" or "max"')
    if name == "position" and not {"az", "el", "dist"} & set(c):
        out.append('needs at least one of "az", "el", "dist"')
    if name == "region" and ("in" in c) == ("not_in" in c):
        out.append('needs exactly one of "in" and "not_in"')
    return out


def validate_checks(stems: Sequence[str] | Request, checks: Any, source: str = "", *, pair: bool = False) -> None:
    """Raise :class:`ExpectationError` listing every check that cannot be judged.

    Parameters
    ----------
    stems : Request or sequence of str
        The request (or the stem ids) the checks must name stems of.
    checks : list of dict
        The check list as read from JSON.
    source : str
        Where the list came from (a session file), named in the error.
    pair : bool
        Judge against :data:`PAIR_CHECKS` instead of :data:`CHECKS`.
    """
    ids = {s.id for s in stems.stems} if isinstance(stems, Request) else set(stems)
    where = f"{source}: " if source else ""
    if not isinstance(checks, list):
        raise ExpectationError(f"{where}expect must be a list of checks, got {type(checks).__name__}")
    specs = PAIR_CHECKS if pair else CHECKS
    lines = [f"{where}expect[{n}] {c!r}: {why}" for n, c in enumerate(checks) for why in _issues(c, specs, ids)]
    if lines:
        raise ExpectationError("\n".join(lines))


def _judge(spec: _Spec, views: Sequence[_View], c: Mapping[str, Any]) -> Result:
    try:
        ok, detail = spec.fn(*views, c)
    except ExpectationError as e:  # e.g. a stem the scene lost: the check fails, it does not crash
        return Result(c, False, str(e))
    return Result(c, bool(ok), detail)


def check_expectations(
    request: Request, scene: Mapping[str, Any] | Scene, checks: Sequence[Mapping[str, Any]], source: str = ""
) -> list[Result]:
    """Judge one scene against written checks.

    Parameters
    ----------
    request : Request
        The request the scene answers (stems, section length for speeds).
    scene : Mapping or Scene
        A schema-valid scene (azimuth degrees, positive = left; elevation degrees; metres).
    checks : list of dict
        Checks from :data:`CHECKS` (see ``examples/sessions/README.md``).
    source : str
        The session file, named in errors.

    Returns
    -------
    list of Result
        One per check, in order.

    Raises
    ------
    ExpectationError
        When a check is unknown, names a stem the request lacks, or has a bad parameter.
    """
    validate_checks(request, list(checks), source)
    view = _View(request, scene)
    return [_judge(CHECKS[c["check"]], (view,), c) for c in checks]


def check_pair(
    req_a: Request,
    scene_a: Mapping[str, Any] | Scene,
    req_b: Request,
    scene_b: Mapping[str, Any] | Scene,
    checks: Sequence[Mapping[str, Any]],
    source: str = "",
) -> list[Result]:
    """Judge two scenes of the same stems, ``b`` the bigger section (chorus, drop).

    Checks come from :data:`PAIR_CHECKS`: ``bigger`` (:func:`gravity.critic.contrast`),
    ``wider`` (one stem's object width, or the angular span of several stems, in degrees),
    ``more`` (a card metric of b above a's). Stems must exist in both requests.

    Raises
    ------
    ExpectationError
        As :func:`check_expectations`.
    """
    common = sorted({s.id for s in req_a.stems} & {s.id for s in req_b.stems})
    validate_checks(common, list(checks), source, pair=True)
    views = (_View(req_a, scene_a), _View(req_b, scene_b))
    return [_judge(PAIR_CHECKS[c["check"]], views, c) for c in checks]


# ----------------------------------------------------------------------------- the session files
_SESSION_KEYS = ("name", "genre", "description", "request", "expect")


@dataclass(frozen=True)
class Session:
    """One session file: a request and the checks written for it (``source`` is the file)."""

    name: str
    genre: str
    description: str
    request: Request
    expect: tuple[Mapping[str, Any], ...]
    source: str


@dataclass(frozen=True)
class Pair:
    """Two sessions of the same stems in two sections; ``b`` is the bigger one (chorus, drop)."""

    a: str
    b: str
    expect: tuple[Mapping[str, Any], ...]


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ExpectationError(f"{path}: cannot read JSON: {e}") from e


def load_sessions(folder: str | Path) -> tuple[dict[str, Session], list[Pair]]:
    """Read and validate every ``*.json`` session in ``folder`` and its ``pairs.json``.

    A session file holds ``{"name", "genre", "description", "request", "expect"}`` with
    ``name`` equal to the file's stem; ``pairs.json`` holds ``[{"a", "b", "expect"}]`` naming
    two sessions with the same stem ids in different sections.

    Raises
    ------
    ExpectationError
        Naming the file (and the check) that is malformed; a request that fails the schema
        raises :class:`~gravity.errors.ValidationError` naming the file.
    """
    root = Path(folder)
    sessions: dict[str, Session] = {}
    for path in sorted(root.glob("*.json")):
        if path.name == "pairs.json":
            continue
        d = _read(path)
        if not isinstance(d, dict) or sorted(d) != sorted(_SESSION_KEYS):
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ExpectationError(f"{path}: a session has exactly the keys {list(_SESSION_KEYS)}, got {got}")
        if d["name"] != path.stem:
            raise ExpectationError(f"{path}: name {d['name']!r} differs from the file name {path.stem!r}")
        request = Request.from_dict(d["request"], str(path))
        validate_checks(request, d["expect"], str(path))
        sessions[path.stem] = Session(
            d["name"], str(d["genre"]), str(d["description"]), request, tuple(d["expect"]), str(path)
        )
    pairs_path = root / "pairs.json"
    raw = _read(pairs_path) if pairs_path.exists() else []
    if not isinstance(raw, list):
        raise ExpectationError(f"{pairs_path}: must be a list of {{a, b, expect}}")
    pairs = []
    for n, p in enumerate(raw):
        where = f"{pairs_path} [{n}]"
        if not isinstance(p, dict) or sorted(p) != ["a", "b", "expect"]:
            raise ExpectationError(f"{where}: a pair has exactly the keys a, b, expect, got {p!r}")
        missing = [x for x in (p["a"], p["b"]) if x not in sessions]
        if missing:
            raise ExpectationError(f"{where}: no session named {missing}")
        ra, rb = sessions[p["a"]].request, sessions[p["b"]].request
        if [s.id for s in ra.stems] != [s.id for s in rb.stems] or ra.section == rb.section:
            raise ExpectationError(f"{where}: {p['a']} and {p['b']} must hold the same stems in different sections")
        validate_checks([s.id for s in ra.stems], p["expect"], where, pair=True)
        pairs.append(Pair(p["a"], p["b"], tuple(p["expect"])))
    return sessions, pairs
