"""A picture of a spatial scene that a mixing engineer reads at a glance.

:func:`plot_scene` lays out three panels on one 1600 x 900 pixel page:

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

The picture is a *display list* (:class:`Plot`: lines, circles, ellipses, polygons, boxes and
texts in page pixels, y down) built by pure geometry and layout code; two small back ends
draw it: Pillow for PNG (and a raster PDF), plain text for SVG. Text is measured with the
same fonts the raster uses (DejaVu, shipped in ``gravity/fonts``), so labels are placed
where they will be drawn. No matplotlib: ``gravity plot`` starts and draws in a fraction of
a second.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import unicodedata
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence, Union

import numpy as np

from gravity.atomic import atomic_path
from gravity.motion import keyframes_array, positions_at, section_seconds, wrap_az
from gravity.vocab import FAMILIES, ROOM_PRESETS, family_of

if TYPE_CHECKING:  # Pillow is imported when something is measured or drawn, not on import
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFont

__all__ = [
    "FIGSIZE_IN",
    "DPI",
    "SIZE_PX",
    "SUPERSAMPLE",
    "SAVE_FORMATS",
    "FAMILY_COLORS",
    "PATH_SAMPLES",
    "FONT_DIR",
    "radial_scale",
    "top_view_xy",
    "elevation_view_xy",
    "width_to_marker_area",
    "Line",
    "Circle",
    "Ellipse",
    "Polygon",
    "Box",
    "Text",
    "Item",
    "Panel",
    "Plot",
    "plot_scene",
]

logger = logging.getLogger(__name__)

#: Page size in inches (width, height); with :data:`DPI` the page is :data:`SIZE_PX` pixels.
FIGSIZE_IN: tuple[float, float] = (16.0, 9.0)
#: Dots per inch: font sizes and line widths are given in points (1/72 inch) at this density.
DPI: int = 100
#: Page size in pixels (width, height).
SIZE_PX: tuple[int, int] = (round(FIGSIZE_IN[0] * DPI), round(FIGSIZE_IN[1] * DPI))
#: The raster is drawn this many times larger and reduced with a box filter: antialiasing.
#: 2 looks as smooth as 3 at this size (lines >= 1 px, text from hinted fonts) for half the cost.
SUPERSAMPLE: int = 2
#: File formats :meth:`Plot.save` writes, keyed by lower-case file extension.
SAVE_FORMATS: dict[str, str] = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
#: Samples per motion path, evenly spaced in normalised time 0..1 (more, at least 16 per
#: keyframe segment, for paths with many keyframes).
PATH_SAMPLES: int = 200
#: Where the shipped fonts live (DejaVu subsets, see the README there).
FONT_DIR: Path = Path(__file__).resolve().parent / "fonts"

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

_PT = DPI / 72.0  # pixels per point
_FONT_FILES = {"sans": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf", "mono": "DejaVuSansMono.ttf"}
_LINE_SPACING = 1.4  # baseline-to-baseline distance in font sizes (matplotlib: 1.2 x the font's line height)
_LABEL_MAX_CHARS = 32  # longer ids are cut with an ellipsis on the page (the gid keeps them whole)

_RING_CANDIDATES_M = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 50.0)
_MIN_OUTER_RING_M = 4.0
_HEAD_R = 0.17  # head icon radius in top-view plot units
_MOVE_TOL = 1e-6

# Panel boxes in page pixels (x0, y0, x1, y1; y down): the grid the figure has always had
# (top view square on the left; elevation map top right; legend and info box below it).
_TOP_BOX = (32.0, 109.2, 731.6, 808.8)
_ELEV_BOX = (804.4, 72.0, 1560.0, 445.9)
_LEGEND_BOX = (804.4, 546.9, 1223.1, 846.0)
_INFO_BOX = (1237.9, 546.9, 1560.0, 846.0)

Point = tuple[float, float]


# --------------------------------------------------------------------------- display list


@dataclass(frozen=True)
class Line:
    """A polyline; a NaN point breaks it (no segment drawn across). Width in pixels."""

    points: tuple[Point, ...]
    color: str
    width: float = 1.0
    alpha: float = 1.0
    dash: tuple[float, float] | None = None  # (on, off) pixels
    gid: str | None = None
    panel: str = ""


@dataclass(frozen=True)
class Circle:
    """A disc of ``radius`` pixels; ``fill``/``edge`` ``None`` for none."""

    center: Point
    radius: float
    fill: str | None
    edge: str | None = None
    edge_width: float = 1.0
    alpha: float = 1.0
    gid: str | None = None
    panel: str = ""


@dataclass(frozen=True)
class Ellipse:
    """An axis-aligned ellipse with half-axes ``rx``, ``ry`` in pixels."""

    center: Point
    rx: float
    ry: float
    fill: str | None
    edge: str | None = None
    edge_width: float = 1.0
    alpha: float = 1.0
    gid: str | None = None
    panel: str = ""


@dataclass(frozen=True)
class Polygon:
    """A closed polygon (pixels)."""

    points: tuple[Point, ...]
    fill: str | None
    edge: str | None = None
    edge_width: float = 1.0
    alpha: float = 1.0
    gid: str | None = None
    panel: str = ""


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle (pixels), corners rounded by ``radius`` pixels."""

    x0: float
    y0: float
    x1: float
    y1: float
    fill: str | None
    edge: str | None = None
    edge_width: float = 1.0
    radius: float = 0.0
    alpha: float = 1.0
    gid: str | None = None
    panel: str = ""


@dataclass(frozen=True)
class Text:
    r"""Text at ``(x, y)`` pixels; ``size`` in pixels; ``role`` is ``sans``, ``bold`` or ``mono``.

    ``ha`` (left, center, right) and ``va`` (top, center, baseline, bottom) say which point of
    the text block is at ``(x, y)``; lines are split at ``\\n``. ``rotation`` 90 turns the block
    counter-clockwise about ``(x, y)`` (used for the elevation map's y label only).
    """

    x: float
    y: float
    text: str
    size: float
    role: str = "sans"
    color: str = "#000000"
    ha: str = "left"
    va: str = "baseline"
    rotation: int = 0
    gid: str | None = None
    panel: str = ""


Item = Union[Line, Circle, Ellipse, Polygon, Box, Text]


@dataclass(frozen=True)
class Panel:
    """A panel's box on the page (pixels, y down) and its data limits.

    ``to_px`` maps data coordinates (top view: radial-scale units; elevation map: degrees)
    to page pixels; ``xlim``/``ylim`` may be inverted (the elevation map runs +180 .. -180).
    """

    name: str
    box: tuple[float, float, float, float]
    xlim: tuple[float, float] = (0.0, 1.0)
    ylim: tuple[float, float] = (0.0, 1.0)

    def to_px(self, x: Any, y: Any) -> tuple[Any, Any]:
        """Data ``(x, y)`` -> page pixels ``(px, py)`` (float or arrays, NaN stays NaN)."""
        x0, y0, x1, y1 = self.box
        px = x0 + (np.asarray(x, dtype=float) - self.xlim[0]) / (self.xlim[1] - self.xlim[0]) * (x1 - x0)
        py = y1 - (np.asarray(y, dtype=float) - self.ylim[0]) / (self.ylim[1] - self.ylim[0]) * (y1 - y0)
        if np.ndim(px) == 0:
            return float(px), float(py)
        return px, py


