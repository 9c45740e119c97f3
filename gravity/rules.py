"""The rule engine: hard rules always hold.

:func:`enforce` takes a request and *any* proposed scene (planner, LLM, user, or garbage) and
returns a schema-valid scene that satisfies every hard rule, plus the violations the proposal
had (so evaluation can count how often a raw proposal already complied). It is idempotent:
enforcing its own output changes nothing.

Order of work: sanitise (types, NaN, ranges, ids, every stem in exactly one object) -> object
budget (group the least important stems) -> per-object limits (anchor, mono_low_end,
max_elevation, zone, motion, width) -> masking separation between objects -> quantise ->
verify with :func:`check`. Rule sets that cannot hold together raise
:class:`~gravity.errors.RuleConflictError` naming the rules.

Angles are degrees (azimuth positive = left), distances metres, speeds degrees per second.
Precedence notes: ``mono_low_end`` pins low stems to (0, 0) with width 0 and no motion; an
``avoid_masking`` rule without explicit classes/ids does not separate two such centred objects
(kick and bass share the centre by design), one that names them explicitly does.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import Any, Collection, Mapping, Sequence

import numpy as np

from gravity.errors import Issue, RuleConflictError
from gravity.motion import angle_between, keyframes_array, path_speed_deg_s, positions_at, wrap_az
from gravity.defaults import STYLE_LOUDNESS, STYLE_ROOM, default_object
from gravity.request import Request, Stem
from gravity.schema import check_scene
from gravity.vocab import BANDS, LOW_CLASSES, ROOM_PRESETS, family_of

__all__ = [
    "Violation",
    "Enforcement",
    "enforce",
    "check",
    "check_feasible",
    "constraints_applied",
    "REGIONS",
    "in_region",
    "pinned_low",
    "StemBounds",
    "stem_bounds",
]

EPS_DEG = 0.1  # checks tolerate quantisation to 0.1 degree
EPS_M = 0.006
MAX_KEYFRAMES = 129

# Named zones as unions of boxes (az_min, az_max, el_min, el_max); azimuth runs
# counter-clockwise (towards the left) from az_min to az_max.
REGIONS: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "front": ((-60, 60, -90, 90),),
    "rear": ((120, -120, -90, 90),),
    "left": ((30, 150, -90, 90),),
    "right": ((-150, -30, -90, 90),),
    "sides": ((60, 120, -90, 90), (-120, -60, -90, 90)),
    "above": ((-180, 180, 30, 90),),
    "below": ((-180, 180, -90, -15),),
    "horizontal": ((-180, 180, -15, 15),),
}


# Candidate directions for projections: a 1-degree grid over the sphere.
def _unit(p: np.ndarray) -> np.ndarray:
    """(N, 2) azimuth/elevation in degrees -> (N, 3) unit vectors (x front, y left, z up)."""
    a, e = np.radians(p[:, 0]), np.radians(p[:, 1])
    return np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], axis=1)


def _within(u: np.ndarray, az: float, el: float, deg: float) -> np.ndarray:
    """Which unit vectors lie within ``deg`` degrees of (az, el); chord test, exact near 0."""
    c = _unit(np.array([[az, el]], dtype=float))[0]
    d = u - c
    return np.einsum("ij,ij->i", d, d) <= (2.0 * math.sin(math.radians(min(deg, 180.0)) / 2.0)) ** 2


@functools.cache
def _grid() -> tuple[np.ndarray, np.ndarray]:
    """The 1-degree grid (N, 2) in degrees and its unit vectors (N, 3); built on first use
    (65k directions: not paid by ``gravity validate`` on a request without zones).
    """
    gaz, gel = np.meshgrid(np.arange(-179.0, 181.0), np.arange(-90.0, 91.0))
    grid = np.stack([gaz.ravel(), gel.ravel()], axis=1)
    return grid, _unit(grid)


@dataclass(frozen=True)
class Violation:
    """A hard rule (or sanitising step) the proposal broke.

    rule : the rule's label (``anchor``, ``budget``, ``sanitize`` ...) with its index, e.g.
    ``rules[0].anchor``; path : JSON path in the proposal; message : what was wrong.
    """

    rule: str
    path: str
    message: str


@dataclass(frozen=True)
class Enforcement:
    """Result of :func:`enforce`: the scene, and what the proposal got wrong."""

    scene: dict[str, Any]
    violations: tuple[Violation, ...]

    @property
    def compliant(self) -> bool:
        """True when the raw proposal already satisfied every rule (nothing had to change)."""
        return not self.violations

    @property
    def rules_enforced(self) -> tuple[str, ...]:
        """Distinct rule labels the engine had to enforce."""
        return tuple(sorted({v.rule for v in self.violations}))


# ----------------------------------------------------------------------------- limits
@dataclass
class _Limits:
    """Everything the rules say about one object; ``src`` maps a constraint to its rule label."""

    caps: list[tuple[float, float | None, float, str]] = field(default_factory=list)  # az, el, tol, label
    dist: list[tuple[float, float, str]] = field(default_factory=list)  # lo, hi, label
    centre: str | None = None
    el_max: tuple[float, str] | None = None
    zones: list[tuple[str, tuple[tuple[float, float, float, float], ...], str]] = field(default_factory=list)
    static: str | None = None
    max_speed: tuple[float, str] | None = None
    width: tuple[float, float] = (0.0, 1.0)
    width_src: list[str] = field(default_factory=list)

    def labels(self) -> list[str]:
        out = [c[3] for c in self.caps] + [z[2] for z in self.zones]
        out += [x for x in (self.centre, self.el_max[1] if self.el_max else None) if x]
        return sorted(set(out))

    @property
    def pinned(self) -> bool:
        """Only one direction is allowed (centre, or an exact anchor with elevation)."""
        return bool(self.centre) or any(tol == 0 and el is not None for _, el, tol, _ in self.caps)


def _in_boxes(
    az: np.ndarray, el: np.ndarray, boxes: Sequence[tuple[float, float, float, float]], grow: float
) -> np.ndarray:
    """Membership of directions in a union of boxes, each grown by ``grow`` degrees."""
    inside = np.zeros(np.shape(az), dtype=bool)
    for a0, a1, e0, e1 in boxes:
        span = a1 - a0 if a1 >= a0 else a1 - a0 + 360.0
        off = np.mod(az - a0, 360.0)
        in_az = (off <= span + grow) | (off >= 360.0 - grow) if span < 360.0 else np.ones_like(inside)
        inside |= in_az & (el >= e0 - grow) & (el <= e1 + grow)
    return inside


def in_region(region: str, az_deg: Any, el_deg: Any, grow: float = 0.0) -> np.ndarray:
    """Whether directions (degrees, azimuth positive = left) lie in a named :data:`REGIONS` zone.

    ``grow`` widens (> 0) or shrinks (< 0) the zone by that many degrees on every edge.
    """
    az, el = np.broadcast_arrays(np.asarray(az_deg, dtype=float), np.asarray(el_deg, dtype=float))
    return _in_boxes(az, el, REGIONS[region], grow)


def _ok(lim: _Limits, az: np.ndarray, el: np.ndarray, eps: float = EPS_DEG, u: np.ndarray | None = None) -> np.ndarray:
    """Which directions satisfy every positional limit of an object (``u``: their unit vectors)."""
    az, el = np.atleast_1d(az), np.atleast_1d(el)
    if u is None and (lim.centre or lim.caps):
        u = _unit(np.stack([az, el], axis=1))
    ok = np.ones(np.shape(az), dtype=bool)
    for caz, cel, tol, _ in lim.caps:
        if cel is None:
            ok &= np.abs(wrap_az(az - caz)) <= tol + eps
        else:
            assert u is not None  # set above whenever there are caps
            ok &= _within(u, caz, cel, tol + eps)
    if lim.centre:
        assert u is not None
        ok &= _within(u, 0.0, 0.0, eps)
    if lim.el_max:
        ok &= el <= lim.el_max[0] + eps
    for mode, boxes, _ in lim.zones:
        ok &= _in_boxes(az, el, boxes, eps) if mode == "inside" else ~_in_boxes(az, el, boxes, -eps)
    return ok


def _candidates(lim: _Limits) -> tuple[np.ndarray, np.ndarray]:
    """Grid directions plus the exact points rules name (anchors, the centre), with unit vectors."""
    extra = np.array([(caz, cel) for caz, cel, _, _ in lim.caps if cel is not None] + [(0.0, 0.0)], dtype=float)
    grid, grid_u = _grid()
    return np.concatenate([grid, extra]), np.concatenate([grid_u, _unit(extra)])


def _nearest(lim: _Limits, az: float, el: float, extra_ok: Any = None) -> tuple[float, float] | None:
    """Nearest allowed direction to (az, el), or None when the limits leave nothing.

    A direction that already passes :func:`check`'s tolerance is kept (idempotence).
    """
    if extra_ok is None and bool(_ok(lim, np.array([az]), np.array([el]))[0]):
        return az, el
    cand, units = _candidates(lim)
    mask = _ok(lim, cand[:, 0], cand[:, 1], eps=1e-6, u=units)
    cand, units = cand[mask], units[mask]
    if extra_ok is not None and len(cand):
        keep = extra_ok(cand, units)
        cand, units = cand[keep], units[keep]
    if not len(cand):
        return None
    # Taxicab cost on the sphere: moving in azimuth or in elevation alone is preferred, so an
    # azimuth-only constraint keeps the elevation (a great circle would drag it up or down).
    cost = np.abs(wrap_az(cand[:, 0] - az)) * max(math.cos(math.radians(el)), 0.05) + np.abs(cand[:, 1] - el)
    cost -= 1e-3 * (units @ _unit(np.array([[az, el]], dtype=float))[0])  # tie-break: closest by angle
    i = int(np.argmin(cost))
    return float(cand[i, 0]), float(cand[i, 1])


def _selects(rule: Mapping[str, Any], stem: Stem) -> bool:
    if "track_id" in rule:
        return rule["track_id"] == stem.id
    if "track_class" in rule:
        return rule["track_class"] == stem.cls
    return True


def _is_low(stem: Stem, rule: Mapping[str, Any]) -> bool:
    return stem.cls in LOW_CLASSES or stem.band[0] >= rule.get("low_band_min", 0.6)


def pinned_low(request: Request) -> frozenset[str]:
    """Ids of the stems a ``mono_low_end`` rule pins to the centre (width 0, still)."""
    rules = [r for r in request.rules if r["type"] == "mono_low_end"]
    return frozenset(s.id for s in request.stems if any(_is_low(s, r) for r in rules))


def _limits(request: Request, members: Sequence[Stem]) -> tuple[_Limits, list[Issue]]:
    """Compile every rule that touches any member stem; also report empty width/distance ranges."""
    lim = _Limits()
    issues: list[Issue] = []
    if not request.has_height:
        lim.el_max = (0.0, f"format:{request.target_format}")
    for n, r in enumerate(request.rules):
        label = f"rules[{n}].{r['type']}"
        t = r["type"]
        hit = any(_selects(r, s) for s in members)
        if t == "anchor" and hit:
            lim.caps.append((float(r["az_deg"]), r.get("el_deg"), float(r.get("tolerance_deg", 0.0)), label))
            if "dist_m" in r:
                tol = float(r.get("tolerance_m", 0.0))
                lim.dist.append((r["dist_m"] - tol, r["dist_m"] + tol, label))
        elif t == "mono_low_end" and any(_is_low(s, r) for s in members):
            lim.centre = lim.centre or label
            lim.static = lim.static or label
            lim.width = (lim.width[0], 0.0)
            lim.width_src.append(label)
        elif t == "max_elevation" and hit:
            if lim.el_max is None or r["max_deg"] < lim.el_max[0]:
                lim.el_max = (float(r["max_deg"]), label)
        elif t == "zone" and hit:
            boxes = (
                REGIONS[r["region"]]
                if "region" in r
                else ((r.get("az_min", -180.0), r.get("az_max", 180.0), r.get("el_min", -90.0), r.get("el_max", 90.0)),)
            )
            lim.zones.append((r["mode"], boxes, label))
        elif t == "motion" and hit:
            if not r.get("allow", True):
                lim.static = lim.static or label
            if "max_deg_per_s" in r and (lim.max_speed is None or r["max_deg_per_s"] < lim.max_speed[0]):
                lim.max_speed = (float(r["max_deg_per_s"]), label)
        elif t == "width" and hit:
            lim.width = (max(lim.width[0], r.get("min", 0.0)), min(lim.width[1], r.get("max", 1.0)))
            lim.width_src.append(label)
    if lim.width[0] > lim.width[1] + 1e-9:
        issues.append(
            Issue(
                ", ".join(lim.width_src), f"width must be >= {lim.width[0]} and <= {lim.width[1]} at once", "conflict"
            )
        )
    if lim.dist and max(d[0] for d in lim.dist) > min(d[1] for d in lim.dist) + 1e-9:
        issues.append(
            Issue(", ".join(d[2] for d in lim.dist), "anchors ask for distances that do not overlap", "conflict")
        )
    return lim, issues


# ----------------------------------------------------------------------------- bounds
@dataclass(frozen=True)
class StemBounds:
    """What the hard rules let one stem's own object be, in the model's integer output units.

    directions : (azimuth ranges, elevation range) pairs, inclusive integer degrees (+ = left;
    two azimuth ranges where they wrap at 180): an anchor with a tolerance is a disc, written
    as the azimuths allowed at each band of elevations; dm : distance range (decimetres); width
    : width range in ninths; static : no motion allowed; anchored : the stem must open its own
    object (an anchor holds only where the stem is placed itself).
    """

    directions: tuple[tuple[tuple[tuple[int, int], ...], tuple[int, int]], ...]
    dm: tuple[int, int]
    width: tuple[int, int]
    static: bool
    anchored: bool


_AZ_INT = np.arange(-179, 181)
_GRID_EPS = EPS_DEG  # the check's own slack: a raw proposal inside the bounds passes check()


def _int_ranges(v: np.ndarray) -> tuple[tuple[int, int], ...]:
    cuts = np.flatnonzero(np.diff(v) != 1) + 1
    return tuple((int(a[0]), int(a[-1])) for a in np.split(v, cuts))


def stem_bounds(request: Request, stem: Stem, members: Sequence[Stem] = ()) -> StemBounds | None:
    """The anchor, ``mono_low_end``, ``max_elevation``, ``motion`` and ``width`` limits of
    ``stem`` as integer ranges (so a sampling grammar can hold them), or None when integers
    cannot meet them (the rule engine decides then). Zones are left to the engine. ``members``:
    every stem the object will hold, when known (an object budget of one), else ``stem`` alone.

    Directions use :func:`check`'s own slack, so a proposal inside the bounds passes it;
    distance and width use the teacher's rounding (``round(x)``). The engine projects onto a
    1-degree grid, so rule-checked scenes written by :func:`gravity.llm.format.encode_scene` (the
    training targets) stay inside (tested on generated rows).
    """
    lim, issues = _limits(request, list(members) or [stem])
    if issues:
        return None
    lim = replace(lim, zones=[])  # zones are the engine's: the grammar does not bound them
    el_lo, el_hi = -90, 90 if lim.el_max is None else int(math.floor(lim.el_max[0] + _GRID_EPS))
    discs = [(cel, tol) for _, cel, tol, _ in lim.caps if cel is not None] + ([(0.0, 0.0)] if lim.centre else [])
    for cel, tol in discs:  # elevations a disc can reach
        el_lo, el_hi = max(el_lo, math.ceil(cel - tol - _GRID_EPS)), min(el_hi, math.floor(cel + tol + _GRID_EPS))
    if el_lo > el_hi:
        return None
    directions: list[tuple[tuple[tuple[int, int], ...], tuple[int, int]]] = []
    # without a disc the azimuth set does not depend on elevation: one band, tested at one elevation
    for e in range(el_lo, el_hi + 1) if discs else [min(max(0, el_lo), el_hi)]:
        ok = _ok(lim, _AZ_INT.astype(float), np.full(len(_AZ_INT), float(e)), eps=_GRID_EPS)
        if not ok.any():
            continue
        az = _int_ranges(_AZ_INT[ok])
        if directions and directions[-1][0] == az and directions[-1][1][1] == e - 1:
            directions[-1] = (az, (directions[-1][1][0], e))
        else:
            directions.append((az, (e, e) if discs else (el_lo, el_hi)))
    if not directions:
        return None
    lo_m = max([d[0] for d in lim.dist], default=0.3)
    hi_m = min([d[1] for d in lim.dist], default=50.0)
    dm = (max(3, round(lo_m * 10)), min(500, round(hi_m * 10)))
    width = (round(lim.width[0] * 9), round(lim.width[1] * 9))
    if dm[0] > dm[1] or width[0] > width[1]:
        return None
    pinned = bool(lim.caps or lim.centre)
    return StemBounds(
        directions=tuple(directions), dm=dm, width=width, static=bool(lim.static) or pinned, anchored=bool(lim.caps)
    )


# ----------------------------------------------------------------------------- objects
@dataclass
class _Obj:
    id: str
    stems: list[Stem]
    kf: np.ndarray  # (K, 4): t, az, el, dist
    width: float
    gain_db: float
    reverb_send: float
    er: float

    @property
    def host(self) -> Stem:
        return next(s for s in self.stems if s.id == self.id)

    @property
    def importance(self) -> float:
        return max(s.leadness for s in self.stems)

    @property
    def band(self) -> str:
        b = np.mean([s.band for s in self.stems], axis=0)
        return BANDS[int(np.argmax(b))]

    def freeze(self, az: float | None = None, el: float | None = None) -> None:
        row = self.kf[0].copy()
        if az is not None:
            row[1], row[2] = az, el
        self.kf = np.array([[0.0, *row[1:]], [1.0, *row[1:]]])


def _num(v: Any, lo: float, hi: float) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(min(max(v, lo), hi))


_FIELDS = (("width", 0.0, 1.0), ("gain_db", -60.0, 12.0), ("reverb_send", 0.0, 1.0), ("early_reflections", 0.0, 1.0))


def _sanitize(request: Request, proposal: Any, out: list[Violation]) -> list[_Obj]:
    stems = {s.id: s for s in request.stems}
    order = {s.id: n for n, s in enumerate(request.stems)}
    taken: set[str] = set()
    objs: list[_Obj] = []

    def note(path: str, msg: str) -> None:
        out.append(Violation("sanitize", path, msg))

    raw = proposal.get("objects") if isinstance(proposal, Mapping) else None
    if not isinstance(raw, list):
        note("objects", "proposal has no object list")
        raw = []
    for n, o in enumerate(raw):
        p = f"objects[{n}]"
        if not isinstance(o, Mapping):
            note(p, "not an object; dropped")
            continue
        oid = o.get("id")
        members: list[Any] = o["stems"] if isinstance(o.get("stems"), list) else [oid]
        ids = [m for m in members if isinstance(m, str) and m in stems]
        if len(ids) != len(members):
            note(
                f"{p}.stems" if "stems" in o else f"{p}.id",
                f"names stems not in the request: {[m for m in members if m not in ids]!r}",
            )
        dup = [m for m in ids if m in taken]
        if dup:
            note(p, f"stems {dup} already belong to an earlier object; removed here")
        ids = sorted(dict.fromkeys(m for m in ids if m not in taken), key=order.__getitem__)
        if not ids:
            continue
        taken.update(ids)
        member_stems = [stems[m] for m in ids]
        host_id = oid if oid in ids else max(member_stems, key=lambda s: (s.leadness, -order[s.id])).id
        dflt = default_object(stems[host_id], request)
        vals = {}
        for key, lo, hi in (("az_deg", -1e9, 1e9), ("el_deg", -90.0, 90.0), ("dist_m", 0.25, 50.0), *_FIELDS):
            v = _num(o.get(key), lo, hi)
            if v is None:
                note(f"{p}.{key}", f"missing or not a finite number ({o.get(key)!r}); default {dflt[key]} used")
                v = dflt[key]
            elif v != o.get(key):
                note(f"{p}.{key}", f"{o.get(key)!r} out of range; clamped to {v}")
            vals[key] = v
        if vals["az_deg"] != wrap_az(vals["az_deg"]):
            note(f"{p}.az_deg", f"{vals['az_deg']} wrapped to (-180, 180]")
            vals["az_deg"] = wrap_az(vals["az_deg"])
        if o.get("class") != stems[host_id].cls:
            note(f"{p}.class", f"class {o.get('class')!r} differs from stem {host_id!r}'s class {stems[host_id].cls!r}")
        kf = _sanitize_motion(o.get("motion"), vals, f"{p}.motion", note)
        objs.append(
            _Obj(
                host_id,
                member_stems,
                kf,
                vals["width"],
                vals["gain_db"],
                vals["reverb_send"],
                vals["early_reflections"],
            )
        )
    for s in request.stems:
        if s.id not in taken:
            note("objects", f"stem {s.id!r} is in no object; placed at its class default")
            d = default_object(s, request)
            objs.append(
                _Obj(
                    s.id,
                    [s],
                    keyframes_array(d["motion"]),
                    d["width"],
                    d["gain_db"],
                    d["reverb_send"],
                    d["early_reflections"],
                )
            )
    objs.sort(key=lambda ob: order[ob.stems[0].id])
    return objs


def _sanitize_motion(motion: Any, base: Mapping[str, float], path: str, note: Any) -> np.ndarray:
    rows: list[list[float]] = []
    if motion is not None and not isinstance(motion, list):
        note(path, "not a list; object made static")
    for k in motion if isinstance(motion, list) else []:
        vals = [
            _num(k.get(f), lo, hi) if isinstance(k, Mapping) else None
            for f, lo, hi in (("t", 0.0, 1.0), ("az_deg", -1e9, 1e9), ("el_deg", -90.0, 90.0), ("dist_m", 0.25, 50.0))
        ]
        if None in vals:
            note(path, f"keyframe {k!r} has missing or non-finite values; dropped")
            continue
        rows.append([float(v) for v in (vals[0], wrap_az(vals[1]), vals[2], vals[3])])  # type: ignore[arg-type]  # no None here
    if not rows:
        return np.array(
            [
                [0.0, base["az_deg"], base["el_deg"], base["dist_m"]],
                [1.0, base["az_deg"], base["el_deg"], base["dist_m"]],
            ]
        )
    kf = np.array(sorted(rows, key=lambda r: r[0]))
    keep = np.concatenate([[True], np.diff(kf[:, 0]) > 1e-6])
    if not keep.all():
        note(path, "keyframes with duplicate t dropped")
    kf = kf[keep]
    if kf[0, 0] > 0:
        note(path, "first keyframe moved to t=0")
        kf[0, 0] = 0.0
    if kf[-1, 0] < 1 or len(kf) == 1:
        if len(kf) == 1:
            kf = np.vstack([kf, kf])
        note(path, "last keyframe moved to t=1")
        kf[-1, 0] = 1.0
    if len(kf) > MAX_KEYFRAMES:
        note(path, f"{len(kf)} keyframes reduced to {MAX_KEYFRAMES}")
        kf = kf[np.unique(np.linspace(0, len(kf) - 1, MAX_KEYFRAMES).round().astype(int))]
    if any(abs(kf[0, i] - base[k]) > 1e-6 for i, k in ((1, "az_deg"), (2, "el_deg"), (3, "dist_m"))):
        note(path, "object position differs from its first keyframe; the keyframe wins")
    _quantize(kf)
    return kf[np.concatenate([[True], np.diff(kf[:, 0]) > 0])] if len(kf) > 2 else kf


# ----------------------------------------------------------------------------- budget
def _split_infeasible(request: Request, objs: list[_Obj], out: list[Violation]) -> list[_Obj]:
    """Break up proposed groups whose members' rules cannot hold in one object."""
    order = {s.id: n for n, s in enumerate(request.stems)}
    res: list[_Obj] = []
    for o in objs:
        lim, issues = _limits(request, o.stems)
        if len(o.stems) > 1 and (issues or _nearest(lim, o.kf[0, 1], o.kf[0, 2]) is None):
            out.append(
                Violation(
                    "stems", o.id, f"stems {[s.id for s in o.stems]} cannot share one object under the rules; split"
                )
            )
            res += [_Obj(s.id, [s], o.kf.copy(), o.width, o.gain_db, o.reverb_send, o.er) for s in o.stems]
        else:
            res.append(o)
    res.sort(key=lambda ob: order[ob.stems[0].id])
    return res


