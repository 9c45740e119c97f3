"""Scene planning for live use: one scene per section, made off the realtime path.

:class:`PlanWorker` owns a thread that calls :func:`gravity.pipeline.make_scene` (possibly slow:
the LLM lands behind that call) and loads scene files (disk), then publishes an immutable
:class:`~bridge.scenes.SceneBook`. Requests reach it through a bounded queue; re-plans are
coalesced (latest wins, debounced) so a flood of marker messages costs one plan.

Per section: the base request with ``section`` set from the marker name
(:func:`canonical_section`), ``section_bars`` from the marker spacing, and the DAW's tempo and
time signature. Each re-plan runs in two stages: the deterministic planner first (instant),
then ``planner=<configured>`` whose result replaces the planner's scene only when a different
proposer produced it (the frame thread crossfades the replacement). Scenes loaded with
``/gravity/scene`` are pinned to their section and survive re-plans.
"""

from __future__ import annotations

import copy
import inspect
import logging
import multiprocessing
import os
import queue
import re
import signal
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from gravity.errors import GravityError
from gravity.motion import section_seconds
from gravity.pipeline import SceneResult, make_scene
from gravity.request import Request
from gravity.scene import Scene
from gravity.vocab import SECTIONS

from .errors import BridgeError
from .scenes import ObjectMap, PreparedScene, SceneBook, section_key
from .transport import Marker

if TYPE_CHECKING:
    from gravity.llm.runtime import LLMConfig

__all__ = [
    "MAX_SECTIONS",
    "SECTION_ALIASES",
    "canonical_section",
    "marker_bars",
    "section_request",
    "PlanContext",
    "PlanWorker",
    "PlanProcess",
    "load_llm",
]

log = logging.getLogger(__name__)

MAX_SECTIONS = 64
"""Distinct section names planned (the current one first); further ones play the default scene."""

SECTION_ALIASES: Mapping[str, str] = {
    "prechorus": "pre_chorus",
    "pre": "pre_chorus",
    "lift": "pre_chorus",
    "postchorus": "post_chorus",
    "post": "post_chorus",
    "refrain": "chorus",
    "ref": "chorus",
    "hook": "hook",
    "break": "breakdown",
    "breakdown": "breakdown",
    "buildup": "build",
    "build_up": "build",
    "riser": "build",
    "inst": "interlude",
    "instrumental": "interlude",
    "end": "outro",
    "ending": "outro",
    "coda": "outro",
    "main": "full",
    "song": "full",
    "vs": "verse",
    "ch": "chorus",
    "drop": "drop",
}
"""Marker-name words that mean a request ``section`` (beyond the section names themselves)."""


def canonical_section(name: str, default: str) -> str:
    """Map a DAW marker name to a request section (``"Pre-Chorus 2"`` -> ``"pre_chorus"``).

    Digits and punctuation are ignored; :data:`SECTION_ALIASES` adds common words. Unknown
    names give ``default``.
    """
    words = [w for w in re.split(r"[^a-z]+", name.casefold()) if w]
    for n in (2, 1):
        for i in range(len(words) - n + 1):
            cand = "_".join(words[i : i + n])
            if cand in SECTIONS:
                return cand
            if cand in SECTION_ALIASES:
                return SECTION_ALIASES[cand]
            if cand.replace("_", "") in SECTION_ALIASES:
                return SECTION_ALIASES[cand.replace("_", "")]
    return default


def marker_bars(start_s: float, end_s: float | None, bpm: float, beats_per_bar: int) -> int | None:
    """Whole bars (1..512) between two markers at ``bpm``; None when the end is unknown."""
    if end_s is None or end_s <= start_s or bpm <= 0:
        return None
    return int(min(512, max(1, round((end_s - start_s) * bpm / 60.0 / beats_per_bar))))


