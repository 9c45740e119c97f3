"""A picture of a spatial scene that a mixing engineer reads at a glance.

:func:`plot_scene` draws three panels on one figure:

* **Top view** - the listener's head in the centre, front UP on the page, left on the left
  (positive azimuth). Objects sit at their horizontal position (``dist_m * cos(el_deg)``) on a
  logarithmic radial scale, ``r = log2(1 + d)``, so 0.5 m and 20 m both read; rings are
  labelled in metres.
* **Elevation map** - azimuth across (left ``+180`` ... front ``0`` ... right ``-180``, LEFT on
  the left, as in the top view), elevation up the page: what is above and below, and where.
* **Info box** - layout, loudness target, room, timing and the constraints that were applied,
  with the colour legend (one colour per stem family).

Markers are sized by ``width`` (0 = point, 1 = widest) and labelled with the object id (and
the number of member stems of a grouped object). Motion paths are sampled through
:func:`gravity.motion.positions_at` - the one place positions over time are computed - and
drawn as lines with direction arrows and a hollow marker at ``t = 0``.

Conventions (as everywhere in Gravity): azimuth degrees, positive = left, 0 = front, wrapped
to (-180, 180]; elevation degrees, positive up; distance metres; motion ``t`` normalised
section time 0..1.

The figure is built with :class:`matplotlib.figure.Figure` and an Agg canvas: no pyplot, no
global backend switch, no display needed.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Ellipse, Polygon

from gravity.atomic import atomic_path
from gravity.motion import keyframes_array, positions_at, section_seconds, wrap_az
from gravity.vocab import FAMILIES, ROOM_PRESETS, family_of

__all__ = [
    "FIGSIZE_IN",
    "DPI",
    "SAVE_FORMATS",
    "FAMILY_COLORS",
    "PATH_SAMPLES",
    "radial_scale",
    "top_view_xy",
    "elevation_view_xy",
    "width_to_marker_area",
    "plot_scene",
    "save_figure",
]

logger = logging.getLogger(__name__)

#: Figure size in inches (width, height); with :data:`DPI` a PNG is 1600 x 900 pixels.
FIGSIZE_IN: tuple[float, float] = (16.0, 9.0)
#: Dots per inch of the figure and of saved raster files.
DPI: int = 100
#: File formats :func:`save_figure` writes, keyed by lower-case file extension.
SAVE_FORMATS: dict[str, str] = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
#: Samples per motion path, evenly spaced in normalised time 0..1 (more, at least 16 per
#: keyframe segment, for paths with many keyframes).
PATH_SAMPLES: int = 200

#: One colour per stem family (:data:`gravity.vocab.FAMILIES`), colour-blind-friendly-ish.
FAMILY_COLORS: dict[str, str] = {
    "vocal": "#d62728",
    "drums": "#1f5fbf",
    "bass": "#7b2cbf",
    "harmony": "#2a9d3a",
    "melody": "#f07f10",
    "texture": "#17a2b8",
    "other": "#7f7f7f",
}

_RING_CANDIDATES_M = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 50.0)
_MIN_OUTER_RING_M = 4.0
_HEAD_R = 0.17  # head icon radius in top-view plot units
_MOVE_TOL = 1e-6


# --------------------------------------------------------------------------- geometry


def radial_scale(dist_m: Any) -> Any:
    """Map a distance to the top view's radius: ``log2(1 + dist_m)``.

    Parameters
    ----------
    dist_m : float or array_like
        Distance in metres (>= 0).

    Returns
    -------
    float or np.ndarray
        Radius in plot units; 1 m -> 1, 3 m -> 2, 7 m -> 3, monotonic, 0 -> 0.
    """
    r = np.log2(1.0 + np.maximum(np.asarray(dist_m, dtype=float), 0.0))
    return float(r) if np.ndim(r) == 0 else r


def top_view_xy(az_deg: Any, el_deg: Any, dist_m: Any) -> tuple[Any, Any]:
    """Top-view page coordinates of a position (front up, left on the left).

    The horizontal distance ``dist_m * cos(el_deg)`` is put on the :func:`radial_scale`;
    ``x = -r sin(az)``, ``y = r cos(az)``: az = 0 is straight up, az = +90 (left) is on the
    left of the page (negative x), az = 180 straight down.

    Parameters
    ----------
    az_deg : float or array_like
        Azimuth in degrees, positive = left.
    el_deg : float or array_like
        Elevation in degrees, positive up.
    dist_m : float or array_like
        Distance from the listener in metres.

    Returns
    -------
    (x, y) : floats or np.ndarray
        Page coordinates in radial-scale units (broadcast shape of the inputs).
    """
    az = np.radians(np.asarray(az_deg, dtype=float))
    el = np.radians(np.asarray(el_deg, dtype=float))
    r = radial_scale(np.asarray(dist_m, dtype=float) * np.cos(el))
    x, y = -r * np.sin(az), r * np.cos(az)
    if np.ndim(x) == 0:
        return float(x), float(y)
    return x, y


def elevation_view_xy(az_deg: Any, el_deg: Any) -> tuple[Any, Any]:
    """Elevation-map data coordinates: ``(wrap_az(az_deg), el_deg)`` in degrees.

    The elevation map's x axis runs from +180 on the left to -180 on the right (inverted), so
    left (positive azimuth) is on the left of the page as in the top view.
    """
    x = wrap_az(az_deg)
    y = np.asarray(el_deg, dtype=float)
    if np.ndim(y) == 0:
        return float(x), float(y)
    return np.asarray(x, dtype=float), y


def width_to_marker_area(width: Any) -> Any:
    """Scatter marker area in points^2 for an object width 0..1 (diameter 7 pt .. 26 pt)."""
    w = np.clip(np.asarray(width, dtype=float), 0.0, 1.0)
    s = (7.0 + 19.0 * w) ** 2
    return float(s) if np.ndim(s) == 0 else s


# --------------------------------------------------------------------------- scene parsing


@dataclass(frozen=True)
class _Obj:
    id: str
    cls: str
    family: str
    az: float
    el: float
    dist: float
    width: float
    members: int  # number of member stems (1 for a plain stem)
    path: np.ndarray | None  # (PATH_SAMPLES, 3) az, el, dist when the object moves


def _parse_objects(scene: Mapping[str, Any]) -> list[_Obj]:
    out: list[_Obj] = []
    for i, o in enumerate(scene.get("objects") or []):
        try:
            oid = str(o["id"])
            az, el, dist = float(o["az_deg"]), float(o["el_deg"]), float(o["dist_m"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"scene object #{i} needs id, az_deg, el_deg and dist_m: {exc}") from exc
        cls = str(o.get("class", "other"))
        stems = o.get("stems") or []
        members = len(stems) if stems else 1
        path = None
        motion = o.get("motion") or []
        if motion:
            kf = keyframes_array(motion)
            # PATH_SAMPLES points; more for many keyframes (>= 16 per segment, e.g. fast orbits).
            t = np.linspace(0.0, 1.0, min(4096, max(PATH_SAMPLES, 16 * (len(kf) - 1) + 1)))
            p = np.asarray(positions_at(kf, t), dtype=float).reshape(-1, 3)
            if np.ptp(p, axis=0).max() > _MOVE_TOL:
                path = p
        out.append(
            _Obj(oid, cls, family_of(cls), float(wrap_az(az)), el, dist, float(o.get("width", 0.0)), members, path)
        )
    return out


def _label_text(o: _Obj, with_elevation: bool) -> str:
    s = o.id if o.members <= 1 else f"{o.id} ({o.members})"
    if with_elevation and abs(o.el) >= 5.0:
        s += f" {'↑' if o.el > 0 else '↓'}{abs(o.el):.0f}°"
    return s


# --------------------------------------------------------------------------- label placement


def _place_labels(
    fig: Figure,
    ax: Any,
    renderer: Any,
    xy: np.ndarray,
    ids: Sequence[str],
    texts: Sequence[str],
    colors: Sequence[str],
    marker_area: np.ndarray,
    fontsize: float,
    center: tuple[float, float] | None,
    extra_obstacles: Sequence[np.ndarray] = (),
    gid_prefix: str = "label",
) -> list[Any]:
    """Place one label per marker so labels overlap neither each other nor markers.

    Markers drawn at the same spot (within 1.5 px) share one label listing their ids; its
    gid is ``"<gid_prefix>:<id>[,<id>...]"``. Greedy placement: each label tries directions
    around its preferred one (away from ``center`` in data units, or up-right) at growing
    distances and takes the first free spot inside the axes, else the least-overlapping one.
    Labels placed away from their marker get a thin leader line.
    """
    if len(texts) == 0:
        return []
    px_per_pt = fig.dpi / 72.0
    all_pts = ax.transData.transform(xy)  # display pixels
    all_mr = np.sqrt(np.asarray(marker_area, dtype=float)) / 2.0 * px_per_pt  # radii, pixels
    mk = np.column_stack(
        [all_pts[:, 0] - all_mr, all_pts[:, 1] - all_mr, all_pts[:, 0] + all_mr, all_pts[:, 1] + all_mr]
    )
    obstacles: list[np.ndarray] = [mk] + [np.atleast_2d(b) for b in extra_obstacles if len(b)]
    # Coincident markers -> one shared label.
    clusters: list[list[int]] = []
    for i, p in enumerate(all_pts):
        for cl in clusters:
            if np.hypot(*(all_pts[cl[0]] - p)) < 1.5:
                cl.append(i)
                break
        else:
            clusters.append([i])
    reps = [cl[0] for cl in clusters]
    pts = all_pts[reps]
    mr = np.array([all_mr[cl].max() for cl in clusters])
    xy = np.asarray(xy, dtype=float)[reps]
    colors = [colors[r] for r in reps]
    merged = []
    for cl in clusters:
        items = [texts[k] for k in cl]
        if len(items) > 12:
            items = items[:11] + [f"+{len(items) - 11} more"]
        merged.append(",\n".join(", ".join(items[k : k + 3]) for k in range(0, len(items), 3)))
    texts = merged
    ids = [",".join(ids[k] for k in cl) for cl in clusters]
    n = len(texts)
    ab = ax.get_window_extent(renderer)
    anns = []
    sizes = []
    for i in range(n):
        ann = ax.annotate(
            texts[i],
            xy=tuple(xy[i]),
            xytext=(0, 0),
            textcoords="offset points",
            ha="center",
            va="center",
            fontsize=fontsize,
            color="#202020",
            zorder=6,
            annotation_clip=False,
            bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none", "alpha": 0.7},
        )
        ann.set_gid(f"{gid_prefix}:{ids[i]}")
        bb = ann.get_window_extent(renderer)
        sizes.append((bb.width + 2.0, bb.height + 1.0))
        anns.append(ann)
    if center is not None:
        c = ax.transData.transform(center)
        pref = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
        at_c = np.hypot(pts[:, 0] - c[0], pts[:, 1] - c[1]) < 1.0
        pref[at_c] = np.pi / 2
    else:
        pref = np.full(n, np.pi / 6)
    dtheta = np.radians([0, 30, -30, 60, -60, 90, -90, 120, -120, 150, -150, 180])
    gap = 2.0 * px_per_pt
    step = 0.9 * fontsize * px_per_pt
    placed = np.zeros((0, 4))
    # Crowded labels first (most neighbours within 40 px), so they get the best spots.
    d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    order = np.argsort(-(d2 < (40 * px_per_pt) ** 2).sum(1), kind="stable")
    for i in order:
        w, h = sizes[i]
        best, best_cost = None, math.inf
        for ring in range(14):
            for dt in dtheta:
                th = pref[i] + dt
                ux, uy = math.cos(th), math.sin(th)
                r = mr[i] + gap + ring * step
                cx = pts[i, 0] + ux * (r + w / 2.0)
                cy = pts[i, 1] + uy * (r + h / 2.0)
                box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
                cost = 0.0
                for obs in obstacles + [placed]:
                    if len(obs):
                        ox = np.minimum(box[2], obs[:, 2]) - np.maximum(box[0], obs[:, 0])
                        oy = np.minimum(box[3], obs[:, 3]) - np.maximum(box[1], obs[:, 1])
                        cost += float((np.clip(ox, 0, None) * np.clip(oy, 0, None)).sum())
                outside = (
                    max(0.0, ab.x0 - box[0])
                    + max(0.0, box[2] - ab.x1)
                    + max(0.0, ab.y0 - box[1])
                    + max(0.0, box[3] - ab.y1)
                )
                cost += outside * h * 4.0
                cost += 1e-3 * (ring * step + abs(dt) * 3.0)  # prefer near and preferred side
                if cost < best_cost:
                    best, best_cost = (box, ring, cx, cy), cost
            if best is not None and best_cost < 1.0:
                break
        assert best is not None
        box, ring, cx, cy = best
        placed = np.vstack([placed, box])
        off = ((cx - pts[i, 0]) / px_per_pt, (cy - pts[i, 1]) / px_per_pt)
        anns[i].xyann = off
        if ring >= 1 or abs(cx - pts[i, 0]) > w / 2 + mr[i] + 3 * gap:
            anns[i].arrow_patch = None
            lead = ax.annotate(
                "",
                xy=tuple(xy[i]),
                xytext=off,
                textcoords="offset points",
                zorder=5,
                annotation_clip=False,
                arrowprops={
                    "arrowstyle": "-",
                    "lw": 0.5,
                    "color": colors[i],
                    "alpha": 0.8,
                    "shrinkA": 0,
                    "shrinkB": mr[i] / px_per_pt,
                },
            )
            lead.set_gid(f"{gid_prefix}-leader:{ids[i]}")
    return anns


# --------------------------------------------------------------------------- drawing helpers


def _arrow_indices(path_xy: np.ndarray, fracs: Sequence[float]) -> list[int]:
    seg = np.hypot(*np.diff(path_xy, axis=0).T)
    seg = np.nan_to_num(seg)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    if cum[-1] <= 0:
        return []
    idx = []
    for f in fracs:
        i = int(np.searchsorted(cum, f * cum[-1]))
        idx.append(int(np.clip(i, 1, len(path_xy) - 1)))
    return idx


def _draw_path(ax: Any, x: np.ndarray, y: np.ndarray, color: str, gid: str, n_arrows: int, alpha: float = 0.85) -> None:
    ax.plot(x, y, color=color, lw=1.6, alpha=alpha, zorder=3, gid=gid, solid_capstyle="round")
    ax.plot([x[0]], [y[0]], marker="o", ms=6, mfc="white", mec=color, mew=1.5, ls="none", zorder=4, gid=f"{gid}:t0")
    xy = np.column_stack([x, y])
    fracs = [0.5] if n_arrows == 1 else [(k + 0.5) / n_arrows for k in range(n_arrows)]
    for i in _arrow_indices(xy, fracs):
        j = max(0, i - 3)
        a, b = xy[j], xy[i]
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))) or np.allclose(a, b):
            continue
        ax.annotate(
            "",
            xy=tuple(b),
            xytext=tuple(a),
            zorder=4,
            arrowprops={
                "arrowstyle": "-|>,head_length=0.7,head_width=0.35",
                "lw": 1.4,
                "color": color,
                "alpha": min(1.0, alpha + 0.1),
                "shrinkA": 0,
                "shrinkB": 0,
                "mutation_scale": 12,
            },
        )


def _path_alpha(objs: Sequence[_Obj]) -> float:
    """Line opacity: fainter when many paths overlap."""
    n = sum(o.path is not None for o in objs)
    return float(np.clip(0.85 * math.sqrt(8.0 / max(n, 1)), 0.3, 0.85))


def _n_arrows(path: np.ndarray) -> int:
    """1 arrow for short moves, 2 for up to ~a turn, 3 for longer (spread over the turns)."""
    travel = float(np.abs(np.diff(np.unwrap(path[:, 0], period=360.0))).sum())
    return 1 if travel < 120.0 else 2 if travel < 300.0 else 3


def _break_wraps(az: np.ndarray, el: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Insert NaN where the azimuth wraps across +-180 so the line does not cross the map."""
    jumps = np.nonzero(np.abs(np.diff(az)) > 180.0)[0]
    if len(jumps) == 0:
        return az, el
    return np.insert(az, jumps + 1, np.nan), np.insert(el, jumps + 1, np.nan)