def _placed(o: _Obj, keep: Collection[str]) -> bool:
    return any(s.id in keep for s in o.stems)


def _partner(request: Request, objs: list[_Obj], victim: _Obj, keep: Collection[str] = ()) -> _Obj | None:
    """The most similar object ``victim`` can join without breaking any rule (None if none)."""
    lim_v, _ = _limits(request, victim.stems)
    best, best_cost = None, math.inf
    for o in objs:
        if o is victim:
            continue
        lim_o, _ = _limits(request, o.stems)
        cost = (family_of(o.host.cls) != family_of(victim.host.cls)) + 0.5 * (o.band != victim.band)
        cost += 2.0 * (bool(lim_o.centre) != bool(lim_v.centre)) + o.importance  # keep leads alone
        cost += 3.0 * (_placed(o, keep) and _placed(victim, keep))  # two placed stems: one place is lost
        if lim_o.caps and lim_v.caps:
            cost += 5.0
        if cost >= best_cost:
            continue
        merged, issues = _limits(request, o.stems + victim.stems)
        if issues or _nearest(merged, o.kf[0, 1], o.kf[0, 2]) is None:
            continue
        best, best_cost = o, cost
    return best


def _group(request: Request, objs: list[_Obj], keep: Collection[str] = ()) -> list[_Obj]:
    """Merge the least important objects into their most similar neighbour until within budget;
    stems in ``keep`` (placed by the text) are merged last and keep their own place.
    """
    budget = request.budget
    if len(objs) <= budget:
        return objs
    order = {s.id: n for n, s in enumerate(request.stems)}
    objs = list(objs)
    while len(objs) > budget:
        best = victim = None
        # unplaced and least important first; a stem whose rules fit no partner waits for the next
        for victim in sorted(objs, key=lambda o: (_placed(o, keep), o.importance, -order[o.stems[0].id])):
            best = _partner(request, objs, victim, keep)
            if best is not None:
                break
        if best is None or victim is None:
            raise RuleConflictError(
                [
                    Issue(
                        "max_objects",
                        f"budget {budget} forces stems into objects whose rules they cannot share",
                        "budget",
                    )
                ]
            )
        # the object stays where the text put a stem, else where the more important one was
        rank = {id(o): (_placed(o, keep), o.importance) for o in (best, victim)}
        host, other = (best, victim) if rank[id(best)] >= rank[id(victim)] else (victim, best)
        # the wider of the two, except that a lead's object keeps the lead's width (narrow) [Dolby]
        lead_w = [o.width for o in (host, other) if any(s.id in request.lead_ids for s in o.stems)]
        host.width = min(lead_w) if lead_w else max(host.width, other.width)
        host.stems = sorted(host.stems + other.stems, key=lambda s: order[s.id])
        objs.remove(other)
    objs.sort(key=lambda ob: order[ob.stems[0].id])  # the same order _sanitize gives
    return objs


