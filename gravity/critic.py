"""The scene critic: a deterministic scorecard of a scene against published immersive-music practice.

:func:`critique` reads a request and a (rule-checked) scene and returns a :class:`Card`: what a
mixing engineer would check first, each metric measured, each with the practice it follows.
:func:`contrast` compares two cards of the same stems (a verse and its chorus, a build and its
drop). The critic is pure (inputs are not changed, same input -> same card) and fast (a few ms
for 24 stems), so proposers can rank candidates with it (:attr:`Card.rank_key`).

Conventions: azimuth degrees, positive = left, 0 = front, (-180, 180]; elevation degrees,
positive up; distance metres; width 0..1 (the renderer spreads a width-w object over +-60 w
degrees along the horizontal tangent: ``renderer.sources.spread_offsets``); speeds degrees
per second; shares are fractions of the scene's objects, 0..1.

Sources (the yardstick for every threshold below)
-------------------------------------------------
* [Dolby] Dolby Laboratories' notes on music perception and mixing in Dolby Atmos (spatial
  release from masking: same-band sources that are spatially separated unmask each other;
  lead and low end anchored front-centre; height for high and ambient material; "a little
  motion goes a long way").
* [Apple] Apple Music's spatial-audio style guide for Dolby Atmos deliveries (low end centred
  and out of the height layer; lead vocal anchored; ensembles use the sphere; choruses open up).
* [Lee] H. Lee, AES convention paper 9325, on height and frequency band (perceptual band
  allocation): low frequencies have no vertical localisation and read as unstable up high;
  high bands lift naturally.
* [Engineers] Atmos music engineers' published practice (e.g. Bob Clearmountain on his Atmos
  mixes): lead and bass anchored, ensembles spread around the room, depth coherent with
  reverb, motion sparing and musical, the chorus bigger than the verse.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

import numpy as np

from gravity.motion import (
    Motion,
    detect_motion,
    expand,
    keyframes_array,
    path_speed_deg_s,
    positions_at,
    scene_keyframes,
    wrap_az,
)
from gravity.request import Request, Stem
from gravity.rules import EPS_DEG, REGIONS, in_region  # the region test is the rule engine's own
from gravity.scene import Scene
from gravity.vocab import BANDS, CLASS_DEFAULTS, LOW_CLASSES

__all__ = ["Card", "Contrast", "critique", "contrast", "crowded_pairs", "PRACTICE", "WEIGHTS", "BIG_SECTIONS"]

T_GRID = np.linspace(0.0, 1.0, 33)  # normalised section times every path is sampled at
STACKED_DEG, CROWDED_DEG = 3.0, 15.0  # same-band pair closer than this: stacked / crowded
FRONT30_SLACK = 0.03  # share: how much front30 may rise in the bigger section of a contrast pair
_MASKING_SHARE_DIV = 8  # a pair counts when it stays that close for >= 1/8 of the section
LOW_CENTRE_DEG = 3.0  # two low objects this close to (0, 0) share the centre by design
FRONT_DEG = 30.0  # "front collapse": |az| within this
ZERO_AZ_DEG = 0.05  # "exactly 0": quantisation slack
COVER_DEG, COVER_EL_MIN_DEG, N_COVER = 30.0, -10.0, 600  # coverage grid: upper sphere, 600 points
SPREAD_HALF_DEG, SPREAD_STEP_DEG = 60.0, 15.0  # renderer: +-60 w along the tangent; sampled <= 15 deg
REAR_DEG, HEIGHT_DEG = 110.0, 25.0  # rear: |az| > 110; height layer: el >= 25
LEAD_DEG, LEAD_WIDTH = 12.0, 0.3
LOW_DEG, LOW_WIDTH, LOW_EL_DEG = 5.0, 0.2, 15.0
KEY_REAR_DEG = 120.0  # key elements never beyond this unless asked
LOW_HEIGHT_DEG = 20.0  # low-band objects never at or above this elevation [Lee]
SPEED_CAP_DEG_S = 60.0  # default motion speed cap
ADH_AZ_DEG, ADH_EL_DEG, ADH_DIST_RATIO, ADH_WIDTH = 20.0, 15.0, 1.5, 0.2
LEAD_CLASSES = frozenset({"lead_vocal", "spoken"})
KEY_CLASSES = frozenset({"kick", "snare", "bass"})
BIG_SECTIONS = frozenset({"chorus", "post_chorus", "hook", "drop"})  # sections that open up

# Weights of the sub-scores in Card.score (sum 1); shapes in Card's docstring.
WEIGHTS: dict[str, float] = {
    "separation": 0.2,
    "front": 0.2,
    "anchors": 0.2,
    "height": 0.1,
    "depth": 0.1,
    "motion": 0.1,
    "adherence": 0.1,
}

# field -> (short label, the practice it follows); the CLI prints one line per entry
PRACTICE: dict[str, tuple[str, str]] = {
    "score": ("critic score", "weighted mean of the sub-scores (weights in gravity.critic.WEIGHTS)"),
    "n_objects": ("objects", ""),
    "stacked_pairs": ("stacked pairs", f"0: same-band objects >= {STACKED_DEG:g} deg apart (release from masking)"),
    "crowded_pairs": ("crowded pairs", f"few: same-band objects >= {CROWDED_DEG:g} deg apart [Dolby, Lee]"),
    "front30_share": ("front +-30 share", "<= 0.55 in choruses/drops: use the sphere, not a front wall [Apple]"),
    "zero_az_share": ("exactly-0 share", "<= 0.10: only lead and low end own the centre [Dolby]"),
    "coverage_static": ("coverage (t=0)", "share of the upper sphere within 30 deg of a source; >= 0.55 big"),
    "coverage_motion": ("coverage (motion)", "the same over the whole section"),
    "spread_index": ("spread index", "1 - |mean direction|: 0 one spot, ~1 spread evenly"),
    "rear_share": ("rear share", f"|az| > {REAR_DEG:g}: ensembles and ambience wrap round [Apple]"),
    "height_share": ("height share", f"el >= {HEIGHT_DEG:g}: height for high and ambient material [Lee]"),
    "mean_width": ("mean width", "0..1; wider in choruses"),
    "anchors_ok": ("anchors", "lead <= 12 deg of front, narrow, static; low end centred, narrow, low [Dolby]"),
    "height_ok": ("height by band", f"no low-band object at el >= {LOW_HEIGHT_DEG:g} [Lee AES 9325]"),
    "height_band_order": ("height band order", "mean el of high-band minus low-band objects; > 0 [Lee]"),
    "depth_corr": ("depth coherence", "rank corr. of distance and reverb send; > 0 (farther = wetter)"),
    "moving": ("moving objects", "sparing: a little motion goes a long way [Dolby]"),
    "max_speed_deg_s": ("max speed deg/s", f"<= {SPEED_CAP_DEG_S:g} unless asked"),
    "key_moving": ("key elements moving", "0 unless asked: lead, kick, snare, bass stay put"),
    "motion_ok": ("motion", "speed cap and static key elements"),
    "adherence": ("text adherence", "share of what the hints and prompt asked that the scene does"),
}


@dataclass(frozen=True)
class Card:
    """The critic's scorecard of one scene (see the module docstring for the sources).

    Attributes
    ----------
    score : float
        0..1, ``sum(WEIGHTS[k] * parts[k])``. Sub-scores, each in [0, 1]:
        *separation* ``1 / (1 + stacked + 0.25 (crowded - stacked))``; *front* the mean of
        ``1`` if front30 <= F else falling linearly to 0 at 1 (F = 0.55 in :data:`BIG_SECTIONS`,
        0.70 otherwise), ``min(1, coverage_static / C)`` (C = 0.55 big, 0.40 otherwise) and ``1``
        if zero_az <= 0.10 else falling linearly to 0 at 0.5; *anchors* the share of anchored
        objects (lead, low end, key elements) without an issue; *height* the share of low
        objects not up high, times 0.8, plus 0.2 when the band order is >= 0; *depth*
        ``clip(0.5 + depth_corr, 0, 1)``; *motion* the mean of the speed term (``1``, or cap /
        speed of the worst unasked over-speed object), the key term (share of key elements not
        moving unasked) and the sparing term (1 while at most a quarter of the objects move
        unasked, falling linearly to 0.5 when all do); *adherence* as below.
    parts : tuple of (str, float)
        The sub-scores in :data:`WEIGHTS` order.
    n_objects : int
        Objects in the scene.
    stacked_pairs, crowded_pairs : int
        Pairs of objects of the same dominant band (the dominant band of the summed band
        energies of the member stems) that stay within 3 deg / 15 deg of each other for at
        least an eighth of the section (33 samples of the motion paths; for static objects,
        their angle); crowded includes stacked. Masking needs time: two movers crossing for an
        instant are not stacked. Two centred low
        objects (class in ``LOW_CLASSES`` or low band, both within 3 deg of (0, 0) all the
        time) are not counted: kick and bass share the centre by design. Source: spatial
        release from masking [Dolby]; [Lee].
    pair_issues : tuple of str
        The stacked and crowded pairs with their smallest angle, e.g. ``"gtr1~gtr2 2.0 deg"``.
    front30_share : float
        Share of objects within +-30 deg azimuth, time-averaged (a moving object counts by the
        fraction of the section it spends there). Front collapse [Apple].
    zero_az_share : float
        Among objects that are neither low nor the lead, the share at azimuth exactly 0
        (|az| < 0.05 deg) at t = 0 (0 when there are none) [Dolby].
    coverage_static, coverage_motion : float
        Share of a near-uniform grid of 600 directions over the upper sphere (el >= -10 deg)
        within 30 deg of what is heard: each object's centre and, for width w > 0, its spread
        (points <= 15 deg apart out to +-60 w deg along the horizontal tangent, the renderer's
        geometry). Static: at t = 0; motion: the union over the section [Apple]; [Engineers].
    spread_index : float
        ``1 - |mean unit direction|`` over objects and sample times: 0 all in one direction,
        about 1 spread evenly.
    rear_share, height_share : float
        Time-averaged share of objects at |az| > 110 deg / at el >= 25 deg.
    mean_width : float
        Mean object width, 0..1.
    anchors_ok : bool
        No anchor issue: the lead (``Request.lead_ids``: the voices, else the most lead-like
        instrument with leadness >= 0.6) within 12 deg of (0, 0), width <= 0.3, static; the low
        end (kick, bass, sub, bass_synth: other low-band stems such as taikos may spread, the
        height check keeps them down) within 5 deg of (0, 0), width <= 0.2, el < 15 deg, static;
        lead, kick, snare and bass never at |az| > 120 deg. Each check is skipped where the text or a rule asked for it
        (position, width, motion, rear) [Dolby]; [Apple].
    anchor_issues : tuple of str
        Human-readable anchor problems.
    height_ok : bool
        No low object (class in ``LOW_CLASSES`` or low dominant band) reaches el >= 20 deg
        unless asked [Lee].
    height_issues : tuple of str
    height_band_order : float
        Degrees: mean (time-averaged) elevation of high-band objects minus that of low objects
        (0 when either group is empty); positive = practice [Lee].
    depth_corr : float
        Spearman rank correlation of (time-averaged) distance and reverb send over objects, -1..1;
        0 with fewer than 3 objects or a constant column. Farther should be wetter [Engineers].
    moving : int
        Objects whose keyframes move.
    max_speed_deg_s : float
        Peak angular speed over all objects (:func:`gravity.motion.path_speed_deg_s` with the
        request's section length).
    key_moving : int
        Lead, low and key (kick, snare, bass) objects that move.
    motion_ok : bool
        Every object within 60 deg/s (or the speed its own text / a ``motion`` rule asked for)
        and no key element moving unless its text asked [Dolby].
    motion_issues : tuple of str
    adherence : float
        0..1: share of the stated fields of :func:`gravity.plan.planner.read_hints` the scene
        does (1 when the text asked nothing). Per field: az within 20 deg (at the object's
        elevation; a group's ``arc_deg`` widens it), el within 15 deg, distance within a factor
        1.5, width within 0.2, motion pattern equal (:func:`gravity.motion.detect_motion`),
        each ``avoid`` region kept out of over the path, width <= ``max_width``. A stem in a
        grouped object is judged at the object's position; a field a hard rule overrides
        (anchor, ``mono_low_end``, zone, ``max_elevation``, ``width``, ``motion``, a flat
        format's elevation) is not counted: rules > hints.
    adherence_issues : tuple of str
    """

    score: float
    parts: tuple[tuple[str, float], ...]
    n_objects: int
    stacked_pairs: int
    crowded_pairs: int
    pair_issues: tuple[str, ...]
    front30_share: float
    zero_az_share: float
    coverage_static: float
    coverage_motion: float
    spread_index: float
    rear_share: float
    height_share: float
    mean_width: float
    anchors_ok: bool
    anchor_issues: tuple[str, ...]
    height_ok: bool
    height_issues: tuple[str, ...]
    height_band_order: float
    depth_corr: float
    moving: int
    max_speed_deg_s: float
    key_moving: int
    motion_ok: bool
    motion_issues: tuple[str, ...]
    adherence: float
    adherence_issues: tuple[str, ...]

    @property
    def rank_key(self) -> tuple[float, float]:
        """``(adherence, score)``: higher is better; candidates are ranked by it."""
        return (self.adherence, self.score)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in field order: floats rounded to 3 decimals, tuples as lists, ``parts`` a dict."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "parts":
                out[f.name] = {k: round(x, 3) for k, x in v}
            elif isinstance(v, tuple):
                out[f.name] = list(v)
            elif isinstance(v, float):
                out[f.name] = round(v, 3)
            else:
                out[f.name] = v
        return out

    def numbers(self) -> dict[str, float]:
        """Every numeric field (bools as 0/1) and sub-score (``part_<name>``) as floats, for averaging."""
        out = {
            f.name: float(getattr(self, f.name))
            for f in fields(self)
            if isinstance(getattr(self, f.name), (int, float))  # bool is an int
        }
        out.update({f"part_{k}": x for k, x in self.parts})
        return out

    def summary(self) -> str:
        """One line, e.g. ``critic 0.82 | stacked 0 crowded 1 | front30 0.42 zero0 0.00 | ...``."""

        def ok(flag: bool, issues: Sequence[str]) -> str:
            return "ok" if flag else f"{len(issues)} issue{'s' * (len(issues) != 1)}"

        return (
            f"critic {self.score:.2f} | stacked {self.stacked_pairs} crowded {self.crowded_pairs} | "
            f"front30 {self.front30_share:.2f} zero0 {self.zero_az_share:.2f} | "
            f"cover {self.coverage_static:.2f}/{self.coverage_motion:.2f} spread {self.spread_index:.2f} | "
            f"anchors {ok(self.anchors_ok, self.anchor_issues)} | height {ok(self.height_ok, self.height_issues)} | "
            f"depth {self.depth_corr:.2f} | motion {self.moving} moving, max {self.max_speed_deg_s:.0f} deg/s | "
            f"adherence {self.adherence:.2f}"
        )


@dataclass(frozen=True)
class Contrast:
    """How section ``b`` (chorus, drop: the bigger one) differs from ``a`` (verse, build).

    d_coverage (static coverage), d_width (mean width), d_rear, d_height, d_front30 (shares):
    b minus a. ``bigger``: coverage up and width up and (rear or height share up) and front30
    not up by more than :data:`FRONT30_SLACK` (a mover sweeping past the front for a moment is
    not a front collapse) -- the chorus opens to the sides, the rear and the height [Apple];
    [Engineers].
    """

    d_coverage: float
    d_width: float
    d_rear: float
    d_height: float
    d_front30: float
    bigger: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, floats rounded to 3 decimals."""
        return {f.name: round(v, 3) if isinstance(v := getattr(self, f.name), float) else v for f in fields(self)}

    def summary(self) -> str:
        """One line: the deltas and the verdict."""
        return (
            f"contrast {'bigger' if self.bigger else 'NOT bigger'} | cover {self.d_coverage:+.2f} "
            f"width {self.d_width:+.2f} rear {self.d_rear:+.2f} height {self.d_height:+.2f} "
            f"front30 {self.d_front30:+.2f}"
        )


def contrast(a: Card, b: Card) -> Contrast:
    """Compare card ``a`` (e.g. the verse) with ``b`` (the chorus of the same stems); see :class:`Contrast`."""
    eps = 1e-9
    d = Contrast(
        d_coverage=b.coverage_static - a.coverage_static,
        d_width=b.mean_width - a.mean_width,
        d_rear=b.rear_share - a.rear_share,
        d_height=b.height_share - a.height_share,
        d_front30=b.front30_share - a.front30_share,
        bigger=False,
    )
    bigger = (
        d.d_coverage > eps
        and d.d_width > eps
        and (d.d_rear > eps or d.d_height > eps)
        and d.d_front30 <= FRONT30_SLACK + eps
    )
    return Contrast(d.d_coverage, d.d_width, d.d_rear, d.d_height, d.d_front30, bigger)


# ----------------------------------------------------------------------------- geometry
def _unit(az: np.ndarray, el: np.ndarray) -> np.ndarray:
    """Degrees -> unit vectors (..., 3): x front, y left, z up."""
    a, e = np.radians(az), np.radians(el)
    return np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], axis=-1)


def _angle_from_dot(dot: np.ndarray) -> np.ndarray:
    """Great-circle degrees from the dot product of unit vectors, via the chord (exact near 0)."""
    chord = np.sqrt(np.clip(2.0 - 2.0 * dot, 0.0, 4.0))
    return np.degrees(2.0 * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0)))


