"""What the browser UI shows and steers, behind one narrow protocol (:class:`UISession`).

:class:`LiveSession` follows a running :class:`~bridge.live.LiveBridge` (``gravity live --ui``):
frames from its frame thread, edits through :meth:`~bridge.live.LiveBridge.apply_edit`, prompts
and hints to its planning thread. :class:`FileSession` shows one scene file (``gravity ui``): its
own clock loops the section at the frame rate, positions from the same
:meth:`~bridge.scenes.PreparedScene.evaluate` (so :func:`gravity.motion.positions_at`), edits
through the same :class:`~bridge.edits.SceneEdits`, and with a request a prompt or hint re-plans
the scene with the deterministic planner.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from gravity.request import Request
from gravity.scene import Scene, write_json_atomic

from bridge.edits import Directions, Edit, EditOutcome, SceneEdits
from bridge.frame import Frame
from bridge.scenes import ObjectMap, PreparedScene, SceneBook

if TYPE_CHECKING:
    from bridge.live import LiveBridge

__all__ = ["UISession", "LiveSession", "FileSession", "request_from_scene"]

log = logging.getLogger("gravity.ui")

FrameListener = Callable[[Frame], None]


class UISession(Protocol):
    """What the UI server reads and calls. Reads never block; calls return at once except
    :meth:`apply_edit` (the rule check: milliseconds), which the server runs off its event loop.
    """

    @property
    def rate_hz(self) -> float:
        """Frames per second the session produces."""

    @property
    def edits(self) -> SceneEdits:
        """The hand edits (their ``version`` changes with every accepted or dropped edit)."""

    def scene(self, section: str | None) -> PreparedScene | None:
        """The scene playing in ``section`` now (plan plus edits); None before the first."""

    def add_frame_listener(self, listener: FrameListener) -> None:
        """Call ``listener(frame)`` after every frame (from a realtime thread: it must return at once)."""

    def remove_frame_listener(self, listener: FrameListener) -> None:
        """Stop calling ``listener``."""

    def apply_edit(self, edit: Edit) -> EditOutcome:
        """Edit the scene playing now (rule-checked; see :meth:`SceneEdits.apply`)."""

    def request_prompt(self, text: str) -> bool:
        """Re-plan with a new scene prompt; False when this session cannot plan."""

    def request_hint(self, stem_id: str, text: str) -> bool:
        """Re-plan with a new hint for one stem; False for an unknown stem or when it cannot plan."""

    def request_for(self, section: str | None) -> Request:
        """The request the section's scene answers (what its edits are checked against)."""

    def directions(self) -> Directions:
        """The prompt and live hints planning is under now."""

    def model_info(self) -> dict[str, Any]:
        """Who proposes the scenes (for the edits log)."""


class LiveSession:
    """A :class:`UISession` over a started :class:`~bridge.live.LiveBridge`."""

    def __init__(self, bridge: LiveBridge) -> None:
        self.bridge = bridge

    @property
    def rate_hz(self) -> float:
        """The bridge's frame rate, Hz."""
        return self.bridge.config.rate_hz

    @property
    def edits(self) -> SceneEdits:
        """The bridge's hand edits."""
        return self.bridge.edits

    def scene(self, section: str | None) -> PreparedScene | None:
        """The bridge's scene for ``section`` (a reference read)."""
        book = self.bridge.book
        return None if book is None else book.resolve(section)

    def add_frame_listener(self, listener: FrameListener) -> None:
        """See :meth:`bridge.live.LiveBridge.add_frame_listener`."""
        self.bridge.add_frame_listener(listener)

    def remove_frame_listener(self, listener: FrameListener) -> None:
        """See :meth:`bridge.live.LiveBridge.remove_frame_listener`."""
        self.bridge.remove_frame_listener(listener)

    def apply_edit(self, edit: Edit) -> EditOutcome:
        """Edit the section playing now (:meth:`bridge.live.LiveBridge.apply_edit`)."""
        return self.bridge.apply_edit(edit)

    def request_prompt(self, text: str) -> bool:
        """Re-plan every section with ``text``."""
        self.bridge.request_prompt(text)
        return True

    def request_hint(self, stem_id: str, text: str) -> bool:
        """Re-plan with a new hint for ``stem_id``."""
        return self.bridge.request_hint(stem_id, text)

    def request_for(self, section: str | None) -> Request:
        """The section's request (:meth:`bridge.live.LiveBridge.request_for`)."""
        return self.bridge.request_for(section)

    def directions(self) -> Directions:
        """The bridge's prompt and live hints."""
        w = self.bridge.worker
        return (w.prompt, w.hints)

    def model_info(self) -> dict[str, Any]:
        """The configured proposer and model files."""
        cfg = self.bridge.config
        llm = cfg.llm
        return {
            "planner": cfg.planner,
            "model_path": getattr(llm, "model_path", None),
            "lora_path": getattr(llm, "lora_path", None),
        }