def _draw_head(ax: Any) -> None:
    r = _HEAD_R
    ax.add_patch(
        Polygon(
            [(-0.32 * r, 0.9 * r), (0.0, 1.45 * r), (0.32 * r, 0.9 * r)],
            closed=True,
            fc="#f1d5b8",
            ec="#404040",
            lw=1.0,
            zorder=2.2,
        )
    )
    for side in (-1, 1):
        ax.add_patch(Ellipse((side * r, 0.0), 0.28 * r, 0.6 * r, fc="#f1d5b8", ec="#404040", lw=1.0, zorder=2.2))
    ax.add_patch(Circle((0, 0), r, fc="#f1d5b8", ec="#404040", lw=1.2, zorder=2.4))
    ax.text(-r * 1.55, 0, "L", ha="right", va="center", fontsize=8, weight="bold", zorder=2.4)
    ax.text(r * 1.55, 0, "R", ha="left", va="center", fontsize=8, weight="bold", zorder=2.4)


def _rings_for(objs: Sequence[_Obj]) -> list[float]:
    horiz = [o.dist * math.cos(math.radians(o.el)) for o in objs]
    for o in objs:
        if o.path is not None:
            horiz.extend((o.path[:, 2] * np.cos(np.radians(o.path[:, 1]))).tolist())
    far = max([_MIN_OUTER_RING_M, *horiz])
    rings = []
    for d in _RING_CANDIDATES_M:
        rings.append(d)
        if d >= far:
            break
    return rings