# ----------------------------------------------------------------------------- fitting
def _path_ok(lim: _Limits, kf: np.ndarray) -> bool:
    p = positions_at(kf, _times(kf))
    return bool(np.all(_ok(lim, p[:, 0], p[:, 1])))


def _times(kf: np.ndarray, n: int = 65) -> np.ndarray:
    return np.union1d(np.linspace(0.0, 1.0, n), kf[:, 0])


def _fit(request: Request, o: _Obj, lim: _Limits) -> None:
    """Move one object's keyframes inside its limits (freezing motion when the path cannot)."""
    if lim.static:
        o.freeze()
    if lim.dist:
        lo, hi = max(d[0] for d in lim.dist), min(d[1] for d in lim.dist)
        off = (o.kf[:, 3] < lo - EPS_M) | (o.kf[:, 3] > hi + EPS_M)
        o.kf[off, 3] = np.clip(o.kf[off, 3], max(lo, 0.25), min(hi, 50.0))
    for row in o.kf:
        spot = _nearest(lim, row[1], row[2])
        if spot is None:
            raise RuleConflictError(
                [Issue(", ".join(lim.labels()), f"no direction satisfies these rules for object {o.id!r}", "conflict")]
            )
        row[1], row[2] = spot
    if not _path_ok(lim, o.kf):
        o.freeze()
    if lim.max_speed and path_speed_deg_s(o.kf, request.section_s) > lim.max_speed[0]:
        cap = lim.max_speed[0] * 0.97  # margin so quantisation cannot push it back over
        for _ in range(6):
            speed = path_speed_deg_s(o.kf, request.section_s)
            if speed <= cap:
                break
            _shrink(o.kf, cap / speed)
        _quantize(o.kf)
        if path_speed_deg_s(o.kf, request.section_s) > lim.max_speed[0] or not _path_ok(lim, o.kf):
            o.freeze()
    _quantize(o.kf)
    if not _path_ok(lim, o.kf):
        o.freeze()