def request_from_scene(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A request document a scene file answers when none is given: one stem per member stem (the
    object's class), no rules, the scene's layout, timing and object count. The rule engine then
    checks what any scene must keep (schema, every stem in one object, the budget).
    """
    stems = []
    for o in doc.get("objects", []):
        for sid in o.get("stems") or [o["id"]]:
            stems.append({"id": sid, "class": o["class"]})
    timing = doc.get("timing", {})
    g = {k: timing[k] for k in ("bpm", "time_signature", "section_bars") if k in timing}
    out: dict[str, Any] = {
        "target_format": doc.get("bed", {}).get("layout", "binaural"),
        "max_objects": max(1, min(128, len(doc.get("objects", [])))),
        "stems": stems,
    }
    if "section" in timing:
        out["section"] = timing["section"]
    if g:
        out["global"] = g
    return out


class FileSession:
    """A :class:`UISession` for one scene file: a looping clock, edits, re-planning with a request.

    Parameters
    ----------
    scene_doc : mapping
        The scene (validated here).
    request_doc : mapping, optional
        The request it answers (its rules check edits; prompts and hints re-plan from it). None:
        :func:`request_from_scene` (no rules; prompts and hints refused).
    rate_hz : float
        Frames per second, 1..200.
    out : path, optional
        Write the scene as edited here (atomically) after every accepted edit and re-plan.
    source : str
        Label of the file's scene (``file:<name>``).
    """

    def __init__(
        self,
        scene_doc: Mapping[str, Any],
        request_doc: Mapping[str, Any] | None = None,
        *,
        rate_hz: float = 50.0,
        out: str | Path | None = None,
        source: str = "file",
    ) -> None:
        if not 1.0 <= rate_hz <= 200.0:
            raise ValueError(f"rate must be 1..200 Hz, got {rate_hz}")
        self._rate = float(rate_hz)
        self.can_plan = request_doc is not None
        self.request_doc = copy.deepcopy(
            dict(request_doc if request_doc is not None else request_from_scene(scene_doc))
        )
        self.request = Request.from_dict(self.request_doc, source="request")
        scene = Scene.from_dict(scene_doc, source=source)
        omap = ObjectMap.from_request(self.request).extended(s for o in scene.objects for s in o.stems)
        self.map = omap
        self.out = Path(out) if out is not None else None
        self.prompt: str | None = self.request.prompt or None
        self.hints: dict[str, str] = {}
        self._book: SceneBook | None = None
        self._listeners: list[FrameListener] = []
        self.edits = SceneEdits(self._set_book, lambda _section: self.request, lambda: (self.prompt, self.hints))
        self.edits.published(SceneBook(omap, self._prepare(scene, source)))
        self._stop = threading.Event()
        self._want = threading.Condition()
        self._job: tuple[str | None, dict[str, str]] | None = None
        self._threads: list[threading.Thread] = []
        self.frames = 0
        self.plans = 0

    def _prepare(self, scene: Scene, source: str) -> PreparedScene:
        return PreparedScene(scene, self.map, source=source, section=None, fallback_section_s=self.request.section_s)

    def _set_book(self, book: SceneBook) -> None:
        self._book = book

    # ------------------------------------------------------------------ UISession
    @property
    def rate_hz(self) -> float:
        """Frames per second."""
        return self._rate

    def scene(self, section: str | None) -> PreparedScene | None:  # noqa: ARG002  (one scene for every section)
        """The scene (with edits)."""
        book = self._book
        return None if book is None else book.default

    def add_frame_listener(self, listener: FrameListener) -> None:
        """Call ``listener(frame)`` from the clock thread after every frame."""
        self._listeners = [*self._listeners, listener]

    def remove_frame_listener(self, listener: FrameListener) -> None:
        """Stop calling ``listener``."""
        self._listeners = [x for x in self._listeners if x != listener]

    def apply_edit(self, edit: Edit) -> EditOutcome:
        """Edit the scene (rule-checked); an accepted edit is written to ``out`` when given."""
        outcome = self.edits.apply(edit, None)
        if outcome.accepted and outcome.edited is not None:
            self._write(outcome.edited)
        return outcome

    def request_prompt(self, text: str) -> bool:
        """Re-plan the scene with a new prompt (needs a request)."""
        if not self.can_plan:
            return False
        self._ask(text or None, {})
        return True

    def request_hint(self, stem_id: str, text: str) -> bool:
        """Re-plan the scene with a new hint for ``stem_id`` (needs a request)."""
        if not self.can_plan or self.map.index(stem_id) is None:
            return False
        self._ask(self.prompt, {stem_id: text})
        return True

    def request_for(self, section: str | None) -> Request:  # noqa: ARG002
        """The request (prompt and live hints included)."""
        return self.request

    def directions(self) -> Directions:
        """The prompt and live hints."""
        return (self.prompt, self.hints)

    def model_info(self) -> dict[str, Any]:
        """The deterministic planner re-plans a file's scene."""
        return {"planner": "planner"}

    # ------------------------------------------------------------------ threads
    def start(self) -> None:
        """Start the clock (and the planning thread when there is a request)."""
        self._threads = [threading.Thread(target=self._clock, name="gravity-ui-clock", daemon=True)]
        if self.can_plan:
            self._threads.append(threading.Thread(target=self._planner, name="gravity-ui-plan", daemon=True))
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """Stop the threads."""
        self._stop.set()
        with self._want:
            self._want.notify_all()
        for t in self._threads:
            t.join(2.0)

    def _clock(self) -> None:
        """Frames on absolute deadlines; the section loops (t = elapsed / section length, mod 1)."""
        period = 1.0 / self._rate
        t0 = deadline = time.monotonic()
        while not self._stop.is_set():
            wait = deadline - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            now = time.monotonic()
            book = self._book
            if book is not None:
                ps = book.default
                span = max(ps.section_s, 1e-3)
                t = ((now - t0) / span) % 1.0
                aed, gain, width, active = ps.evaluate(t)
                frame = Frame(
                    seq=self.frames,
                    time_s=now,
                    playhead_s=(now - t0) % span,
                    playing=True,
                    section=None,
                    section_t=t,
                    scene_source=ps.source,
                    new_section=False,
                    names=book.map.ids,
                    aed=aed,
                    gain_db=gain,
                    width=width,
                    active=active,
                )
                self.frames += 1
                for listener in self._listeners:
                    try:
                        listener(frame)
                    except Exception:  # a listener bug must not stop the clock
                        log.exception("frame listener failed")
            deadline += period
            if time.monotonic() - deadline > period:  # fell behind: skip, never burst
                deadline = time.monotonic() + period

    def _ask(self, prompt: str | None, hints: Mapping[str, str]) -> None:
        with self._want:
            old = self._job[1] if self._job is not None else {}
            self._job = (prompt, {**old, **hints})
            self._want.notify()

    def _planner(self) -> None:
        from gravity.pipeline import make_scene

        from bridge.planning import section_request

        while True:
            with self._want:
                while self._job is None and not self._stop.is_set():
                    self._want.wait(1.0)
                if self._stop.is_set():
                    return
                assert self._job is not None
                prompt, hints = self._job
                self._job = None
            merged = {**self.hints, **hints}  # ("" removes the request's own hint)
            try:
                req = section_request(self.request_doc, prompt=prompt or "", hints=tuple(sorted(merged.items())))
                result = make_scene(req, planner="planner")
                scene = Scene.from_dict(result.scene, source="planner scene")
            except Exception as exc:  # a refused prompt or hint: say so, keep the scene
                log.error("re-planning failed: %s", exc)
                continue
            self.request, self.prompt, self.hints = req, prompt, merged
            self.edits.published(SceneBook(self.map, self._prepare(scene, result.planner)))
            self._write(scene.raw)
            self.plans += 1

    def _write(self, doc: Mapping[str, Any]) -> None:
        if self.out is None:
            return
        try:
            write_json_atomic(dict(doc), self.out)
        except OSError as exc:
            log.error("could not write %s: %s", self.out, exc)
