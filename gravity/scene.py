"""The scene: objects around the listener (typed view of ``scene.schema.json``).

This is the currency between rooms: the renderer and the bridge read a :class:`Scene`, and ask
it (through :mod:`gravity.motion`) where each object is at a given time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from gravity.atomic import atomic_path
from gravity.errors import ValidationError
from gravity.motion import keyframes_array, positions_at, section_seconds
from gravity.schema import check_scene, read_json

__all__ = ["SceneObject", "Scene", "dumps", "write_json_atomic"]


@dataclass(frozen=True)
class SceneObject:
    """One audio object.

    Attributes
    ----------
    id, cls : str
        Object id and class.
    stems : tuple of str
        Member stem ids (just ``(id,)`` for a single-stem object).
    keyframes : np.ndarray [shape=(K, 4)]
        Rows (t, az_deg, el_deg, dist_m); t normalised section time, az positive = left.
    width : float
        0 = point, 1 = widest.
    gain_db : float
        Object gain in dB.
    reverb_send, early_reflections : float
        Linear 0..1.
    """

    id: str
    cls: str
    stems: tuple[str, ...]
    keyframes: np.ndarray = field(repr=False)
    width: float
    gain_db: float
    reverb_send: float
    early_reflections: float

    @property
    def is_static(self) -> bool:
        """Whether every keyframe holds the same position."""
        return bool(np.all(self.keyframes[:, 1:] == self.keyframes[0, 1:]))

    def position_at(self, t: Any) -> np.ndarray:
        """(az_deg, el_deg, dist_m) at normalised time(s) ``t`` in [0, 1]."""
        return positions_at(self.keyframes, t)


@dataclass(frozen=True)
class Scene:
    """A validated scene; ``raw`` is the JSON document it was built from."""

    layout: str
    room_preset: str
    loudness_target_lufs: float
    objects: tuple[SceneObject, ...]
    constraints_applied: tuple[str, ...]
    bpm: float | None = None
    time_signature: str = "4/4"
    section_bars: int | None = None
    section: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "") -> "Scene":
        """Validate and wrap a scene document; raises :class:`ValidationError`."""
        issues = check_scene(d)
        if issues:
            raise ValidationError(issues, source)
        objs = []
        for o in d["objects"]:
            motion = o.get("motion") or [
                {"t": 0.0, "az_deg": o["az_deg"], "el_deg": o["el_deg"], "dist_m": o["dist_m"]}
            ]
            objs.append(
                SceneObject(
                    id=o["id"],
                    cls=o["class"],
                    stems=tuple(o.get("stems", [o["id"]])),
                    keyframes=keyframes_array(motion),
                    width=float(o["width"]),
                    gain_db=float(o["gain_db"]),
                    reverb_send=float(o["reverb_send"]),
                    early_reflections=float(o["early_reflections"]),
                )
            )
        bed, timing = d["bed"], d.get("timing", {})
        return cls(
            layout=bed["layout"],
            room_preset=bed.get("room_preset", "studio_small"),
            loudness_target_lufs=float(bed.get("loudness_target_lufs", -16.0)),
            objects=tuple(objs),
            constraints_applied=tuple(d.get("constraints_applied", [])),
            bpm=timing.get("bpm"),
            time_signature=timing.get("time_signature", "4/4"),
            section_bars=timing.get("section_bars"),
            section=timing.get("section"),
            raw=d,
        )

    @classmethod
    def load(cls, path: str | Path) -> "Scene":
        """Read and validate a scene JSON file."""
        return cls.from_dict(read_json(path), str(path))  # validated once, by from_dict

    def section_s(self, fallback_s: float | None = None) -> float | None:
        """Section length in seconds from ``timing``; ``fallback_s`` when the scene has none."""
        if self.bpm and self.section_bars:
            return section_seconds(self.bpm, self.time_signature, self.section_bars)
        return fallback_s

    def positions_at(self, t: float) -> np.ndarray:
        """Every object's (az_deg, el_deg, dist_m) at normalised time ``t``: shape (objects, 3)."""
        if not self.objects:
            return np.zeros((0, 3))
        return np.stack([o.position_at(t) for o in self.objects])


def dumps(doc: Any, indent: int | None = 2) -> str:
    """Stable JSON text (keys in insertion order, newline at the end)."""
    return json.dumps(doc, indent=indent, ensure_ascii=False, allow_nan=False) + "\n"


def write_json_atomic(doc: Any, path: str | Path) -> Path:
    """Write JSON to ``path`` via a temp file + rename, so a failure leaves no partial file."""
    p = Path(path)
    text = dumps(doc)
    with atomic_path(p) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return p
