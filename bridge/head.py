"""Head-tracker input: ADM-OSC listener and IEM SceneRotator messages turn the binaural preview.

Addresses (conventions and sources: :mod:`renderer.listener`; the address is matched without
regard to case, as the SceneRotator itself does)::

    /adm/lis/ypr f f f                  the head's yaw (+ left), pitch (+ up), roll, degrees
    /adm/lis/xyz f f f                  the head's position, ADM-OSC normalised -1..1
    /SceneRotator/ypr f f f             the scene's rotation as IEM SceneRotator applies it
    /SceneRotator/quaternions f f f f   the same as a quaternion w, x, y, z

They arrive on ``gravity live``'s listen port (``--head``, next to the DAW's messages) or on a
port of their own (``--head-port``, for ``gravity live`` and ``gravity preview``). A message that
is not a pose (not finite, out of range, wrong count) is refused: counted here and reported
rate-limited by the listener thread (``bad_args``), the last good pose kept. A tracker that
falls silent leaves its last pose in place.

Each accepted pose is handed to the :class:`renderer.listener.Listener` the preview's renderers
read, and forwarded at once to the targets that take it (:meth:`bridge.targets.Target.send_head`:
ADM-OSC targets with ``head=1``, ``iem-rotator`` targets).
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

from renderer.listener import XYZ_SCALE_M, HeadPose, Listener, PoseError

from .daw import BadArgs, Dispatcher, Handler
from .oscio import OscMessage
from .targets import Target

__all__ = ["HEAD_ADDRESSES", "HeadInput", "HeadDispatcher"]

log = logging.getLogger("gravity.head")

HEAD_ADDRESSES: tuple[str, ...] = (
    "/adm/lis/ypr",
    "/adm/lis/xyz",
    "/SceneRotator/ypr",
    "/SceneRotator/quaternions",
)
"""The head-tracking addresses Gravity reads."""


class HeadInput:
    """Turns head-tracker messages into poses for a :class:`~renderer.listener.Listener`.

    Handlers run on a listener thread (:class:`bridge.daw.DawListener`): they validate, swap the
    pose in (one reference) and forward it; they never block.

    Parameters
    ----------
    listener : Listener
        Where poses go (the preview's renderers read it).
    targets : sequence of Target
        Targets to forward poses to; those whose :attr:`~bridge.targets.Target.takes_head` is
        false are skipped.
    xyz_scale_m : float
        Metres per unit of ``/adm/lis/xyz``.

    Attributes
    ----------
    poses : int
        Poses accepted.
    refused : int
        Messages refused (not a pose); the listener thread logs them, rate-limited.
    forwarded : int
        Messages sent to targets.
    """

    def __init__(self, listener: Listener, *, targets: Sequence[Target] = (), xyz_scale_m: float = XYZ_SCALE_M) -> None:
        self.listener = listener
        self.targets = [t for t in targets if t.takes_head]
        self.xyz_scale_m = float(xyz_scale_m)
        self.poses = 0
        self.refused = 0
        self.forwarded = 0
        self._table: dict[str, Handler] = {
            "/adm/lis/ypr": self._handler(HeadPose.from_adm_ypr),
            "/SceneRotator/ypr": self._handler(HeadPose.from_scene_rotator_ypr),
            "/SceneRotator/quaternions": self._handler(HeadPose.from_quaternion),
            "/adm/lis/xyz": self._xyz,
        }
        self._by_lower = {k.lower(): v for k, v in self._table.items()}

    def handler_for(self, address: str) -> Handler | None:
        """The handler of a head-tracking address (any case), or None."""
        return self._by_lower.get(address.lower()) if len(address) <= 32 else None

    def _handler(self, make: Callable[..., HeadPose]) -> Handler:
        def handle(msg: OscMessage, _idx: tuple[int, ...]) -> None:
            try:
                pose = make(msg.args, self.listener.pose.position_m)
            except PoseError as exc:
                self.refused += 1
                raise BadArgs(str(exc)) from None
            self._accept(pose)

        return handle

    def _xyz(self, msg: OscMessage, _idx: tuple[int, ...]) -> None:
        try:
            position = HeadPose.adm_position(msg.args, self.xyz_scale_m)
        except PoseError as exc:
            self.refused += 1
            raise BadArgs(str(exc)) from None
        self._accept(self.listener.pose.at(position))

    def _accept(self, pose: HeadPose) -> None:
        self.listener.set(pose)
        self.poses += 1
        for t in self.targets:
            self.forwarded += t.send_head(pose)

    def stats(self) -> dict[str, object]:
        """Counters and the pose now (ADM-OSC yaw, pitch, roll in degrees; position in metres)."""
        pose = self.listener.pose
        silent = self.listener.silent_s()
        return {
            "poses": self.poses,
            "refused": self.refused,
            "forwarded": self.forwarded,
            "ypr_deg": [round(v, 2) for v in pose.adm_ypr()],
            "position_m": [round(float(v), 3) for v in pose.position_m],
            "silent_s": None if silent is None else round(silent, 2),
        }


class HeadDispatcher(Dispatcher):
    """A dispatcher that serves the head-tracking addresses first, then (optionally) another's.

    On ``gravity live``'s listen port it sits in front of the DAW dispatcher: head messages are
    read before the echo filter, which drops an ADM-OSC target's ``/adm/...`` namespace. On a
    head port of its own (``inner`` None) every other address is unknown.
    """

    def __init__(self, head: HeadInput, inner: Dispatcher | None = None) -> None:
        super().__init__({}, ignore_prefixes=(), echo_prefixes=())
        self.head = head
        self.inner = inner

    def dispatch(self, msg: OscMessage) -> str:
        """Handle one message; ``ok``, ``echo``, ``ignored`` or ``unknown`` (BadArgs: refused)."""
        handler = self.head.handler_for(msg.address)
        if handler is not None:
            handler(msg, ())
            return "ok"
        if self.inner is not None:
            return self.inner.dispatch(msg)
        return "unknown"
