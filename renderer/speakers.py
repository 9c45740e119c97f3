"""Loudspeaker layouts and the point-source panner of the EBU ADM Renderer (ITU-R BS.2127 6.1).

Layouts (:data:`LAYOUTS`) are the ITU-R BS.2051 systems by their channel-based names and by their
BS.2051 names, plus two that BS.2051 does not define, given the positions Dolby specifies for
its home-entertainment studios (7.1.2 and 9.1.6). Channels are in the BS.2051 order (the order
of the EBU ADM Renderer's ``ear.core.bs2051`` layouts and of ``ear-render``'s output):

==========  =======  ========================================================================
name        BS.2051  channels
==========  =======  ========================================================================
5.1         0+5+0    M+030 M-030 M+000 LFE1 M+110 M-110
5.1.2       2+5+0    M+030 M-030 M+000 LFE1 M+110 M-110 U+030 U-030
5.1.4       4+5+0    M+030 M-030 M+000 LFE1 M+110 M-110 U+030 U-030 U+110 U-110
7.1         0+7+0    M+030 M-030 M+000 LFE1 M+090 M-090 M+135 M-135
7.1.2       (Dolby)  M+030 M-030 M+000 LFE1 M+090 M-090 M+135 M-135 U+090 U-090 (tops at 45 deg)
7.1.4       4+7+0    M+030 M-030 M+000 LFE1 M+090 M-090 M+135 M-135 U+045 U-045 U+135 U-135
9.1.6       (Dolby)  M+030 M-030 M+000 LFE1 M+090 M-090 M+135 M-135 M+060 M-060
                     U+045 U-045 U+090 U-090 U+135 U-135 (tops at 45 deg)
4+9+0       4+9+0    M+030 M-030 M+000 LFE1 M+090 M-090 M+135 M-135 U+045 U-045 U+135 U-135
                     M+SC M-SC (screen pair at +-15 deg, the EBU renderer's default)
==========  =======  ========================================================================

A name ``M+110`` is the BS.2051 label: layer (M mid, U upper), then azimuth in degrees, + =
left. BS.2051 layers: M at 0 deg elevation, U at 30 deg (all BS.2051 systems above); Dolby's
7.1.2 and 9.1.6 put their tops at 45 deg (L/R +-30, Lw/Rw +-60, Lss/Rss +-90, Lrs/Rrs +-135,
Ltf/Rtf +-45, Ltm/Rtm +-90, Ltr/Rtr +-135 azimuth). Their order extends 7.1.4's: the 7.1 bed,
then the wides, then the tops front to back (L R C LFE Lss Rss Lrs Rrs Lw Rw Ltf Rtf Ltm Rtm Ltr
Rtr).

The LFE channel gets no object content (silent), as the EBU renderer does for objects: bass
management is the playback system's job.

:class:`PointSourcePanner` implements BS.2127 section 6.1 from the specification: the convex
hull of the loudspeakers (plus extra loudspeakers that fill a missing upper or lower layer and
are downmixed to the mid-layer loudspeaker below/above them, and virtual loudspeakers at the
poles where the layout has none, downmixed with equal power to their neighbours), VBAP on each
triangle, the bilinear quad rule on four-loudspeaker faces, and power normalisation. Its gains
match the EBU ADM Renderer's ``ear.core.point_source`` to rounding (measured: 3e-14 dB at most
over 3164 directions on every layout here; 7.1.2 and 9.1.6 against ear given their positions).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    import soundfile as sf

__all__ = [
    "Speaker",
    "Layout",
    "LAYOUTS",
    "layout",
    "PointSourcePanner",
    "panner",
    "cartesian",
    "set_wav_channel_map",
]

log = logging.getLogger(__name__)

# libsndfile's channel-map ids (sndfile.h, SF_CHANNEL_MAP_*) of the WAVEFORMATEXTENSIBLE speaker
# bits; libsndfile writes the dwChannelMask from them (wav.c: channel_mask_bits).
_SF_L, _SF_R, _SF_C, _SF_LFE, _SF_BL, _SF_BR, _SF_SL, _SF_SR = 2, 3, 4, 11, 9, 10, 14, 15
_SF_TFL, _SF_TFR, _SF_TBL, _SF_TBR = 17, 18, 20, 21
# WAVEFORMATEXTENSIBLE bit of each id: a valid mask lists the channels in increasing bit order.
_WAVEX_BIT = {_SF_L: 0, _SF_R: 1, _SF_C: 2, _SF_LFE: 3, _SF_BL: 4, _SF_BR: 5, _SF_SL: 9, _SF_SR: 10,
              _SF_TFL: 12, _SF_TFR: 14, _SF_TBL: 15, _SF_TBR: 17}  # fmt: skip
#: libsndfile's sf_command code that sets a channel map (sndfile.h: SFC_SET_CHANNEL_MAP_INFO).
_SFC_SET_CHANNEL_MAP_INFO = 0x1101


@dataclass(frozen=True)
class Speaker:
    """One loudspeaker (or the LFE channel) of a layout.

    Attributes
    ----------
    name : str
        BS.2051 label (``M+030``, ``U-110``, ``LFE1``).
    az_deg, el_deg : float
        Direction in degrees (+az = left, +el = up). Meaningless for the LFE.
    is_lfe : bool
        The LFE channel (no object content).
    wav_id : int or None
        libsndfile channel-map id of its WAVE_FORMAT_EXTENSIBLE speaker position (None: none fits).
    """

    name: str
    az_deg: float
    el_deg: float
    is_lfe: bool = False
    wav_id: int | None = None


@dataclass(frozen=True)
class Layout:
    """A loudspeaker layout: channels in output order.

    Attributes
    ----------
    name : str
        Gravity's name of the format (``5.1``, ``7.1.4``, ``4+9+0``...).
    bs2051 : str or None
        The ITU-R BS.2051 system (``0+5+0``), None for Dolby's 7.1.2 and 9.1.6.
    speakers : tuple of Speaker
        The channels, in output order.
    """

    name: str
    bs2051: str | None
    speakers: tuple[Speaker, ...]

    @property
    def n_channels(self) -> int:
        """Output channels, the LFE included."""
        return len(self.speakers)

    @property
    def channel_names(self) -> tuple[str, ...]:
        """BS.2051 labels in output order."""
        return tuple(s.name for s in self.speakers)

    @property
    def main(self) -> NDArray[np.intp]:
        """Indices of the channels that are not LFE (the panned loudspeakers)."""
        return np.array([i for i, s in enumerate(self.speakers) if not s.is_lfe], np.intp)

    @property
    def wav_channel_map(self) -> tuple[int, ...] | None:
        """The libsndfile channel map that gives a WAVE_FORMAT_EXTENSIBLE mask, or None.

        A channel mask can only list speakers in its own bit order (FL FR FC LFE BL BR ... SL SR
        TFL ...). The BS.2051 order puts the side pair M+-090 before the rear pair M+-135, which
        a mask cannot say: layouts with side loudspeakers (7.1, 7.1.x, 9.1.6, 4+9+0) get None
        (a plain WAV without a mask) rather than a mask that would misplace them. 5.1, 5.1.2 and
        5.1.4 fit (M+-110 as the back pair, U+-030 as top front, U+-110 as top back).
        """
        ids = [s.wav_id for s in self.speakers]
        if any(i is None for i in ids):
            return None
        bits = [_WAVEX_BIT[i] for i in ids if i is not None]
        if any(b <= a for a, b in zip(bits, bits[1:], strict=False)):
            return None
        return tuple(i for i in ids if i is not None)

    @property
    def bs1770_weights(self) -> NDArray[np.float64]:
        """ITU-R BS.1770-4 channel weights for loudness (Table 3).

        1.41 for loudspeakers at 60..120 deg azimuth (either side) below 30 deg elevation, 0
        for the LFE, 1.0 for every other channel.
        """
        w = []
        for s in self.speakers:
            side = 60.0 <= abs(s.az_deg) <= 120.0 and abs(s.el_deg) < 30.0
            w.append(0.0 if s.is_lfe else (1.41 if side else 1.0))
        return np.array(w)


def _sp(name: str, el: float | None = None) -> Speaker:
    """A speaker from its BS.2051 label (``U+045``); ``el`` overrides the layer's elevation."""
    if name.startswith("LFE"):
        return Speaker(name, 0.0, -30.0, is_lfe=True, wav_id=_SF_LFE)
    layer, screen = name[0], name[2:] == "SC"
    az = (15.0 if name[1] == "+" else -15.0) if screen else float(name[1:])
    elev = {"M": 0.0, "U": 30.0}[layer] if el is None else el
    left = az > 0
    wav: int | None = None
    if layer == "M" and abs(az) < 1e-9:
        wav = _SF_C
    elif layer == "M" and abs(az) <= 30:
        wav = _SF_L if left else _SF_R
    elif layer == "M" and 100 <= abs(az) <= 150:
        wav = _SF_BL if left else _SF_BR
    elif layer == "M" and abs(az) == 90:
        wav = _SF_SL if left else _SF_SR
    elif layer == "U" and abs(az) <= 45:
        wav = _SF_TFL if left else _SF_TFR
    elif layer == "U" and abs(az) >= 110:
        wav = _SF_TBL if left else _SF_TBR
    if screen:
        wav = None  # front left/right of centre: a mask would need them before the back pair
    return Speaker(name, az, elev, wav_id=wav)


