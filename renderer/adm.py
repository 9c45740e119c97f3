"""A scene as ADM metadata (ITU-R BS.2076-2, EBU Tech 3364): the ``axml`` and ``chna`` of a BW64 export.

One ``audioProgramme`` (``APR_1001``) holds one ``audioContent`` (``ACO_1001``) that holds one
``audioObject`` per scene object, in scene order. For object ``i`` (0-based) and file track
``k`` (0-based, one per member stem of each object, in scene order):

=====================  ===================================  ============================================
element                ID                                   holds
=====================  ===================================  ============================================
audioObject            ``AO_{1001+i:04X}``                  the object's pack and its tracks' UIDs
audioPackFormat        ``AP_0003{1001+i:04X}``              type Objects; one channel format per stem;
                                                            ``absoluteDistance`` (metres of distance 1)
audioChannelFormat     ``AC_0003{1001+k:04X}``              type Objects; the audioBlockFormats
audioBlockFormat       ``AB_0003{1001+k:04X}_{n:08X}``      n = 1, 2, ... in time order
audioStreamFormat      ``AS_0001{1001+k:04X}``              PCM; refers to the channel and track format
audioTrackFormat       ``AT_0001{1001+k:04X}_01``           PCM; refers to the stream format
audioTrackUID          ``ATU_{k+1:08X}``                    track k + 1 of the file (``chna``)
=====================  ===================================  ============================================

Grouped objects (documented choice): an object with several stems is one audioObject whose
pack holds one channel format and one file track per stem, every channel with the object's
blocks. Summing them into one track would render the same (panning is linear: the EBU ADM
Renderer's output for the separate tracks equals that of their sum, tested) but would take the
stems apart from the producer in the DAW; separate tracks lose nothing.

Block formats (``cartesian`` 0, polar, BS.2076's conventions, which are Gravity's: azimuth
degrees positive = left, elevation degrees up):

* A static object has one block from 0 to the end of the file.
* A moving object's blocks follow :func:`gravity.motion.positions_at` (the one place positions
  are computed, as for the renderer and the bridge) on the renderer's time base: motion
  ``t`` = seconds / section length (the scene's ``timing``, else the file's length). Block
  boundaries sit on every keyframe, and between keyframes the path is cut so that no block
  moves more than :data:`MAX_STEP_DEG` degrees nor changes its gain more than
  :data:`MAX_STEP_DB` dB (nor lasts less than :data:`MIN_BLOCK_S`). Each block's position is
  where the path is at the block's end, with ``jumpPosition`` 0: a renderer interpolates from
  the previous block's position over the whole block, so the object glides along the path. A
  BS.2127 renderer interpolates loudspeaker gains linearly between blocks; with 5-degree blocks
  that path stays within 0.11 dB in level and 0.15 degrees in direction (energy vector) of the
  gains panned at every point (measured with the EBU renderer's point-source panner on 0+5+0
  and 4+5+0; 10-degree blocks: 0.44 dB, 0.49 degrees). The first block (:data:`FIRST_BLOCK_S`)
  holds the start position with ``jumpPosition`` 1, so that the glide starts where the path does.
* Times are ``hh:mm:ss.zzzzz`` (BS.2076's 10-microsecond grid), exact: each block's ``rtime``
  plus ``duration`` is the next block's ``rtime``, and the last block ends at the first grid
  time at or after the last sample.

Values (documented choices):

* ``distance`` is normalised to ``reference_distance_m`` (:class:`renderer.config.RenderConfig`,
  1 m by default, the pack's ``absoluteDistance``): ``min(1, metres / reference)``. 1.0 is the
  loudspeaker sphere (BS.2076 / BS.2127), where Gravity's distance gain is 0 dB; a nearer
  object comes inside it (a BS.2127 renderer widens it as it nears the head), a farther one
  stays on it and is quieter (below). Normalising to a far ``dmax`` instead (the bridge's
  ADM-OSC default of 10 m) would put a 1.5 m lead vocal at 0.15, which BS.2127 spreads over
  about 190 degrees.
* ``gain`` (linear) is the object's ``gain_db`` times Gravity's distance gain
  (:func:`renderer.sources.distance_gain`, 1/r from ``reference_distance_m``, clamped at
  ``near_clamp_m``): ADM renderers do not attenuate with distance, so the depth the scene
  gives by level travels in the gain, and the export plays at the balance of ``gravity render``.
* ``width`` is the object's angular extent in degrees: ``2 * max_spread_deg * width``, the span
  Gravity's renderer spreads it over (+-60 degrees at width 1); ``height`` and ``depth`` 0.
* Not carried: reverb send and early reflections (ADM has no room send: the DAW's own reverb
  takes that role), air absorption.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gravity.motion import angle_between
from gravity.scene import Scene, SceneObject

from .bw64 import ChnaEntry
from .config import RenderConfig
from .errors import RenderError
from .sources import distance_gain

__all__ = [
    "AdmBlock",
    "AdmExport",
    "build_adm",
    "object_blocks",
    "adm_time",
    "TICKS_PER_S",
    "MAX_STEP_DEG",
    "MAX_STEP_DB",
    "MIN_BLOCK_S",
    "FIRST_BLOCK_S",
    "NAMESPACE",
]

#: ADM times are written to 5 decimals of a second: 100 000 ticks a second.
TICKS_PER_S = 100_000
#: Largest angle in degrees a moving object's path covers in one block.
MAX_STEP_DEG = 5.0
#: Largest gain change in dB (distance moves) in one block.
MAX_STEP_DB = 1.0
#: Shortest block in seconds a path is cut into (a fast orbit: 100 blocks a second at most).
MIN_BLOCK_S = 0.01
#: Length in seconds of a moving object's first block, which holds its start position.
FIRST_BLOCK_S = 0.005
#: The XML namespace of the document (EBU Core, as BS.2076-2 writes it).
NAMESPACE = "urn:ebu:metadata-schema:ebuCore_2016"
_FIRST_ID = 0x1001  # IDs 0x0001..0x0FFF belong to the common definitions (BS.2094)
_MAX_IDS = 0xFFFF - _FIRST_ID + 1


@dataclass(frozen=True)
class AdmBlock:
    """One audioBlockFormat of an object.

    Attributes
    ----------
    rtime, duration : int
        Start and length in ticks (:data:`TICKS_PER_S` a second).
    azimuth, elevation : float
        Degrees; azimuth positive = left.
    distance : float
        Normalised, 0..1 (1 = ``reference_distance_m``).
    width : float
        Angular extent in degrees.
    gain : float
        Linear gain (object gain times distance gain).
    jump : bool
        True: the position holds from the block's start (``jumpPosition`` 1); False: a renderer
        interpolates to it from the previous block over the whole block.
    """

    rtime: int
    duration: int
    azimuth: float
    elevation: float
    distance: float
    width: float
    gain: float
    jump: bool


@dataclass(frozen=True)
class AdmExport:
    """The ADM of a scene for a file of given tracks and length.

    Attributes
    ----------
    axml : bytes
        The XML document (UTF-8).
    chna : tuple of ChnaEntry
        One row per file track.
    tracks : tuple of (str, str)
        (object id, stem id) of each file track, in file order.
    blocks : tuple of list of AdmBlock
        Each object's blocks, in scene order.
    end : int
        Programme end in ticks (the last block's end).
    """

    axml: bytes
    chna: tuple[ChnaEntry, ...]
    tracks: tuple[tuple[str, str], ...]
    blocks: tuple[list[AdmBlock], ...]
    end: int


def adm_time(ticks: int) -> str:
    """ADM time ``hh:mm:ss.zzzzz`` of ``ticks`` (1/100000 s)."""
    s, frac = divmod(int(ticks), TICKS_PER_S)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{frac:05d}"


def _num(v: float) -> str:
    return f"{float(v) + 0.0:.5f}"  # + 0.0: no "-0.00000"


def _values(obj: SceneObject, pos: np.ndarray, cfg: RenderConfig) -> tuple[np.ndarray, np.ndarray]:
    """(normalised distance, linear gain) at positions ``pos`` (N, 3) of ``obj``."""
    d = pos[:, 2]
    gain = 10.0 ** (obj.gain_db / 20.0) * distance_gain(d, cfg.reference_distance_m, cfg.near_clamp_m)
    return np.clip(d / cfg.reference_distance_m, 0.0, 1.0), gain


def _steps(obj: SceneObject, a: float, b: float, section_s: float, cfg: RenderConfig) -> int:
    """Blocks the path from ``a`` to ``b`` seconds is cut into (see the module docstring)."""
    t = np.linspace(a, b, 9) / section_s
    p = obj.position_at(t)
    angle = float(np.sum(angle_between(p[:-1, 0], p[:-1, 1], p[1:, 0], p[1:, 1])))
    db = 20.0 * np.log10(_values(obj, p, cfg)[1])
    n = max(1, math.ceil(angle / MAX_STEP_DEG - 1e-9), math.ceil(float(np.ptp(db)) / MAX_STEP_DB - 1e-9))
    return max(1, min(n, int((b - a) / MIN_BLOCK_S)))


def object_blocks(obj: SceneObject, section_s: float, end: int, config: RenderConfig | None = None) -> list[AdmBlock]:
    """The audioBlockFormats of one object over 0 .. ``end`` ticks.

    Parameters
    ----------
    obj : SceneObject
        The object (its keyframes, width, gain).
    section_s : float
        Seconds of motion time 0..1 (the renderer's time base).
    end : int
        Programme length in ticks.
    config : RenderConfig, optional
        ``reference_distance_m``, ``near_clamp_m`` and ``max_spread_deg``.

    Returns
    -------
    list of AdmBlock
        Consecutive blocks from 0 to ``end`` (one for a static object).
    """
    cfg = config or RenderConfig()
    width = min(360.0, 2.0 * cfg.max_spread_deg * obj.width)

    def blocks_at(ticks: Sequence[int], pos: np.ndarray, first_jump: bool) -> list[AdmBlock]:
        dist, gain = _values(obj, pos, cfg)
        return [
            AdmBlock(t0, t1 - t0, float(p[0]), float(p[1]), float(d), width, float(g), first_jump and i == 0)
            for i, (t0, t1, p, d, g) in enumerate(zip(ticks[:-1], ticks[1:], pos, dist, gain, strict=True))
        ]

    if obj.is_static or not math.isfinite(section_s) or section_s <= 0:
        return blocks_at([0, end], obj.keyframes[:1, 1:], False)
    end_s = end / TICKS_PER_S
    knots = sorted({0.0, end_s} | {float(t) * section_s for t in obj.keyframes[:, 0] if 0 < t * section_s < end_s})
    times = [0.0]
    for a, b in zip(knots[:-1], knots[1:], strict=True):
        n = _steps(obj, a, b, section_s, cfg)
        times += [a + (b - a) * i / n for i in range(1, n + 1)]
    ticks = sorted({round(s * TICKS_PER_S) for s in times} | {end})
    first = round(FIRST_BLOCK_S * TICKS_PER_S)
    if len(ticks) > 1 and ticks[1] > first:
        ticks.insert(1, first)
    # block 1 holds the start; block i > 1 glides to where the path is at its end
    when = np.array([0] + ticks[2:], float) / TICKS_PER_S / section_s
    return blocks_at(ticks, obj.position_at(when), True)


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    e = ET.SubElement(parent, tag, attrib)
    if text is not None:
        e.text = text
    return e


def _block_xml(parent: ET.Element, block_id: str, b: AdmBlock) -> None:
    e = _el(parent, "audioBlockFormat", audioBlockFormatID=block_id, rtime=adm_time(b.rtime),
            duration=adm_time(b.duration))  # fmt: skip
    # the order of the EBU Core schema's sequence: position, cartesian, gain, width, jumpPosition
    _el(e, "position", _num(b.azimuth), coordinate="azimuth")
    _el(e, "position", _num(b.elevation), coordinate="elevation")
    _el(e, "position", _num(b.distance), coordinate="distance")
    _el(e, "cartesian", "0")
    _el(e, "gain", _num(b.gain))
    _el(e, "width", _num(b.width))
    _el(e, "jumpPosition", "1" if b.jump else "0")


def build_adm(
    scene: Scene,
    n_frames: int,
    rate: int,
    *,
    bits: int = 24,
    name: str = "Gravity scene",
    config: RenderConfig | None = None,
) -> AdmExport:
    """The ADM document and ``chna`` rows of ``scene`` for a file of ``n_frames`` at ``rate``.

    Parameters
    ----------
    scene : Scene
        The scene; each object's ``stems`` become its tracks.
    n_frames : int
        Samples per track of the file.
    rate : int
        Sample rate in Hz.
    bits : int
        Bits per sample of the file's PCM (the audioTrackUIDs' ``bitDepth``).
    name : str
        audioProgramme and audioContent name.
    config : RenderConfig, optional
        Distance and width settings (see the module docstring).

    Returns
    -------
    AdmExport

    Raises
    ------
    RenderError
        More objects or tracks than ADM IDs can number (61439).
    """
    cfg = config or RenderConfig()
    tracks = tuple((o.id, sid) for o in scene.objects for sid in o.stems)
    if len(scene.objects) > _MAX_IDS or len(tracks) > _MAX_IDS:
        raise RenderError(f"{len(tracks)} tracks of {len(scene.objects)} objects: ADM IDs number at most {_MAX_IDS}")
    end = -(-n_frames * TICKS_PER_S // rate)  # the first grid time at or after the last sample
    section_s = scene.section_s(n_frames / rate) or 0.0
    blocks = tuple(object_blocks(o, section_s, end, cfg) for o in scene.objects)

    root = ET.Element("ebuCoreMain", {"xmlns": NAMESPACE})
    afx = _el(_el(_el(root, "coreMetadata"), "format"), "audioFormatExtended", version="ITU-R_BS.2076-2")
    prog = _el(afx, "audioProgramme", audioProgrammeID="APR_1001", audioProgrammeName=name,
               start=adm_time(0), end=adm_time(end))  # fmt: skip
    _el(prog, "audioContentIDRef", "ACO_1001")
    content = _el(afx, "audioContent", audioContentID="ACO_1001", audioContentName=name)
    objects, packs, channels, streams, track_formats, uids = [], [], [], [], [], []
    chna: list[ChnaEntry] = []
    k = 0
    for i, (o, obj_blocks) in enumerate(zip(scene.objects, blocks, strict=True)):
        oid, pid = f"AO_{_FIRST_ID + i:04X}", f"AP_0003{_FIRST_ID + i:04X}"
        _el(content, "audioObjectIDRef", oid)
        obj = ET.Element("audioObject", audioObjectID=oid, audioObjectName=o.id)
        _el(obj, "audioPackFormatIDRef", pid)
        pack = ET.Element("audioPackFormat", audioPackFormatID=pid, audioPackFormatName=o.id, typeLabel="0003",
                          typeDefinition="Objects")  # fmt: skip
        for sid in o.stems:
            n = _FIRST_ID + k
            cid, sfid, tfid, uid = f"AC_0003{n:04X}", f"AS_0001{n:04X}", f"AT_0001{n:04X}_01", f"ATU_{k + 1:08X}"
            _el(obj, "audioTrackUIDRef", uid)
            _el(pack, "audioChannelFormatIDRef", cid)
            ch = ET.Element("audioChannelFormat", audioChannelFormatID=cid, audioChannelFormatName=sid,
                            typeLabel="0003", typeDefinition="Objects")  # fmt: skip
            for j, b in enumerate(obj_blocks, 1):
                _block_xml(ch, f"AB_0003{n:04X}_{j:08X}", b)
            channels.append(ch)
            sf = ET.Element("audioStreamFormat", audioStreamFormatID=sfid, audioStreamFormatName=f"PCM_{sid}",
                            formatLabel="0001", formatDefinition="PCM")  # fmt: skip
            _el(sf, "audioChannelFormatIDRef", cid)
            _el(sf, "audioTrackFormatIDRef", tfid)
            streams.append(sf)
            tf = ET.Element("audioTrackFormat", audioTrackFormatID=tfid, audioTrackFormatName=f"PCM_{sid}",
                            formatLabel="0001", formatDefinition="PCM")  # fmt: skip
            _el(tf, "audioStreamFormatIDRef", sfid)
            track_formats.append(tf)
            u = ET.Element("audioTrackUID", UID=uid, sampleRate=str(rate), bitDepth=str(bits))
            _el(u, "audioTrackFormatIDRef", tfid)
            _el(u, "audioPackFormatIDRef", pid)
            uids.append(u)
            chna.append(ChnaEntry(k + 1, uid, tfid, pid))
            k += 1
        _el(pack, "absoluteDistance", _num(cfg.reference_distance_m))
        objects.append(obj)
        packs.append(pack)
    # the schema's order of the lists: objects, packs, channels, streams, tracks, UIDs
    afx.extend(objects + packs + channels + streams + track_formats + uids)
    ET.indent(root, space=" ")
    axml = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return AdmExport(axml=axml, chna=tuple(chna), tracks=tracks, blocks=blocks, end=end)