@functools.cache
def _sky() -> np.ndarray:
    """(600, 3) unit vectors spread evenly over the cap el >= -10 deg (Fibonacci lattice: z
    uniform in [sin(-10 deg), 1] gives equal areas, the golden angle spreads the azimuths).
    """
    i = np.arange(N_COVER) + 0.5
    z0 = math.sin(math.radians(COVER_EL_MIN_DEG))
    z = z0 + (1.0 - z0) * i / N_COVER
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


@functools.cache
def _offsets(width: float) -> tuple[np.ndarray, np.ndarray]:
    """The cosines and sines of the spread offsets of a width-``width`` object: <= 15 deg apart
    out to +-60 w deg (the renderer's half-angle), centre included; read-only (cached).
    """
    half = SPREAD_HALF_DEG * min(max(width, 0.0), 1.0)
    n = math.ceil(half / SPREAD_STEP_DEG)
    b = np.radians(np.linspace(-half, half, 2 * n + 1))
    cos_b, sin_b = np.cos(b), np.sin(b)
    cos_b.flags.writeable = sin_b.flags.writeable = False
    return cos_b, sin_b


def _spread(u: np.ndarray, az: np.ndarray, width: float) -> np.ndarray:
    """Unit vectors (N, 3) -> the heard points (N * V, 3) of a width-``width`` object, spread
    along the horizontal tangent (the great circle tangent to the ring of constant elevation,
    as ``renderer.sources.spread_directions`` places the virtual sources).
    """
    if width <= 0.0:
        return u
    cos_b, sin_b = _offsets(float(width))
    a = np.radians(az)
    tangent = np.stack([-np.sin(a), np.cos(a), np.zeros_like(a)], axis=-1)
    v = cos_b[None, :, None] * u[:, None, :] + sin_b[None, :, None] * tangent[:, None, :]
    return v.reshape(-1, 3)