def _label_fontsize(n: int) -> float:
    return 8.5 if n <= 12 else 7.5 if n <= 24 else 6.5 if n <= 48 else 5.5


# --------------------------------------------------------------------------- panels


def _top_view(fig: Figure, ax: Any, renderer: Any, objs: Sequence[_Obj], fs: float) -> None:
    rings = _rings_for(objs)
    r_out = radial_scale(rings[-1])
    lim = r_out * 1.13
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.apply_aspect()  # final box now: labels are placed in display pixels
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    ax.set_title("Top view (listener facing up)", fontsize=12, weight="bold", loc="left")
    ax.set_xlabel(
        "LEFT = +azimuth  ◀   ▶  RIGHT = −azimuth\nradius ∝ log₂(1 + horizontal distance d·cos el); rings in metres",
        fontsize=9,
        color="#303030",
    )
    ax.set_label("top_view")
    th = np.linspace(0, 2 * np.pi, 361)
    ring_labels = []
    for d in rings:
        r = radial_scale(d)
        ax.plot(r * np.cos(th), r * np.sin(th), color="#b0b0b0", lw=1.1 if d == rings[-1] else 0.7, zorder=1)
        lx, ly = top_view_xy(-135.0, 0.0, d)  # label rings at back-right (least busy)
        ring_labels.append(
            ax.text(
                lx,
                ly,
                f"{d:g} m",
                fontsize=7.5,
                color="#707070",
                ha="center",
                va="center",
                zorder=1,
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none"},
            )
        )
    for spoke in range(-150, 181, 30):  # degrees
        x0, y0 = top_view_xy(spoke, 0.0, 0.35)
        x1, y1 = top_view_xy(spoke, 0.0, rings[-1])
        major = spoke % 90 == 0
        ax.plot(
            [x0, x1],
            [y0, y1],
            color="#c8c8c8" if major else "#e2e2e2",
            lw=0.9 if major else 0.6,
            ls="-" if major else "--",
            zorder=0,
        )
        name = {0: "FRONT 0°", 90: "L +90°", -90: "R −90°", 180: "BACK 180°"}.get(
            spoke, f"{spoke:+d}°".replace("-", "−")
        )
        r_lab = r_out * 1.065
        tx, ty = -r_lab * math.sin(math.radians(spoke)), r_lab * math.cos(math.radians(spoke))
        ax.text(
            tx,
            ty,
            name,
            ha="center",
            va="center",
            fontsize=9 if major else 7.5,
            weight="bold" if major else "normal",
            color="#303030" if major else "#808080",
            rotation=0,
        )
    _draw_head(ax)
    if not objs:
        ax.text(
            0, -radial_scale(0.5), "no objects", ha="center", va="top", fontsize=11, color="#808080", style="italic"
        )
        return
    for o in objs:
        if o.path is not None:
            x, y = top_view_xy(o.path[:, 0], o.path[:, 1], o.path[:, 2])
            _draw_path(
                ax, x, y, FAMILY_COLORS[o.family], f"path:{o.id}", n_arrows=_n_arrows(o.path), alpha=_path_alpha(objs)
            )
    az = np.array([o.az for o in objs])
    el = np.array([o.el for o in objs])
    dist = np.array([o.dist for o in objs])
    x, y = top_view_xy(az, el, dist)
    xy = np.column_stack([x, y])
    area = width_to_marker_area([o.width for o in objs])
    colors = [FAMILY_COLORS[o.family] for o in objs]
    sc = ax.scatter(xy[:, 0], xy[:, 1], s=area, c=colors, edgecolors="#202020", linewidths=0.8, alpha=0.85, zorder=5)
    sc.set_gid("objects")
    head_px = ax.transData.transform([[-_HEAD_R * 1.9, -_HEAD_R * 1.1], [_HEAD_R * 1.9, _HEAD_R * 1.5]])
    rl = [t.get_window_extent(renderer) for t in ring_labels]
    rl_px = np.array([[b.x0, b.y0, b.x1, b.y1] for b in rl])
    _place_labels(
        fig,
        ax,
        renderer,
        xy,
        [o.id for o in objs],
        [_label_text(o, True) for o in objs],
        colors,
        area,
        fs,
        center=(0.0, 0.0),
        extra_obstacles=[head_px.reshape(-1)[None, :], rl_px],
    )