@dataclass(frozen=True)
class Plot:
    """A drawn scene: the display list and how to write it.

    Attributes
    ----------
    items : tuple of Item
        In paint order (later over earlier), page pixels with y down.
    panels : dict of str to Panel
        ``"top_view"``, ``"elevation_view"``, ``"legend"`` and ``"info"``.
    title : str
        The page title.
    size : (int, int)
        Page size in pixels, :data:`SIZE_PX`.
    """

    items: tuple[Item, ...]
    panels: Mapping[str, Panel]
    title: str
    size: tuple[int, int] = SIZE_PX

    def find(self, gid: str | None = None, *, prefix: str | None = None, panel: str | None = None) -> list[Item]:
        """Items whose gid equals ``gid`` (or starts with ``prefix``), optionally in one panel."""
        out = []
        for it in self.items:
            if panel is not None and it.panel != panel:
                continue
            g = it.gid or ""
            if (gid is not None and g == gid) or (prefix is not None and g.startswith(prefix)):
                out.append(it)
        return out

    def to_image(self, scale: int = SUPERSAMPLE) -> PILImage.Image:
        """Rasterise: an RGB :class:`PIL.Image.Image` of :attr:`size`, drawn at ``scale`` x and reduced."""
        return _rasterise(self, scale)

    def to_svg(self) -> str:
        """The page as an SVG document (text; sizes in pixels, fonts named DejaVu Sans)."""
        return _svg(self)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the page atomically: temp file in the target folder, then :func:`os.replace`.

        Parameters
        ----------
        path : str or os.PathLike
            Target file; format from the extension (:data:`SAVE_FORMATS`; none = PNG). PNG is
            1600 x 900; SVG is vector; PDF is a 16 x 9 inch page holding the raster at twice the
            PNG's resolution (Pillow writes raster PDFs only; use SVG for vectors).

        Returns
        -------
        pathlib.Path
            The path written.

        Raises
        ------
        FileNotFoundError
            The target folder does not exist; nothing is written.
        ValueError
            Unsupported extension; nothing is written.
        """
        p = Path(path)
        ext = p.suffix.lower()
        if ext and ext not in SAVE_FORMATS:
            raise ValueError(f"cannot save a scene plot as {ext!r}; use one of {sorted(SAVE_FORMATS)}")
        fmt = SAVE_FORMATS.get(ext, "png")
        with atomic_path(p) as tmp:
            if fmt == "svg":
                tmp.write_text(self.to_svg(), encoding="utf-8")
            elif fmt == "pdf":
                # 2x raster on a 16 x 9 inch page; JPEG at high quality, no chroma subsampling
                # (Pillow's PDF writer stores RGB as JPEG; 4:2:0 would smear the coloured lines).
                img = _rasterise(self, SUPERSAMPLE * 2, reduce_to=2)
                img.save(tmp, format="PDF", resolution=2 * DPI, quality=95, subsampling=0)
            else:
                tmp.write_bytes(_png(self.to_image()))
        logger.info("wrote scene plot %s (%s)", p, fmt)
        return p


class _Canvas:
    """Collects items with a z order (as the old figure's layering); stable within a z."""

    def __init__(self) -> None:
        self._items: list[tuple[float, int, Item]] = []

    def add(self, z: float, item: Item) -> None:
        self._items.append((z, len(self._items), item))

    def items(self) -> tuple[Item, ...]:
        return tuple(it for _, _, it in sorted(self._items, key=lambda t: (t[0], t[1])))


# --------------------------------------------------------------------------- fonts and text


# Code points the shipped font subsets cover (the pyftsubset ranges in gravity/fonts/README.md;
# keep the two in step). Others would draw as nothing: they become a visible box.
_GLYPH_RANGES = (
    (0x20, 0x7E),
    (0xA0, 0x24F),
    (0x300, 0x36F),
    (0x370, 0x3FF),
    (0x400, 0x4FF),
    (0x2000, 0x206F),
    (0x2070, 0x209F),
    (0x20A0, 0x20CF),
    (0x2190, 0x21FF),
    (0x2212, 0x2212),
    (0x221D, 0x221E),
    (0x2248, 0x2248),
    (0x2260, 0x2260),
    (0x2264, 0x2265),
    (0x25A0, 0x25FF),
    (0xFFFD, 0xFFFD),
)
_MISSING = "□"  # U+25A1, drawn where the fonts have no glyph (emoji, Hebrew, CJK ...)


def _clean(text: str) -> str:
    """Text the shipped fonts draw: control and surrogate characters become U+FFFD, characters
    outside the font subsets a box; newlines stay. Also what makes text safe to write as XML.
    """
    text = str(text)
    if text.isascii() and text.isprintable():  # the usual case, and quick
        return text
    out = []
    for ch in text:
        c = ord(ch)
        if ch == "\n":
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn"):
            out.append("\ufffd")
        elif any(lo <= c <= hi for lo, hi in _GLYPH_RANGES):
            out.append(ch)
        else:
            out.append(_MISSING)
    return "".join(out)


def _xml_safe(text: str) -> str:
    """Attribute text (gids) with control and surrogate characters replaced, others kept."""
    return "".join("\ufffd" if unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in text)


@lru_cache(maxsize=64)
def _font(role: str, size_px: float) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    # BASIC layout: the same extents with or without libraqm installed (placement is then
    # the same on every machine); names in scripts that need shaping still draw, unshaped.
    return ImageFont.truetype(
        str(FONT_DIR / _FONT_FILES[role]), size=round(size_px, 3), layout_engine=ImageFont.Layout.BASIC
    )


@lru_cache(maxsize=4096)
def _measure(text: str, role: str, size: float) -> tuple[float, float, float]:
    """Width, height and ascent in pixels of a text block, with the font the raster draws it in."""
    f = _font(role, size)
    asc, desc = f.getmetrics()
    w = max(f.getlength(ln) for ln in text.split("\n"))
    h = text.count("\n") * _LINE_SPACING * size + asc + desc
    return w, h, float(asc)


def _text_box(t: Text) -> tuple[float, float, float, float]:
    """Page-pixel box of an unrotated text item."""
    w, h, _ = _measure(t.text, t.role, t.size)
    x0 = t.x - {"left": 0.0, "center": w / 2, "right": w}[t.ha]
    top = _text_top(t, h)
    return x0, top, x0 + w, top + h


def _text_top(t: Text, h: float) -> float:
    _, _, asc = _measure(t.text, t.role, t.size)
    return {"top": t.y, "center": t.y - h / 2, "bottom": t.y - h, "baseline": t.y - asc}[t.va]


def _text(x: float, y: float, s: str, pt: float, **kw: Any) -> Text:
    return Text(x, y, _clean(s), pt * _PT, **kw)


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
        Page coordinates in radial-scale units, y up (broadcast shape of the inputs).
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
    """Marker disc area in square pixels for an object width 0..1 (diameter 7 pt .. 26 pt).

    At :data:`DPI` that is a diameter of 9.7 px (width 0) to 36.1 px (width 1); the radius is
    ``sqrt(area / pi)``.
    """
    w = np.clip(np.asarray(width, dtype=float), 0.0, 1.0)
    d = (7.0 + 19.0 * w) * _PT
    s = math.pi * (d / 2.0) ** 2
    return float(s) if np.ndim(s) == 0 else s


def _marker_radius(width: Any) -> Any:
    return np.sqrt(np.asarray(width_to_marker_area(width), dtype=float) / math.pi)


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
    path: np.ndarray | None = field(default=None, compare=False)  # (n, 3) az, el, dist when moving


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
    name = _clean(o.id).replace("\n", " ")
    if len(name) > _LABEL_MAX_CHARS:
        name = name[: _LABEL_MAX_CHARS - 1] + "…"
    s = name if o.members <= 1 else f"{name} ({o.members})"
    if with_elevation and abs(o.el) >= 5.0:
        s += f" {'↑' if o.el > 0 else '↓'}{abs(o.el):.0f}°"
    return s


# --------------------------------------------------------------------------- label placement


def _place_labels(
    cv: _Canvas,
    panel: Panel,
    pts: np.ndarray,
    ids: Sequence[str],
    texts: Sequence[str],
    colors: Sequence[str],
    radii: np.ndarray,
    fontsize: float,
    center: Point | None,
    extra_obstacles: Sequence[np.ndarray] = (),
    gid_prefix: str = "label",
) -> None:
    """Place one label per marker so labels overlap neither each other nor markers.

    ``pts`` are marker centres and ``radii`` their radii, in page pixels; ``fontsize`` in points.
    Markers drawn at the same spot (within 1.5 px) share one label listing their ids; its gid is
    ``"<gid_prefix>:<id>[,<id>...]"``. Greedy placement: each label tries directions around its
    preferred one (away from ``center``, page pixels, or up-right) at growing distances and
    takes the first free spot inside the panel, else the least-overlapping one. Labels placed
    away from their marker get a thin leader line in the marker's colour.
    """
    if len(texts) == 0:
        return
    mk = np.column_stack([pts[:, 0] - radii, pts[:, 1] - radii, pts[:, 0] + radii, pts[:, 1] + radii])
    obstacles = np.vstack([mk, *[np.atleast_2d(b) for b in extra_obstacles if len(b)]])
    # Coincident markers -> one shared label.
    clusters: list[list[int]] = []
    for i, p in enumerate(pts):
        for cl in clusters:
            if np.hypot(*(pts[cl[0]] - p)) < 1.5:
                cl.append(i)
                break
        else:
            clusters.append([i])
    reps = [cl[0] for cl in clusters]
    cpts = pts[reps]
    mr = np.array([radii[cl].max() for cl in clusters])
    ccolors = [colors[r] for r in reps]
    merged = []
    for cl in clusters:
        items = [texts[k] for k in cl]
        if len(items) > 12:
            items = items[:11] + [f"+{len(items) - 11} more"]
        merged.append(",\n".join(", ".join(items[k : k + 3]) for k in range(0, len(items), 3)))
    cids = [",".join(ids[k] for k in cl) for cl in clusters]
    n = len(merged)
    size = fontsize * _PT
    pad = 0.12 * size  # the label's white box around the text
    sizes = []
    for s in merged:
        w, h, _ = _measure(s, "sans", size)
        sizes.append((w + 2 * pad + 2.0, h + 2 * pad + 1.0))
    # Angles are measured with y up (as on paper); the page's y grows down.
    if center is not None:
        pref = np.arctan2(center[1] - cpts[:, 1], cpts[:, 0] - center[0])
        at_c = np.hypot(cpts[:, 0] - center[0], cpts[:, 1] - center[1]) < 1.0
        pref[at_c] = np.pi / 2
    else:
        pref = np.full(n, np.pi / 6)
    dtheta = np.radians([0, 30, -30, 60, -60, 90, -90, 120, -120, 150, -150, 180])
    gap = 2.0 * _PT
    step = 0.9 * size
    ax0, ay0, ax1, ay1 = panel.box
    placed = np.zeros((0, 4))
    # Crowded labels first (most neighbours within 40 pt), so they get the best spots.
    d2 = ((cpts[:, None, :] - cpts[None, :, :]) ** 2).sum(-1)
    order = np.argsort(-(d2 < (40 * _PT) ** 2).sum(1), kind="stable")
    for i in order:
        w, h = sizes[i]
        th = pref[i] + dtheta
        ux, uy = np.cos(th), -np.sin(th)
        obs = np.vstack([obstacles, placed])
        best: tuple[np.ndarray, int] | None = None
        best_cost = math.inf
        for ring in range(14):
            r = mr[i] + gap + ring * step
            cx = cpts[i, 0] + ux * (r + w / 2.0)
            cy = cpts[i, 1] + uy * (r + h / 2.0)
            boxes = np.column_stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])  # (12, 4)
            ox = np.minimum(boxes[:, None, 2], obs[None, :, 2]) - np.maximum(boxes[:, None, 0], obs[None, :, 0])
            oy = np.minimum(boxes[:, None, 3], obs[None, :, 3]) - np.maximum(boxes[:, None, 1], obs[None, :, 1])
            cost = (np.clip(ox, 0, None) * np.clip(oy, 0, None)).sum(1)
            outside = (
                np.maximum(0.0, ax0 - boxes[:, 0])
                + np.maximum(0.0, boxes[:, 2] - ax1)
                + np.maximum(0.0, ay0 - boxes[:, 1])
                + np.maximum(0.0, boxes[:, 3] - ay1)
            )
            cost = cost + outside * h * 4.0 + 1e-3 * (ring * step + np.abs(dtheta) * 3.0)
            k = int(np.argmin(cost))  # first of equals: the preferred side
            if cost[k] < best_cost:
                best, best_cost = (boxes[k], ring), float(cost[k])
            if best_cost < 1.0:
                break
        assert best is not None
        box, ring = best
        placed = np.vstack([placed, box])
        cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
        gid = f"{gid_prefix}:{cids[i]}"
        if ring >= 1 or abs(cx - cpts[i, 0]) > w / 2 + mr[i] + 3 * gap:
            leader = _leader(cpts[i], mr[i], box)
            if leader is not None:
                cv.add(
                    5, Line(leader, ccolors[i], 0.5 * _PT, 0.8, gid=f"{gid_prefix}-leader:{cids[i]}", panel=panel.name)
                )
        cv.add(
            6,
            Box(
                box[0] + 1.0,
                box[1] + 0.5,
                box[2] - 1.0,
                box[3] - 0.5,
                "#ffffff",
                radius=pad,
                alpha=0.7,
                gid=f"{gid_prefix}-box:{cids[i]}",
                panel=panel.name,
            ),
        )
        cv.add(6, Text(cx, cy, merged[i], size, "sans", "#202020", "center", "center", gid=gid, panel=panel.name))