def _covered(points: Sequence[np.ndarray], skip: np.ndarray | None = None) -> np.ndarray:
    """Which sky-grid directions lie within 30 deg of any of the heard ``points`` ((M, 3) arrays);
    directions already in ``skip`` are not tested again (they come back True).
    """
    sky = _sky()
    out = np.zeros(len(sky), dtype=bool) if skip is None else skip.copy()
    if not points:
        return out
    todo = np.flatnonzero(~out)
    p, q = np.concatenate(points), sky[todo]
    # three broadcast products instead of a matrix product: BLAS threads on a busy machine cost
    # 10x more than the sums for this small k = 3 product
    dot = q[:, :1] * p[:, 0] + q[:, 1:2] * p[:, 1] + q[:, 2:] * p[:, 2]
    out[todo] = (dot >= math.cos(math.radians(COVER_DEG))).any(axis=1)
    return out


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); 0.0 when undefined."""
    if len(x) < 3:
        return 0.0
    rx, ry = _ranks(x), _ranks(y)
    sx, sy = rx.std(), ry.std()
    if sx == 0 or sy == 0:
        return 0.0
    return float(np.mean((rx - rx.mean()) * (ry - ry.mean())) / (sx * sy))


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    r = np.empty(len(v))
    r[order] = np.arange(len(v), dtype=float)
    for val in np.unique(v):  # ties share their mean rank
        tie = v == val
        if tie.sum() > 1:
            r[tie] = r[tie].mean()
    return r


# ----------------------------------------------------------------------------- objects
@dataclass(frozen=True)
class _Obj:
    """One object as the critic sees it; ``path`` (33, 3) and ``u`` (33, 3) on :data:`T_GRID`."""

    id: str
    cls: str
    stems: tuple[Stem, ...]
    kf: np.ndarray
    width: float
    reverb: float
    path: np.ndarray
    u: np.ndarray
    band: str
    low: bool  # low class or low band: may share the centre, never up high
    anchor_low: bool  # the low end that must be centred
    lead: bool
    key: bool  # lead, kick, snare, bass: never hard-rear unless asked
    moving: bool
    off_front: float  # largest angle from (0, 0) over the section, degrees

    @property
    def label(self) -> str:
        return self.id if len(self.stems) <= 1 else f"{self.id}[{'+'.join(s.id for s in self.stems)}]"


def _lead_ids(request: Request) -> frozenset[str]:
    """Stems that are the lead: the voices, else the most lead-like instrument (``Request.lead_ids``)."""
    return request.lead_ids


def _rows(scene: Mapping[str, Any] | Scene) -> list[tuple[str, str, tuple[str, ...], np.ndarray, float, float]]:
    """(id, class, member ids, keyframes, width, reverb send) per object, from a Scene or a document."""
    if isinstance(scene, Scene):
        return [(o.id, o.cls, o.stems, o.keyframes, o.width, o.reverb_send) for o in scene.objects]
    out = []
    for o in scene.get("objects", []):
        motion = o.get("motion") or [{"t": 0.0, "az_deg": o["az_deg"], "el_deg": o["el_deg"], "dist_m": o["dist_m"]}]
        out.append(
            (
                str(o["id"]),
                str(o.get("class", "other")),
                tuple(o.get("stems") or [o["id"]]),
                keyframes_array(motion),
                float(o.get("width", 0.0)),
                float(o.get("reverb_send", 0.0)),
            )
        )
    return out


def _objects(request: Request, scene: Mapping[str, Any] | Scene) -> list[_Obj]:
    by_id = {s.id: s for s in request.stems}
    leads = _lead_ids(request)
    rows = _rows(scene)
    paths = np.empty((len(rows), len(T_GRID), 3))
    moving = [bool(np.any(r[3][:, 1:] != r[3][0, 1:])) for r in rows]
    for i, r in enumerate(rows):
        # a static object holds its first keyframe (most objects: skip the interpolation)
        paths[i] = positions_at(r[3], T_GRID) if moving[i] else r[3][0, 1:]
    units = _unit(paths[..., 0], paths[..., 1])
    off_front = _angle_from_dot(units[..., 0]).max(axis=1) if len(rows) else np.zeros(0)
    objs = []
    for (oid, cls, ids, kf, width, reverb), path, u, moves, off in zip(
        rows, paths, units, moving, off_front, strict=True
    ):
        members = tuple(by_id[m] for m in ids if m in by_id)
        if not members:  # not in the request: judge it by its class
            c = cls if cls in CLASS_DEFAULTS else "other"
            d = CLASS_DEFAULTS[c]
            members = (Stem(oid, c, d.lufs, d.transient, d.band, d.leadness),)
        total = np.sum([s.band for s in members], axis=0)
        band = BANDS[int(np.argmax(total))]
        low_class = any(s.cls in LOW_CLASSES for s in members)
        objs.append(
            _Obj(
                id=oid,
                cls=cls,
                stems=members,
                kf=kf,
                width=width,
                reverb=reverb,
                path=path,
                u=u,
                band=band,
                low=low_class or band == "low",
                # the low end to anchor is kick, bass, sub (Dolby; Apple): taikos and timpani
                # are low but may spread; the height rule still keeps them down
                anchor_low=low_class,
                lead=any(s.id in leads for s in members),
                key=any(s.id in leads or s.cls in KEY_CLASSES for s in members),
                moving=moves,
                off_front=float(off),
            )
        )
    return objs


# ----------------------------------------------------------------------------- the text
def _hints(request: Request) -> dict[str, Any]:
    """What the text asks: :func:`gravity.plan.planner.read_hints` (memoised there on the text,
    so the candidates of one request share one reading).
    """
    from gravity.plan.planner import read_hints  # deferred: the phrase readers compile on import

    return read_hints(request)


def _selects(rule: Mapping[str, Any], stem: Stem) -> bool:
    if "track_id" in rule:
        return bool(rule["track_id"] == stem.id)
    if "track_class" in rule:
        return bool(rule["track_class"] == stem.cls)
    return True


@dataclass
class _Asked:
    """What the text or the rules asked of an object's stems (so practice checks stand aside)."""

    direction: bool = False
    width: bool = False
    motion: bool = False
    rear: bool = False
    speed: float = SPEED_CAP_DEG_S