def _static(kf: np.ndarray) -> bool:
    return bool(np.all(kf[:, 1:] == kf[0, 1:]))


def _shrink(kf: np.ndarray, k: float) -> None:
    """Scale a path's excursion around its first keyframe by ``k`` (slows it down)."""
    daz = wrap_az(np.diff(kf[:, 1]))
    az = kf[0, 1] + np.concatenate([[0.0], np.cumsum(daz)])
    kf[:, 1] = wrap_az(kf[0, 1] + k * (az - kf[0, 1]))
    kf[:, 2] = kf[0, 2] + k * (kf[:, 2] - kf[0, 2])


def _separation(request: Request, objs: list[_Obj]) -> np.ndarray:
    """Matrix of required separations in degrees between objects (0 = none)."""
    return _separation_rules(request, objs)[0]


def _separation_rules(request: Request, objs: list[_Obj]) -> tuple[np.ndarray, dict[tuple[int, int], str]]:
    """Required separations in degrees between objects, and which rule sets each pair's value.

    Stem-level: two objects must keep a rule's ``min_sep_deg`` when one holds a stem and the
    other a stem of the same dominant band, both in the rule's scope. Stems grouped into one
    object (only to meet the budget) share its position.
    """
    n = len(objs)
    req = np.zeros((n, n))
    src: dict[tuple[int, int], str] = {}
    mono = [any(r["type"] == "mono_low_end" and _is_low(s, r) for r in request.rules for s in o.stems) for o in objs]
    for k, r in enumerate(request.rules):
        if r["type"] != "avoid_masking":
            continue
        explicit = "classes" in r or "ids" in r
        bands = [
            {
                s.dominant_band
                for s in o.stems
                if not explicit or s.cls in r.get("classes", ()) or s.id in r.get("ids", ())
            }
            for o in objs
        ]
        sep = r.get("min_sep_deg", 30.0)
        for a in range(n):
            for b in range(a + 1, n):
                if bands[a] & bands[b] and (explicit or not (mono[a] and mono[b])) and sep > req[a, b]:
                    req[a, b] = req[b, a] = sep
                    src[(a, b)] = f"rules[{k}].avoid_masking"
    return req, src


