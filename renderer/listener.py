"""The listener's head: its orientation (and position) from a head tracker, and the scene turned
against it, so that objects stay where they are in the room while the head moves.

House axes (those of :func:`gravity.motion` and the renderer): x front, y left, z up; azimuth
degrees positive = left, elevation positive = up, distance metres. A :class:`HeadPose` holds
the rotation ``R`` that takes a world direction to the head's frame (``d_head = R @ d_world``)
and the listener's position in metres. World-locked objects follow: a head turned 30 deg to the
left (ADM-OSC yaw +30) hears a front source at azimuth -30 (on its right).

The tracker formats read (each in degrees unless said):

ADM-OSC listener, ``/adm/lis/ypr f f f`` and ``/adm/lis/xyz f f f``
    The ADM-OSC v1.0 specification (github.com/immersive-audio-live/ADM-OSC, ``docs/adm-osc.bs``,
    "Listener messages": "orientation: yaw, pitch, roll", degrees, -180..180, default 0, for "a
    binaural renderer ... head tracking data"; ``xyz`` the listener position, normalised -1..1)
    and its quick reference (``docs/adm-osc-quick-reference.md`` section 5): yaw about the
    vertical axis, positive = left; pitch positive = up; roll positive = tilt right; the axes
    of ADM's Cartesian frame (x right, y front, z up). That is the head's own orientation:
    ``R_head = Rz(yaw) Ry(-pitch) Rx(roll)`` in house axes (yaw, then pitch about the turned
    ear axis, then roll about the nose: the intrinsic z-y'-x'' order trackers report; ADM-OSC
    names no order), and the scene turns by its inverse, ``R = R_head^T``. ``xyz`` is mapped
    x -> -y (right to left), y -> x, z -> z and scaled by ``xyz_scale_m`` (1 m: the renderer's
    reference distance, as ``bridge.targets`` maps ADM-OSC ``xyz`` with ``coords=xyz``).
IEM SceneRotator, ``/SceneRotator/ypr f f f`` and ``/SceneRotator/quaternions f f f f``
    IEMPluginSuite ``SceneRotator/Source/PluginProcessor.cpp`` (``interceptOSCMessage``: yaw,
    pitch, roll in that order, float or int; quaternions in the order w, x, y, z;
    ``createParameterLayout``: each angle -180..180, each quaternion component -1..1;
    ``calcRotationMatrix``: the default "Roll->Pitch->Yaw" sequence turns the Ambisonic scene
    by ``Rz(yaw) Ry(pitch) Rx(roll)``, axes x front, y left, z up as ours; ``updateEuler``: the
    quaternion is that same rotation, normalised). These values are the *scene's* rotation,
    not the head's: Gravity turns the scene exactly as a SceneRotator on its default settings
    (no flips) would, ``R = Rz(yaw) Ry(pitch) Rx(roll)``, so a tracker set up for SceneRotator
    plus a binaural decoder works unchanged. (Its yaw is ADM's with the sign flipped: a
    SceneRotator yaw of -30 is a head turned 30 deg to the left.)

A pose is refused (:class:`PoseError`) when a value is not finite or outside those ranges, a
quaternion's norm is not 1 within :data:`QUATERNION_TOLERANCE`, or the argument count is wrong;
the last good pose stays (so does it when the tracker falls silent).

:class:`Listener` is the hand-over between the thread that receives poses and the renderer that
reads one per block: a single reference, swapped atomically, never a lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["PoseError", "HeadPose", "Listener", "QUATERNION_TOLERANCE", "XYZ_SCALE_M"]

QUATERNION_TOLERANCE = 0.1
"""A quaternion whose norm differs from 1 by more than this is refused (a tracker sends unit
quaternions; a norm far from 1 is a corrupt message, not a small rounding error)."""
XYZ_SCALE_M = 1.0
"""Metres per unit of ADM-OSC ``/adm/lis/xyz`` (normalised -1..1)."""
ANGLE_LIMIT_DEG = 180.0
"""Every angle of ADM-OSC and SceneRotator lies in -180..180 degrees."""


class PoseError(ValueError):
    """A head pose that is not one: not finite, out of range, or the wrong number of values."""


def _rz(a: float) -> NDArray[np.float64]:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _ry(a: float) -> NDArray[np.float64]:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rx(a: float) -> NDArray[np.float64]:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _zyx(r: NDArray[np.float64]) -> tuple[float, float, float]:
    """Angles (a, b, c) in degrees with ``r = Rz(a) Ry(b) Rx(c)`` (b in -90..90)."""
    b = -math.asin(max(-1.0, min(1.0, float(r[2, 0]))))
    a = math.atan2(float(r[1, 0]), float(r[0, 0]))
    c = math.atan2(float(r[2, 1]), float(r[2, 2]))
    return math.degrees(a), math.degrees(b), math.degrees(c)


def _numbers(values: Sequence[object], n: int, lo: float, hi: float, what: str) -> list[float]:
    """``n`` finite numbers within lo..hi (ints or floats, not bools), else :class:`PoseError`."""
    if len(values) != n:
        raise PoseError(f"{what} needs {n} numbers, got {len(values)}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise PoseError(f"{what}: value {i + 1} = {v!r:.40} is not a number")
        f = float(v)
        if not math.isfinite(f) or not lo <= f <= hi:
            raise PoseError(f"{what}: value {i + 1} = {f!r} is not a number in {lo:g}..{hi:g}")
        out.append(f)
    return out


@dataclass(frozen=True, eq=False)
class HeadPose:
    """Where the listener's head is and which way it faces (immutable).

    Attributes
    ----------
    rotation : ndarray, shape (3, 3)
        World -> head rotation in house axes (x front, y left, z up): a world-locked direction
        ``d`` is heard from ``rotation @ d``.
    position_m : ndarray, shape (3,)
        The head's position in house axes, metres (0: the renderer's centre).
    """

    rotation: NDArray[np.float64] = field(default_factory=lambda: np.eye(3))
    position_m: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))

    IDENTITY: ClassVar["HeadPose"]

    def __post_init__(self) -> None:
        """Store read-only float64 copies (a pose is shared across threads)."""
        r = np.array(self.rotation, dtype=np.float64).reshape(3, 3)
        p = np.array(self.position_m, dtype=np.float64).reshape(3)
        r.setflags(write=False)
        p.setflags(write=False)
        object.__setattr__(self, "rotation", r)
        object.__setattr__(self, "position_m", p)

    # ------------------------------------------------------------------ from trackers
    @classmethod
    def from_adm_ypr(cls, values: Sequence[object], position_m: NDArray[np.float64] | None = None) -> "HeadPose":
        """ADM-OSC ``/adm/lis/ypr``: the head's yaw (+ left), pitch (+ up), roll (+ right ear
        down), degrees, each -180..180 (see the module docstring).
        """
        yaw, pitch, roll = _numbers(values, 3, -ANGLE_LIMIT_DEG, ANGLE_LIMIT_DEG, "/adm/lis/ypr")
        head = _rz(math.radians(yaw)) @ _ry(-math.radians(pitch)) @ _rx(math.radians(roll))
        return cls(head.T, np.zeros(3) if position_m is None else position_m)

    @classmethod
    def from_scene_rotator_ypr(
        cls, values: Sequence[object], position_m: NDArray[np.float64] | None = None
    ) -> "HeadPose":
        """IEM SceneRotator ``/SceneRotator/ypr``: the scene's rotation, degrees, each -180..180,
        ``Rz(yaw) Ry(pitch) Rx(roll)`` (the plug-in's default sequence, no flips).
        """
        yaw, pitch, roll = _numbers(values, 3, -ANGLE_LIMIT_DEG, ANGLE_LIMIT_DEG, "/SceneRotator/ypr")
        r = _rz(math.radians(yaw)) @ _ry(math.radians(pitch)) @ _rx(math.radians(roll))
        return cls(r, np.zeros(3) if position_m is None else position_m)

    @classmethod
    def from_quaternion(cls, values: Sequence[object], position_m: NDArray[np.float64] | None = None) -> "HeadPose":
        """IEM SceneRotator ``/SceneRotator/quaternions``: the scene's rotation as a quaternion
        (w, x, y, z), each -1..1, norm 1 within :data:`QUATERNION_TOLERANCE` (normalised here).
        """
        w, x, y, z = _numbers(values, 4, -1.0, 1.0, "/SceneRotator/quaternions")
        n = math.sqrt(w * w + x * x + y * y + z * z)
        if abs(n - 1.0) > QUATERNION_TOLERANCE:
            raise PoseError(f"/SceneRotator/quaternions: norm {n:.3f} is not 1 (a rotation needs a unit quaternion)")
        w, x, y, z = w / n, x / n, y / n, z / n
        r = np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
            ]
        )
        return cls(r, np.zeros(3) if position_m is None else position_m)

    @staticmethod
    def adm_position(values: Sequence[object], scale_m: float = XYZ_SCALE_M) -> NDArray[np.float64]:
        """ADM-OSC ``/adm/lis/xyz`` (x right, y front, z up, each -1..1) -> house axes, metres."""
        x, y, z = _numbers(values, 3, -1.0, 1.0, "/adm/lis/xyz")
        return np.array([y, -x, z]) * scale_m

    def at(self, position_m: NDArray[np.float64]) -> "HeadPose":
        """The same orientation at another position (house axes, metres)."""
        return HeadPose(self.rotation, position_m)

    # ------------------------------------------------------------------ to trackers / renderers
    def adm_ypr(self) -> tuple[float, float, float]:
        """The orientation as ADM-OSC ``/adm/lis/ypr`` values: yaw (+ left), pitch (+ up), roll
        (+ right ear down), degrees.
        """
        a, b, c = _zyx(self.rotation.T)
        return a, -b, c

    def scene_rotator_ypr(self) -> tuple[float, float, float]:
        """The orientation as IEM SceneRotator ``/SceneRotator/ypr`` values (the scene's
        rotation, default sequence), degrees.
        """
        return _zyx(self.rotation)

    @property
    def is_identity(self) -> bool:
        """Facing front at the centre: rendering with this pose changes nothing."""
        return bool(np.array_equal(self.rotation, np.eye(3)) and not np.any(self.position_m))

    def locate(self, pos: NDArray[np.float64]) -> NDArray[np.float64]:
        """Object positions relative to the head's position (orientation not applied).

        Parameters
        ----------
        pos : ndarray, shape (..., 3)
            Azimuth (deg, + left), elevation (deg), distance (m), around the renderer's centre.

        Returns
        -------
        ndarray, shape (..., 3)
            The same around the head's position (``pos`` itself when the head is at the centre).
        """
        if not np.any(self.position_m):
            return pos
        az, el = np.radians(pos[..., 0]), np.radians(pos[..., 1])
        d = pos[..., 2]
        v = np.stack([d * np.cos(el) * np.cos(az), d * np.cos(el) * np.sin(az), d * np.sin(el)], -1)
        v = v - self.position_m
        r = np.sqrt(np.sum(v * v, axis=-1))
        out = np.empty_like(pos)
        out[..., 0] = np.degrees(np.arctan2(v[..., 1], v[..., 0]))
        out[..., 1] = np.degrees(np.arcsin(np.clip(v[..., 2] / np.maximum(r, 1e-12), -1.0, 1.0)))
        out[..., 2] = r
        return out

    def turn(
        self, az_deg: NDArray[np.float64], el_deg: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """World-locked directions as the head hears them (``rotation`` applied).

        Parameters
        ----------
        az_deg, el_deg : ndarray
            Directions in degrees (azimuth + left), any equal shapes.

        Returns
        -------
        az_deg, el_deg : ndarray
            Head-relative directions, azimuth in (-180, 180].
        """
        az, el = np.radians(az_deg), np.radians(el_deg)
        ce = np.cos(el)
        u = np.stack([ce * np.cos(az), ce * np.sin(az), np.sin(el)])  # (3, ...)
        v = np.tensordot(self.rotation, u, axes=1)
        out_az = np.degrees(np.arctan2(v[1], v[0]))
        out_az = np.where(out_az <= -180.0, out_az + 360.0, out_az)
        return out_az, np.degrees(np.arcsin(np.clip(v[2], -1.0, 1.0)))


HeadPose.IDENTITY = HeadPose()


class Listener:
    """The head pose renderers follow: set by the tracker input, read by the renderer each block.

    One reference holds ``(sequence number, pose)``; :meth:`set` swaps it, readers take it whole,
    so a reader takes no lock and never sees half a pose (writers, say two tracker ports, share a
    lock among themselves). A tracker that falls silent leaves
    the last pose in place (dropouts hold).

    Parameters
    ----------
    pose : HeadPose
        The pose until the first update (facing front at the centre).
    clock : callable
        Monotonic clock, seconds.

    Attributes
    ----------
    stamp : callable or None
        Set by a player: returns the frames its audio callback has delivered; each update is
        stamped with it (:attr:`arrivals`), so the latency from datagram to audio is measured in
        frames of delivered audio.
    arrivals : deque of (int, float, int)
        The last updates: (sequence number, monotonic seconds, ``stamp()`` or -1).
    """

    ARRIVALS = 512
    """Updates kept in :attr:`arrivals`."""

    def __init__(self, pose: HeadPose = HeadPose.IDENTITY, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._state: tuple[int, HeadPose] = (0, pose)
        self._clock = clock
        self._write = threading.Lock()
        self.stamp: Callable[[], int] | None = None
        self.arrivals: deque[tuple[int, float, int]] = deque(maxlen=self.ARRIVALS)
        self.last_update_s: float | None = None

    @property
    def state(self) -> tuple[int, HeadPose]:
        """(sequence number, pose) now, read atomically; the number grows by one per update."""
        return self._state

    @property
    def pose(self) -> HeadPose:
        """The latest pose."""
        return self._state[1]

    @property
    def updates(self) -> int:
        """Poses set so far."""
        return self._state[0]

    def set(self, pose: HeadPose) -> int:
        """Make ``pose`` the current pose; returns its sequence number."""
        stamp = self.stamp
        with self._write:
            now = self._clock()
            frames = stamp() if stamp is not None else -1  # before the swap: a latency is never understated
            seq = self._state[0] + 1
            self._state = (seq, pose)
            self.last_update_s = now
            self.arrivals.append((seq, now, frames))
        return seq

    def silent_s(self, now: float | None = None) -> float | None:
        """Seconds since the last update (None before the first)."""
        if self.last_update_s is None:
            return None
        return (self._clock() if now is None else now) - self.last_update_s
