"""Scene planning for live use: one scene per section, made off the realtime path.

:class:`PlanWorker` owns a thread that calls :func:`gravity.pipeline.make_scene` (possibly slow:
the LLM lands behind that call) and loads scene files (disk), then publishes an immutable
:class:`~bridge.scenes.SceneBook`.

Commands come from the network, untrusted and possibly as a flood: files they name are read only
through :mod:`bridge.files` (confined to allowed folders, regular, bounded, with a deadline);
requests wait in latest-wins slots, not a queue (a newer prompt or context replaces a pending one,
a newer file for a section replaces that section's pending file), so nothing grows with a flood;
re-plans are debounced, passes start at most :data:`MAX_REPLANS_PER_S` times a second and file
loads at most :data:`MAX_LOADS_PER_S` times a second, so a flood costs a bounded amount of work.

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
import re
import signal
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from gravity.errors import GravityError
from gravity.motion import section_seconds
from gravity.pipeline import SceneResult, make_scene
from gravity.request import Request
from gravity.scene import Scene
from gravity.vocab import SECTIONS

from .errors import BridgeError
from .files import FilePolicy, FileRefused, load_scene_file, one_line, quote
from .scenes import ObjectMap, PreparedScene, SceneBook, section_key
from .transport import Marker

if TYPE_CHECKING:
    from gravity.llm.runtime import LLMConfig

__all__ = [
    "MAX_SECTIONS",
    "MAX_PROMPT_CHARS",
    "MAX_HINT_CHARS",
    "MAX_REPLANS_PER_S",
    "MAX_LOADS_PER_S",
    "MAX_PENDING_FILES",
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

MAX_PROMPT_CHARS = 2000
"""Longest scene-level prompt kept, characters (the request schema's ``prompt`` maxLength)."""

MAX_HINT_CHARS = 500
"""Longest stem hint kept, characters (the request schema's stem ``hint`` maxLength)."""

MAX_REPLANS_PER_S = 2.0
"""Re-plan passes (every section, after a prompt, marker or tempo change) start at most this
often, per second; requests in between are coalesced (the latest context and prompt win)."""

MAX_LOADS_PER_S = 5.0
"""Scene files (``/gravity/scene``) are opened at most this often, per second; a newer request
for the same section replaces a pending one."""

MAX_PENDING_FILES = MAX_SECTIONS + 1
"""Sections with a scene file waiting to be loaded; requests for further sections are dropped
(counted) until the worker catches up."""

LOAD_ALLOWANCE_S = 10.0
"""Time the planning process may take to parse and validate a scene file after reading it,
seconds (a 3.1 MiB scene at every schema maximum took 3.3 s on a busy 2-core machine)."""

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
    hints: Sequence[tuple[str, str]] | None = None,
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
    hints : sequence of (str, str), optional
        ``(stem id, hint)`` pairs replacing those stems' ``hint`` (``""`` removes it); unknown ids
        are ignored.
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
            doc["prompt"] = prompt[:MAX_PROMPT_CHARS]
        else:
            doc.pop("prompt", None)
    if hints:
        new = dict(hints)
        stems = []
        for st in doc.get("stems", []):
            if isinstance(st, dict) and st.get("id") in new:
                st = {k: v for k, v in st.items() if k != "hint"}
                if new[st["id"]]:
                    st["hint"] = new[st["id"]][:MAX_HINT_CHARS]
            stems.append(st)
        doc["stems"] = stems
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
    ``args``), calls ``make_scene`` and validates the scene; ``load(path)`` reads a scene file
    through the gate of :mod:`bridge.files` (``files``). Both return validated
    :class:`~gravity.scene.Scene` objects. :class:`PlanProcess` offers the same two calls in
    another process.

    Parameters
    ----------
    base_doc : mapping
        The request document.
    make_scene_fn : callable
        ``make_scene(request, planner=..., seed=..., [llm=...])``.
    llm_factory : callable, optional
        Loads the model on first use (stage 2 only); None plans without one.
    files : FilePolicy, optional
        Which scene files ``load`` may read (default: regular files up to the size limit, in any
        folder; ``gravity live`` confines them to the folders allowed at start).
    """

    def __init__(
        self,
        base_doc: Mapping[str, Any],
        make_scene_fn: MakeScene = make_scene,
        llm_factory: Callable[[], Any] | None = None,
        files: FilePolicy | None = None,
    ) -> None:
        self.base_doc = base_doc
        self.files = files or FilePolicy()
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
        """A validated scene file; :class:`~bridge.files.FileRefused` when the policy refuses it."""
        return load_scene_file(path, self.files)

    def close(self) -> None:
        """Nothing to release."""


def _plan_process_main(
    conn: Any, base_doc: Mapping[str, Any], planner: str, llm: LLMConfig | None, nice: int, files: FilePolicy
) -> None:
    """The planning process: answers ("plan", args, stage, seed) and ("load", path) with
    ("ok", value), ("refused", (path, reason)) or ("err", text) until it reads None.
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
    inline = InlinePlanner(base_doc, make_scene, lambda: load_llm(planner, cfg), files)
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
        except FileRefused as exc:
            conn.send(("refused", (exc.path, exc.reason)))
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
        Longest wait for one plan, seconds (the LLM itself gives up after its own timeout).
    files : FilePolicy, optional
        Which scene files ``load`` may read (see :class:`InlinePlanner`). A load gets the policy's
        read deadline plus :data:`LOAD_ALLOWANCE_S` to answer; past that the process is killed (a
        read the kernel cannot interrupt, on a hung network mount, dies with it) and restarts on
        the next call.
    """

    def __init__(
        self,
        base_doc: Mapping[str, Any],
        planner: str = "auto",
        llm: LLMConfig | None = None,
        *,
        nice: int = 10,
        timeout_s: float = 120.0,
        files: FilePolicy | None = None,
    ) -> None:
        self.base_doc = copy.deepcopy(dict(base_doc))
        self.planner, self.llm, self.nice, self.timeout_s = planner, llm, nice, timeout_s
        self.files = files or FilePolicy()
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
            args=(child, self.base_doc, self.planner, self.llm, self.nice, self.files),
        )
        self._proc.start()
        child.close()
        self._conn = parent
        self.starts += 1

    def _ask(self, job: tuple[Any, ...], timeout_s: float | None = None) -> Any:
        if self._closed:
            raise BridgeError("planning process closed")
        if self._proc is None or not self._proc.is_alive():
            self._start()
        proc, conn = self._proc, self._conn  # close() clears these from another thread at shutdown
        if self._closed or proc is None or conn is None:
            raise BridgeError("planning process closed")
        try:
            conn.send(job)
            deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
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
        if kind == "refused":
            raise FileRefused(*value)
        if kind == "err":
            raise BridgeError(value)
        return value

    def plan(self, args: Mapping[str, Any], stage: str, seed: int) -> tuple[Scene, str]:
        """See :meth:`InlinePlanner.plan`."""
        return self._ask(("plan", dict(args), stage, seed))

    def load(self, path: str) -> Scene:
        """See :meth:`InlinePlanner.load`."""
        return self._ask(("load", path), self.files.deadline_s + LOAD_ALLOWANCE_S)

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
        Quiet time after the last re-plan request before planning, seconds (during a flood of
        requests a pass starts anyway once the first waited ``1 / max_replans_per_s``).
    files : FilePolicy, optional
        Which scene files ``/gravity/scene`` may load (the inline runner's; a given ``runner``
        brings its own). Default: regular files up to the size limit, in any folder.
    max_replans_per_s : float
        Re-plan passes start at most this often, per second.
    max_loads_per_s : float
        Scene files are loaded at most this often, per second.
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
        files: FilePolicy | None = None,
        max_replans_per_s: float = MAX_REPLANS_PER_S,
        max_loads_per_s: float = MAX_LOADS_PER_S,
        realtime_priority: bool = False,
    ) -> None:
        self.base_doc = copy.deepcopy(dict(base_doc))
        self.base = Request.from_dict(self.base_doc, source="request")
        self._publish_cb = publish
        self._current_section = current_section
        self._inline = InlinePlanner(self.base_doc, make_scene_fn, llm_factory, files)
        self.runner = runner if runner is not None else self._inline
        self.planner = planner
        self.seed = seed
        self.debounce_s = debounce_s
        self.replan_interval_s = 1.0 / max_replans_per_s
        self.load_interval_s = 1.0 / max_loads_per_s
        self.realtime_priority = realtime_priority
        # The inbox: latest-wins slots guarded by one condition (any thread writes, the worker reads)
        self._cv = threading.Condition()
        self._want_context: PlanContext | None = None
        self._want_prompt: str | None = None
        self._prompt_pending = False
        self._want_hints: dict[str, str] = {}
        self._dirty_first: float | None = None  # when the oldest unplanned re-plan request came
        self._dirty_last = 0.0
        self._files: OrderedDict[str | None, tuple[str, str | None]] = OrderedDict()
        self._next_pass_s = 0.0
        self._next_load_s = 0.0
        self._last_job = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards the book / map / pins against build_initial vs the thread
        self.map = ObjectMap.from_request(self.base)
        self.prompt: str | None = None
        self.hints: dict[str, str] = {}
        """Stem hints typed live (stem id -> text), over the request's own; replaced, never edited."""
        self.context = PlanContext()
        self._planned: dict[str | None, PreparedScene] = {}
        self._pins: dict[str | None, PreparedScene] = {}
        self._cache: OrderedDict[tuple[Any, ...], tuple[Scene, str]] = OrderedDict()
        self.book: SceneBook | None = None
        self._version = 0
        self.plans = 0
        self.passes = 0
        self.loads = 0
        self.failures = 0
        self.refused_files = 0
        self.prompt_requests = 0
        self.file_requests = 0
        self.superseded = 0
        self.dropped_jobs = 0
        self.last_planner = "planner"
        self.last_plan_s = 0.0

    # ------------------------------------------------------------------ public, any thread
    def request_replan(self, context: PlanContext) -> None:
        """Plan again for ``context`` (coalesced, debounced, rate-limited). Never blocks."""
        with self._cv:
            self._want_context = context
            self._mark_dirty()

    def request_prompt(self, text: str) -> None:
        """Re-plan every section with a new scene-level ``text`` (cut to :data:`MAX_PROMPT_CHARS`;
        ``""`` removes the prompt). A newer prompt replaces one not yet planned. Never blocks.
        """
        text = str(text)[:MAX_PROMPT_CHARS]
        with self._cv:
            self.prompt_requests += 1
            self.superseded += self._prompt_pending
            self._want_prompt, self._prompt_pending = text, True
            self._mark_dirty()

    def request_hint(self, stem_id: str, text: str) -> bool:
        """Re-plan every section with stem ``stem_id``'s hint set to ``text`` (cut to
        :data:`MAX_HINT_CHARS`; ``""`` removes it). False (nothing done) for a stem the request
        does not have. A newer hint for the same stem replaces one not yet planned. Never blocks.
        """
        if not any(s.id == stem_id for s in self.base.stems):
            return False
        with self._cv:
            self.prompt_requests += 1
            self.superseded += stem_id in self._want_hints
            self._want_hints[stem_id] = str(text)[:MAX_HINT_CHARS]
            self._mark_dirty()
        return True

    def request_for(self, name: str | None) -> Request:
        """The validated request section ``name`` is planned from now (prompt, hints, markers and
        tempo included): what the rule engine checks that section's scene against. Any thread.
        """
        return section_request(self.base_doc, **self._section_args(name, self.context))

    def request_scene_file(self, path: str, section: str | None = None) -> None:
        """Load a scene file and pin it to ``section`` (default: the one playing when it loads).

        A newer request for the same section replaces a pending one; with
        :data:`MAX_PENDING_FILES` sections waiting, requests for another are dropped (counted).
        Never blocks.
        """
        key = section_key(section)
        with self._cv:
            self.file_requests += 1
            if key in self._files:
                self.superseded += 1
                del self._files[key]  # re-inserted last: sections take turns during a flood
            elif len(self._files) >= MAX_PENDING_FILES:
                self.dropped_jobs += 1
                return
            self._files[key] = (str(path), section)
            self._cv.notify()

    def _mark_dirty(self) -> None:
        """(Holding the lock) a re-plan is wanted from now on."""
        now = time.monotonic()
        if self._dirty_first is None:
            self._dirty_first = now
        self._dirty_last = now
        self._cv.notify()

    def _replan_due_s(self) -> float | None:
        """(Holding the lock) when the pending re-plan may start (monotonic s); None: none pending."""
        if self._dirty_first is None:
            return None
        quiet = min(self._dirty_last + self.debounce_s, self._dirty_first + self.replan_interval_s)
        return max(quiet, self._next_pass_s)

    def _newer_pending(self) -> bool:
        """Something newer than the pass in progress waits: a re-plan request or a due file."""
        return self._dirty_first is not None or (bool(self._files) and time.monotonic() >= self._next_load_s)

    def _next_job(self) -> tuple[str, Any] | None:
        """Wait for the next due job: ("file", (path, section)) or ("replan", (context, prompt
        change or None, hint changes)); None once stopped. Files first (pinning is what the user asked for),
        but when both are due a re-plan follows a load, so neither kind can starve the other.
        """
        with self._cv:
            while not self._stop.is_set():
                now = time.monotonic()
                due = self._replan_due_s()
                plan_due = due is not None and now >= due
                if self._files and now >= self._next_load_s and not (plan_due and self._last_job == "file"):
                    self._next_load_s = now + self.load_interval_s
                    self._last_job = "file"
                    return "file", self._files.popitem(last=False)[1]
                if plan_due:
                    ctx = self._want_context or self.context
                    prompt = self._want_prompt if self._prompt_pending else None
                    hints, self._want_hints = self._want_hints, {}
                    self._want_context, self._prompt_pending, self._dirty_first = None, False, None
                    self._next_pass_s = now + self.replan_interval_s
                    self._last_job = "replan"
                    return "replan", (ctx, prompt, hints)
                waits = [1.0] + [t - now for t in (due, self._next_load_s if self._files else None) if t is not None]
                self._cv.wait(max(0.001, min(waits)))
        return None

    def _resume(self, ctx: PlanContext) -> None:
        """An abandoned pass: plan ``ctx`` again (unless a newer context waits), without debounce."""
        with self._cv:
            if self._want_context is None:
                self._want_context = ctx
            if self._dirty_first is None:
                self._dirty_first = self._dirty_last = time.monotonic() - self.debounce_s
            self._cv.notify()

    def start(self) -> None:
        """Start the worker thread (after :meth:`build_initial`)."""
        self._thread = threading.Thread(target=self._run, name="gravity-plan", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the thread to finish and wait up to ``timeout_s`` (a running plan is abandoned)."""
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
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
            "hints": tuple(sorted(self.hints.items())) or None,
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

        Returns False when abandoned because something newer waits (the caller plans again). A
        pass is never abandoned before the scene playing now (the default scene, then the current
        section: planned first) is planned, so a continuous flood of requests still updates what
        plays, at the pass rate.
        """
        self.context = ctx
        self.passes += 1
        names = self._section_names(ctx)
        keys = [section_key(n) for n in names]
        current = section_key(self._current_section())
        must = keys.index(current) + 1 if current in keys else 1
        done = 0
        keep = set(keys)
        with self._lock:
            self._planned = {k: v for k, v in self._planned.items() if k in keep}
            self._pins = {
                k: self._prepare(v.scene, v.source, k, ctx) if v.scene.section_s() is None else v
                for k, v in self._pins.items()
            }  # untimed pinned scenes follow the markers
        stages = ["planner"] + ([self.planner] if self.planner != "planner" else [])
        for stage in stages:
            for name in names:
                if self._stop.is_set() or (done >= must and self._newer_pending()):
                    return False  # something newer first; the caller resumes
                done += 1
                try:
                    scene, source = self._plan(name, ctx, stage)
                except (GravityError, ValueError, KeyError, TypeError) as exc:
                    if self._stop.is_set():
                        return True
                    self.failures += 1
                    log.error("planning section %s failed: %s", quote(name), one_line(exc))
                    continue
                except Exception:  # a proposer bug must not kill live streaming
                    self.failures += 1
                    log.exception("planning section %s crashed", quote(name))
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
        """Load a scene file through the runner (and so the file gate) and pin it; a refusal or an
        invalid scene is one log line (the path quoted, :func:`bridge.files.quote`), never fatal.
        """
        self.loads += 1
        if section is None:
            section = self._current_section()
        try:
            scene = self.runner.load(path)
        except FileRefused as exc:
            self.failures += 1
            self.refused_files += 1
            log.warning("/gravity/scene refused %s: %s", quote(exc.path), exc.reason)
            return
        except (GravityError, OSError) as exc:
            self.failures += 1
            log.error("/gravity/scene %s not loaded: %s", quote(path), one_line(exc))
            return
        key = section_key(section)
        with self._lock:
            if len(self._pins) >= MAX_SECTIONS and key not in self._pins:
                log.error("too many pinned scenes (%d); ignoring %s", MAX_SECTIONS, quote(path))
                return
            stems = [sid for o in scene.objects for sid in o.stems]
            old_map, self.map = self.map, self.map.extended(stems)
            if self.map is not old_map:  # new object numbers: every scene must cover them
                self._reprepare()
            self._pins[key] = self._prepare(scene, f"file:{Path(path).name}", key, self.context)
            self._publish()
        log.info("pinned %s to section %s", quote(path), quote(section))

    def _run(self) -> None:
        if self.realtime_priority and isinstance(self.runner, PlanProcess):
            # The heavy work happens in the planning process; what is left here (unpickling, preparing,
            # publishing: a few ms) then runs without being preempted while it holds the interpreter
            # lock the frame thread needs. Real-time priority 1 stays below the frame thread's.
            from .scheduler import raise_thread_priority

            raise_thread_priority(rt_priority=1, nice=0)
        while (job := self._next_job()) is not None:
            kind, arg = job
            if kind == "file":
                self._load_file(*arg)
                continue
            ctx, prompt, hints = arg
            if prompt is not None and (prompt or None) != self.prompt:
                self.prompt = prompt or None
                log.info("re-planning with prompt %s", quote(self.prompt))
            if hints:
                self.hints = {k: v for k, v in {**self.hints, **hints}.items() if v}
                log.info("re-planning with hints for %s", ", ".join(quote(k) for k in sorted(hints)))
            if not self._replan(ctx) and not self._stop.is_set():
                self._resume(ctx)