def section_request(
    base: Mapping[str, Any],
    *,
    section: str | None = None,
    bars: int | None = None,
    bpm: float | None = None,
    time_signature: str | None = None,
    prompt: str | None = None,
) -> Request:
    """The base request document adjusted for one live section, validated.

    Parameters
    ----------
    base : mapping
        The request document (JSON dict) gravity-live started with.
    section : str, optional
        Request section (one of :data:`gravity.vocab.SECTIONS`).
    bars : int, optional
        Section length in bars (clamped to 1..512).
    bpm : float, optional
        Tempo, beats per minute (clamped to the schema's 20..300).
    time_signature : str, optional
        ``"N/D"``; ignored unless it matches the schema.
    prompt : str, optional
        Scene-level text direction; ``""`` removes the base prompt.
    """
    doc = copy.deepcopy(dict(base))
    if section is not None:
        doc["section"] = section
    g = dict(doc.get("global", {}))
    if bpm is not None:
        g["bpm"] = round(min(300.0, max(20.0, float(bpm))), 3)
    if bars is not None:
        g["section_bars"] = int(min(512, max(1, bars)))
    if time_signature and re.fullmatch(r"([1-9]|1[0-9])/(1|2|4|8|16)", time_signature):
        g["time_signature"] = time_signature
    if g:
        doc["global"] = g
    if prompt is not None:
        if prompt:
            doc["prompt"] = prompt[:2000]
        else:
            doc.pop("prompt", None)
    return Request.from_dict(doc, source="gravity-live")


@dataclass(frozen=True)
class PlanContext:
    """What the DAW says the song looks like, for planning.

    Attributes
    ----------
    markers : tuple of Marker
        Sorted section markers.
    bpm : float or None
        DAW tempo in beats per minute (None: the request's).
    beats_per_bar, beat_unit : int or None
        DAW time signature (None: the request's).
    """

    markers: tuple[Marker, ...] = ()
    bpm: float | None = None
    beats_per_bar: int | None = None
    beat_unit: int | None = None

    @property
    def time_signature(self) -> str | None:
        """The DAW's time signature as ``"N/D"`` (None: the request's)."""
        if self.beats_per_bar and self.beat_unit:
            return f"{self.beats_per_bar}/{self.beat_unit}"
        return None


MakeScene = Callable[..., SceneResult]


def load_llm(planner: str, config: LLMConfig | None = None) -> Any:
    """The model ``planner`` asks for, loaded with ``config`` (default ``LLMConfig()``); None
    when it plans without one.

    ``auto`` uses a model only when a fine-tuned one is at hand (``config.model_path``, or one
    Gravity ships): the raw embedded base model plans worse than the deterministic planner, so
    it runs only with ``llm``, which requires a model. (The same choice as ``gravity scene``.)
    """
    from gravity.llm.runtime import LLMConfig, SceneLLM, model_for

    cfg = config or LLMConfig()
    info = model_for(planner, cfg.model_path)
    return None if info is None else SceneLLM(replace(cfg, model_path=str(info.path)), info)