def _layout(name: str, bs2051: str | None, labels: str, top_el: float | None = None) -> Layout:
    return Layout(name, bs2051, tuple(_sp(s, top_el if s[0] == "U" else None) for s in labels.split()))


_FRONT = "M+030 M-030 M+000 LFE1"
_SEVEN = _FRONT + " M+090 M-090 M+135 M-135"
_ALL = (
    _layout("5.1", "0+5+0", _FRONT + " M+110 M-110"),
    _layout("5.1.2", "2+5+0", _FRONT + " M+110 M-110 U+030 U-030"),
    _layout("5.1.4", "4+5+0", _FRONT + " M+110 M-110 U+030 U-030 U+110 U-110"),
    _layout("7.1", "0+7+0", _SEVEN),
    _layout("7.1.2", None, _SEVEN + " U+090 U-090", top_el=45.0),
    _layout("7.1.4", "4+7+0", _SEVEN + " U+045 U-045 U+135 U-135"),
    _layout("9.1.6", None, _SEVEN + " M+060 M-060 U+045 U-045 U+090 U-090 U+135 U-135", top_el=45.0),
    _layout("4+9+0", "4+9+0", _SEVEN + " U+045 U-045 U+135 U-135 M+SC M-SC"),
)
#: Every loudspeaker format by name: the channel-based names and the BS.2051 system names
#: (``0+5+0`` is ``5.1``: same channels, same order).
LAYOUTS: dict[str, Layout] = {lay.name: lay for lay in _ALL} | {lay.bs2051: lay for lay in _ALL if lay.bs2051}