def _asked(request: Request, hints: Mapping[str, Any], o: _Obj) -> _Asked:
    a = _Asked()
    for s in o.stems:
        p = hints.get(s.id)
        if p is not None:
            arc = getattr(p, "arc_deg", None)
            a.direction |= p.az_deg is not None or p.el_deg is not None
            a.width |= p.width is not None
            a.rear |= p.az_deg is not None and abs(p.az_deg) + (arc or 0.0) / 2.0 > KEY_REAR_DEG - ADH_AZ_DEG
            if p.motion is not None and p.motion.pattern != "static":
                a.motion = True
                base = (float(o.kf[0, 1]), float(o.kf[0, 2]), float(o.kf[0, 3]))
                own = expand(p.motion, base, request.section_bars)
                a.speed = max(a.speed, 1.05 * path_speed_deg_s(keyframes_array(own), request.section_s))
        for r in request.rules:
            if not _selects(r, s):
                continue
            if r["type"] in ("anchor", "zone"):
                a.direction = a.rear = True
            elif r["type"] == "width" and r.get("min", 0.0) > 0.0:
                a.width = True
            elif r["type"] == "motion" and r.get("allow", True) and "max_deg_per_s" in r:
                a.speed = max(a.speed, float(r["max_deg_per_s"]))
    return a