def _min_angle(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.min(angle_between(p[:, 0], p[:, 1], q[:, 0], q[:, 1])))


_TURNS_DEG = tuple(sorted((d for k in range(1, 12) for d in (15.0 * k, -15.0 * k)), key=abs)) + (180.0,)


def _turn_clear(o: _Obj, lim: _Limits, clear: Any, t: np.ndarray) -> bool:
    """Turn a moving object's whole path in azimuth by the smallest step of 15 degrees that
    keeps it inside its limits and clear of its placed neighbours (a hinted orbit or fly-over
    keeps moving instead of freezing); False, unchanged, when no turn does.
    """
    for d in _TURNS_DEG:
        kf = o.kf.copy()
        kf[:, 1] = wrap_az(kf[:, 1] + d)
        p = positions_at(kf, t)
        if _path_ok(lim, kf) and bool(np.all(clear(p, _unit(p)))):
            o.kf = kf
            return True
    return False


def _separate(request: Request, objs: list[_Obj], lims: list[_Limits]) -> None:
    req = _separation(request, objs)
    if not req.any():
        return
    t = np.union1d(np.linspace(0, 1, 129), np.concatenate([o.kf[:, 0] for o in objs]))
    # most constrained first (pinned, then the smallest allowed region), so the free objects
    # are the ones that make room; importance breaks ties
    grid, grid_u = _grid()
    room = [float(np.mean(_ok(lim, grid[:, 0], grid[:, 1], u=grid_u))) if lim.labels() else 1.0 for lim in lims]
    order = sorted(range(len(objs)), key=lambda i: (not lims[i].pinned, room[i], -objs[i].importance, i))
    placed: list[int] = []
    for i in order:
        o = objs[i]
        path = positions_at(o.kf, t)
        clash = [j for j in placed if req[i, j] and _min_angle(path, positions_at(objs[j].kf, t)) < req[i, j] - EPS_DEG]
        if clash:
            # unique points only: a static neighbour costs one point, not a whole path
            others = [
                (np.unique(_unit(positions_at(objs[j].kf, t)).round(12), axis=0), req[i, j] + 0.2)
                for j in placed
                if req[i, j]
            ]

            def clear(c: np.ndarray, u: np.ndarray, others: list = others) -> np.ndarray:
                ok = np.ones(len(c), dtype=bool)
                for pts, sep in others:  # closest approach of each candidate to the whole path
                    ok &= (u @ pts.T).max(axis=1) <= math.cos(math.radians(sep))
                return ok

            if not lims[i].pinned and not _static(o.kf) and _turn_clear(o, lims[i], clear, t):
                placed.append(i)  # the move survives, turned just enough to clear its neighbours
                continue
            spot = None if lims[i].pinned else _nearest(lims[i], o.kf[0, 1], o.kf[0, 2], extra_ok=clear)
            if spot is None:
                names = [objs[j].id for j in clash]
                labels = sorted({f"avoid_masking>={req[i, j]:g}deg" for j in clash} | set(lims[i].labels()))
                raise RuleConflictError(
                    [Issue(", ".join(labels), f"object {o.id!r} cannot keep its separation from {names}", "conflict")]
                )
            o.freeze(*spot)
        placed.append(i)


