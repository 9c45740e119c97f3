"""gravity-live: follow a DAW over OSC and stream every object's position to spatial renderers.

Threads (none waits on another's slow work):

``gravity-listen``
    receives DAW datagrams, decodes, dispatches (:mod:`bridge.daw`), updates the transport;
``gravity-frames``
    emits frames at the configured rate (:mod:`bridge.scheduler`) to every target
    (:mod:`bridge.targets`) and to frame listeners (the binaural preview, :mod:`bridge.preview`);
``gravity-plan``
    makes and loads scenes (:mod:`bridge.planning`) and publishes scene books; OSC commands are
    untrusted input: requests are coalesced and rate-limited there, and a file a command names is
    read only through :mod:`bridge.files` (under ``LiveConfig.allow_dirs``, regular, bounded);
``gravity-house``
    drains the rate-limited log, forwards (debounced) re-plan requests, keeps AbletonOSC
    subscribed, samples memory, drives the ``--soak`` self-test;
``gravity-preview`` (``--preview`` only)
    keeps the binaural player on the DAW's playhead and section (:mod:`bridge.preview`).

The command line (``gravity live``, :mod:`gravity.cli.live`) prints the status line and
start-up errors. :meth:`LiveBridge.stop` stops the threads and sends nothing more: objects stay
where the last frame put them (nothing is muted or parked on exit).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from gravity.pipeline import PLANNERS, SceneResult, make_scene
from gravity.request import Request
from renderer.listener import Listener

from .daw import (
    AbletonClient,
    ArdourClient,
    ArdourFeedback,
    DawHooks,
    DawListener,
    Dispatcher,
    build_dispatch_table,
)
from .edits import Edit, EditOutcome, SceneEdits
from .errors import BridgeError, TargetSpecError
from .files import FilePolicy
from .frame import Frame
from .head import HeadDispatcher, HeadInput
from .oscio import bind_udp
from .planning import PlanContext, PlanProcess, PlanWorker, load_llm
from .ratelog import RateLimitedLog
from .scenes import SceneBook
from .scheduler import FrameScheduler, SchedulerConfig, raise_thread_priority
from .targets import Target, TargetSpec, make_target
from .transport import Marker, SectionInfo, Transport, TransportState

if TYPE_CHECKING:
    import socket

    from gravity.llm.runtime import LLMConfig

    from .preview import PreviewSource

__all__ = ["LiveConfig", "LiveStatus", "LiveBridge", "format_status", "rss_bytes"]

log = logging.getLogger("gravity.live")


@dataclass(frozen=True)
class LiveConfig:
    """Everything gravity-live needs besides the request.

    Attributes
    ----------
    listen_host, listen_port : str, int
        Where DAW messages arrive (UDP).
    targets : tuple of TargetSpec
        Where frames go.
    rate_hz : float
        Frames per second, 1..200.
    refresh_s : float
        Full re-send period per object, seconds.
    crossfade_beats : float
        Scene-replacement crossfade length, beats.
    planner : str
        Proposer for the second planning stage (``make_scene(planner=...)``).
    llm : LLMConfig or None
        How the second planning stage loads and samples its model (``gravity live``'s LLM flags,
        the same as ``gravity scene``'s; see :func:`bridge.planning.load_llm`). None: the
        defaults, the model resolved as ``model_for`` does.
    seed : int
        Proposer seed.
    bpm : float or None
        Tempo until the DAW reports one (default: the request's).
    ableton : (str, int) or None
        AbletonOSC address to subscribe to.
    ardour : (str, int) or None
        Ardour's OSC surface to ask for feedback (:class:`bridge.daw.ArdourClient`).
    soak_minutes : float or None
        Run the self-test for this long, then stop.
    plan_in_subprocess : bool
        Run ``make_scene`` (planner and LLM) in a separate, lower-priority process so planning
        never holds the interpreter lock the frame thread needs.
    realtime_priority : bool
        Ask the OS for real-time scheduling of the frame thread (best effort).
    switch_interval_s : float or None
        Python thread switch interval while running (shorter = the frame thread gets the
        interpreter sooner when another thread is busy); None leaves it alone.
    jump_threshold_s, slew_s : float
        Transport: seek detection and jitter slewing, seconds.
    log_interval_s : float
        Minimum seconds between two reports of the same problem.
    allow_dirs : tuple of str
        Folders whose files OSC commands (``/gravity/scene``) may read, subfolders included
        (``gravity live --allow-dir``; the command line adds the request's or the stems' folder).
        Empty: no file is read. See :mod:`bridge.files` for the rest of the rule.
    head : bool
        Head tracking (:mod:`bridge.head`): ADM-OSC ``/adm/lis/...`` and IEM ``/SceneRotator/...``
        poses on the listen port turn the preview (:attr:`LiveBridge.head`) and go on to the
        targets that take them.
    head_port : int or None
        Also read head poses on this UDP port; implies ``head``.
    head_host : str or None
        Where ``head_port`` listens (default ``listen_host``): ``0.0.0.0`` takes a phone on the
        network while the DAW's port stays on loopback (a pose is all that port reads).
    """

    listen_host: str = "127.0.0.1"
    listen_port: int = 9000
    targets: tuple[TargetSpec, ...] = (TargetSpec("adm"),)
    rate_hz: float = 50.0
    refresh_s: float = 1.0
    crossfade_beats: float = 2.0
    planner: str = "auto"
    llm: LLMConfig | None = None
    seed: int = 0
    bpm: float | None = None
    ableton: tuple[str, int] | None = None
    ardour: tuple[str, int] | None = None
    soak_minutes: float | None = None
    plan_in_subprocess: bool = True
    realtime_priority: bool = True
    switch_interval_s: float | None = 0.001
    jump_threshold_s: float = 0.25
    slew_s: float = 0.5
    log_interval_s: float = 10.0
    allow_dirs: tuple[str, ...] = ()
    head: bool = False
    head_port: int | None = None
    head_host: str | None = None

    def __post_init__(self) -> None:
        """Check the settings; a bad one is a :class:`BridgeError` naming it."""
        if not 1.0 <= self.rate_hz <= 200.0:
            raise BridgeError(f"--rate {self.rate_hz:g}: must be 1..200 Hz")
        if self.planner not in PLANNERS:
            raise BridgeError(f"planner must be one of {PLANNERS}, got {self.planner!r}")
        if not self.targets:
            raise BridgeError("at least one --target is needed")
        if self.bpm is not None and not 1.0 <= self.bpm <= 1000.0:
            raise BridgeError(f"--bpm {self.bpm:g}: must be 1..1000")
        if self.head_port is not None and (
            not 0 <= self.head_port <= 65535 or (self.head_port == self.listen_port and self.head_port)
        ):
            raise BridgeError(f"--head-port {self.head_port}: must be 0..65535 and not the --listen port")


@dataclass(frozen=True)
class LiveStatus:
    """A snapshot for the status line and reports."""

    playing: bool
    position_s: float
    bar: int
    beat: float
    bpm: float
    section: str | None
    scene_source: str
    objects_active: int
    objects_total: int
    frame_rate_hz: float
    message_rate_hz: float
    planner: str
    daw_packets: int
    bad_packets: int
    echoes: int
    targets_refused: int
    frames: int
    messages: int
    errors: int
    last_switch_ms: float | None
    rss_mb: float


def rss_bytes() -> int:
    """Resident set size of this process in bytes (Linux ``/proc``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class LiveBridge:
    """The orchestrator: owns the sockets, the transport, the scene book and the threads.

    Parameters
    ----------
    config : LiveConfig
        Settings.
    request_doc : mapping
        The request document (JSON dict), validated here.
    make_scene_fn : callable
        Scene proposer. The default runs ``gravity.pipeline.make_scene`` in a separate process
        (:class:`~bridge.planning.PlanProcess`, see ``LiveConfig.plan_in_subprocess``).
    llm_factory : callable, optional
        Loads the model for the second planning stage when planning runs in-process; called
        once, in the planning thread.

    Examples
    --------
    >>> with LiveBridge(LiveConfig(listen_port=9000), doc) as bridge:  # doctest: +SKIP
    ...     bridge.wait(60)
    """

    def __init__(
        self,
        config: LiveConfig,
        request_doc: Mapping[str, Any],
        *,
        make_scene_fn: Callable[..., SceneResult] = make_scene,
        llm_factory: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._clock = clock
        self.events = RateLimitedLog(log, interval_s=config.log_interval_s, clock=clock)
        self.files = FilePolicy.confined(config.allow_dirs)  # what commands that name a file may read
        runner = None
        if make_scene_fn is make_scene and config.plan_in_subprocess:
            runner = PlanProcess(request_doc, config.planner, config.llm, files=self.files)  # it loads the model itself
        elif llm_factory is None and make_scene_fn is make_scene:
            llm_factory = lambda: load_llm(config.planner, config.llm)  # noqa: E731
        self.worker = PlanWorker(
            request_doc,
            publish=self._publish,
            current_section=self._current_section,
            runner=runner,
            make_scene_fn=make_scene_fn,
            planner=config.planner,
            llm_factory=llm_factory,
            seed=config.seed,
            files=self.files,
            realtime_priority=config.realtime_priority,
        )
        self.edits = SceneEdits(
            self._set_book, self.worker.request_for, lambda: (self.worker.prompt, self.worker.hints)
        )
        """The producer's hand edits, laid over every book the planner publishes (:mod:`bridge.edits`)."""
        req = self.worker.base
        self.transport = Transport(
            bpm=config.bpm or req.bpm,
            time_signature=req.time_signature,
            jump_threshold_s=config.jump_threshold_s,
            slew_s=config.slew_s,
            clock=clock,
        )
        self._book: SceneBook | None = None
        self.head: Listener | None = Listener(clock=clock) if config.head or config.head_port is not None else None
        """The listener's head pose (head tracking on), for the preview's renderers; else None."""
        self.head_input: HeadInput | None = None
        self.head_listener: DawListener | None = None
        self._head_quiet = False
        self._head_sock: socket.socket | None = None
        self.targets: list[Target] = []
        self.scheduler: FrameScheduler | None = None
        self.listener: DawListener | None = None
        self.ableton: AbletonClient | None = None
        self.ardour: ArdourClient | None = None
        self.track_names: dict[int, str] = {}
        self._tracks_changed = False
        self._replan_flag = threading.Event()
        self._resubscribe_flag = threading.Event()
        self._stop = threading.Event()
        self._house: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._old_switch: float | None = None
        self._started = False
        self._rate = (clock(), 0, 0, 0.0, 0.0)  # (t, frames, messages, frame rate, message rate)
        self.rss_samples: list[tuple[float, int]] = []
        self.soak_done = threading.Event()
        self._soak_until: float | None = None
        self._soak_loop_s = 0.0
        self._soak_loops = 0

    # ------------------------------------------------------------------ wiring
    def _current_section(self) -> str | None:
        return self.scheduler.tracker.name if self.scheduler is not None else None

    def _publish(self, book: SceneBook) -> None:
        self.edits.published(book)  # the plan, with the section's hand edits over it, to _set_book

    def _set_book(self, book: SceneBook) -> None:
        self._book = book
        if self.scheduler is not None:
            self.scheduler.wake()

    # ------------------------------------------------------------------ steering (the browser UI)
    def apply_edit(self, edit: Edit, section: str | None = None, *, current: bool = True) -> EditOutcome:
        """Change one object of a section's scene by hand; thread-safe, returns at once.

        The edit is checked by the rule engine against the section's request first; a refused
        edit changes nothing and its outcome names the rule. An accepted one is published with the
        scene book: the frame thread sends it in its next frame (woken now, no crossfade), the
        preview follows the book, and it stays for the rest of the song section, through re-plans
        (see :mod:`bridge.edits` for what a new prompt or hint does to it).

        Parameters
        ----------
        edit : Edit
            What to change.
        section : str or None
            Section (marker name) whose scene to edit when ``current`` is False; None = the
            default scene.
        current : bool
            Edit the section playing now (the default).
        """
        return self.edits.apply(edit, self._current_section() if current else section)

    def request_prompt(self, text: str) -> None:
        """Re-plan every section with a new scene prompt (``""`` removes it); never blocks."""
        self.worker.request_prompt(text)

    def request_hint(self, stem_id: str, text: str) -> bool:
        """Re-plan with stem ``stem_id``'s hint set to ``text``; False for an unknown stem. Never blocks."""
        return self.worker.request_hint(stem_id, text)

    def request_for(self, section: str | None) -> Request:
        """The validated request section ``section``'s scene answers (prompt and live hints included)."""
        return self.worker.request_for(section)

    def _book_ref(self) -> SceneBook:
        book = self._book
        assert book is not None
        return book

    @property
    def book(self) -> SceneBook | None:
        """The latest published scene book (None before :meth:`start`); a reference read."""
        return self._book

    # ------------------------------------------------------------------ what a preview follows
    # (bridge.preview.PreviewSource: the preview reads the bridge through these only)
    @property
    def section(self) -> SectionInfo | None:
        """The section the frame thread is in (None before its first frame); a reference read."""
        return self.scheduler.section if self.scheduler is not None else None

    @property
    def jump_threshold_s(self) -> float:
        """Playhead moves further than this are jumps (seek, locate, loop), seconds."""
        return self.transport.jump_threshold_s

    def transport_state(self) -> TransportState:
        """The transport now: an immutable snapshot (lock-free)."""
        return self.transport.state

    def add_frame_listener(self, listener: Callable[[Frame], None]) -> None:
        """Call ``listener(frame)`` from the frame thread after every frame (e.g. a preview).

        The listener must return at once (hand frames to its own thread); see
        :meth:`bridge.scheduler.FrameScheduler.add_listener`.
        """
        if self.scheduler is None:
            raise BridgeError("start the bridge before adding frame listeners")
        self.scheduler.add_listener(listener)

    def remove_frame_listener(self, listener: Callable[[Frame], None]) -> None:
        """Stop calling ``listener`` (ignored when it is not registered)."""
        if self.scheduler is not None:
            self.scheduler.remove_listener(listener)

    def report_problem(self, kind: str, fmt: str, *args: Any) -> None:
        """Count a problem of ``kind``; log it rate-limited from the housekeeping thread."""
        self.events.report(kind, fmt, *args)

    def _check_targets(self) -> None:
        own = {
            ("127.0.0.1", self.config.listen_port),
            ("localhost", self.config.listen_port),
            (self.config.listen_host, self.config.listen_port),
        }
        head_host = self.config.head_host or self.config.listen_host
        if self.config.head_port:
            own |= {("127.0.0.1", self.config.head_port), (head_host, self.config.head_port)}
        wildcard = self.config.listen_host in ("0.0.0.0", "::", "") or (
            self.config.head_port and head_host in ("0.0.0.0", "::", "")
        )
        for spec in self.config.targets:
            if (spec.host, spec.port) in own or (
                wildcard and spec.port in (self.config.listen_port, self.config.head_port)
            ):
                raise TargetSpecError(
                    f"--target {spec} points at gravity-live's own --listen port "
                    f"{self.config.listen_port}; use the renderer's port"
                )

    def start(self) -> None:
        """Bind, plan the first scene, start the threads. Raises :class:`BridgeError` on start-up problems."""
        if self._started:
            return
        cfg = self.config
        self._check_targets()
        self._sock = bind_udp(cfg.listen_host, cfg.listen_port)
        try:
            for spec in cfg.targets:
                try:
                    self.targets.append(make_target(spec))
                except OSError as exc:
                    raise BridgeError(f"--target {spec}: {exc}") from None
            self.worker.build_initial()
            self.scheduler = FrameScheduler(
                SchedulerConfig(
                    rate_hz=cfg.rate_hz,
                    refresh_s=cfg.refresh_s,
                    crossfade_beats=cfg.crossfade_beats,
                    realtime_priority=cfg.realtime_priority,
                ),
                transport=self.transport,
                book=self._book_ref,
                targets=self.targets,
                events=self.events,
                clock=self._clock,
            )
            hooks = DawHooks(
                wake=self.scheduler.wake,
                replan=self._replan_flag.set,
                load_scene=self.worker.request_scene_file,
                prompt=self.worker.request_prompt,
                resubscribe=self._resubscribe_flag.set,
                track_name=self._track_name,
            )
            echo = tuple(p for t in self.targets for p in t.echo_prefixes)
            ardour = ArdourFeedback(self.transport, hooks, clock=self._clock)
            table = build_dispatch_table(self.transport, hooks, clock=self._clock, ardour=ardour)
            dispatcher: Dispatcher = Dispatcher(table, echo_prefixes=echo)
            if self.head is not None:
                # head poses next to the DAW's messages, read before the ADM echo filter
                self.head_input = HeadInput(self.head, targets=self.targets)
                dispatcher = HeadDispatcher(self.head_input, dispatcher)
                if cfg.head_port is not None:
                    self._head_sock = bind_udp(cfg.head_host or cfg.listen_host, cfg.head_port)
                    self.head_listener = DawListener(
                        self._head_sock,
                        HeadDispatcher(self.head_input),
                        self.events,
                        realtime_priority=cfg.realtime_priority,
                        clock=self._clock,
                    )
            self.listener = DawListener(
                self._sock, dispatcher, self.events, realtime_priority=cfg.realtime_priority, clock=self._clock
            )
            if cfg.ableton is not None:
                self.ableton = AbletonClient(self._sock, *cfg.ableton)
                self._resubscribe_flag.set()
            if cfg.ardour is not None:
                self.ardour = ArdourClient(self._sock, *cfg.ardour, feedback=ardour, clock=self._clock)
        except BaseException:
            self._close_sockets()
            raise
        if cfg.switch_interval_s is not None:
            self._old_switch = sys.getswitchinterval()
            sys.setswitchinterval(cfg.switch_interval_s)
        if cfg.soak_minutes is not None:
            self._start_soak(cfg.soak_minutes)
        self.rss_samples.append((self._clock(), rss_bytes()))
        if isinstance(self.worker.runner, PlanProcess):
            self.worker.runner.start()  # spawn before the realtime threads run
        self.worker.start()
        self.scheduler.start()
        self.listener.start()
        if self.head_listener is not None:
            self.head_listener.start()
        self._house = threading.Thread(target=self._housekeeping, name="gravity-house", daemon=True)
        self._house.start()
        self._started = True
        log.info(
            "gravity-live: listening on %s:%d, %d target(s) at %g Hz",
            cfg.listen_host,
            cfg.listen_port,
            len(self.targets),
            cfg.rate_hz,
        )
        log.info("gravity-live: files named over OSC (/gravity/scene): %s", self.files.describe())

    def _track_name(self, index: int, name: str) -> None:
        if index in self.track_names or len(self.track_names) < 1024:
            self.track_names[index] = name
            self._tracks_changed = True

    def _check_tracks(self) -> None:
        """Log (once per change) DAW tracks named like stems but numbered differently from
        their object numbers, a common routing mistake.
        """
        self._tracks_changed = False
        book = self._book
        if book is None:
            return
        by_name = {" ".join(n.split()).casefold(): i for i, n in list(self.track_names.items())}
        for k, sid in enumerate(book.map.ids):
            i = by_name.get(sid.casefold())
            if i is not None and i != k + 1:
                log.info(
                    "DAW track %d is named %r, which is object %d here (objects follow the request's "
                    "stem order); route that track to renderer input %d",
                    i,
                    sid,
                    k + 1,
                    k + 1,
                )

    def stop(self) -> None:
        """Stop every thread and close the sockets; nothing more is sent (no mute, no park)."""
        self._stop.set()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.listener is not None:
            self.listener.stop()
        if self.head_listener is not None:
            self.head_listener.stop()
        self.worker.stop()
        if self._house is not None:
            self._house.join(2.0)
        self.events.drain()
        self._close_sockets()
        if self._old_switch is not None:
            sys.setswitchinterval(self._old_switch)
            self._old_switch = None

    def _close_sockets(self) -> None:
        for t in self.targets:
            t.close()
        if self._sock is not None:
            self._sock.close()
        if self._head_sock is not None:
            self._head_sock.close()

    def __enter__(self) -> "LiveBridge":
        """Start the bridge."""
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the bridge."""
        self.stop()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until :meth:`stop` or the end of a soak run; True if it ended."""
        return self._stop.wait(timeout_s) or self.soak_done.is_set()

    # ------------------------------------------------------------------ soak self-test
    def _start_soak(self, minutes: float) -> None:
        """Self-driven transport: a two-section song (Verse, Chorus) looping at the request's
        tempo; each loop also re-plans with another prompt (two alternate), so planning,
        publishing and crossfades run all along while memory must stay flat.
        """
        book = self._book_ref()
        self._soak_loop_s = 2.0 * book.default.section_s
        self.transport.set_markers([Marker(0.0, "Verse"), Marker(book.default.section_s, "Chorus")])
        self._replan_flag.set()
        self.transport.play(0.0)
        self._soak_until = self._clock() + minutes * 60.0

    # ------------------------------------------------------------------ housekeeping
    def _housekeeping(self) -> None:
        if self.config.realtime_priority:  # light, bounded work: never preempted holding the interpreter lock
            raise_thread_priority(rt_priority=1, nice=0)
        last_sub = -1e9
        last_cues = -1e9
        last_rss = last_tracks = self._clock()
        while not self._stop.wait(0.1):
            now = self._clock()
            try:
                self.events.drain()
                if self._replan_flag.is_set():
                    self._replan_flag.clear()
                    st = self.transport.state
                    self.worker.request_replan(
                        PlanContext(
                            markers=st.markers,
                            bpm=st.bpm if st.bpm_from_daw or self.config.bpm else None,
                            beats_per_bar=st.beats_per_bar,
                            beat_unit=st.beat_unit,
                        )
                    )
                if self.ardour is not None:
                    self.ardour.poll(now)
                if self.ableton is not None:
                    if self._resubscribe_flag.is_set() or now - last_sub > 5.0:
                        self._resubscribe_flag.clear()
                        self.ableton.subscribe()
                        last_sub = last_cues = now
                    elif now - last_cues > 2.0:
                        self.ableton.poll_cues()
                        last_cues = now
                if self.head is not None:
                    self._check_head(now)
                if self._tracks_changed and now - last_tracks > 2.0:
                    last_tracks = now
                    self._check_tracks()
                if now - self._rate[0] >= 1.0 and self.scheduler is not None:
                    t0, f0, m0, _, _ = self._rate
                    dt = now - t0
                    self._rate = (
                        now,
                        self.scheduler.frames,
                        self.scheduler.messages,
                        (self.scheduler.frames - f0) / dt,
                        (self.scheduler.messages - m0) / dt,
                    )
                if now - last_rss >= 10.0:
                    last_rss = now
                    if len(self.rss_samples) < 4096:
                        self.rss_samples.append((now, rss_bytes()))
                if self._soak_until is not None:
                    pos = self.transport.position(now)
                    if pos >= self._soak_loop_s > 0:
                        self.transport.seek(pos - self._soak_loop_s)
                        self._soak_loops += 1
                        self.worker.request_prompt(("wider, more motion", "closer and calmer")[self._soak_loops % 2])
                    if now >= self._soak_until:
                        self.rss_samples.append((now, rss_bytes()))
                        self._soak_until = None
                        self.soak_done.set()
            except Exception:  # housekeeping must outlive its own bugs
                log.exception("housekeeping error")

    HEAD_SILENT_S = 2.0
    """A head tracker quiet this long (seconds) is reported once; its last pose holds."""

    def _check_head(self, now: float) -> None:
        """Say once when a head tracker that was sending falls silent (the pose holds)."""
        assert self.head is not None
        silent = self.head.silent_s(now)
        quiet = silent is not None and silent > self.HEAD_SILENT_S
        if quiet and not self._head_quiet:
            self.events.report(
                "head-silent", "head tracker silent for %.1f s: holding its last pose", silent, level=logging.INFO
            )
        self._head_quiet = quiet

    # ------------------------------------------------------------------ status
    def status(self) -> LiveStatus:
        """The current state, for the status line."""
        sch = self.scheduler
        st = self.transport.state
        pos = st.position(self._clock())
        bar, beat = st.bar_beat(pos)
        frame = sch.last_frame if sch is not None else None
        lis = self.listener
        return LiveStatus(
            playing=st.playing,
            position_s=pos,
            bar=bar,
            beat=beat,
            bpm=st.bpm,
            section=frame.section if frame else None,
            scene_source=frame.scene_source if frame else "-",
            objects_active=int(frame.active.sum()) if frame else 0,
            objects_total=frame.size if frame else 0,
            frame_rate_hz=self._rate[3],
            message_rate_hz=self._rate[4],
            planner=self.worker.last_planner,
            daw_packets=lis.packets if lis else 0,
            bad_packets=(lis.malformed + lis.bad_args) if lis else 0,
            echoes=lis.echoes if lis else 0,
            targets_refused=sum(t.out.refused + t.out.errors for t in self.targets),
            frames=sch.frames if sch else 0,
            messages=sch.messages if sch else 0,
            errors=sch.errors if sch else 0,
            last_switch_ms=sch.last_switch_ms if sch else None,
            rss_mb=rss_bytes() / 2**20,
        )

    def report(self) -> dict[str, Any]:
        """A JSON-able summary: status, scheduler statistics, listener counters, memory samples."""
        out: dict[str, Any] = {"status": asdict(self.status())}
        if self.scheduler is not None:
            out["scheduler"] = asdict(self.scheduler.stats())
        if self.listener is not None:
            lis = self.listener
            out["listener"] = {
                k: getattr(lis, k)
                for k in ("packets", "messages", "malformed", "bad_args", "unknown", "ignored", "echoes", "flooded")
            }
        out["targets"] = [
            {
                "target": str(t.spec),
                "messages": t.messages_sent,
                "datagrams": t.out.sent,
                "refused": t.out.refused,
                "dropped": t.out.dropped,
                "errors": t.out.errors,
            }
            for t in self.targets
        ]
        out["problems"] = dict(self.events.counts)
        out["planner"] = {
            "plans": self.worker.plans,
            "passes": self.worker.passes,
            "loads": self.worker.loads,
            "failures": self.worker.failures,
            "prompt_requests": self.worker.prompt_requests,
            "file_requests": self.worker.file_requests,
            "superseded": self.worker.superseded,
            "refused_files": self.worker.refused_files,
            "dropped_jobs": self.worker.dropped_jobs,
            "last": self.worker.last_planner,
        }
        out["transport"] = {"jumps": self.transport.jumps, "corrections": self.transport.corrections}
        if self.head_input is not None:
            out["head"] = self.head_input.stats()
        if self.ardour is not None:
            out["ardour"] = self.ardour.stats()
        if self.rss_samples:
            t0 = self.rss_samples[0][0]
            out["rss_mb"] = [(round(t - t0, 1), round(b / 2**20, 2)) for t, b in self.rss_samples]
        return out


def format_status(s: LiveStatus) -> str:
    """One status line: transport, section, bar, objects, rates, planner."""
    mode = "PLAY" if s.playing else "stop"
    m, sec = divmod(max(0.0, s.position_s), 60.0)
    switch = f" | switch {s.last_switch_ms:.1f} ms" if s.last_switch_ms is not None else ""
    return (
        f"{mode} {int(m):02d}:{sec:06.3f} bar {s.bar}.{int(s.beat)} {s.bpm:.1f} bpm | "
        f"{s.section or '-'} [{s.scene_source}] | {s.objects_active}/{s.objects_total} obj | "
        f"{s.frame_rate_hz:.0f} fps {s.message_rate_hz:.0f} msg/s | planner {s.planner} | "
        f"in {s.daw_packets} bad {s.bad_packets}{switch}"
    )


if TYPE_CHECKING:

    def _follows(bridge: LiveBridge) -> PreviewSource:
        return bridge  # mypy checks that LiveBridge is what bridge.preview follows