def _elevation_view(fig: Figure, ax: Any, renderer: Any, objs: Sequence[_Obj], fs: float) -> None:
    ax.set_xlim(180, -180)
    ax.set_ylim(-90, 90)
    ax.set_label("elevation_view")
    ax.set_title("Elevation map (height vs direction)", fontsize=12, weight="bold", loc="left")
    ax.set_xticks(range(180, -181, -45))
    ax.set_xticklabels(
        ["BACK\n+180°", "+135°", "LEFT\n+90°", "+45°", "FRONT\n0°", "−45°", "RIGHT\n−90°", "−135°", "BACK\n−180°"],
        fontsize=8,
    )
    ax.set_yticks(range(-90, 91, 30))
    ax.set_yticklabels(["−90°", "−60°", "−30°", "0°", "+30°", "+60°", "+90°"], fontsize=8)
    ax.set_xlabel("azimuth (°), LEFT = + on the left, as in the top view", fontsize=9)
    ax.set_ylabel("elevation (°), + up", fontsize=9)
    ax.grid(True, color="#e4e4e4", lw=0.6, zorder=0)
    ax.axhspan(-90, 0, color="#f4f1ea", zorder=0)
    ax.axhline(0, color="#909090", lw=1.0, zorder=1)
    for a in (90, 0, -90):
        ax.axvline(a, color="#c0c0c0", lw=0.9, zorder=1)
    ax.text(178, 86, "above", fontsize=8, color="#909090", va="top", ha="left")
    ax.text(178, -86, "below", fontsize=8, color="#909090", va="bottom", ha="left")
    ax.text(-178, 1.5, "ear level", fontsize=8, color="#707070", va="bottom", ha="right")
    if not objs:
        ax.text(0, 45, "no objects", ha="center", va="center", fontsize=11, color="#808080", style="italic")
        return
    for o in objs:
        if o.path is not None:
            x, y = _break_wraps(*elevation_view_xy(o.path[:, 0], o.path[:, 1]))
            _draw_path(
                ax, x, y, FAMILY_COLORS[o.family], f"epath:{o.id}", n_arrows=_n_arrows(o.path), alpha=_path_alpha(objs)
            )
    x, y = elevation_view_xy([o.az for o in objs], [o.el for o in objs])
    xy = np.column_stack([x, y])
    area = width_to_marker_area([o.width for o in objs])
    colors = [FAMILY_COLORS[o.family] for o in objs]
    sc = ax.scatter(
        xy[:, 0], xy[:, 1], s=area, c=colors, edgecolors="#202020", linewidths=0.8, alpha=0.85, zorder=5, clip_on=False
    )
    sc.set_gid("objects")
    _place_labels(
        fig,
        ax,
        renderer,
        xy,
        [o.id for o in objs],
        [_label_text(o, False) for o in objs],
        colors,
        area,
        fs,
        center=None,
        gid_prefix="elabel",
    )