# ----------------------------------------------------------------------------- output
def _q(x: float, step: float) -> float:
    return float(round(round(x / step) * step, 6)) + 0.0


def _quantize(kf: np.ndarray) -> np.ndarray:
    """Round keyframes in place to the scene's resolution: 1e-4 t, 0.1 deg, 0.01 m."""
    kf[:, 0] = [_q(x, 1e-4) for x in kf[:, 0]]
    kf[:, 1] = [_q(wrap_az(a), 0.1) or 0.0 for a in kf[:, 1]]
    kf[kf[:, 1] <= -180.0, 1] = 180.0
    kf[:, 2] = [_q(e, 0.1) for e in kf[:, 2]]
    kf[:, 3] = [_q(d, 0.01) for d in kf[:, 3]]
    return kf


def _to_dict(request: Request, proposal: Any, objs: list[_Obj], lims: list[_Limits]) -> dict[str, Any]:
    bed_in = proposal.get("bed") if isinstance(proposal, Mapping) else None
    bed_in = bed_in if isinstance(bed_in, Mapping) else {}
    room = bed_in.get("room_preset")
    lufs = _num(bed_in.get("loudness_target_lufs"), -60.0, 0.0)
    objects = []
    for o, lim in zip(objs, lims, strict=True):
        kf = _quantize(o.kf.copy())
        motion = [{"t": r[0], "az_deg": r[1], "el_deg": r[2], "dist_m": r[3]} for r in kf.tolist()]
        d: dict[str, Any] = {"id": o.id, "class": o.host.cls}
        if len(o.stems) > 1:
            d["stems"] = [s.id for s in o.stems]
        d.update(
            {
                "az_deg": motion[0]["az_deg"],
                "el_deg": motion[0]["el_deg"],
                "dist_m": motion[0]["dist_m"],
                "width": _q(min(max(o.width, lim.width[0]), lim.width[1]), 0.01),
                "gain_db": _q(o.gain_db, 0.1),
                "reverb_send": _q(o.reverb_send, 0.01),
                "early_reflections": _q(o.er, 0.01),
                "motion": motion,
            }
        )
        objects.append(d)
    return {
        "version": "1.0",
        "bed": {
            "layout": request.target_format,
            "loudness_target_lufs": _q(lufs if lufs is not None else STYLE_LOUDNESS.get(request.style, -14.0), 0.1),
            "room_preset": room if room in ROOM_PRESETS else STYLE_ROOM.get(request.style, "studio_large"),
        },
        "timing": request.timing(),
        "objects": objects,
        "constraints_applied": constraints_applied(request),
    }