def _overridden(request: Request, stems: Sequence[Stem], p: Any, kf0: np.ndarray) -> set[str]:
    """Fields of ``p`` a hard rule decides for the object of ``stems`` (a hinted stem and the
    stems the budget grouped with it: a rule on any of them moves them all), not held against
    the scene.
    """
    out: set[str] = set() if request.has_height else {"el"}
    for r in request.rules:
        t = r["type"]
        if t == "mono_low_end" and any(s.cls in LOW_CLASSES or s.band[0] >= r.get("low_band_min", 0.6) for s in stems):
            out |= {"az", "el", "width", "motion"}
        if not any(_selects(r, s) for s in stems):
            continue
        if t == "anchor":
            out |= {"az", "el"} | ({"dist"} if "dist_m" in r else set())
        elif t == "max_elevation" and p.el_deg is not None and p.el_deg > r["max_deg"]:
            out.add("el")
        elif t == "zone":
            az = kf0[1] if p.az_deg is None else p.az_deg
            el = kf0[2] if p.el_deg is None else p.el_deg
            # a zone given as a box (no region name) always decides the direction
            if "region" not in r or bool(in_region(r["region"], az, el)) != (r["mode"] == "inside"):
                out |= {"az", "el"}
        elif t == "width" and p.width is not None and not r.get("min", 0.0) <= p.width <= r.get("max", 1.0):
            out.add("width")
        elif t == "motion" and not r.get("allow", True):
            out.add("motion")
    return out