class InlinePlanner:
    """Makes and loads scenes in the calling thread.

    ``plan(args, stage, seed)`` builds the section's request (:func:`section_request` with
    ``args``), calls ``make_scene`` and validates the scene; ``load(path)`` reads a scene file.
    Both return validated :class:`~gravity.scene.Scene` objects. :class:`PlanProcess` offers the
    same two calls in another process.

    Parameters
    ----------
    base_doc : mapping
        The request document.
    make_scene_fn : callable
        ``make_scene(request, planner=..., seed=..., [llm=...])``.
    llm_factory : callable, optional
        Loads the model on first use (stage 2 only); None plans without one.
    """

    def __init__(
        self,
        base_doc: Mapping[str, Any],
        make_scene_fn: MakeScene = make_scene,
        llm_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.base_doc = base_doc
        self._make_scene = make_scene_fn
        self._llm_factory = llm_factory
        self._llm: Any = None
        self._llm_tried = False
        try:
            self._accepts_llm = "llm" in inspect.signature(make_scene_fn).parameters
        except (TypeError, ValueError):
            self._accepts_llm = False

    def _get_llm(self) -> Any:
        if not self._llm_tried:
            self._llm_tried = True
            if self._llm_factory is not None:
                try:
                    self._llm = self._llm_factory()
                except Exception as exc:  # no model: plan with the planner, say so once
                    log.error("no LLM for live planning (%s); using the planner", exc)
        return self._llm

    def plan(self, args: Mapping[str, Any], stage: str, seed: int) -> tuple[Scene, str]:
        """(validated scene, proposer name) for one section."""
        request = section_request(self.base_doc, **args)
        kwargs: dict[str, Any] = {"planner": stage, "seed": seed}
        if stage != "planner" and self._accepts_llm:
            llm = self._get_llm()
            if llm is not None:
                kwargs["llm"] = llm
        result = self._make_scene(request, **kwargs)
        return Scene.from_dict(result.scene, source=f"{result.planner} scene"), result.planner

    def load(self, path: str) -> Scene:
        """A validated scene file."""
        return Scene.load(path)

    def close(self) -> None:
        """Nothing to release."""


def _plan_process_main(conn: Any, base_doc: Mapping[str, Any], planner: str, llm: LLMConfig | None, nice: int) -> None:
    """The planning process: answers ("plan", args, stage, seed) and ("load", path) with
    ("ok", value) or ("err", text) until it reads None.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s (planning process): %(message)s")
    try:
        os.nice(nice)
    except (AttributeError, OSError):
        pass
    from gravity.llm.runtime import LLMConfig

    cfg = llm or LLMConfig()
    if cfg.n_threads is None:  # leave the frame thread a core: llama.cpp gets one thread fewer than the machine has
        cfg = replace(cfg, n_threads=max(1, (os.cpu_count() or 2) - 1))
    inline = InlinePlanner(base_doc, make_scene, lambda: load_llm(planner, cfg))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if job is None:
            return
        try:
            value: Any = inline.plan(*job[1:]) if job[0] == "plan" else inline.load(job[1])
            conn.send(("ok", value))
        except Exception as exc:
            conn.send(("err", f"{type(exc).__name__}: {exc}"))


class PlanProcess:
    """:class:`InlinePlanner`'s calls in a separate process, so planning (pure Python: requests
    and scenes are validated, the planner runs, hundreds of ms for a big session) and the LLM
    never hold the interpreter lock the frame thread needs.

    The process starts on the first call (from the planning thread, never delaying start-up),
    runs at a lower OS priority (``nice``), loads the model itself, and restarts if it dies.

    Parameters
    ----------
    base_doc : mapping
        The request document.
    planner : str
        The configured proposer (decides whether a model is loaded, see :func:`load_llm`).
    llm : LLMConfig, optional
        How to load and sample the model (default ``LLMConfig()``; ``model_path`` None resolves
        the default model). ``n_threads`` None means one thread fewer than the machine has.
    nice : int
        Niceness added to the planning process.
    timeout_s : float
        Longest wait for one answer, seconds (the LLM itself gives up after its own timeout).
    """

    def __init__(
        self,
        base_doc: Mapping[str, Any],
        planner: str = "auto",
        llm: LLMConfig | None = None,
        *,
        nice: int = 10,
        timeout_s: float = 120.0,
    ) -> None:
        self.base_doc = copy.deepcopy(dict(base_doc))
        self.planner, self.llm, self.nice, self.timeout_s = planner, llm, nice, timeout_s
        self._ctx = multiprocessing.get_context("spawn")  # never fork a process that has threads
        self._proc: Any = None
        self._conn: Any = None
        self._closed = False
        self.starts = 0

    def start(self) -> None:
        """Start the process now (optional; the first call starts it otherwise). Starting it
        before the realtime threads run keeps the fork/exec out of their way.
        """
        if not self._closed and (self._proc is None or not self._proc.is_alive()):
            self._start()

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(
            target=_plan_process_main,
            name="gravity-planning",
            daemon=True,
            args=(child, self.base_doc, self.planner, self.llm, self.nice),
        )
        self._proc.start()
        child.close()
        self._conn = parent
        self.starts += 1

    def _ask(self, job: tuple[Any, ...]) -> Any:
        if self._closed:
            raise BridgeError("planning process closed")
        if self._proc is None or not self._proc.is_alive():
            self._start()
        proc, conn = self._proc, self._conn  # close() clears these from another thread at shutdown
        if self._closed or proc is None or conn is None:
            raise BridgeError("planning process closed")
        try:
            conn.send(job)
            deadline = time.monotonic() + self.timeout_s
            while not conn.poll(0.5):
                if self._closed or time.monotonic() > deadline or not proc.is_alive():
                    raise BridgeError("planning process stopped or timed out")
            kind, value = conn.recv()
        except BridgeError:
            self._kill()
            raise
        except Exception as exc:
            if self._closed:  # the pipe was closed under us by close(): not a failure
                raise BridgeError("planning process closed") from None
            if not isinstance(exc, (EOFError, OSError)):
                raise
            self._kill()
            raise BridgeError(f"planning process failed ({exc}); it restarts on the next plan") from None
        if kind == "err":
            raise BridgeError(value)
        return value

    def plan(self, args: Mapping[str, Any], stage: str, seed: int) -> tuple[Scene, str]:
        """See :meth:`InlinePlanner.plan`."""
        return self._ask(("plan", dict(args), stage, seed))

    def load(self, path: str) -> Scene:
        """See :meth:`InlinePlanner.load`."""
        return self._ask(("load", path))

    def _kill(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is not None:
            proc.terminate()
            proc.join(2.0)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Stop the process (a running plan is abandoned)."""
        self._closed = True
        if self._conn is not None:
            try:
                self._conn.send(None)
            except (OSError, ValueError):
                pass
        self._kill()