def _leader(p: np.ndarray, r: float, box: np.ndarray) -> tuple[Point, ...] | None:
    """Leader from a marker's edge to the edge of its label box (None when they touch)."""
    c = np.array([(box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0])
    d = c - p
    dist = float(np.hypot(*d))
    if dist <= r + 1.0:
        return None
    u = d / dist
    # Where the ray from the box centre towards the marker leaves the box.
    hw, hh = (box[2] - box[0]) / 2.0, (box[3] - box[1]) / 2.0
    t_box = min(hw / abs(u[0]) if abs(u[0]) > 1e-9 else math.inf, hh / abs(u[1]) if abs(u[1]) > 1e-9 else math.inf)
    end = c - u * t_box
    start = p + u * r
    if float(np.dot(end - start, u)) <= 0.5:
        return None
    return ((float(start[0]), float(start[1])), (float(end[0]), float(end[1])))


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


def _pts(x: np.ndarray, y: np.ndarray) -> tuple[Point, ...]:
    return tuple(zip(np.asarray(x, dtype=float).tolist(), np.asarray(y, dtype=float).tolist(), strict=True))


def _draw_path(
    cv: _Canvas, panel: Panel, px: np.ndarray, py: np.ndarray, color: str, gid: str, n_arrows: int, alpha: float
) -> None:
    """A motion path in page pixels: line, hollow t = 0 marker, filled arrow heads along it."""
    cv.add(3, Line(_pts(px, py), color, 1.6 * _PT, alpha, gid=gid, panel=panel.name))
    cv.add(
        4,
        Circle((float(px[0]), float(py[0])), 3.0 * _PT, "#ffffff", color, 1.5 * _PT, gid=f"{gid}:t0", panel=panel.name),
    )
    xy = np.column_stack([px, py])
    fracs = [0.5] if n_arrows == 1 else [(k + 0.5) / n_arrows for k in range(n_arrows)]
    head_len, head_half = 8.4 * _PT, 4.2 * _PT  # matplotlib's "-|>" at mutation scale 12
    for i in _arrow_indices(xy, fracs):
        a, b = xy[max(0, i - 3)], xy[i]
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))) or np.allclose(a, b):
            continue
        u = (b - a) / np.hypot(*(b - a))
        nrm = np.array([-u[1], u[0]])
        base = b - u * head_len
        tri = (tuple(b), tuple(base + nrm * head_half), tuple(base - nrm * head_half))
        cv.add(
            4,
            Polygon(
                tuple((float(q[0]), float(q[1])) for q in tri),
                color,
                color,
                0.5 * _PT,
                min(1.0, alpha + 0.1),
                gid=f"{gid}:arrow",
                panel=panel.name,
            ),
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


def _draw_head(cv: _Canvas, panel: Panel) -> np.ndarray:
    """The listener's head (nose up, ears at the sides); returns its obstacle box in pixels."""
    r = _HEAD_R
    k = (panel.box[2] - panel.box[0]) / (panel.xlim[1] - panel.xlim[0])  # pixels per unit
    c = panel.to_px(0.0, 0.0)
    skin, ink, name = "#f1d5b8", "#404040", panel.name
    nose = [panel.to_px(-0.32 * r, 0.9 * r), panel.to_px(0.0, 1.45 * r), panel.to_px(0.32 * r, 0.9 * r)]
    cv.add(2.2, Polygon(tuple(nose), skin, ink, 1.0 * _PT, panel=name))
    for side in (-1, 1):
        ear = panel.to_px(side * r, 0.0)
        cv.add(2.2, Ellipse(ear, 0.14 * r * k, 0.3 * r * k, skin, ink, 1.0 * _PT, panel=name))
    cv.add(2.4, Circle(c, r * k, skin, ink, 1.2 * _PT, panel=name))
    cv.add(2.4, _text(c[0] - r * 1.55 * k, c[1], "L", 8, role="bold", ha="right", va="center", panel=name))
    cv.add(2.4, _text(c[0] + r * 1.55 * k, c[1], "R", 8, role="bold", ha="left", va="center", panel=name))
    x0, y0 = panel.to_px(-r * 1.9, r * 1.5)
    x1, y1 = panel.to_px(r * 1.9, -r * 1.1)
    return np.array([[x0, y0, x1, y1]])


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


def _title(cv: _Canvas, panel: Panel, text: str) -> None:
    """Panel title: 12 pt bold, left-aligned, its baseline 6 pt above the panel."""
    cv.add(3, _text(panel.box[0], panel.box[1] - 6 * _PT, text, 12, role="bold", va="baseline", panel=panel.name))


# --------------------------------------------------------------------------- panels


def _top_view(cv: _Canvas, objs: Sequence[_Obj], fs: float) -> Panel:
    rings = _rings_for(objs)
    r_out = radial_scale(rings[-1])
    lim = r_out * 1.13
    pan = Panel("top_view", _TOP_BOX, (-lim, lim), (-lim, lim))
    name = pan.name
    _title(cv, pan, "Top view (listener facing up)")
    cx = (pan.box[0] + pan.box[2]) / 2.0
    cv.add(
        3,
        _text(
            cx,
            pan.box[3] + 4 * _PT,
            "LEFT = +azimuth  ◀   ▶  RIGHT = −azimuth\n"
            "radius ∝ log₂(1 + horizontal distance d·cos el); rings in metres",
            9,
            color="#303030",
            ha="center",
            va="top",
            panel=name,
        ),
    )
    k = (pan.box[2] - pan.box[0]) / (2 * lim)  # pixels per radial unit
    c = pan.to_px(0.0, 0.0)
    ring_boxes = []
    for d in rings:
        r = radial_scale(d)
        cv.add(1, Circle(c, r * k, None, "#b0b0b0", (1.1 if d == rings[-1] else 0.7) * _PT, panel=name))
        lx, ly = pan.to_px(*top_view_xy(-135.0, 0.0, d))  # label rings at back-right (least busy)
        t = _text(lx, ly, f"{d:g} m", 7.5, color="#707070", ha="center", va="center", panel=name)
        x0, y0, x1, y1 = _text_box(t)
        p = 0.1 * t.size
        cv.add(1, Box(x0 - p, y0 - p, x1 + p, y1 + p, "#ffffff", radius=p, panel=name))
        cv.add(1, t)
        ring_boxes.append([x0 - p, y0 - p, x1 + p, y1 + p])
    spoke_boxes: list[list[float]] = []  # direction names: labels keep off them too
    for spoke in range(-150, 181, 30):  # degrees
        p0 = pan.to_px(*top_view_xy(spoke, 0.0, 0.35))
        p1 = pan.to_px(*top_view_xy(spoke, 0.0, rings[-1]))
        major = spoke % 90 == 0
        cv.add(
            0,
            Line(
                (p0, p1),
                "#c8c8c8" if major else "#e2e2e2",
                (0.9 if major else 0.6) * _PT,
                dash=None if major else (4.0, 3.0),
                panel=name,
            ),
        )
        label = {0: "FRONT 0°", 90: "L +90°", -90: "R −90°", 180: "BACK 180°"}.get(
            spoke, f"{spoke:+d}°".replace("-", "−")
        )
        r_lab = r_out * 1.065
        tx, ty = pan.to_px(-r_lab * math.sin(math.radians(spoke)), r_lab * math.cos(math.radians(spoke)))
        t = _text(
            tx,
            ty,
            label,
            9 if major else 7.5,
            role="bold" if major else "sans",
            color="#303030" if major else "#808080",
            ha="center",
            va="center",
            panel=name,
        )
        cv.add(3, t)
        spoke_boxes.append(list(_text_box(t)))
    head_box = _draw_head(cv, pan)
    if not objs:
        x, y = pan.to_px(0.0, -radial_scale(0.5))
        cv.add(3, _text(x, y, "no objects", 11, color="#808080", ha="center", va="top", gid="empty", panel=name))
        return pan
    alpha = _path_alpha(objs)
    for o in objs:
        if o.path is not None:
            px, py = pan.to_px(*top_view_xy(o.path[:, 0], o.path[:, 1], o.path[:, 2]))
            _draw_path(cv, pan, px, py, FAMILY_COLORS[o.family], f"path:{o.id}", _n_arrows(o.path), alpha)
    px, py = pan.to_px(*top_view_xy([o.az for o in objs], [o.el for o in objs], [o.dist for o in objs]))
    pts = np.column_stack([px, py])
    _markers(cv, pan, objs, pts)
    _place_labels(
        cv,
        pan,
        pts,
        [o.id for o in objs],
        [_label_text(o, True) for o in objs],
        [FAMILY_COLORS[o.family] for o in objs],
        _marker_radius([o.width for o in objs]),
        fs,
        center=c,
        extra_obstacles=[head_box, np.array(ring_boxes), np.array(spoke_boxes)],
    )
    return pan


def _markers(cv: _Canvas, pan: Panel, objs: Sequence[_Obj], pts: np.ndarray) -> None:
    """One disc per object (gid ``"objects"``), family colour, sized by width."""
    radii = _marker_radius([o.width for o in objs])
    for o, p, r in zip(objs, pts, radii, strict=True):
        cv.add(
            5,
            Circle(
                (float(p[0]), float(p[1])),
                float(r),
                FAMILY_COLORS[o.family],
                "#202020",
                0.8 * _PT,
                0.85,
                gid="objects",
                panel=pan.name,
            ),
        )


def _elevation_view(cv: _Canvas, objs: Sequence[_Obj], fs: float) -> Panel:
    pan = Panel("elevation_view", _ELEV_BOX, (180.0, -180.0), (-90.0, 90.0))
    name = pan.name
    x0, y0, x1, y1 = pan.box
    _title(cv, pan, "Elevation map (height vs direction)")
    _, y_ear = pan.to_px(0.0, 0.0)
    cv.add(0, Box(x0, y_ear, x1, y1, "#f4f1ea", panel=name))  # below the ears
    tick = 3.5 * _PT
    xticks = list(range(180, -181, -45))
    xlabels = ["BACK\n+180°", "+135°", "LEFT\n+90°", "+45°", "FRONT\n0°", "−45°", "RIGHT\n−90°", "−135°", "BACK\n−180°"]
    for a, lab in zip(xticks, xlabels, strict=True):
        x, _ = pan.to_px(a, 0.0)
        cv.add(0.5, Line(((x, y0), (x, y1)), "#e4e4e4", 0.6 * _PT, panel=name))
        cv.add(2.5, Line(((x, y1), (x, y1 + tick)), "#000000", 0.8 * _PT, panel=name))
        cv.add(3, _text(x, y1 + tick + 3.5 * _PT, lab, 8, ha="center", va="top", panel=name))
    ylabels = ["−90°", "−60°", "−30°", "0°", "+30°", "+60°", "+90°"]
    widest = 0.0
    for e, lab in zip(range(-90, 91, 30), ylabels, strict=True):
        _, y = pan.to_px(0.0, e)
        cv.add(0.5, Line(((x0, y), (x1, y)), "#e4e4e4", 0.6 * _PT, panel=name))
        cv.add(2.5, Line(((x0 - tick, y), (x0, y)), "#000000", 0.8 * _PT, panel=name))
        t = _text(x0 - tick - 3.5 * _PT, y, lab, 8, ha="right", va="center", panel=name)
        widest = max(widest, _measure(t.text, "sans", t.size)[0])
        cv.add(3, t)
    cv.add(1, Line(((x0, y_ear), (x1, y_ear)), "#909090", 1.0 * _PT, panel=name))
    for a in (90, 0, -90):
        x, _ = pan.to_px(a, 0.0)
        cv.add(1, Line(((x, y0), (x, y1)), "#c0c0c0", 0.9 * _PT, panel=name))
    cv.add(2.5, Box(x0, y0, x1, y1, None, "#000000", 0.8 * _PT, panel=name))  # the frame
    # Axis labels below the two-line tick labels / left of the widest y tick label (4 pt pad).
    two_lines = _measure("BACK\n+180°", "sans", 8 * _PT)[1]
    cv.add(
        3,
        _text(
            (x0 + x1) / 2,
            y1 + tick + 3.5 * _PT + two_lines + 4 * _PT,
            "azimuth (°), LEFT = + on the left, as in the top view",
            9,
            ha="center",
            va="top",
            panel=name,
        ),
    )
    cv.add(
        3,
        _text(
            x0 - tick - 3.5 * _PT - widest - 4 * _PT,
            (y0 + y1) / 2,
            "elevation (°), + up",
            9,
            ha="center",
            va="bottom",
            rotation=90,
            panel=name,
        ),
    )
    notes = []  # the map's own words: labels keep off them
    for (ax, ay), s, va, ha, col in (
        ((178, 86), "above", "top", "left", "#909090"),
        ((178, -86), "below", "bottom", "left", "#909090"),
        ((-178, 1.5), "ear level", "bottom", "right", "#707070"),
    ):
        x, y = pan.to_px(ax, ay)
        t = _text(x, y, s, 8, color=col, ha=ha, va=va, panel=name)
        cv.add(3, t)
        notes.append(list(_text_box(t)))
    if not objs:
        x, y = pan.to_px(0.0, 45.0)
        cv.add(3, _text(x, y, "no objects", 11, color="#808080", ha="center", va="center", gid="empty", panel=name))
        return pan
    alpha = _path_alpha(objs)
    for o in objs:
        if o.path is not None:
            px, py = pan.to_px(*_break_wraps(*elevation_view_xy(o.path[:, 0], o.path[:, 1])))
            _draw_path(cv, pan, px, py, FAMILY_COLORS[o.family], f"epath:{o.id}", _n_arrows(o.path), alpha)
    px, py = pan.to_px(*elevation_view_xy([o.az for o in objs], [o.el for o in objs]))
    pts = np.column_stack([px, py])
    _markers(cv, pan, objs, pts)
    _place_labels(
        cv,
        pan,
        pts,
        [o.id for o in objs],
        [_label_text(o, False) for o in objs],
        [FAMILY_COLORS[o.family] for o in objs],
        _marker_radius([o.width for o in objs]),
        fs,
        center=None,
        extra_obstacles=[np.array(notes)],
        gid_prefix="elabel",
    )
    return pan


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


def _info(cv: _Canvas, scene: Mapping[str, Any], objs: Sequence[_Obj]) -> Panel:
    pan = Panel("info", _INFO_BOX)
    t = _text(pan.box[0], pan.box[1], _info_text(scene, objs, 14), 8.5, role="mono", va="top", gid="info", panel="info")
    x0, y0, x1, y1 = _text_box(t)
    p = 0.6 * t.size
    cv.add(3, Box(x0 - p, y0 - p, x1 + p, y1 + p, "#f7f7f7", "#c0c0c0", _PT, radius=p, panel="info"))
    cv.add(3, t)
    return pan


def _legend_frame(
    cv: _Canvas,
    x: float,
    y: float,
    title: str,
    title_pt: float,
    rows: Sequence[Sequence[tuple[Sequence[Item], float, str]]],
    text_pt: float,
    *,
    row_gap_em: float,
    col_gap_em: float = 0.0,
    anchor_bottom: bool = False,
) -> None:
    """A framed legend at ``(x, y)`` (its top-left, or bottom-left with ``anchor_bottom``).

    ``rows`` is a grid of cells ``(handle items drawn around (0, 0), handle height px, text)``;
    handles are 2 em wide, text follows after 0.6 em, as matplotlib's legends.
    """
    em = text_pt * _PT
    pad, hlen, hpad = 0.7 * em, 2.0 * em, 0.6 * em
    tsize = title_pt * _PT
    tw, th, _ = _measure(title, "sans", tsize)
    ncol = max(len(r) for r in rows)
    col_w = [0.0] * ncol
    row_h = []
    for r in rows:
        hh = 0.0
        for j, (_, h, txt) in enumerate(r):
            w, t_h, _ = _measure(txt, "sans", em)
            col_w[j] = max(col_w[j], hlen + hpad + w)
            # Big handles (the width-1 disc) may reach into the gaps, as in matplotlib's
            # legends: rows are spaced by their text, plus a quarter of a larger handle.
            hh = max(hh, t_h, t_h + (h - t_h) / 4)
        row_h.append(hh)
    width = max(tw, sum(col_w) + col_gap_em * em * (ncol - 1)) + 2 * pad
    height = pad + th + 0.5 * em + sum(row_h) + row_gap_em * em * (len(rows) - 1) + pad
    top = y - height if anchor_bottom else y
    cv.add(
        7, Box(x, top, x + width, top + height, "#ffffff", "#c0c0c0", _PT, radius=0.4 * em, alpha=0.8, panel="legend")
    )
    cv.add(8, _text(x + pad, top + pad, title, title_pt, va="top", gid="legend", panel="legend"))
    yy = top + pad + th + 0.5 * em
    for r, hh in zip(rows, row_h, strict=True):
        xx = x + pad
        cy = yy + hh / 2
        for j, (handle, _, txt) in enumerate(r):
            for it in handle:
                cv.add(8, _shift(it, xx + hlen / 2, cy))
            cv.add(8, Text(xx + hlen + hpad, cy, txt, em, ha="left", va="center", gid="legend", panel="legend"))
            xx += col_w[j] + col_gap_em * em
        yy += hh + row_gap_em * em


def _shift(it: Item, dx: float, dy: float) -> Item:
    """A legend handle drawn around (0, 0), moved to ``(dx, dy)``."""
    if isinstance(it, Circle):
        return Circle(
            (it.center[0] + dx, it.center[1] + dy),
            it.radius,
            it.fill,
            it.edge,
            it.edge_width,
            it.alpha,
            it.gid,
            "legend",
        )
    if isinstance(it, Line):
        return Line(
            tuple((a + dx, b + dy) for a, b in it.points), it.color, it.width, it.alpha, it.dash, it.gid, "legend"
        )
    if isinstance(it, Text):
        return Text(it.x + dx, it.y + dy, it.text, it.size, it.role, it.color, it.ha, it.va, 0, it.gid, "legend")
    raise TypeError(type(it).__name__)


def _legend(cv: _Canvas, objs: Sequence[_Obj]) -> Panel:
    pan = Panel("legend", _LEGEND_BOX)
    x0, y0, _, y1 = pan.box
    fs = 8.5
    rows: list[list[tuple[Sequence[Item], float, str]]] = []
    dot = 4.5 * _PT  # 9 pt markers
    for fam in [f for f in FAMILIES if any(o.family == f for o in objs)]:
        cl = ", ".join(sorted({o.cls for o in objs if o.family == fam}))
        if len(cl) > 38:
            cl = cl[:37] + "…"
        handle = [Circle((0.0, 0.0), dot, FAMILY_COLORS[fam], "#202020", 1.0 * _PT, 0.85)]
        rows.append([(handle, 2 * dot, _clean(f"{fam}: {cl}"))])
    if not rows:
        rows.append([([Circle((0.0, 0.0), dot, "#ffffff", "#c0c0c0", 1.0 * _PT)], 2 * dot, "(no objects)")])
    gap = 0.5 * fs * _PT  # matplotlib's borderaxespad
    _legend_frame(cv, x0 + gap, y0 + gap, "colour = stem family (classes present)", 8.5, rows, fs, row_gap_em=0.7)

    def wkey(w: float) -> tuple[Sequence[Item], float, str]:
        r = float(_marker_radius(w))
        return ([Circle((0.0, 0.0), r, "#d0d0d0", "#606060", 1.0 * _PT)], 2 * r, f"width {w:g}")

    em = 8 * _PT
    key: list[list[tuple[Sequence[Item], float, str]]] = [
        [
            wkey(0.0),
            wkey(0.5),
            wkey(1.0),
        ],
        [
            ([Line(((-em, 0.0), (em, 0.0)), "#505050", 1.6 * _PT)], 1.6 * _PT, "motion (arrow = direction)"),
            ([Circle((0.0, 0.0), 3.0 * _PT, "#ffffff", "#505050", 1.5 * _PT)], 6 * _PT, "position at t = 0"),
            (
                [_text(0.0, 0.0, "(n)", 9, role="bold", color="#303030", ha="center", va="center")],
                em,
                "n stems (group)",
            ),
        ],
        [([_text(0.0, 0.0, "↑", 10, role="bold", color="#303030", ha="center", va="center")], em, "elevation (°)")],
    ]
    _legend_frame(cv, x0 + gap, y1 - gap, "key", 8.5, key, 8, row_gap_em=1.1, col_gap_em=1.4, anchor_bottom=True)
    return pan


# --------------------------------------------------------------------------- public API


def plot_scene(
    scene: Mapping[str, Any], path: str | os.PathLike[str] | None = None, *, title: str | None = None
) -> Plot:
    """Lay out a scene: top view, elevation map, legend and info box; optionally save it.

    Parameters
    ----------
    scene : Mapping
        A Gravity scene (``schemas/scene.schema.json``): ``bed``, optional ``timing``,
        ``objects`` with ``az_deg`` (degrees, positive = left), ``el_deg`` (degrees, positive
        up), ``dist_m`` (metres), ``width`` (0..1), optional ``stems`` and ``motion``
        keyframes (``t`` normalised 0..1), and optional ``constraints_applied``.
    path : str or os.PathLike, optional
        Where to save the picture; format from the extension (``.png``, ``.svg``, ``.pdf``;
        none = PNG). Written atomically, see :meth:`Plot.save`.
    title : str, optional
        Page title; default names the section and object count.

    Returns
    -------
    Plot
        The display list, :data:`SIZE_PX` pixels. Panels ``"top_view"``, ``"elevation_view"``,
        ``"legend"`` and ``"info"``; object markers are circles with gid ``"objects"`` (one per
        object in each view), motion paths lines with gid ``"path:<id>"`` (top view) /
        ``"epath:<id>"`` (elevation map), labels texts with gid ``"label:<ids>"`` /
        ``"elabel:<ids>"``.

    Raises
    ------
    ValueError
        An object lacks ``id``/``az_deg``/``el_deg``/``dist_m``, or the file extension is
        not supported.
    FileNotFoundError
        The folder of ``path`` does not exist (nothing is written).
    """
    objs = _parse_objects(scene)
    logger.debug("plotting scene with %d objects (%d moving)", len(objs), sum(o.path is not None for o in objs))
    if title is None:
        section = (scene.get("timing") or {}).get("section")
        title = (
            "Gravity scene"
            + (f" — {section}" if section else "")
            + f" · {len(objs)} object{'' if len(objs) == 1 else 's'}"
        )
    cv = _Canvas()
    cv.add(3, _text(32.0, 19.5, title, 15, role="bold", va="top", gid="title"))
    fs = _label_fontsize(len(objs))
    panels = [_top_view(cv, objs, fs), _elevation_view(cv, objs, fs), _legend(cv, objs), _info(cv, scene, objs)]
    plot = Plot(cv.items(), {p.name: p for p in panels}, _clean(title))
    if path is not None:
        plot.save(path)
    return plot


# --------------------------------------------------------------------------- raster back end


@lru_cache(maxsize=64)
def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _runs(points: Sequence[Point]) -> list[list[Point]]:
    """Split a polyline at NaN points into runs of two or more points."""
    if not math.isnan(sum(x + y for x, y in points)):  # no break: one run (the usual case)
        return [list(points)] if len(points) >= 2 else []
    runs: list[list[Point]] = [[]]
    for p in points:
        if math.isnan(p[0]) or math.isnan(p[1]):
            runs.append([])
        else:
            runs[-1].append(p)
    return [r for r in runs if len(r) >= 2]


def _dashes(run: Sequence[Point], on: float, off: float) -> list[list[Point]]:
    """Cut a polyline into dashes of ``on`` pixels separated by ``off`` pixels."""
    out: list[list[Point]] = []
    cur: list[Point] = [run[0]]
    drawing, left = True, on
    for (xa, ya), (xb, yb) in zip(run[:-1], run[1:], strict=False):
        seg = math.hypot(xb - xa, yb - ya)
        pos = 0.0
        while seg - pos > left:
            pos += left
            q = (xa + (xb - xa) * pos / seg, ya + (yb - ya) * pos / seg)
            if drawing:
                cur.append(q)
                out.append(cur)
            cur = [q]
            drawing = not drawing
            left = on if drawing else off
        left -= seg - pos
        if drawing:
            cur.append((xb, yb))
        else:
            cur = [(xb, yb)]
    if drawing and len(cur) >= 2:
        out.append(cur)
    return out


def _bounds(it: Item) -> tuple[float, float, float, float]:
    """Page-pixel bounds of a shape item, its outline included."""
    if isinstance(it, (Line, Polygon)):
        pts = [p for run in _runs(it.points) for p in run] if isinstance(it, Line) else it.points
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        w = it.width if isinstance(it, Line) else it.edge_width
        if not xs:
            return 0.0, 0.0, 0.0, 0.0
        return min(xs) - w, min(ys) - w, max(xs) + w, max(ys) + w
    if isinstance(it, Circle):
        r = it.radius + it.edge_width
        return it.center[0] - r, it.center[1] - r, it.center[0] + r, it.center[1] + r
    if isinstance(it, Ellipse):
        return (
            it.center[0] - it.rx - it.edge_width,
            it.center[1] - it.ry - it.edge_width,
            it.center[0] + it.rx + it.edge_width,
            it.center[1] + it.ry + it.edge_width,
        )
    if isinstance(it, Box):
        return it.x0 - it.edge_width, it.y0 - it.edge_width, it.x1 + it.edge_width, it.y1 + it.edge_width
    raise TypeError(type(it).__name__)


def _draw_shape(d: ImageDraw.ImageDraw, it: Item, s: int, ox: float, oy: float, a: int | None = None) -> None:
    """Draw a shape at scale ``s`` with the page origin at ``(ox, oy)`` (scaled pixels).

    With ``a`` (0..255) colours carry that alpha: on an RGBA tile each pixel is *set* (not
    blended), so overlapping strokes of one shape keep one opacity.
    """

    def col(c: str) -> tuple[int, ...]:
        return _rgb(c) if a is None else (*_rgb(c), a)

    def sc(p: Point) -> tuple[float, float]:
        return p[0] * s - ox, p[1] * s - oy

    if isinstance(it, Line):
        w = max(1, round(it.width * s))
        for run in _runs(it.points):
            for piece in _dashes(run, *it.dash) if it.dash else [run]:
                d.line([sc(p) for p in piece], fill=col(it.color), width=w, joint="curve" if len(piece) > 2 else None)
        return
    if isinstance(it, Text):
        raise TypeError("text is drawn by _draw_text")
    fill = col(it.fill) if it.fill else None
    edge = col(it.edge) if it.edge else None
    ew = max(1, round(it.edge_width * s)) if edge else 0
    if isinstance(it, (Circle, Ellipse)):
        rx, ry = (it.radius, it.radius) if isinstance(it, Circle) else (it.rx, it.ry)
        cx, cy = sc(it.center)
        # Pillow's outline grows inwards: widen by half the stroke so it centres on the edge.
        rx, ry = rx * s + ew / 2, ry * s + ew / 2
        d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill, outline=edge, width=ew)
    elif isinstance(it, Polygon):
        pts = [sc(p) for p in it.points]
        d.polygon(pts, fill=fill)
        if edge:
            d.line([*pts, pts[0], pts[1]], fill=edge, width=ew, joint="curve")
    elif isinstance(it, Box):
        x0, y0 = sc((it.x0, it.y0))
        x1, y1 = sc((it.x1, it.y1))
        h = ew / 2
        d.rounded_rectangle((x0 - h, y0 - h, x1 + h, y1 + h), radius=it.radius * s, fill=fill, outline=edge, width=ew)