def _fmt(x: Any) -> str:
    return "*" if x is None else f"{x:g}"


def constraints_applied(request: Request) -> list[str]:
    """Labels of every hard rule in force, in the seed's style (``anchor:lead_vocal@0/10/1.6``)."""
    out = [f"max_objects<={request.budget}"]
    if not request.has_height:
        out.append(f"max_elevation<=0deg({request.target_format})")
    for r in request.rules:
        t, sel = r["type"], r.get("track_id", r.get("track_class", "all"))
        if t == "anchor":
            tol = f"~{r['tolerance_deg']:g}deg" if r.get("tolerance_deg") else ""
            out.append(f"anchor:{sel}@{_fmt(r['az_deg'])}/{_fmt(r.get('el_deg'))}/{_fmt(r.get('dist_m'))}{tol}")
        elif t == "mono_low_end":
            out.append(f"mono_low_end<{r['hz_below']:g}Hz")
        elif t == "width":
            out.append(f"width:{sel}[{r.get('min', 0):g},{r.get('max', 1):g}]")
        elif t == "avoid_masking":
            scope = ",".join(list(r.get("classes", [])) + list(r.get("ids", []))) or "all"
            out.append(f"avoid_masking:{scope}>={r.get('min_sep_deg', 30):g}deg")
        elif t == "zone":
            where = (
                r.get("region")
                or f"az[{_fmt(r.get('az_min', -180))},{_fmt(r.get('az_max', 180))}]"
                f"el[{_fmt(r.get('el_min', -90))},{_fmt(r.get('el_max', 90))}]"
            )
            out.append(f"zone:{sel} {r['mode']} {where}")
        elif t == "motion":
            out.append(
                f"motion:{sel} "
                + ("static" if not r.get("allow", True) else f"<={r.get('max_deg_per_s', math.inf):g}deg/s")
            )
        elif t == "max_elevation":
            out.append(f"max_elevation:{sel}<={r['max_deg']:g}deg")
    return list(dict.fromkeys(out))


# ----------------------------------------------------------------------------- public
def check_feasible(request: Request) -> list[Issue]:
    """Rule conflicts visible from the request alone (before any proposal)."""
    issues: list[Issue] = []
    spots: list[tuple[Stem, tuple[float, float] | None, _Limits]] = []
    for s in request.stems:
        lim, found = _limits(request, [s])
        issues += found
        spot = _nearest(lim, 0.0, 0.0)
        if spot is None:
            issues.append(
                Issue(", ".join(lim.labels()), f"no direction satisfies these rules for stem {s.id!r}", "conflict")
            )
        spots.append((s, spot, lim))
    pinned = [(s, spot) for s, spot, lim in spots if lim.pinned and spot is not None]
    if len({spot for _, spot in pinned}) > request.budget:
        issues.append(
            Issue(
                "max_objects",
                f"{len({p for _, p in pinned})} stems are pinned to distinct spots but the budget is {request.budget}",
                "conflict",
            )
        )
    single = [_Obj(s.id, [s], np.zeros((2, 4)), 0, 0, 0, 0) for s, _ in pinned]
    req, src = _separation_rules(request, single)
    for a in range(len(pinned)):
        for b in range(a + 1, len(pinned)):
            (sa, pa), (sb, pb) = pinned[a], pinned[b]
            if req[a, b] and angle_between(pa[0], pa[1], pb[0], pb[1]) < req[a, b] - EPS_DEG:
                issues.append(
                    Issue(
                        src[(a, b)],
                        f"stems {sa.id!r} and {sb.id!r} are pinned {angle_between(pa[0], pa[1], pb[0], pb[1]):.1f} "
                        f"deg apart but must keep {req[a, b]:g} deg",
                        "conflict",
                    )
                )
    return issues