class PlanWorker:
    """The planning thread: makes and loads scenes, publishes scene books.

    Parameters
    ----------
    base_doc : mapping
        Request document gravity-live started with.
    publish : callable
        ``publish(book)`` is called (from the worker thread) with each new :class:`SceneBook`;
        it must only swap a reference and wake the frame thread.
    current_section : callable
        Returns the section name playing now (plans it first; default for ``/gravity/scene``).
    runner : InlinePlanner or PlanProcess, optional
        Who plans and loads after start-up (default: an :class:`InlinePlanner` built from
        ``make_scene_fn`` and ``llm_factory``). The first, default scene is always planned
        inline by :meth:`build_initial` (the deterministic planner is fast).
    make_scene_fn : callable
        ``make_scene(request, planner=..., seed=..., llm=...)``; injectable for tests.
    planner : str
        Second-stage proposer passed to ``make_scene`` (``"auto"``, ``"llm"``).
    llm_factory : callable, optional
        Returns a loaded model (or None) for the inline runner; called once, lazily, in the
        worker thread (loading a model takes seconds and must never delay streaming).
    seed : int
        Proposer seed.
    debounce_s : float
        Quiet time after the last re-plan request before planning, seconds.
    realtime_priority : bool
        With a :class:`PlanProcess` runner, run this thread at real-time priority 1 (best
        effort), below the frame thread: it then only unpickles and prepares scenes.
    """

    def __init__(
        self,
        base_doc: Mapping[str, Any],
        *,
        publish: Callable[[SceneBook], None],
        current_section: Callable[[], str | None] = lambda: None,
        runner: InlinePlanner | PlanProcess | None = None,
        make_scene_fn: MakeScene = make_scene,
        planner: str = "auto",
        llm_factory: Callable[[], Any] | None = None,
        seed: int = 0,
        debounce_s: float = 0.15,
        queue_size: int = 64,
        realtime_priority: bool = False,
    ) -> None:
        self.base_doc = copy.deepcopy(dict(base_doc))
        self.base = Request.from_dict(self.base_doc, source="request")
        self._publish_cb = publish
        self._current_section = current_section
        self._inline = InlinePlanner(self.base_doc, make_scene_fn, llm_factory)
        self.runner = runner if runner is not None else self._inline
        self.planner = planner
        self.seed = seed
        self.debounce_s = debounce_s
        self.realtime_priority = realtime_priority
        self._jobs: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards the book / map / pins against build_initial vs the thread
        self.map = ObjectMap.from_request(self.base)
        self.prompt: str | None = None
        self.context = PlanContext()
        self._planned: dict[str | None, PreparedScene] = {}
        self._pins: dict[str | None, PreparedScene] = {}
        self._cache: OrderedDict[tuple[Any, ...], tuple[Scene, str]] = OrderedDict()
        self.book: SceneBook | None = None
        self._version = 0
        self.plans = 0
        self.failures = 0
        self.dropped_jobs = 0
        self.last_planner = "planner"
        self.last_plan_s = 0.0

    # ------------------------------------------------------------------ public, any thread
    def request_replan(self, context: PlanContext) -> None:
        """Plan again for ``context`` (coalesced and debounced). Never blocks."""
        self._put(("replan", context))

    def request_prompt(self, text: str) -> None:
        """Re-plan every section with a new scene-level ``text``. Never blocks."""
        self._put(("prompt", str(text)[:2000]))

    def request_scene_file(self, path: str, section: str | None = None) -> None:
        """Load a scene file and pin it to ``section`` (default: the current one). Never blocks."""
        self._put(("file", (str(path), section)))

    def _put(self, job: tuple[str, Any]) -> None:
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self.dropped_jobs += 1

    def start(self) -> None:
        """Start the worker thread (after :meth:`build_initial`)."""
        self._thread = threading.Thread(target=self._run, name="gravity-plan", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the thread to finish and wait up to ``timeout_s`` (a running plan is abandoned)."""
        self._stop.set()
        self._put(("stop", None))
        self.runner.close()  # a PlanProcess: abandons a plan in progress too
        if self._thread is not None:
            self._thread.join(timeout_s)

    # ------------------------------------------------------------------ planning
    def build_initial(self) -> SceneBook:
        """Plan the default scene synchronously (deterministic planner) and publish the first book."""
        with self._lock:
            scene, source = self._plan(None, self.context, "planner", inline=True)
            self._planned[None] = self._prepare(scene, source, None, self.context)
            return self._publish()

    def _section_args(self, name: str | None, ctx: PlanContext) -> dict[str, Any]:
        bpm = ctx.bpm or self.base.bpm
        bpb = ctx.beats_per_bar or int(self.base.time_signature.split("/")[0])
        bars = None
        if name is not None:
            starts = [(i, m) for i, m in enumerate(ctx.markers) if section_key(m.name) == section_key(name)]
            if starts:
                i, m = starts[0]
                end = ctx.markers[i + 1].time_s if i + 1 < len(ctx.markers) else None
                bars = marker_bars(m.time_s, end, bpm, bpb)
        return {
            "section": canonical_section(name, self.base.section) if name else self.base.section,
            "bars": bars,
            "bpm": ctx.bpm,
            "time_signature": ctx.time_signature,
            "prompt": self.prompt,
        }

    def _plan(self, name: str | None, ctx: PlanContext, stage: str, *, inline: bool = False) -> tuple[Scene, str]:
        """(scene, proposer) for one section, from the cache or the runner."""
        args = self._section_args(name, ctx)
        key = (tuple(sorted(args.items())), self.seed, stage)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        t0 = time.perf_counter()
        out = (self._inline if inline else self.runner).plan(args, stage, self.seed)
        self.last_plan_s = time.perf_counter() - t0
        self.plans += 1
        self._cache[key] = out
        while len(self._cache) > 64:
            self._cache.popitem(last=False)
        return out

    def _fallback_s(self, name: str | None, ctx: PlanContext) -> float:
        a = self._section_args(name, ctx)
        bpm = ctx.bpm or self.base.bpm
        ts = ctx.time_signature or self.base.time_signature
        return section_seconds(min(300.0, max(20.0, bpm)), ts, a["bars"] or self.base.section_bars)

    def _prepare(self, scene: Scene, source: str, name: str | None, ctx: PlanContext) -> PreparedScene:
        return PreparedScene(
            scene, self.map, source=source, section=name, fallback_section_s=self._fallback_s(name, ctx)
        )

    def _reprepare(self) -> None:
        """Prepare every scene again (new object map, or new markers for scenes without timing)."""
        self._planned = {k: self._prepare(v.scene, v.source, v.section, self.context) for k, v in self._planned.items()}
        self._pins = {k: self._prepare(v.scene, v.source, k, self.context) for k, v in self._pins.items()}

    def _publish(self) -> SceneBook:
        scenes: dict[str | None, PreparedScene] = {**self._planned, **self._pins}
        default = scenes.pop(None)
        self._version += 1
        book = SceneBook(self.map, default, {k: v for k, v in scenes.items() if k is not None}, self._version)
        self.book = book
        self._publish_cb(book)
        return book

    def _section_names(self, ctx: PlanContext) -> list[str | None]:
        names: list[str | None] = [None]
        seen: set[str | None] = {None}
        current = section_key(self._current_section())
        ordered = sorted(ctx.markers, key=lambda m: section_key(m.name) != current)  # current first
        for m in ordered:
            k = section_key(m.name)
            if k not in seen and len(names) <= MAX_SECTIONS:
                seen.add(k)
                names.append(m.name)
        return names

    def _replan(self, ctx: PlanContext) -> bool:
        """Stage 1 (planner) then stage 2 (configured proposer).

        Returns False when abandoned because a newer job arrived (the caller plans again).
        """
        self.context = ctx
        names = self._section_names(ctx)
        keep = {section_key(n) for n in names}
        with self._lock:
            self._planned = {k: v for k, v in self._planned.items() if k in keep}
            self._pins = {
                k: self._prepare(v.scene, v.source, k, ctx) if v.scene.section_s() is None else v
                for k, v in self._pins.items()
            }  # untimed pinned scenes follow the markers
        stages = ["planner"] + ([self.planner] if self.planner != "planner" else [])
        for stage in stages:
            for name in names:
                if self._stop.is_set() or not self._jobs.empty():
                    return False  # something newer first; the caller resumes
                try:
                    scene, source = self._plan(name, ctx, stage)
                except (GravityError, ValueError, KeyError, TypeError) as exc:
                    if self._stop.is_set():
                        return True
                    self.failures += 1
                    log.error("planning section %r failed: %s", name, exc)
                    continue
                except Exception:  # a proposer bug must not kill live streaming
                    self.failures += 1
                    log.exception("planning section %r crashed", name)
                    continue
                key = section_key(name)
                old = self._planned.get(key)
                if stage != "planner" and source == "planner":
                    continue  # "auto" fell back to the planner: nothing better to show
                if old is not None and old.scene.raw == scene.raw and old.source == source:
                    continue
                with self._lock:
                    self._planned[key] = self._prepare(scene, source, name, ctx)
                    self.last_planner = source
                    self._publish()
        return True

    def _load_file(self, path: str, section: str | None) -> None:
        if section is None:
            section = self._current_section()
        try:
            scene = self.runner.load(path)
        except (GravityError, OSError) as exc:
            self.failures += 1
            log.error("cannot load scene for /gravity/scene: %s", exc)
            return
        key = section_key(section)
        with self._lock:
            if len(self._pins) >= 64 and key not in self._pins:
                log.error("too many pinned scenes (64); ignoring %s", path)
                return
            stems = [sid for o in scene.objects for sid in o.stems]
            old_map, self.map = self.map, self.map.extended(stems)
            if self.map is not old_map:  # new object numbers: every scene must cover them
                self._reprepare()
            self._pins[key] = self._prepare(scene, f"file:{Path(path).name}", key, self.context)
            self._publish()
        log.info("pinned %s to section %r", path, section)

    def _run(self) -> None:
        if self.realtime_priority and isinstance(self.runner, PlanProcess):
            # The heavy work happens in the planning process; what is left here (unpickling, preparing,
            # publishing: a few ms) then runs without being preempted while it holds the interpreter
            # lock the frame thread needs. Real-time priority 1 stays below the frame thread's.
            from .scheduler import raise_thread_priority

            raise_thread_priority(rt_priority=1, nice=0)
        pending: PlanContext | None = None
        dirty_at: float | None = None
        while not self._stop.is_set():
            timeout = 1.0 if dirty_at is None else max(0.0, dirty_at + self.debounce_s - time.monotonic())
            try:
                kind, arg = self._jobs.get(timeout=timeout)
            except queue.Empty:
                if dirty_at is not None and time.monotonic() >= dirty_at + self.debounce_s:
                    ctx = pending or self.context
                    pending, dirty_at = None, None
                    if not self._replan(ctx) and not self._stop.is_set():
                        pending, dirty_at = pending or ctx, time.monotonic() - self.debounce_s
                continue
            if kind == "stop":
                break
            if kind == "replan":
                pending, dirty_at = arg, time.monotonic()
            elif kind == "prompt":
                self.prompt = arg or None
                log.info("re-planning with prompt %r", self.prompt)
                dirty_at = time.monotonic()
            elif kind == "file":
                self._load_file(*arg)