def _draw_text(img: PILImage.Image, d: ImageDraw.ImageDraw, t: Text, s: int) -> None:
    from PIL import Image, ImageDraw

    font = _font(t.role, t.size * s)
    w, h, asc = _measure(t.text, t.role, t.size)
    lines = t.text.split("\n")
    anchor = {"left": "ls", "center": "ms", "right": "rs"}[t.ha]
    if t.rotation == 0:
        top = _text_top(t, h)
        for i, ln in enumerate(lines):
            y = (top + asc + i * _LINE_SPACING * t.size) * s
            d.text((t.x * s, y), ln, fill=_rgb(t.color), font=font, anchor=anchor)
        return
    # Rotated (90 deg counter-clockwise): draw upright on a tile, turn it, paste it.
    tile = Image.new("L", (math.ceil(w * s) + 2, math.ceil(h * s) + 2), 0)
    td = ImageDraw.Draw(tile)
    for i, ln in enumerate(lines):
        x = {"left": 1.0, "center": tile.width / 2, "right": tile.width - 1.0}[t.ha]
        td.text((x, (asc + i * _LINE_SPACING * t.size) * s + 1), ln, fill=255, font=font, anchor=anchor)
    tile = tile.transpose(Image.Transpose.ROTATE_90)
    # (x, y) is the block's (ha, va) point before turning: centre-bottom -> right-centre after.
    fx = {"top": 0.0, "center": 0.5, "bottom": 1.0, "baseline": asc / h}[t.va]
    fy = {"left": 1.0, "center": 0.5, "right": 0.0}[t.ha]
    x0 = round(t.x * s - fx * tile.width)
    y0 = round(t.y * s - fy * tile.height)
    img.paste(Image.new("RGB", tile.size, _rgb(t.color)), (x0, y0), tile)