def _az_error(d_az: float, el: float) -> float:
    """Great-circle degrees between two directions ``d_az`` degrees apart in azimuth, both at
    elevation ``el`` (an azimuth error shrinks towards the zenith, where azimuth means nothing).
    """
    return math.degrees(2.0 * math.asin(min(1.0, math.cos(math.radians(el)) * math.sin(math.radians(d_az) / 2.0))))


def _as_played(request: Request, motion: Motion, base: tuple[float, float, float]) -> str:
    """The pattern ``motion`` shows in this section and layout: an 8-bar orbit in a 4-bar
    section is a half circle (a pan), a rise or a fly-over in a flat layout is static or a pan.
    ``base`` is the object's first keyframe (degrees, metres); a distance pattern starts away
    from its home, so it is taken as asked.
    """
    if motion.pattern in ("approach", "recede"):
        return motion.pattern
    kf = keyframes_array(scene_keyframes(motion, base, request.section_bars, has_height=request.has_height))
    return detect_motion(kf, request.section_bars).pattern


def _adherence(request: Request, objs: list[_Obj], hints: Mapping[str, Any]) -> tuple[float, tuple[str, ...]]:
    """Share of the stated hint fields the scene does, and what it missed."""
    host = {s.id: o for o in objs for s in o.stems}
    done = asked = 0
    issues: list[str] = []

    def judge(ok: bool, what: str) -> None:
        nonlocal done, asked
        asked += 1
        done += ok
        if not ok:
            issues.append(what)

    for s in request.stems:
        p, o = hints.get(s.id), host.get(s.id)
        if p is None or o is None:
            continue
        az, el, dist = (float(x) for x in o.kf[0, 1:])
        skip = _overridden(request, o.stems, p, o.kf[0])
        arc = getattr(p, "arc_deg", None)
        if p.az_deg is not None and "az" not in skip:
            d = abs(wrap_az(az - p.az_deg))
            if arc is not None and abs(arc - 180.0) < 1e-6 and abs(abs(p.az_deg) - 90.0) < 1e-6:
                d = min(d, abs(wrap_az(az + p.az_deg)))  # "each side": a mirrored pair at +-90 (phrase table)
            elif arc is not None:
                d = max(0.0, d - arc / 2.0)  # anywhere on the group's arc
            err = _az_error(d, el)
            judge(err <= ADH_AZ_DEG, f"{s.id}: asked az {p.az_deg:+.0f}, is {az:+.0f}")
        # with a vertical or depth move asked too, the asked value is where the path passes
        # ("up high, rising": it rises to up high), so the closest keyframe is judged
        moves = p.motion.pattern if p.motion is not None else ""
        if p.el_deg is not None and "el" not in skip:
            el_at = float(o.kf[np.argmin(np.abs(o.kf[:, 2] - p.el_deg)), 2]) if moves in ("rise", "fall") else el
            judge(abs(el_at - p.el_deg) <= ADH_EL_DEG, f"{s.id}: asked el {p.el_deg:+.0f}, is {el_at:+.0f}")
        if p.dist_m is not None and "dist" not in skip:
            near = moves in ("approach", "recede")
            dist_at = float(o.kf[np.argmin(np.abs(np.log(o.kf[:, 3] / p.dist_m))), 3]) if near else dist
            ratio = max(dist_at / p.dist_m, p.dist_m / dist_at)
            judge(ratio <= ADH_DIST_RATIO, f"{s.id}: asked {p.dist_m:g} m, is {dist_at:g} m")
        if p.width is not None and "width" not in skip:
            judge(abs(o.width - p.width) <= ADH_WIDTH, f"{s.id}: asked width {p.width:g}, is {o.width:g}")
        if p.motion is not None and "motion" not in skip:
            got = detect_motion(o.kf, request.section_bars).pattern
            want = _as_played(request, p.motion, (az, el, dist))
            judge(
                got == want,
                f"{s.id}: asked {p.motion.pattern}"
                + (f" ({want} here)" if want != p.motion.pattern else "")
                + f", is {got}",
            )
        for region in getattr(p, "avoid", ()) or ():
            if region in REGIONS:
                inside = in_region(region, o.path[:, 0], o.path[:, 1], -EPS_DEG)
                judge(not bool(inside.any()), f"{s.id}: asked to avoid {region}, is there")
        max_width = getattr(p, "max_width", None)
        if max_width is not None and "width" not in skip:
            judge(o.width <= max_width + 1e-6, f"{s.id}: asked width <= {max_width:g}, is {o.width:g}")
    return (done / asked if asked else 1.0), tuple(issues)