def check(request: Request, scene: Mapping[str, Any], *, schema: bool = True) -> list[Violation]:
    """Every hard rule a schema-valid scene breaks (empty when it satisfies all of them).

    ``schema=False`` skips the schema validation, for a scene known to be schema-valid (e.g.
    one just made by :func:`enforce` and turned by :mod:`gravity.refine`): it is most of the cost.
    """
    out: list[Violation] = [Violation("schema", i.path, i.message) for i in check_scene(scene)] if schema else []
    if out:
        return out
    stems = {s.id: s for s in request.stems}
    objs: list[_Obj] = []
    seen: dict[str, int] = {}
    for n, o in enumerate(scene["objects"]):
        members = o.get("stems", [o["id"]])
        unknown = [m for m in members if m not in stems]
        if unknown:
            out.append(Violation("stems", f"objects[{n}]", f"names stems not in the request: {unknown}"))
        for m in members:
            if m in seen:
                out.append(Violation("stems", f"objects[{n}]", f"stem {m!r} also in objects[{seen[m]}]"))
            seen.setdefault(m, n)
        kf = keyframes_array(
            o.get("motion") or [{"t": 0, "az_deg": o["az_deg"], "el_deg": o["el_deg"], "dist_m": o["dist_m"]}]
        )
        objs.append(
            _Obj(
                o["id"],
                [stems[m] for m in members if m in stems] or [Stem(o["id"], o["class"], -20, 0, (0, 1, 0), 0)],
                kf,
                o["width"],
                o["gain_db"],
                o["reverb_send"],
                o["early_reflections"],
            )
        )
    missing = [s for s in stems if s not in seen]
    if missing:
        out.append(Violation("stems", "objects", f"stems in no object: {missing}"))
    if len(objs) > request.budget:
        out.append(Violation("budget", "objects", f"{len(objs)} objects, budget {request.budget}"))
    for n, o in enumerate(objs):
        lim, _ = _limits(request, o.stems)
        p = f"objects[{n}]"
        pos = positions_at(o.kf, _times(o.kf))
        bad = ~_ok(lim, pos[:, 0], pos[:, 1])
        if bad.any():
            k = int(np.argmax(bad))
            out.append(
                Violation(
                    ", ".join(lim.labels()) or "position",
                    f"{p}.motion",
                    f"position ({pos[k, 0]:.1f}, {pos[k, 1]:.1f}) breaks a positional rule",
                )
            )
        if lim.dist:
            lo, hi = max(d[0] for d in lim.dist), min(d[1] for d in lim.dist)
            if np.any(o.kf[:, 3] < lo - EPS_M) or np.any(o.kf[:, 3] > hi + EPS_M):
                out.append(Violation(lim.dist[0][2], f"{p}.dist_m", f"distance outside [{lo:g}, {hi:g}] m"))
        if lim.static and not _static(o.kf):
            out.append(Violation(lim.static, f"{p}.motion", "must be static"))
        if lim.max_speed and path_speed_deg_s(o.kf, request.section_s) > lim.max_speed[0] * 1.01:
            out.append(Violation(lim.max_speed[1], f"{p}.motion", f"moves faster than {lim.max_speed[0]:g} deg/s"))
        if not lim.width[0] - 1e-6 <= o.width <= lim.width[1] + 1e-6:
            out.append(
                Violation(
                    ", ".join(lim.width_src),
                    f"{p}.width",
                    f"width {o.width} outside [{lim.width[0]:g}, {lim.width[1]:g}]",
                )
            )
    req = _separation(request, objs)
    if req.any():
        t = np.union1d(np.linspace(0, 1, 129), np.concatenate([o.kf[:, 0] for o in objs]))
        paths = [positions_at(o.kf, t) for o in objs]
        for a, b in zip(*np.nonzero(np.triu(req)), strict=True):
            sep = _min_angle(paths[a], paths[b])
            if sep < req[a, b] - EPS_DEG:
                out.append(
                    Violation(
                        "avoid_masking",
                        f"objects[{a}]",
                        f"{objs[a].id!r} and {objs[b].id!r} come {sep:.1f} deg close, need {req[a, b]:g}",
                    )
                )
    return out


def enforce(request: Request, proposal: Any, keep: Collection[str] = ()) -> Enforcement:
    """Make any proposal a schema-valid scene that satisfies every hard rule.

    Parameters
    ----------
    request : Request
        The validated request (its rules are the hard rules).
    proposal : Any
        A scene-like document from any source; garbage is tolerated.
    keep : collection of str
        Ids of stems the request's text places (e.g. ``gravity.plan.text_placed``): when the
        budget groups stems, these are merged last and their object keeps their place.

    Returns
    -------
    Enforcement
        The scene (a JSON-ready dict) and the violations the proposal had.

    Raises
    ------
    RuleConflictError
        When the request's rules cannot all hold at once.
    """
    conflicts = check_feasible(request)
    if conflicts:
        raise RuleConflictError(conflicts)
    violations: list[Violation] = []
    objs = _sanitize(request, proposal, violations)
    # Report hard-rule breaches of the sanitised proposal (before grouping changes anything).
    draft = _to_dict(request, proposal, objs, [_Limits() for _ in objs])
    violations += [v for v in check(request, draft) if v.rule != "schema"]
    objs = _group(request, _split_infeasible(request, objs, violations), keep)
    lims = []
    for o in objs:
        lim, issues = _limits(request, o.stems)
        if issues:
            raise RuleConflictError(issues)
        _fit(request, o, lim)
        lims.append(lim)
    _separate(request, objs, lims)
    scene = _to_dict(request, proposal, objs, lims)
    left = check(request, scene)
    if left:
        raise RuleConflictError([Issue(v.rule, f"{v.path}: {v.message}", "conflict") for v in left])
    return Enforcement(scene, tuple(violations))