def _rasterise(plot: Plot, scale: int, reduce_to: int = 1) -> PILImage.Image:
    """Draw the display list's shapes at ``scale``, reduce to ``reduce_to`` (box filter), then its text.

    Text is drawn after the reduction, at the output's own resolution: FreeType's hinted,
    antialiased glyphs are crisper there than reduced ones (as matplotlib draws text), and it
    costs less. So text sits over shapes drawn after it in the list, which the layout avoids
    (labels are placed off markers and come last).
    """
    from PIL import Image, ImageDraw

    s = int(scale)
    img = Image.new("RGB", (plot.size[0] * s, plot.size[1] * s), (255, 255, 255))
    d = ImageDraw.Draw(img)
    batch: list[Line | Circle | Ellipse | Polygon | Box] = []

    def flush() -> None:
        # Translucent shapes: drawn on one tile with the alpha in their colours, where pixels
        # are *set*, not blended (the overlapping strokes of a path keep one opacity; where
        # two paths of one panel cross, the later one shows), then blended in at once: one
        # tile per panel's run of paths costs 8 ms where a tile per path cost 30-40 ms.
        if not batch:
            return
        boxes = np.array([_bounds(it) for it in batch]) * s
        bx, by = max(0, math.floor(boxes[:, 0].min()) - 2), max(0, math.floor(boxes[:, 1].min()) - 2)
        bw = min(img.width, math.ceil(boxes[:, 2].max()) + 2) - bx
        bh = min(img.height, math.ceil(boxes[:, 3].max()) + 2) - by
        if bw > 0 and bh > 0:
            tile = Image.new("RGBA", (bw, bh), (0, 0, 0, 0))
            td = ImageDraw.Draw(tile)
            for it in batch:
                _draw_shape(td, it, s, float(bx), float(by), round(it.alpha * 255))
            img.paste(tile, (bx, by), tile)
        batch.clear()

    for it in plot.items:
        if isinstance(it, Text):
            continue
        if it.alpha < 1.0:
            if batch and (batch[-1].panel != it.panel or not isinstance(it, Line) or not isinstance(batch[-1], Line)):
                flush()  # a run is the paths of one panel; other translucent shapes go alone
            batch.append(it)
            continue
        flush()
        _draw_shape(d, it, s, 0.0, 0.0)
    flush()
    r = max(1, int(reduce_to))
    if s // r > 1:
        img = img.reduce(s // r)
    d = ImageDraw.Draw(img)
    for it in plot.items:
        if isinstance(it, Text):
            _draw_text(img, d, it, r)
    return img


def _png(img: PILImage.Image) -> bytes:
    """PNG bytes of an RGB image: no row filter, zlib level 3.

    Half the time of Pillow's writer (13 vs 27 ms for a page) and 10 % smaller: Pillow filters
    every row adaptively, which buys nothing on flat line art.
    """
    w, h = img.size
    raw = img.tobytes()
    stride = 3 * w
    body = b"".join(b"\x00" + raw[i : i + stride] for i in range(0, h * stride, stride))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, deflate, no interlace
    phys = struct.pack(">IIB", round(DPI / 0.0254), round(DPI / 0.0254), 1)  # pixels per metre
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"pHYs", phys)
        + chunk(b"IDAT", zlib.compress(body, 3))
        + chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- SVG back end


