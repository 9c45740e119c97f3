"""Scenes ready for the frame thread: object numbering, prepared scenes and the scene book.

Object numbers are stable for the whole session: object ``n`` is the ``n``-th stem of the
request (the renderer's input ``n``), whatever scene is playing. A grouped scene object (one
object, several stems) drives every member stem's number; a stem the current scene does not
contain is inactive (muted by the targets, not moved). Scenes loaded from files may bring
stems the request does not know; they get the next free numbers.

A :class:`PreparedScene` evaluates every object's position at a normalised section time
through :meth:`gravity.scene.SceneObject.position_at` (that is, :func:`gravity.motion.positions_at`,
the one place positions are computed), so the wire equals what the renderer plays.
A :class:`SceneBook` maps section names to prepared scenes; the planner worker publishes a new
book by swapping one reference, the frame thread only ever reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

from gravity.request import Request
from gravity.scene import Scene

__all__ = ["MAX_OBJECTS", "ObjectMap", "PreparedScene", "SceneBook", "section_key"]

MAX_OBJECTS = 1024
"""Most object numbers handed out in one session."""


def section_key(name: str | None) -> str | None:
    """Normalised section name used to look scenes up (case- and space-insensitive)."""
    return None if name is None else " ".join(name.split()).casefold()


@dataclass(frozen=True)
class ObjectMap:
    """Append-only stem id -> object number (1-based) mapping.

    Attributes
    ----------
    ids : tuple of str
        Stem ids; ``ids[k]`` is object number ``k + 1``.
    """

    ids: tuple[str, ...]
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Index the ids (stem id -> k)."""
        object.__setattr__(self, "_index", {s: k for k, s in enumerate(self.ids)})

    @classmethod
    def from_request(cls, request: Request) -> "ObjectMap":
        """Numbers in the request's stem order."""
        return cls(tuple(s.id for s in request.stems))

    def index(self, stem_id: str) -> int | None:
        """0-based index (object number - 1) of a stem, or None."""
        return self._index.get(stem_id)

    def extended(self, stem_ids: Iterable[str]) -> "ObjectMap":
        """This map plus unknown ``stem_ids`` appended (up to :data:`MAX_OBJECTS`); self if none."""
        new = [s for s in dict.fromkeys(stem_ids) if s not in self._index]
        if not new:
            return self
        return ObjectMap(self.ids + tuple(new[: max(0, MAX_OBJECTS - len(self.ids))]))

    def __len__(self) -> int:
        """The number of objects."""
        return len(self.ids)


class PreparedScene:
    """A validated scene bound to an object map, with static objects pre-evaluated.

    Parameters
    ----------
    scene : Scene
        The scene.
    omap : ObjectMap
        Numbering; must contain every stem of ``scene`` that should be heard.
    source : str
        Provenance label shown in the status line (``"planner"``, ``"file:x.json"``...).
    section : str or None
        Section name this scene was made for (None = default scene).
    fallback_section_s : float
        Section length in seconds when the scene has no ``timing`` of its own.
    crossfade_in : bool
        Whether the frame thread crossfades to this scene when it replaces another in the same
        section (a better plan: yes; a hand edit, :mod:`bridge.edits`: no, it goes out at once).
    """

    def __init__(
        self,
        scene: Scene,
        omap: ObjectMap,
        *,
        source: str,
        section: str | None,
        fallback_section_s: float,
        crossfade_in: bool = True,
    ) -> None:
        self.scene = scene
        self.crossfade_in = crossfade_in
        self.map = omap
        self.source = source
        self.section = section
        self.section_s = float(scene.section_s(fallback_section_s) or fallback_section_s)
        objs = scene.objects
        rows = np.full(len(omap), -1, dtype=np.intp)
        for j, o in enumerate(objs):
            for sid in o.stems:
                k = omap.index(sid)
                if k is not None:
                    rows[k] = j
        self.rows = rows
        self.active = rows >= 0
        self._take = np.where(self.active, rows, 0)
        self._moving = [j for j, o in enumerate(objs) if not o.is_static]
        self._static = np.zeros((max(1, len(objs)), 3))
        for j, o in enumerate(objs):
            if o.is_static:
                self._static[j] = o.position_at(0.0)
        self._gain = np.array([o.gain_db for o in objs] or [0.0], dtype=float)
        self._width = np.array([o.width for o in objs] or [0.0], dtype=float)

    @property
    def size(self) -> int:
        """Number of object numbers covered."""
        return len(self.map)

    def evaluate(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every numbered object's state at normalised section time ``t`` (clamped to 0..1).

        Returns
        -------
        aed : np.ndarray [shape=(N, 3)]
            Azimuth deg (+left), elevation deg, distance m (zeros where inactive).
        gain_db : np.ndarray [shape=(N,)]
        width : np.ndarray [shape=(N,)]
        active : np.ndarray [shape=(N,), dtype=bool]
        """
        t = min(1.0, max(0.0, float(t)))
        pos = self._static.copy()
        objs = self.scene.objects
        for j in self._moving:
            pos[j] = objs[j].position_at(t)
        take = self._take
        aed = pos[take]
        aed[~self.active] = 0.0
        return aed, self._gain[take], self._width[take], self.active.copy()


@dataclass(frozen=True)
class SceneBook:
    """Which prepared scene plays in which section (immutable; replaced, never edited).

    Attributes
    ----------
    map : ObjectMap
        The numbering every scene in the book was prepared with.
    default : PreparedScene
        Plays outside any known section.
    sections : mapping of str to PreparedScene
        Keyed by :func:`section_key` of the section (marker) name.
    version : int
        Increases with each published book.
    """

    map: ObjectMap
    default: PreparedScene
    sections: Mapping[str, PreparedScene] = field(default_factory=dict)
    version: int = 0

    def resolve(self, name: str | None) -> PreparedScene:
        """The scene for section ``name`` (the default when none is known)."""
        if name is None:
            return self.default
        return self.sections.get(section_key(name) or "", self.default)