# ----------------------------------------------------------------------------- the card
def _pair_hits(objs: list[_Obj]) -> list[tuple[int, int, float]]:
    """(i, j, closest angle in degrees) of every crowded same-band pair, i < j."""
    if len(objs) < 2:
        return []
    u = np.stack([o.u for o in objs])  # (n, T, 3)
    # The angle a pair stays within for an eighth of the section: masking needs time, so two
    # movers that cross for an instant (two fly-overs meeting at the zenith) are not stacked.
    k = -(-u.shape[1] // _MASKING_SHARE_DIV)
    dots = np.einsum("atk,btk->abt", u, u)
    closest = _angle_from_dot(-np.partition(-dots, k - 1, axis=2)[:, :, k - 1])
    band = np.array([o.band for o in objs])
    centred_low = np.array([o.low and o.off_front < LOW_CENTRE_DEG for o in objs])
    # kick and bass sharing the centre is by design, not crowding
    hit = (band[:, None] == band[None, :]) & (closest < CROWDED_DEG) & ~(centred_low[:, None] & centred_low[None, :])
    a_idx, b_idx = np.nonzero(np.triu(hit, k=1))
    return [(int(a), int(b), float(closest[a, b])) for a, b in zip(a_idx, b_idx, strict=True)]


def _pairs(objs: list[_Obj]) -> tuple[int, int, tuple[str, ...]]:
    """Stacked and crowded same-band pairs over the whole path, and their labels."""
    hits = _pair_hits(objs)
    names = tuple(f"{objs[a].id}~{objs[b].id} {deg:.1f} deg" for a, b, deg in hits)
    return sum(deg < STACKED_DEG for _, _, deg in hits), len(hits), names


def crowded_pairs(request: Request, scene: Mapping[str, Any] | Scene) -> list[tuple[str, str, float]]:
    """The crowded same-band pairs of ``scene`` (stacked ones included), closest first:
    (object id, object id, the angle in degrees they stay within for an eighth of the section).
    """
    objs = _objects(request, scene)
    return sorted(((objs[a].id, objs[b].id, deg) for a, b, deg in _pair_hits(objs)), key=lambda p: p[2])


def _share(mask: np.ndarray) -> float:
    """Mean of a boolean array; 0.0 when it is empty (a scene without objects)."""
    return float(np.mean(mask)) if mask.size else 0.0


def _front_part(section: str, front30: float, cover: float, zero: float) -> float:
    big = section in BIG_SECTIONS
    f_max, c_min = (0.55, 0.55) if big else (0.70, 0.40)
    f = 1.0 if front30 <= f_max else max(0.0, 1.0 - (front30 - f_max) / (1.0 - f_max))
    c = min(1.0, cover / c_min)
    z = 1.0 if zero <= 0.10 else max(0.0, 1.0 - (zero - 0.10) / 0.40)
    return (f + c + z) / 3.0


def _anchors(objs: list[_Obj], asks: list[_Asked]) -> tuple[tuple[str, ...], float]:
    """Anchor issues (lead, low end, key elements; see :class:`Card`) and the anchors sub-score:
    the share of anchored objects without an issue (1 when there are none).
    """
    issues: list[str] = []
    anchored = flawed = 0
    for o, a in zip(objs, asks, strict=True):
        before = len(issues)
        max_el, max_az = float(o.path[:, 1].max()), float(np.abs(o.path[:, 0]).max())
        if o.lead:
            if o.off_front > LEAD_DEG + 1e-6 and not a.direction:
                issues.append(f"lead {o.label} {o.off_front:.0f} deg from front (practice <= {LEAD_DEG:g})")
            if o.width > LEAD_WIDTH + 1e-6 and not a.width:
                issues.append(f"lead {o.label} width {o.width:g} (practice <= {LEAD_WIDTH:g})")
            if o.moving and not a.motion:
                issues.append(f"lead {o.label} moves")
        if o.anchor_low:
            if o.off_front > LOW_DEG + 1e-6 and not a.direction:
                issues.append(f"low {o.label} {o.off_front:.0f} deg from centre (practice <= {LOW_DEG:g})")
            if o.width > LOW_WIDTH + 1e-6 and not a.width:
                issues.append(f"low {o.label} width {o.width:g} (practice <= {LOW_WIDTH:g})")
            if max_el >= LOW_EL_DEG and not a.direction:
                issues.append(f"low {o.label} at el {max_el:.0f} (practice < {LOW_EL_DEG:g})")
            if o.moving and not a.motion:
                issues.append(f"low {o.label} moves")
        if o.key and max_az > KEY_REAR_DEG + 1e-6 and not a.rear:
            issues.append(f"key {o.label} at |az| {max_az:.0f} (practice <= {KEY_REAR_DEG:g} unless asked)")
        if o.lead or o.anchor_low or o.key:
            anchored += 1
            flawed += len(issues) > before
    return tuple(issues), (1.0 - flawed / anchored if anchored else 1.0)


def _motion(objs: list[_Obj], asks: list[_Asked], speeds: list[float]) -> tuple[tuple[str, ...], int, float]:
    """Motion issues, the number of key objects (lead, low end, kick, snare, bass) that move, and
    the motion sub-score (speed, key and sparing terms; see :class:`Card`).
    """
    over = [(o, s, a.speed) for o, s, a in zip(objs, speeds, asks, strict=True) if s > a.speed + 1e-6]
    issues = [f"{o.label} {s:.0f} deg/s (cap {cap:.0f})" for o, s, cap in over]
    keys = [(o, a) for o, a in zip(objs, asks, strict=True) if o.lead or o.anchor_low or o.key]
    unasked_keys = [o for o, a in keys if o.moving and not a.motion]
    issues += [f"key {o.label} moves unasked" for o in unasked_keys]
    unasked = sum(o.moving and not a.motion for o, a in zip(objs, asks, strict=True)) / max(len(objs), 1)
    part = (
        min((cap / s for _, s, cap in over), default=1.0)
        + (1.0 - len(unasked_keys) / len(keys) if keys else 1.0)
        + (1.0 if unasked <= 0.25 else 1.0 - 0.5 * (unasked - 0.25) / 0.75)
    ) / 3.0
    return tuple(issues), sum(o.moving for o, _ in keys), part


def critique(request: Request, scene: Mapping[str, Any] | Scene) -> Card:
    """Score ``scene`` (a schema-valid document or :class:`~gravity.scene.Scene`) for ``request``.

    Pure and deterministic: neither input is changed; the same inputs give the same card.

    Parameters
    ----------
    request : Request
        The request the scene answers (stems, hints, prompt, rules, section, tempo).
    scene : Mapping or Scene
        The scene; azimuth degrees (+ = left), elevation degrees, distance metres.

    Returns
    -------
    Card
        The scorecard; see :class:`Card` for every metric, its unit and its source.
    """
    objs = _objects(request, scene)
    n = len(objs)
    hints = _hints(request)
    asks = [_asked(request, hints, o) for o in objs]
    stacked, crowded, pair_issues = _pairs(objs)

    az = np.array([o.path[:, 0] for o in objs]).reshape(n, len(T_GRID))
    el = np.array([o.path[:, 1] for o in objs]).reshape(n, len(T_GRID))
    front30 = _share(np.abs(az) <= FRONT_DEG)
    rear = _share(np.abs(az) > REAR_DEG)
    height = _share(el >= HEIGHT_DEG)
    free = [o for o in objs if not o.low and not o.lead]
    zero = float(np.mean([abs(o.kf[0, 1]) < ZERO_AZ_DEG for o in free])) if free else 0.0

    near = _covered([_spread(o.u[:1], o.path[:1, 0], o.width) for o in objs])
    cover_static = float(np.mean(near))
    # motion adds only what the moving objects reach later (static ones are already counted)
    later = [_spread(o.u[1:], o.path[1:, 0], o.width) for o in objs if o.moving]
    cover_motion = float(np.mean(_covered(later, near))) if later else cover_static
    spread = max(0.0, 1.0 - float(np.linalg.norm(np.concatenate([o.u for o in objs]).mean(axis=0)))) if n else 0.0

    anchor_issues, anchor_part = _anchors(objs, asks)
    height_issues = tuple(
        f"low {o.label} at el {o.path[:, 1].max():.0f} (practice < {LOW_HEIGHT_DEG:g})"
        for o, a in zip(objs, asks, strict=True)
        if o.low and o.path[:, 1].max() >= LOW_HEIGHT_DEG and not a.direction
    )
    highs = [float(o.path[:, 1].mean()) for o in objs if o.band == "high"]
    lows = [float(o.path[:, 1].mean()) for o in objs if o.low]
    band_order = float(np.mean(highs) - np.mean(lows)) if highs and lows else 0.0
    n_low = sum(o.low for o in objs)
    depth = _spearman(np.array([o.path[:, 2].mean() for o in objs]), np.array([o.reverb for o in objs]))
    speeds = [path_speed_deg_s(o.kf, request.section_s) if o.moving else 0.0 for o in objs]
    motion_issues, key_moving, motion_part = _motion(objs, asks, speeds)
    adherence, adherence_issues = _adherence(request, objs, hints)

    # sub-scores (shapes in Card's docstring)
    parts = {
        "separation": 1.0 / (1.0 + stacked + 0.25 * (crowded - stacked)),
        "front": _front_part(request.section, front30, cover_static, zero) if n else 0.0,
        "anchors": anchor_part,
        "height": 0.8 * (1.0 - len(height_issues) / n_low if n_low else 1.0) + 0.2 * (band_order >= 0.0),
        "depth": min(1.0, max(0.0, 0.5 + depth)),
        "motion": motion_part,
        "adherence": adherence,
    }
    score = float(sum(WEIGHTS[k] * parts[k] for k in WEIGHTS))
    return Card(
        score=score,
        parts=tuple((k, float(parts[k])) for k in WEIGHTS),
        n_objects=n,
        stacked_pairs=stacked,
        crowded_pairs=crowded,
        pair_issues=pair_issues,
        front30_share=front30,
        zero_az_share=zero,
        coverage_static=cover_static,
        coverage_motion=cover_motion,
        spread_index=spread,
        rear_share=rear,
        height_share=height,
        mean_width=float(np.mean([o.width for o in objs])) if n else 0.0,
        anchors_ok=not anchor_issues,
        anchor_issues=anchor_issues,
        height_ok=not height_issues,
        height_issues=height_issues,
        height_band_order=band_order,
        depth_corr=depth,
        moving=sum(o.moving for o in objs),
        max_speed_deg_s=float(max(speeds, default=0.0)),
        key_moving=key_moving,
        motion_ok=not motion_issues,
        motion_issues=motion_issues,
        adherence=adherence,
        adherence_issues=adherence_issues,
    )