def _svg_paint(fill: str | None, edge: str | None, width: float, alpha: float) -> str:
    a = f' opacity="{alpha:.3g}"' if alpha < 1.0 else ""
    f = f'fill="{fill}"' if fill else 'fill="none"'
    e = f' stroke="{edge}" stroke-width="{width:.3g}"' if edge else ""
    return f + e + a


def _esc(text: str) -> str:
    """XML-escape text and attribute values (xml.sax.saxutils costs 18 ms of imports)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _svg_gid(it: Item) -> str:
    return f' data-gid="{_esc(_xml_safe(it.gid))}"' if it.gid else ""


def _svg(plot: Plot) -> str:
    w, h = plot.size
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'font-family="DejaVu Sans, Bitstream Vera Sans, Verdana, sans-serif">',
        f"<title>{_esc(plot.title)}</title>",
        f'<rect width="{w}" height="{h}" fill="#ffffff"/>',
    ]
    for it in plot.items:
        g = _svg_gid(it)
        if isinstance(it, Line):
            d = " ".join("M" + " L".join(f"{x:.2f},{y:.2f}" for x, y in run) for run in _runs(it.points))
            if not d:
                continue
            dash = f' stroke-dasharray="{it.dash[0]:g},{it.dash[1]:g}"' if it.dash else ""
            op = f' stroke-opacity="{it.alpha:.3g}"' if it.alpha < 1.0 else ""
            out.append(
                f'<path d="{d}" fill="none" stroke="{it.color}" stroke-width="{it.width:.3g}" '
                f'stroke-linejoin="round" stroke-linecap="round"{dash}{op}{g}/>'
            )
        elif isinstance(it, Circle):
            out.append(
                f'<circle cx="{it.center[0]:.2f}" cy="{it.center[1]:.2f}" r="{it.radius:.2f}" '
                f"{_svg_paint(it.fill, it.edge, it.edge_width, it.alpha)}{g}/>"
            )
        elif isinstance(it, Ellipse):
            out.append(
                f'<ellipse cx="{it.center[0]:.2f}" cy="{it.center[1]:.2f}" rx="{it.rx:.2f}" ry="{it.ry:.2f}" '
                f"{_svg_paint(it.fill, it.edge, it.edge_width, it.alpha)}{g}/>"
            )
        elif isinstance(it, Polygon):
            pts = " ".join(f"{x:.2f},{y:.2f}" for x, y in it.points)
            out.append(f'<polygon points="{pts}" {_svg_paint(it.fill, it.edge, it.edge_width, it.alpha)}{g}/>')
        elif isinstance(it, Box):
            out.append(
                f'<rect x="{it.x0:.2f}" y="{it.y0:.2f}" width="{it.x1 - it.x0:.2f}" height="{it.y1 - it.y0:.2f}" '
                f'rx="{it.radius:.2f}" {_svg_paint(it.fill, it.edge, it.edge_width, it.alpha)}{g}/>'
            )
        else:
            out.append(_svg_text(it))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _svg_text(t: Text) -> str:
    w, h, asc = _measure(t.text, t.role, t.size)
    anchor = {"left": "start", "center": "middle", "right": "end"}[t.ha]
    fam = ' font-family="DejaVu Sans Mono, monospace"' if t.role == "mono" else ""
    weight = ' font-weight="bold"' if t.role == "bold" else ""
    top = _text_top(t, h)
    rot = ""
    if t.rotation:
        # Lay the block out unrotated about (x, y), then turn it about that point.
        rot = f' transform="rotate({-t.rotation} {t.x:.2f} {t.y:.2f})"'
    spans = "".join(
        f'<tspan x="{t.x:.2f}" y="{top + asc + i * _LINE_SPACING * t.size:.2f}">{_esc(ln)}</tspan>'
        for i, ln in enumerate(t.text.split("\n"))
    )
    return (
        f'<text font-size="{t.size:.2f}" fill="{t.color}" text-anchor="{anchor}" xml:space="preserve"'
        f"{fam}{weight}{rot}{_svg_gid(t)}>{spans}</text>"
    )
