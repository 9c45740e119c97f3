"""The frame: every object's state at one instant, as the scheduler hands it to the targets.

A frame is built by the frame thread, never mutated afterwards (its arrays are read-only), and
read by every target encoder and by frame listeners such as the binaural preview (:mod:`bridge.preview`).
Coordinates follow the house convention: azimuth degrees positive = left, 0 = front, in
(-180, 180]; elevation degrees positive = up; distance metres. Conversions to a target's own
convention happen in :mod:`bridge.targets`, at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Frame"]


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One instant of the live scene.

    Attributes
    ----------
    seq : int
        Frame counter since start (0, 1, 2, ...).
    time_s : float
        Monotonic clock time at which the frame was computed, seconds.
    playhead_s : float
        Song position the frame shows, seconds from the DAW's zero.
    playing : bool
        Transport running.
    section : str or None
        Current section (marker) name; None before the first marker or without markers.
    section_t : float
        Normalised section time 0..1 used for the motion keyframes.
    scene_source : str
        Where the scene came from: ``"planner"``, ``"file:<name>"``, or the LLM's name.
    new_section : bool
        True on the first frame of a section (the section-change latency ends when this
        frame is on the wire).
    names : tuple of str
        Object names (stem ids), index ``k`` is object number ``k + 1``.
    aed : np.ndarray [shape=(N, 3)]
        Azimuth deg (+left), elevation deg, distance m. Finite.
    gain_db : np.ndarray [shape=(N,)]
        Object gain in dB.
    width : np.ndarray [shape=(N,)]
        Source width 0..1.
    active : np.ndarray [shape=(N,), dtype=bool]
        False for objects the current scene does not contain (they are muted, not moved).
    section_start_s : float
        Song time where the current section starts, seconds (``section_t`` counts from here).
    """

    seq: int
    time_s: float
    playhead_s: float
    playing: bool
    section: str | None
    section_t: float
    scene_source: str
    new_section: bool
    names: tuple[str, ...]
    aed: np.ndarray
    gain_db: np.ndarray
    width: np.ndarray
    active: np.ndarray
    section_start_s: float = 0.0

    def __post_init__(self) -> None:
        """Freeze the arrays: a frame is shared by every listener."""
        for a in (self.aed, self.gain_db, self.width, self.active):
            a.flags.writeable = False

    @property
    def size(self) -> int:
        """Number of objects (object numbers run 1..size)."""
        return len(self.names)