def layout(name: str) -> Layout:
    """The layout called ``name`` (a key of :data:`LAYOUTS`); KeyError naming the known ones."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise KeyError(f"unknown loudspeaker layout {name!r}; known: {sorted(LAYOUTS)}") from None


def cartesian(az_deg: ArrayLike, el_deg: ArrayLike) -> NDArray[np.float64]:
    """Unit vectors of directions, ADM axes: x right, y front, z up.

    Parameters
    ----------
    az_deg, el_deg : array_like
        Directions in degrees (+az = left, +el = up), broadcast to shape S.

    Returns
    -------
    ndarray, shape S + (3,)
    """
    az, el = np.broadcast_arrays(np.radians(np.asarray(az_deg, float)), np.radians(np.asarray(el_deg, float)))
    return np.stack([-np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)], axis=-1)


def _ring_order(points: NDArray[np.float64], axis: NDArray[np.float64]) -> NDArray[np.intp]:
    """Order the corners of a convex polygon by their angle around ``axis`` (its normal)."""
    n = axis / np.linalg.norm(axis)
    u = np.cross(n, [1.0, 0.0, 0.0] if abs(n[0]) < 0.9 else [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    rel = points - points.mean(axis=0)
    return np.argsort(np.arctan2(rel @ v, rel @ u))


class PointSourcePanner:
    """Gains of a point source on a loudspeaker layout (ITU-R BS.2127 section 6.1).

    Built once per layout (:func:`panner` caches it), then :meth:`gains` is vectorised over any
    number of directions (the renderer calls it for every voice at every hop).

    Parameters
    ----------
    lay : Layout
        The layout; its LFE channels get zero gain.

    Notes
    -----
    Construction, following the specification:

    1. The mid layer is the loudspeakers within +-10 deg elevation, the upper layer 10..70 deg,
       the lower layer -70..-10 deg. For the upper and the lower layer: where the layer has
       loudspeakers, every mid-layer loudspeaker more than 40 deg outside the layer's azimuth
       range gets an *extra* loudspeaker above (below) it at the layer's mean elevation; where
       it has none, every mid-layer loudspeaker gets one at +-30 deg. An extra loudspeaker's
       gain goes to the mid-layer loudspeaker it copies. (So a 5.1 layout pans a source at
       20 deg elevation as at 0 deg, and one overhead to all five loudspeakers alike.)
    2. A *virtual* loudspeaker at the bottom pole, and one at the top unless the layout has
       T+000 or UH+180; its gain goes to its hull neighbours, each ``1 / sqrt(n)``.
    3. The convex hull of all of them; coplanar triangles merge into faces. Faces of three are
       VBAP triangles, faces of four use the quad rule (the source is at ``x`` along both edge
       pairs: bilinear gains ``(1-x)(1-y), x(1-y), xy, (1-x)y``), faces around a virtual
       loudspeaker become VBAP triangles fanned around it.
    4. A direction takes the first region that holds it (non-negative gains); the gains are
       downmixed (extra and virtual to real loudspeakers) and normalised to power 1.
    """

    #: Gains below this count as zero when deciding which region holds a direction.
    EPS = -1e-11

    def __init__(self, lay: Layout) -> None:
        from scipy.spatial import ConvexHull  # only where a loudspeaker format is used

        self.layout = lay
        main = [lay.speakers[i] for i in lay.main]
        n_real = len(main)
        az = np.array([s.az_deg for s in main])
        el = np.array([s.el_deg for s in main])
        verts = [cartesian(a, e) for a, e in zip(az, el, strict=True)]
        # The hull is taken on nominal positions, the gains on real ones: they differ for the extra
        # loudspeakers, which sit at the layer's nominal +-30 deg for the hull and at its mean
        # elevation for the gains (Dolby's 45-deg tops make a 7.1.2 differ).
        nominal = list(verts)
        source = list(range(n_real))  # ext vertex -> real loudspeaker it downmixes to
        # 1. extra loudspeakers where a layer is missing or narrower than the mid layer
        mid = np.flatnonzero(np.abs(el) <= 10.0)
        for lo, hi, default_el in ((-70.0, -10.0, -30.0), (10.0, 70.0, 30.0)):
            layer = (el >= lo) & (el <= hi)
            limit = float(np.max(np.abs(az[layer]))) + 40.0 if layer.any() else 0.0
            layer_el = float(np.mean(el[layer])) if layer.any() else default_el
            for m in mid:
                if abs(az[m]) >= limit - 1e-5:
                    verts.append(cartesian(az[m], layer_el))
                    nominal.append(cartesian(az[m], default_el))
                    source.append(int(m))
        n_ext = len(verts)
        # 2. virtual loudspeakers at the poles
        poles = [np.array([0.0, 0.0, -1.0])]
        if not {"T+000", "UH+180"} & {s.name for s in main}:
            poles.append(np.array([0.0, 0.0, 1.0]))
        points = np.array(verts + poles)
        virtual = list(range(n_ext, len(points)))
        # 3. hull faces: triangles with (nearly) the same plane merge into one face
        hull = ConvexHull(np.array(nominal + poles))
        faces: list[tuple[NDArray[np.float64], set[int]]] = []
        for tri, eq in zip(hull.simplices, hull.equations, strict=True):
            for face_eq, face in faces:
                if np.linalg.norm(face_eq - eq) < 1e-5:
                    face.update(int(t) for t in tri)
                    break
            else:
                faces.append((eq, {int(t) for t in tri}))
        triangles: list[list[int]] = []
        quads: list[list[int]] = []
        down = np.zeros((n_real, len(points)))  # ext/virtual gains -> real loudspeakers
        for k, s in enumerate(source):
            down[s, k] = 1.0
        for v in virtual:
            ring = sorted(set().union(*(f for _, f in faces if v in f)) - {v})
            ordered = [ring[i] for i in _ring_order(points[ring], points[v])]
            triangles += [[ordered[i], ordered[(i + 1) % len(ordered)], v] for i in range(len(ordered))]
            down[:, v] = down[:, ordered].sum(axis=1) / np.sqrt(len(ordered))
        for eq, face in faces:
            if face & set(virtual):
                continue
            corners = sorted(face)
            if len(corners) == 3:
                triangles.append(corners)
            elif len(corners) == 4:
                quads.append([corners[i] for i in _ring_order(points[corners], eq[:3])])
            else:  # not in any BS.2051 layout; a fan keeps it usable
                ordered = [corners[i] for i in _ring_order(points[corners], eq[:3])]
                triangles += [[ordered[0], ordered[i], ordered[i + 1]] for i in range(1, len(ordered) - 1)]
        self.points = points
        self.triangles = np.array(triangles, np.intp)
        self.quads = np.array(quads, np.intp).reshape(-1, 4)
        self.downmix = down
        # VBAP: g = p @ inv(V), V's rows the triangle's corners
        inv = np.linalg.inv(points[self.triangles])  # (T, 3, 3)
        self._inv_flat = np.ascontiguousarray(inv.transpose(1, 0, 2).reshape(3, -1))  # p @ it: (R, T * 3)
        # Quad rule: the source lies in the plane through the origin and the points at x along
        # the edges a->b and d->c: p . ((a + x(b - a)) x (d + x(c - d))) = 0, a quadratic in x.
        self._qx = self._quad_poly(points[self.quads]) if len(self.quads) else np.zeros((0, 3, 3))
        rolled = points[self.quads][:, [1, 2, 3, 0]]
        self._qy = self._quad_poly(rolled) if len(self.quads) else np.zeros((0, 3, 3))
        self._channels = lay.main
        log.debug("panner %s: %d triangles, %d quads, %d extra + %d virtual loudspeakers",
                  lay.name, len(self.triangles), len(self.quads), n_ext - n_real, len(virtual))  # fmt: skip

    @staticmethod
    def _quad_poly(q: NDArray[np.float64]) -> NDArray[np.float64]:
        """Coefficients (x^2, x, 1) of the quad rule's quadratic, as vectors dotted with p: (Q, 3, 3)."""
        a, b, c, d = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
        return np.stack([np.cross(b - a, c - d), np.cross(a, c - d) + np.cross(b - a, d), np.cross(a, d)], axis=1)

    @staticmethod
    def _unit_root(poly: NDArray[np.float64], p: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """The root in [0, 1] of ``(poly . p)`` for every direction and quad: (R, Q) values, found."""
        a2, a1, a0 = (p @ poly[:, k].T for k in range(3))
        disc = a1 * a1 - 4.0 * a2 * a0
        # a nearly double root (|imaginary part| < 1e-10) counts as real, as a polynomial solver's would
        tiny = (disc < 0) & (np.sqrt(np.maximum(-disc, 0.0)) < 2e-10 * np.abs(a2))
        disc = np.where(tiny, 0.0, disc)
        ok = disc >= 0
        sq = np.sqrt(np.maximum(disc, 0.0))
        # the numerically stable pair of roots: q / a2 and a0 / q
        q = -0.5 * (a1 + np.where(a1 >= 0, sq, -sq))
        with np.errstate(divide="ignore", invalid="ignore"):
            r1 = a0 / q
            r2 = q / a2
        eps = 1e-10
        in1 = ok & np.isfinite(r1) & (r1 > -eps) & (r1 < 1 + eps)
        in2 = ok & np.isfinite(r2) & (r2 > -eps) & (r2 < 1 + eps)
        root = np.where(in1, r1, np.where(in2, r2, 0.0))
        return np.clip(root, 0.0, 1.0), in1 | in2

    def gains(self, az_deg: ArrayLike, el_deg: ArrayLike) -> NDArray[np.float64]:
        """Loudspeaker gains of point sources, power-normalised, LFE silent.

        Parameters
        ----------
        az_deg, el_deg : array_like
            Directions in degrees (+az = left, +el = up), broadcast to shape S.

        Returns
        -------
        ndarray, shape S + (n_channels,)
            Linear gains in the layout's channel order; the sum of squares is 1 and the LFE
            channels are 0.
        """
        az, el = np.broadcast_arrays(np.asarray(az_deg, float), np.asarray(el_deg, float))
        p = cartesian(az.ravel(), el.ravel())  # (R, 3)
        n_r, n_t = len(p), len(self.triangles)
        ext = np.zeros((n_r, len(self.points)))
        g = (p @ self._inv_flat).reshape(n_r, n_t, 3)  # VBAP gains of every triangle
        inside = np.all(g >= self.EPS, axis=2)
        found = inside.any(axis=1)
        rows = np.flatnonzero(found)
        t = np.argmax(inside[rows], axis=1)  # the first triangle that holds the direction
        ext[rows[:, None], self.triangles[t]] = np.clip(g[rows, t], 0.0, None)
        rest = np.flatnonzero(~found)
        if rest.size and len(self.quads):
            pr = p[rest]
            x, okx = self._unit_root(self._qx, pr)
            y, oky = self._unit_root(self._qy, pr)
            w = np.stack([(1 - x) * (1 - y), x * (1 - y), x * y, (1 - x) * y], axis=-1)  # (R', Q, 4)
            # the plane equations hold for -p too: keep the quad whose gains point towards p
            facing = np.sum(w * (pr @ self.points.T)[:, self.quads], axis=-1) > 0
            hit = okx & oky & facing
            has = hit.any(axis=1)
            sel = np.flatnonzero(has)
            qi = np.argmax(hit[sel], axis=1)
            ext[rest[sel, None], self.quads[qi]] = w[sel, qi]
            found[rest[sel]] = True
        lost = np.flatnonzero(~found)
        if lost.size:  # never seen on a BS.2051 layout: fall back to the nearest loudspeaker
            log.warning("panner %s: %d direction(s) in no region, sent to the nearest loudspeaker",
                        self.layout.name, lost.size)  # fmt: skip
            ext[lost, np.argmax(p[lost] @ self.points.T, axis=1)] = 1.0
        real = ext @ self.downmix.T
        real /= np.maximum(np.linalg.norm(real, axis=1, keepdims=True), 1e-300)
        out = np.zeros((len(p), self.layout.n_channels))
        out[:, self._channels] = real
        return out.reshape(az.shape + (self.layout.n_channels,))


@cache
def panner(name: str) -> PointSourcePanner:
    """The (cached) :class:`PointSourcePanner` of the layout called ``name``."""
    return PointSourcePanner(layout(name))


def set_wav_channel_map(f: sf.SoundFile, lay: Layout) -> bool:
    """Give a WAVE_FORMAT_EXTENSIBLE file being written the layout's channel mask.

    python-soundfile has no call for it, so this issues libsndfile's own command
    (``SFC_SET_CHANNEL_MAP_INFO``) on the open file; libsndfile writes the mask into the header.

    Parameters
    ----------
    f : soundfile.SoundFile
        Opened for writing with ``format="WAVEX"`` and ``lay.n_channels`` channels, nothing
        written yet.
    lay : Layout
        The layout; :attr:`Layout.wav_channel_map` must not be None.

    Returns
    -------
    bool
        Whether libsndfile took the map (False: the file keeps libsndfile's default mask).
    """
    from soundfile import _ffi, _snd  # libsndfile's own command: python-soundfile has no call for it

    ids = lay.wav_channel_map
    if ids is None or len(ids) != f.channels:
        return False
    arr = _ffi.new("int[]", list(ids))
    return bool(_snd.sf_command(f._file, _SFC_SET_CHANNEL_MAP_INFO, arr, _ffi.sizeof(arr)))