def _info_text(scene: Mapping[str, Any], objs: Sequence[_Obj], max_constraints: int) -> str:
    bed = scene.get("bed") or {}
    lines = [f"layout   {bed.get('layout', '?')}"]
    if "loudness_target_lufs" in bed:
        lines.append(f"loudness {float(bed['loudness_target_lufs']):g} LUFS")
    room = bed.get("room_preset")
    if room:
        rp = ROOM_PRESETS.get(room)
        lines.append(f"room     {room}" + (f" (RT60 {rp.rt60_s:g} s)" if rp else ""))
    timing = scene.get("timing") or {}
    if timing:
        parts = []
        if "bpm" in timing:
            parts.append(f"{float(timing['bpm']):g} bpm")
        ts = str(timing.get("time_signature", "4/4"))
        if "time_signature" in timing:
            parts.append(ts)
        if "section_bars" in timing:
            parts.append(f"{int(timing['section_bars'])} bars")
        if "bpm" in timing and "section_bars" in timing:
            try:
                secs = section_seconds(float(timing["bpm"]), ts, int(timing["section_bars"]))
                parts.append(f"= {secs:.1f} s")
            except (ValueError, ZeroDivisionError):
                pass
        lines.append("timing   " + " ".join(parts))
        if "section" in timing:
            lines.append(f"section  {timing['section']}")
    else:
        lines.append("timing   (none)")
    n_moving = sum(o.path is not None for o in objs)
    n_stems = sum(o.members for o in objs)
    lines.append(f"objects  {len(objs)} ({n_stems} stem{'' if n_stems == 1 else 's'}, {n_moving} moving)")
    cons = [str(c) for c in scene.get("constraints_applied") or []]
    lines.append("")
    lines.append(f"constraints applied ({len(cons)}):" if cons else "constraints applied: none")
    shown = cons if len(cons) <= max_constraints else cons[: max_constraints - 1]
    for c in shown:
        lines.append("  • " + (c if len(c) <= 44 else c[:43] + "…"))
    if len(shown) < len(cons):
        lines.append(f"  … +{len(cons) - len(shown)} more")
    return "\n".join(lines)


def _legend(ax: Any, objs: Sequence[_Obj]) -> None:
    handles: list[Any] = []
    fams_present = [f for f in FAMILIES if any(o.family == f for o in objs)]
    for fam in fams_present:
        classes = sorted({o.cls for o in objs if o.family == fam})
        cl = ", ".join(classes)
        if len(cl) > 38:
            cl = cl[:37] + "…"
        handles.append(
            Line2D(
                [],
                [],
                ls="none",
                marker="o",
                ms=9,
                mfc=FAMILY_COLORS[fam],
                mec="#202020",
                alpha=0.85,
                label=f"{fam}: {cl}",
            )
        )
    if not handles:
        handles.append(Line2D([], [], ls="none", marker="o", ms=9, mfc="white", mec="#c0c0c0", label="(no objects)"))
    leg = ax.legend(
        handles=handles,
        loc="upper left",
        fontsize=8.5,
        frameon=True,
        title="colour = stem family (classes present)",
        title_fontsize=8.5,
        labelspacing=0.7,
        borderpad=0.7,
        handletextpad=0.6,
        alignment="left",
    )
    leg.get_frame().set_edgecolor("#c0c0c0")
    ax.add_artist(leg)

    def wkey(w: float) -> Line2D:
        return Line2D(
            [],
            [],
            ls="none",
            marker="o",
            ms=math.sqrt(width_to_marker_area(w)),
            mfc="#d0d0d0",
            mec="#606060",
            label=f"width {w:g}",
        )

    # Column-major with ncol=3: the first row is the width scale.
    key: list[Any] = [
        wkey(0.0),
        Line2D([], [], color="#505050", lw=1.6, label="motion (arrow = direction)"),
        Line2D([], [], ls="none", marker="$↑$", ms=8, color="#303030", label="elevation (°)"),
        wkey(0.5),
        Line2D([], [], ls="none", marker="o", ms=6, mfc="white", mec="#505050", mew=1.5, label="position at t = 0"),
        wkey(1.0),
        Line2D([], [], ls="none", marker="$(n)$", ms=12, color="#303030", label="n stems (group)"),
    ]
    leg2 = ax.legend(
        handles=key,
        loc="lower left",
        fontsize=8,
        frameon=True,
        ncol=3,
        title="key",
        title_fontsize=8.5,
        borderpad=0.7,
        columnspacing=1.4,
        handletextpad=0.6,
        alignment="left",
        labelspacing=1.1,
    )
    leg2.get_frame().set_edgecolor("#c0c0c0")


# --------------------------------------------------------------------------- public API


def plot_scene(
    scene: Mapping[str, Any], path: str | os.PathLike[str] | None = None, *, title: str | None = None
) -> Figure:
    """Draw a scene: top view, elevation map and an info box; optionally save it.

    Parameters
    ----------
    scene : Mapping
        A Gravity scene (``schemas/scene.schema.json``): ``bed``, optional ``timing``,
        ``objects`` with ``az_deg`` (degrees, positive = left), ``el_deg`` (degrees, positive
        up), ``dist_m`` (metres), ``width`` (0..1), optional ``stems`` and ``motion``
        keyframes (``t`` normalised 0..1), and optional ``constraints_applied``.
    path : str or os.PathLike, optional
        Where to save the picture; format from the extension (``.png``, ``.svg``, ``.pdf``;
        none = PNG). Written atomically, see :func:`save_figure`.
    title : str, optional
        Figure title; default names the section and object count.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (Agg canvas attached), :data:`FIGSIZE_IN` inches at :data:`DPI` dpi.
        Axes are labelled ``"top_view"``, ``"elevation_view"`` and ``"info"``; the object
        markers of each view are the scatter collection with gid ``"objects"`` and motion
        paths are lines with gid ``"path:<id>"`` (top view) / ``"epath:<id>"`` (elevation).

    Raises
    ------
    ValueError
        An object lacks ``id``/``az_deg``/``el_deg``/``dist_m``, or the file extension is
        not supported.
    FileNotFoundError
        The directory of ``path`` does not exist (nothing is written).
    """
    objs = _parse_objects(scene)
    logger.debug("plotting scene with %d objects (%d moving)", len(objs), sum(o.path is not None for o in objs))
    fig = Figure(figsize=FIGSIZE_IN, dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # the Agg canvas set just above has it
    if title is None:
        section = (scene.get("timing") or {}).get("section")
        title = (
            "Gravity scene"
            + (f" — {section}" if section else "")
            + f" · {len(objs)} object{'' if len(objs) == 1 else 's'}"
        )
    fig.suptitle(title, fontsize=15, weight="bold", x=0.02, ha="left", y=0.975)
    gs = fig.add_gridspec(
        2,
        2,
        width_ratios=[1.0, 1.08],
        height_ratios=[1.25, 1.0],
        left=0.02,
        right=0.975,
        top=0.92,
        bottom=0.06,
        wspace=0.1,
        hspace=0.3,
    )
    ax_top = fig.add_subplot(gs[:, 0])
    ax_el = fig.add_subplot(gs[0, 1])
    sub = gs[1, 1].subgridspec(1, 2, width_ratios=[1.3, 1.0], wspace=0.04)
    ax_leg = fig.add_subplot(sub[0, 0])
    ax_info = fig.add_subplot(sub[0, 1])
    fs = _label_fontsize(len(objs))

    _top_view(fig, ax_top, renderer, objs, fs)
    _elevation_view(fig, ax_el, renderer, objs, fs)

    for ax in (ax_leg, ax_info):
        ax.set_axis_off()
    ax_leg.set_label("legend")
    ax_info.set_label("info")
    _legend(ax_leg, objs)
    ax_info.text(
        0.0,
        1.0,
        _info_text(scene, objs, max_constraints=14),
        ha="left",
        va="top",
        family="monospace",
        fontsize=8.5,
        transform=ax_info.transAxes,
        bbox={"boxstyle": "round,pad=0.6", "fc": "#f7f7f7", "ec": "#c0c0c0"},
    )
    if path is not None:
        save_figure(fig, path)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Save a figure atomically: temp file in the target directory, then :func:`os.replace`.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure; saved at its own dpi (:data:`DPI` for :func:`plot_scene` figures).
    path : str or os.PathLike
        Target file; format from the extension (:data:`SAVE_FORMATS`; no extension = PNG).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    FileNotFoundError
        The target directory does not exist; nothing is written.
    ValueError
        Unsupported extension.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext and ext not in SAVE_FORMATS:
        raise ValueError(f"cannot save a scene plot as {ext!r}; use one of {sorted(SAVE_FORMATS)}")
    fmt = SAVE_FORMATS.get(ext, "png")
    with atomic_path(p) as tmp:
        fig.savefig(tmp, format=fmt, dpi=fig.dpi, facecolor=fig.get_facecolor())
    logger.info("wrote scene plot %s (%s)", p, fmt)
    return p
