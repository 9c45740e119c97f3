"""The realtime player: stems + scene -> the streaming Renderer -> a sound card (sounddevice).

``gravity preview`` (:mod:`gravity.cli.preview`) and ``gravity live --preview``
(:mod:`bridge.preview`) drive it.

Threads (DESIGN.md: realtime paths never wait on disk, logging or planning):

* **audio callback** (PortAudio via :mod:`sounddevice`): copies frames out of a pre-allocated
  float32 ring buffer into the device buffer. It never renders, never allocates arrays, never
  logs; it takes one lock only with ``blocking=False`` (held by the worker for a pointer reset
  while paused) and outputs silence if it cannot get it.
* **worker**: renders ahead of the callback, ``block`` frames at a time, into the ring buffer
  (``buffer_blocks`` blocks deep). Transport changes (seek / loop / scene swap) while playing
  are crossfaded over ``fade_s`` from the old renderer to a second one started at the new
  place (pre-rolled by ``preroll_s`` so its filters and delay lines are full): no click.
* **preparer**: what a seek or a loop jump needs, off the worker: it resets a spare renderer
  at the target and renders its pre-roll, then hands the ready voice to the worker (the loop
  start is prepared as soon as a loop is set).
* **builder**: scene swaps (:meth:`Player.swap_at`, or a changed scene file): it builds the new
  scene's renderer, primes it at the swap's stem sample and *arms* the swap there (the worker
  crossfades when it reaches that frame; frames it already buffered past it are rendered again,
  so the crossfade begins exactly there). After a swap it builds a spare renderer of the new
  scene, so the next seek needs no build.
* **reloader** (only with a scene file): polls the file's mtime/size/inode; on a change it loads
  and validates the scene and swaps it in as soon as possible. A broken scene file is logged and
  ignored (the old scene keeps playing).

All three helper threads run below the worker's priority.

Head tracking (``head=``, a :class:`renderer.listener.Listener`): every renderer turns the scene
against the listener's latest pose once per block (world-locked objects, every voice a moving
voice), and the worker renders *just in time*: at most one block ahead of the callback instead
of ``buffer_blocks``, with ``static_hop = hop`` and whole units rendered straight through
(:meth:`renderer.render.Renderer.process_units`), so a pose that arrives while block ``k`` is
being delivered is heard from block ``k + 1`` or sooner (one block of latency, measured from the
delivered audio in ``tests/test_renderer_head.py``; :meth:`Player.head_latencies`). While a
helper thread builds or primes a renderer (a scene swap, a seek, a loop) and for a while after an
underflow the worker keeps two blocks ahead (:meth:`Player.head_lead_blocks`): at one block a
16-object swap measured underflows. The price of all this: a worker that misses a block period
underflows, where the default 0.2 s buffer would have absorbed it.

Alignment: output frame ``k`` of a preview started at 0 is sample ``k`` of
:func:`renderer.offline.render_files` (the renderer latency is dropped exactly as there:
the first ``latency_samples`` output samples are discarded), so the preview plays the same
samples as the offline render (tested through JACK in ``tests/test_renderer_preview.py``).
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from gravity.scene import Scene

from .config import RenderConfig
from .errors import RenderError
from .listener import Listener
from .offline import load_stems
from .render import Renderer

__all__ = ["Player", "PlayerStats"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlayerStats:
    """A snapshot of the player's counters.

    Attributes
    ----------
    position_s : float
        Stem time in seconds of the last frame the callback delivered.
    xruns : int
        Callbacks whose PortAudio status flags reported an under/overflow.
    underflows : int
        Callbacks that found fewer frames in the ring buffer than asked for (the worker was
        late); the missing frames were played as silence.
    frames_delivered : int
        Frames copied to the device while playing.
    buffer_fill : float
        Ring-buffer fill, 0..1.
    playing : bool
        Transport state.
    swaps : int
        Scene swaps completed (:meth:`Player.swap_at`, scene-file reloads).
    """

    position_s: float
    xruns: int
    underflows: int
    frames_delivered: int
    buffer_fill: float
    playing: bool
    swaps: int

    def line(self) -> str:
        """One status line (no newline)."""
        state = "play" if self.playing else "stop"
        return (
            f"[{state}] {self.position_s:7.2f} s  xruns {self.xruns}  underflows "
            f"{self.underflows}  buffer {100 * self.buffer_fill:3.0f}%  swaps {self.swaps}"
        )


class _Voice:
    """One renderer fed from a fixed input timeline (signals), with its own cursors."""

    def __init__(self, renderer: Renderer, signals: NDArray[np.float32], target: int, preroll: int) -> None:
        """Start ``renderer`` so that its next output frame is stem sample ``target``.

        The renderer restarts ``preroll`` samples (rounded down to a static hop) before the
        target; that stretch and the latency are rendered and dropped on the first pull.
        """
        unit = renderer.block_unit
        p0 = max(0, target - preroll) // unit * unit
        renderer.reset(p0 / renderer.sample_rate)
        self.r = renderer
        self.signals = signals
        # A head-tracked renderer renders whole units straight through (Renderer.process_units):
        # its input leads by the look-ahead, so its output sample i is stem sample p0 + i and a
        # unit-aligned target leaves nothing rendered ahead of what is pulled.
        self.units = renderer.listener is not None
        self.in_pos = p0 + (renderer.config.lookahead if self.units else 0)  # next input sample fed
        self.out_pos = target  # stem sample of the next output frame
        self.discard = target - p0 + (0 if self.units else renderer.latency_samples)  # output samples to drop
        self._left: NDArray[np.float32] | None = None  # rendered but not pulled yet (units only)

    def _input(self, n: int) -> NDArray[np.float32]:
        s, e = self.in_pos, self.in_pos + n
        n_sig = self.signals.shape[1]
        if s >= n_sig:
            x = np.zeros((self.signals.shape[0], n), np.float32)
        elif e <= n_sig:
            x = self.signals[:, s:e]
        else:
            x = np.zeros((self.signals.shape[0], n), np.float32)
            x[:, : n_sig - s] = self.signals[:, s:]
        self.in_pos = e
        return x

    def _render(self, n: int) -> NDArray[np.float32]:
        """The renderer's next ``n`` output samples."""
        if not self.units:
            return self.r.process(self._input(n))
        unit = self.r.block_unit
        left = self._left
        have = 0 if left is None else left.shape[1]
        k = -(-(n - have) // unit) * unit if n > have else 0
        y = self.r.process_units(self._input(k)) if k else None
        out = y if left is None else left if y is None else np.concatenate([left, y], axis=1)
        if out is None:
            return np.zeros((self.r.n_channels, 0), np.float32)
        self._left = out[:, n:] if out.shape[1] > n else None
        return out[:, :n]

    def prime(self) -> None:
        """Render (and drop) the pre-roll and latency now, so :meth:`pull` costs one block."""
        if self.discard:
            self._render(self.discard)
            self.discard = 0

    def pull(self, n: int) -> NDArray[np.float32]:
        """The next ``n`` output frames, (channels, n) float32, aligned with the stems."""
        self.prime()
        self.out_pos += n
        return self._render(n)


@dataclass(frozen=True, eq=False)
class _Look:
    """What a renderer plays: a scene, its object signals and its motion time base."""

    scene: Scene
    signals: NDArray[np.float32]
    origin_s: float  # stem time where the scene's motion t = 0 is, seconds
    duration_s: float | None  # motion time base of a scene without timing, seconds
    section_s: float  # the renderer's section length (inf: motion frozen at t = 0), seconds


@dataclass(frozen=True, eq=False)
class _SwapJob:
    """A scene swap on its way to the worker (built and primed by the builder thread)."""

    sid: int
    scene: Scene
    at: int | None  # stem sample where the crossfade should begin; None: as soon as possible
    origin_s: float
    section_s: float | None
    look: _Look | None = None  # set when handed back by the worker (missed its frame)
    renderer: Renderer | None = None
    late: bool = False  # handed back twice: aim after the buffered frames (no rewind)


@dataclass(frozen=True, eq=False)
class _Armed:
    """A primed voice of a new scene waiting in the worker for its stem sample."""

    sid: int
    voice: _Voice
    look: _Look
    timed: bool  # the caller asked for this frame (else: as soon as possible)
    retried: bool = False  # re-aimed once already


class Player:
    """Plays stems placed by a scene in real time through the streaming renderer.

    Parameters
    ----------
    stems : sequence of path
        Stem files (as for :func:`renderer.offline.render_files`).
    scene : Scene or path
        The scene; a JSON file path is watched for changes and reloaded live (crossfaded).
        Scenes can also be given in memory, at a chosen stem time, with :meth:`swap_at`.
    device : int or str, optional
        PortAudio output device (index or name substring); default device when None.
    block : int
        Audio callback block size in samples (also the worker's render block).
    rate : int
        Sample rate in Hz (stems are resampled to it).
    config : RenderConfig, optional
        Renderer settings (default :class:`RenderConfig()`, as the offline render).
    model : hrtf.HRTFModel, optional
        HRTF set at ``rate`` (default: :func:`hrtf.load_model`).
    buffer_blocks : int, optional
        Ring-buffer depth in blocks the worker renders ahead (latency of seeks:
        ``buffer_blocks * block / rate`` seconds). Default: at least 8 blocks and 0.2 s
        (19 blocks of 512 at 48 kHz), generous for loaded machines.
    fade_s : float
        Crossfade length in seconds for scene swaps, seeks and loop jumps while playing.
    preroll_s : float
        Input rendered (and dropped) before a new start point so the new renderer's filters,
        delay lines and reflections are filled, in seconds.
    watch_interval_s : float
        Scene-file polling period in seconds; 0 disables live reload.
    start_s : float
        Start position in seconds.
    end_s : float, optional
        Stop position in seconds (default: the stems' end plus the render tail, the length of
        the offline render).
    loop : (float, float), optional
        Loop start and end in seconds.
    stem_map : mapping of str to str, optional
        Scene stem id -> stem file, for files not named after their stem id (see
        :func:`renderer.offline.load_stems`).
    motion_origin_s, section_s : float
        Motion time base of the first scene (see :meth:`swap_at`).
    capture_s : float
        Test hook: seconds of delivered frames recorded (pre-allocated) in
        :attr:`captured` / :attr:`captured_pos`; 0 records nothing.
    head : renderer.listener.Listener, optional
        Head tracking (see the module docstring): the scene turns against this listener's pose,
        rendered just in time (``block`` must be a multiple of ``config.hop``; ``static_hop`` is
        set to ``hop``, ``fade_s`` rounded up to whole hops, ``buffer_blocks`` defaults to 2).
        Every object becomes a moving voice: more CPU than the same scene unturned.
    """

    MAX_TRANSITIONS = 1000
    """Transitions kept in :attr:`transitions` (the oldest are dropped)."""
    POOL = 4
    """Renderers of swapped-out scenes kept for swapping back (sections alternate)."""
    HEAD_BACKOFF_S = 2.0
    """Head tracking: seconds the worker keeps two blocks ahead after an underflow."""

    def __init__(
        self,
        stems: Sequence[Path | str],
        scene: Scene | Path | str,
        *,
        device: int | str | None = None,
        block: int = 512,
        rate: int = 48000,
        config: RenderConfig | None = None,
        model: Any = None,
        buffer_blocks: int | None = None,
        fade_s: float = 0.05,
        preroll_s: float = 0.1,
        watch_interval_s: float = 0.1,
        start_s: float = 0.0,
        end_s: float | None = None,
        loop: tuple[float, float] | None = None,
        stem_map: Mapping[str, str] | None = None,
        motion_origin_s: float = 0.0,
        section_s: float | None = None,
        capture_s: float = 0.0,
        head: Listener | None = None,
    ) -> None:
        self.head = head
        if head is not None:
            config = (config or RenderConfig()).replace(static_hop=(config or RenderConfig()).hop)
            if block % config.hop:
                raise RenderError(f"head tracking renders whole hops: block={block} must be a multiple of {config.hop}")
            fade_s = -(-int(round(fade_s * rate)) // config.hop) * config.hop / rate  # whole hops: no unit left over
            buffer_blocks = 2 if buffer_blocks is None else buffer_blocks
        if buffer_blocks is None:
            buffer_blocks = max(8, -(-int(0.2 * rate) // max(1, int(block))))
        if block < 16 or rate < 8000 or buffer_blocks < 2:
            raise RenderError(f"block={block} must be >= 16, rate={rate} >= 8000 Hz, buffer_blocks >= 2")
        self.stems = [Path(p) for p in stems]
        self.stem_map = dict(stem_map or {})
        self.scene_path = None if isinstance(scene, Scene) else Path(scene)
        self.device = device
        self.block = int(block)
        self.rate = int(rate)
        self.config = config or RenderConfig()
        if model is None and self.config.fmt == "binaural":
            from hrtf import load_model

            model = load_model(rate=self.rate)
        self.model = model
        self.fade = max(1, int(round(fade_s * self.rate)))
        self.preroll = max(0, int(round(preroll_s * self.rate)))
        self.watch_interval_s = float(watch_interval_s)

        first_scene = scene if isinstance(scene, Scene) else Scene.load(scene)
        self._file_sig = self._stat()
        self._signals: dict[tuple[tuple[str, ...], ...], NDArray[np.float32]] = {}
        self._look = self._make_look(first_scene, motion_origin_s, section_s)
        self.renderer_builds = 0  # Renderer constructions (a seek should need none: it resets the spare)
        first = self._renderer(self._look)
        self._spare: Renderer | None = self._renderer(self._look)
        # Seconds a renderer reset + pre-roll takes (running mean); sizes how far ahead a swap
        # is aimed. The first reset of a process is slow (warm-up): time the second.
        _Voice(self._spare, self.signals, 2 * self.preroll, self.preroll).prime()
        t0 = time.perf_counter()
        _Voice(self._spare, self.signals, 3 * self.preroll, self.preroll).prime()
        self._reset_s = time.perf_counter() - t0
        self._spare_lock = threading.Lock()  # spare / loop voice hand-over (not the callback's)
        #: renderers of scenes swapped out, for a swap back (a reset instead of a build)
        self._pool: deque[Renderer] = deque(maxlen=self.POOL)
        self._loop_voice: tuple[tuple[int, int], _Voice] | None = None
        self._armed: _Armed | None = None  # a swap waiting for its frame (worker)
        self._old: NDArray[np.float32] | None = None  # buffered frames a rewound swap fades from
        self._old_i = 0
        self._swap_seq = 0  # id of the latest swap_at / cancel_swap (older jobs are dropped)
        self._seq_lock = threading.Lock()
        #: id (from :meth:`swap_at`) of the scene playing or being crossfaded to; 0: the first
        self.swap_id = 0
        self._jobs: queue.Queue[tuple[str, Any]] = queue.Queue()  # preparer: seeks
        self._builds: queue.Queue[tuple[str, Any]] = queue.Queue()  # builder: swaps, spares
        self.channels = first.n_channels
        n = self.signals.shape[1]
        self.end = int(round(end_s * self.rate)) if end_s is not None else n + first.tail_samples
        self.start = min(max(0, int(round(start_s * self.rate))), self.end)
        self.loop: tuple[int, int] | None = None
        if loop is not None:
            self.set_loop(*loop)

        # ---- ring buffer (frame-major, like sounddevice's outdata), shared with the callback
        self.capacity = int(buffer_blocks) * self.block
        self._buf = np.zeros((self.capacity, self.channels), np.float32)
        self._pos = np.zeros(self.capacity, np.int64)  # stem sample of each ring frame
        self._w = 0  # frames written (worker only)
        self._r = 0  # frames read (callback only, or worker under _lock while paused)
        self._lock = threading.Lock()
        self._eof_at: int | None = None  # ring frame count where the material ends
        self._ramp_down = np.linspace(1.0, 0.0, self.block, dtype=np.float32)[:, None]
        self._ramp_up = self._ramp_down[::-1].copy()
        self._owed_since: float | None = None  # when the worker first held commands for a fade-out

        # ---- counters (written by the callback only)
        self.xruns = 0
        self.underflows = 0
        self.frames_delivered = 0
        self._position = self.start
        self._playing = False
        self._was_playing = False
        self._started_once = False
        self.done = threading.Event()
        self.swaps = 0
        #: (ring frame, kind, stem sample) of the last :attr:`MAX_TRANSITIONS` transitions the
        #: worker began (kind: "seek", "loop" or "swap")
        self.transitions: deque[tuple[int, str, int]] = deque(maxlen=self.MAX_TRANSITIONS)
        #: transitions begun in all (``transitions`` keeps only the last ones)
        self.transition_count = 0

        #: (listener sequence number, ring frame) where each new head pose was first rendered
        self.head_applied: deque[tuple[int, int]] = deque(maxlen=Listener.ARRIVALS)
        self._head_seq = 0
        self._helpers = 0  # helper threads building or priming a renderer now
        self._help_lock = threading.Lock()  # (helpers only; the worker just reads the count)
        self._uf_seen = 0
        self._uf_until = 0.0
        if head is not None:
            head.stamp = lambda: self._r  # frames the callback has taken when a pose arrives

        n_cap = int(round(capture_s * self.rate))
        self.captured = np.zeros((n_cap, self.channels), np.float32)
        self.captured_pos = np.full(n_cap, -1, np.int64)
        self.n_captured = 0

        self._cur = _Voice(first, self.signals, self.start, self.preroll)
        self._nxt: _Voice | None = None
        self._pending_look: _Look | None = None
        self._fade_done = 0
        self._fade_w = (0.5 - 0.5 * np.cos(np.pi * (np.arange(self.fade) + 0.5) / self.fade)).astype(
            np.float32
        )  # raised cosine 0 -> 1
        self._cmds: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._later: deque[tuple[str, Any]] = deque()  # seeks waiting for a crossfade to end
        self._quit = threading.Event()
        self._stream: Any = None
        self._threads: list[threading.Thread] = []
        self._old_switch = sys.getswitchinterval()

    # ------------------------------------------------------------------ helpers

    @property
    def scene(self) -> Scene:
        """The scene playing (the new one once a swap's crossfade is complete)."""
        return self._look.scene

    @property
    def signals(self) -> NDArray[np.float32]:
        """Object signals of the scene playing, (objects, samples) float32."""
        return self._look.signals

    @property
    def motion_origin_s(self) -> float:
        """Stem time in seconds where the playing scene's motion starts."""
        return self._look.origin_s

    def _make_look(self, scene: Scene, origin_s: float, section_s: float | None) -> _Look:
        """The scene with its signals (loaded once per set of object stems) and time base."""
        key = tuple(o.stems for o in scene.objects)
        signals = self._signals.get(key)
        if signals is None:
            signals, _, _ = load_stems(self.stems, scene, self.rate, self.stem_map)
            if len(self._signals) >= 8:
                self._signals.pop(next(iter(self._signals)))
            self._signals[key] = signals
        n = signals.shape[1]
        duration = section_s if section_s is not None else (n / self.rate if n else None)
        section = scene.section_s(duration)
        return _Look(scene, signals, float(origin_s), duration, float("inf") if section is None else float(section))

    def _renderer(self, look: _Look) -> Renderer:
        self.renderer_builds += 1
        return Renderer(
            look.scene,
            self.rate,
            self.config,
            model=self.model,
            duration_s=look.duration_s,
            motion_origin_s=look.origin_s,
            listener=self.head,
        )

    @staticmethod
    def _adopt(r: Renderer, look: _Look) -> bool:
        """Whether ``r`` can play ``look`` (after its next reset); moves its motion origin."""
        if r.scene is not look.scene or r.section_s != look.section_s:
            return False
        if r.motion_origin_s != look.origin_s:
            r.motion_origin_s = look.origin_s
        return True

    @staticmethod
    def _fits(r: Renderer, look: _Look) -> bool:
        """Whether ``r`` (reset already: a primed voice's) plays ``look`` as it is."""
        return r.scene is look.scene and r.section_s == look.section_s and r.motion_origin_s == look.origin_s

    def _stat(self) -> tuple[int, int, int] | None:
        if self.scene_path is None:
            return None
        try:
            st = os.stat(self.scene_path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _paused_quiet(self) -> bool:
        """Paused, and the callback has played its fade-out block."""
        return not self._playing and not self._was_playing

    def _next_frame(self) -> int:
        """Stem sample of the next frame the callback will deliver."""
        r = self._r
        if self._w > r:
            return int(self._pos[r % self.capacity])
        return (self._nxt or self._cur).out_pos

    def _wrap(self, target: int) -> int:
        """``target`` moved into the loop (where playback will reach it), if one is set."""
        loop = self.loop
        if loop is not None and target >= loop[1]:
            ls, le = loop
            return ls + (target - le) % (le - ls)
        return target

    # ---------------------------------------------------------------- callback

    def _callback(self, outdata: NDArray[np.float32], frames: int, _time_info: Any, status: Any) -> None:
        """PortAudio callback: copy only (no render, no array allocation, no logging)."""
        if status:
            self.xruns += 1
        playing = self._playing
        fade = None
        if not playing:
            if self._was_playing and frames == self.block:
                fade = self._ramp_down  # one faded block, then silence
            else:
                outdata.fill(0.0)
                self._was_playing = False
                return
        elif not self._was_playing and self._started_once and frames == self.block:
            fade = self._ramp_up
        self._was_playing = playing
        self._started_once = True
        if not self._lock.acquire(blocking=False):
            outdata.fill(0.0)
            return
        try:
            r, w = self._r, self._w
            avail = w - r
            k = frames if avail >= frames else avail
            i = r % self.capacity
            first = self.capacity - i if i + k > self.capacity else k
            outdata[:first] = self._buf[i : i + first]
            if k > first:
                outdata[first:k] = self._buf[: k - first]
            if k < frames:
                outdata[k:] = 0.0
                eof = self._eof_at
                if eof is not None and r + k >= eof:
                    self.done.set()  # Event.set: a short internal lock, not a wait
                else:
                    self.underflows += 1
            if fade is not None:
                outdata *= fade
            m = self.n_captured
            c = min(frames, len(self.captured) - m)
            if c > 0 and k:  # test hook: stem positions, read before the frames are released
                kk = min(c, k)
                if i + kk <= self.capacity:
                    self.captured_pos[m : m + kk] = self._pos[i : i + kk]
                else:
                    self.captured_pos[m : m + first] = self._pos[i:]
                    self.captured_pos[m + first : m + kk] = self._pos[: kk - first]
            if k:
                self._position = int(self._pos[(r + k - 1) % self.capacity])
            self._r = r + k  # publish last: the worker may now overwrite these frames
        finally:
            self._lock.release()
        if c > 0:
            self.captured[m : m + c] = outdata[:c]  # what the device got
            self.n_captured = m + c
        self.frames_delivered += frames

    # ------------------------------------------------------------------ worker

    def _write(self, y: NDArray[np.float32], pos0: int) -> None:
        """Append (channels, n) frames whose first is stem sample ``pos0``."""
        n = y.shape[1]
        i = self._w % self.capacity
        first = min(n, self.capacity - i)
        self._buf[i : i + first] = y[:, :first].T
        self._pos[i : i + first] = np.arange(pos0, pos0 + first)
        if n > first:
            self._buf[: n - first] = y[:, first:].T
            self._pos[: n - first] = np.arange(pos0 + first, pos0 + n)
        self._w += n  # publish last

    def _take_spare(self) -> tuple[Renderer, _Look]:
        """A renderer of the current scene nobody uses (built here if there is none)."""
        look = self._look
        with self._spare_lock:
            r, self._spare = self._spare, None
        if r is None or not self._adopt(r, look):
            with self._helping():
                r = self._renderer(look)
        return r, look

    @contextmanager
    def _helping(self) -> Iterator[None]:
        """Mark a helper thread's renderer build or priming (head tracking renders further ahead)."""
        with self._help_lock:
            self._helpers += 1
        try:
            yield
        finally:
            with self._help_lock:
                self._helpers -= 1

    def _begin(self, kind: str, voice: _Voice, look: _Look | None = None) -> None:
        """Start a crossfade from the current voice to ``voice`` (worker thread)."""
        self._nxt = voice
        self._pending_look = look
        self._fade_done = 0
        self.transitions.append((self._w, kind, voice.out_pos))
        self.transition_count += 1

    def _jump(self, target: int) -> None:
        """Reposition while paused: drop the buffered frames, restart the current scene (the new
        one if a swap's crossfade was under way: :attr:`swap_id` names it already).
        """
        nxt, look = self._nxt, self._pending_look
        swapping = nxt is not None and look is not None
        voice = nxt if nxt is not None and look is not None else self._cur
        self._later.clear()  # seeks asked before the jump
        with self._lock:
            self._r = self._w
            self._eof_at = None
            self.done.clear()
            self._nxt, self._pending_look, self._old = None, None, None
            self._cur = _Voice(voice.r, voice.signals, target, self.preroll)
            self._position = target
        if swapping and look is not None:
            self._look = look
            self.swaps += 1
            self._builds.put(("spare", None))

    def _hold(self) -> bool:
        """Whether commands wait: paused, the callback has not played its fade-out block yet
        (a jump now would empty the buffer under it: a hard cut). At most a few blocks.
        """
        if self._playing or not self._was_playing:
            self._owed_since = None
            return False
        now = time.monotonic()
        if self._owed_since is None:
            self._owed_since = now
        return now - self._owed_since < 4 * self.block / self.rate + 0.05  # stream stopped?

    def _handle(self, cmd: str, arg: Any) -> None:
        if cmd == "jump":
            self._jump(min(max(0, int(arg)), self.end))
            self._check_armed()
        elif cmd == "seek":  # a voice prepared by the preparer thread
            target, voice, look = arg
            if look is not self._look:  # prepared for the scene a swap just replaced
                self._jobs.put(("seek", target))
                return
            self._eof_at = None
            self.done.clear()
            self._begin("seek", voice)
        elif cmd == "swap":
            if arg.sid == self._swap_seq:
                self._armed = arg
                self._check_armed()

    def _rewind(self, target: int) -> NDArray[np.float32] | None:
        """Drop the buffered frames from stem sample ``target`` on (worker), so the next frame
        written is ``target``; returns the dropped frames, (n, channels), for a crossfade.
        None when ``target`` is not in the buffer as a straight run of stem samples ending at
        the write position, or is too close to the callback (within two blocks of it).
        """
        cur = self._cur
        back = cur.out_pos - target
        w = self._w
        if self._nxt is not None or back <= 0 or back > w - self._r - 2 * self.block:
            return None
        idx = np.arange(w - back, w) % self.capacity
        if not np.array_equal(self._pos[idx], np.arange(target, cur.out_pos)):
            return None
        old = self._buf[idx]  # a copy (fancy indexing)
        self._w = w - back  # the callback reads at most one block past _r: never these frames
        self._eof_at = None
        return old

    def _check_armed(self) -> bool:
        """Begin, keep waiting for, or hand back the armed swap (worker); True if it began.

        The voice starts at stem sample ``t``. Ahead of the write position it waits (the worker
        stops there). Behind it: paused at ``t``, the buffered frames are dropped and the new
        scene plays from there (no crossfade: play fades in); else, if ``t`` is still in the
        buffer, the frames from ``t`` on are rendered again, crossfaded from the dropped ones.
        Otherwise (missed, or an as-soon-as-possible swap a jump left elsewhere) the builder
        re-aims it.
        """
        a = self._armed
        if a is None or self._nxt is not None:
            return False
        if a.sid != self._swap_seq:  # superseded or cancelled
            self._armed = None
            return False
        pos = self._cur.out_pos
        t = a.voice.out_pos
        if t == pos:
            self._armed = None
            self._old = None
            self._begin("swap", a.voice, a.look)
            self.swap_id = a.sid
            return True
        if t > pos:
            if a.timed:
                return False
            # as soon as possible: aimed at the frame then next to play, or a little after it
            near = self.capacity + 3 * self.block + int(2 * self._reset_s * self.rate)
            if t <= pos + near and not (self._paused_quiet() and t != self._next_frame()):
                return False
        elif self._paused_quiet() and t == self._next_frame():
            self._armed = None
            old_r = self._cur.r
            with self._lock:  # the callback is idle (paused): take the whole buffer back
                self._r = self._w
                self._eof_at = None
                self.done.clear()
                self._cur = a.voice
                self._look = a.look
            self._pool.append(old_r)
            self.transitions.append((self._w, "swap", t))
            self.transition_count += 1
            self.swap_id = a.sid
            self.swaps += 1
            self._builds.put(("spare", None))
            return True
        else:
            old = self._rewind(t)
            if old is not None:
                self._armed = None
                self._begin("swap", a.voice, a.look)
                self.swap_id = a.sid
                self._old, self._old_i = old, 0
                return True
        self._armed = None
        log.debug("preview: swap %d missed stem sample %d (worker at %d): re-aimed", a.sid, t, pos)
        self._builds.put(
            (
                "swap",
                _SwapJob(
                    a.sid, a.look.scene, None, a.look.origin_s, None, look=a.look, renderer=a.voice.r, late=a.retried
                ),
            )
        )
        return False

    def _note_head(self, voice: _Voice) -> None:
        """Record the ring frame where a new head pose was first rendered (before the write)."""
        seq = voice.r.head_seq
        if seq > self._head_seq:  # (frames left over from a voice's priming carry an older pose)
            self._head_seq = seq
            self.head_applied.append((seq, self._w))

    @property
    def head_rendered(self) -> int:
        """Sequence number (:attr:`renderer.listener.Listener.updates`) of the latest head pose a
        block was rendered with; 0 before any, or without head tracking.
        """
        return self._head_seq

    def head_latencies(self) -> list[tuple[int, int]]:
        """(pose sequence number, frames) from each head pose's arrival to its first rendered
        frame: the frames the callback still had to deliver before it (0: the next block
        delivered carries it). Poses replaced before any block was rendered with them are left
        out. Needs ``head``; the ring frame and the delivered frame agree while nothing underflows.
        """
        if self.head is None:
            return []
        arrived = {seq: r for seq, _, r in list(self.head.arrivals)}
        return [(seq, w - arrived[seq]) for seq, w in list(self.head_applied) if seq in arrived and arrived[seq] >= 0]

    def _produce(self, n: int) -> None:
        cur = self._cur
        if self._nxt is None:
            pos0 = cur.out_pos
            y = cur.pull(n)
            if self.head is not None:
                self._note_head(cur)
            self._write(y, pos0)
            return
        nxt = self._nxt
        n = min(n, self.fade - self._fade_done)
        old = self._old
        if old is not None and self._old_i < len(old):  # a rewound swap: fade from the buffer
            n = min(n, len(old) - self._old_i)
            a = old[self._old_i : self._old_i + n].T
            self._old_i += n
        else:
            a = cur.pull(n)
        pos0 = nxt.out_pos
        b = nxt.pull(n)
        if self.head is not None:
            self._note_head(nxt)
        g = self._fade_w[self._fade_done : self._fade_done + n]
        self._write(a + (b - a) * g, pos0)
        self._fade_done += n
        if self._fade_done >= self.fade:
            old_r = cur.r
            look = self._pending_look
            if look is not None:
                self._look = look
                self.swaps += 1
                self._builds.put(("spare", None))  # the next seek needs no renderer build
            self._cur, self._nxt, self._old = nxt, None, None
            if self._adopt(old_r, self._look):
                with self._spare_lock:
                    self._spare = old_r
            else:
                self._pool.append(old_r)

    def _room(self) -> int:
        """Frames the worker may render now (0: wait). Buffered: a block once one fits in the
        ring. Head-tracked: just in time, topping the ring up to one block ahead of the callback.
        """
        fill = self._w - self._r
        if self.head is not None:
            return max(0, self.head_lead_blocks() * self.block - fill)
        return self.block if self.capacity - fill >= self.block else 0

    def head_lead_blocks(self) -> int:
        """Head tracking: blocks the worker renders ahead of the callback (the pose latency).

        One; two while a helper thread builds or primes a renderer (they share the interpreter
        lock with the worker: a swap's build measured underflows at one block) and for
        :attr:`HEAD_BACKOFF_S` after an underflow.
        """
        if self._uf_seen != self.underflows:
            self._uf_seen = self.underflows
            self._uf_until = time.monotonic() + self.HEAD_BACKOFF_S
        busy = self._helpers > 0 or time.monotonic() < self._uf_until
        return min(2 if busy else 1, self.capacity // self.block)

    def _worker(self) -> None:
        # just in time (head tracking), the next block must be rendered within one block period
        wait = self.block / self.rate / (8 if self.head is not None else 4)
        while not self._quit.is_set():
            if not self._hold():
                if self._nxt is None and self._later:
                    self._handle(*self._later.popleft())
                    continue
                try:
                    cmd = self._cmds.get_nowait()
                except queue.Empty:
                    pass
                else:
                    if cmd[0] == "seek" and self._nxt is not None:
                        self._later.append(cmd)  # after the crossfade under way
                    else:
                        self._handle(*cmd)
                    continue
            room = self._room()
            if self._eof_at is not None or room <= 0:
                time.sleep(wait)
                continue
            try:
                self._step(room)
            except Exception:  # never let the worker die silently
                log.exception("preview worker failed; stopping")
                self._eof_at = self._w
                return

    def _step(self, room: int) -> None:
        """Render the next (at most ``room``) frames, starting transitions on time."""
        if self._check_armed():
            return
        pos = (self._nxt or self._cur).out_pos
        n = room
        if self._armed is not None and self._nxt is None:
            n = min(n, self._armed.voice.out_pos - pos)  # stop at the armed swap's frame
        if self.loop is not None and self._nxt is None:
            ls, le = self.loop
            if pos >= le:
                with self._spare_lock:
                    lv, self._loop_voice = self._loop_voice, None
                if (
                    lv is not None
                    and lv[0] == self.loop
                    and self._fits(lv[1].r, self._look)
                    and lv[1].signals is self.signals
                ):
                    self._begin("loop", lv[1])
                    return
                if lv is not None:  # stale loop points or scene: give the renderer back
                    with self._spare_lock:
                        if self._spare is None and self._adopt(lv[1].r, self._look):
                            self._spare = lv[1].r
                        else:
                            self._pool.append(lv[1].r)
                # Not prepared yet (the loop was just set): play on past the loop end until
                # the preparer has it, rather than stall the worker with a reset.
            else:
                n = min(n, le - pos)
        elif pos >= self.end:
            self._eof_at = self._w
            return
        else:
            n = min(n, self.end - pos)
        self._produce(n)

    # ---------------------------------------------------------------- preparer

    def _preparer(self) -> None:
        """Seek targets and loop starts, off the worker (renderer resets + pre-roll)."""
        _nice(5)  # below the worker (Linux: per-thread nice)
        while not self._quit.is_set():
            try:
                cmd, arg = self._jobs.get(timeout=0.01)
            except queue.Empty:
                cmd, arg = "", None
            try:
                if cmd == "seek":
                    r, look = self._take_spare()
                    voice = self._voice(r, look.signals, int(arg))
                    self._cmds.put(("seek", (int(arg), voice, look)))
                self._arm_loop()
            except Exception:
                log.exception("preview preparer failed")

    def _builder(self) -> None:
        """Scene swaps (renderer builds, pre-roll at the swap frame) and spare renderers."""
        _nice(5)  # at nice 19 a busy machine starved scene reloads for seconds (measured)
        while not self._quit.is_set():
            try:
                cmd, arg = self._builds.get(timeout=0.05)
            except queue.Empty:
                continue
            try:
                with self._helping():
                    if cmd == "swap":
                        self._build_swap(arg)
                    elif cmd == "spare":
                        self._build_spare()
            except Exception as exc:  # a scene naming a missing stem, say: the old one plays on
                log.warning("preview: scene swap not applied (%s)", exc)

    def _reloader(self) -> None:
        """Scene-file watcher: a changed file is swapped in as soon as possible."""
        _nice(5)
        while not self._quit.wait(self.watch_interval_s):
            try:
                self._poll_scene()
            except Exception:
                log.exception("preview scene reload failed")

    def _build_swap(self, job: _SwapJob) -> None:
        """Build and prime the new scene's voice at its frame; hand it to the worker."""
        if job.sid != self._swap_seq:
            return
        look = job.look or self._make_look(job.scene, job.origin_s, job.section_s)
        r = job.renderer or self._pooled(look) or self._renderer(look)
        if job.sid != self._swap_seq:
            return
        target, timed = self._swap_target(job)
        voice = self._voice(r, look.signals, target)
        self._cmds.put(("swap", _Armed(job.sid, voice, look, timed, retried=job.renderer is not None)))

    def _swap_target(self, job: _SwapJob) -> tuple[int, bool]:
        """Stem sample to prime a swap at, and whether it is the asked one.

        Paused: the next frame to play (play starts in the new scene). Playing: the asked frame
        when there is time to prime and hand it over before the callback gets there, else the
        soonest such frame (``late``: after the buffered frames, the worker's write position).
        """
        t0 = time.monotonic()
        while not self._playing and self._was_playing and time.monotonic() - t0 < 0.1:
            time.sleep(0.002)  # the fade-out block is on its way: where play resumes is moving
        nxt = self._next_frame()
        if self._paused_quiet():
            soonest = nxt + 2 * self.block
        else:
            soonest = nxt + 3 * self.block + int(2.0 * self._reset_s * self.rate)
        if job.at is not None and job.at >= soonest:
            return job.at, True
        if self._paused_quiet():
            return nxt, False
        if job.late:
            ahead = self.capacity + self.block + int(2.0 * self._reset_s * self.rate)
            return self._wrap((self._nxt or self._cur).out_pos + ahead), False
        return self._wrap(soonest), False

    def _build_spare(self) -> None:
        """A renderer of the scene now playing for the next seek (after a swap)."""
        look = self._look
        with self._spare_lock:
            r = self._spare
            if r is not None and self._adopt(r, look):
                return
        r = self._pooled(look) or self._renderer(look)
        with self._spare_lock:
            if self._look is look:
                self._spare = r

    def _pooled(self, look: _Look) -> Renderer | None:
        """A renderer of ``look``'s scene from the pool (builder thread), or None."""
        for r in list(self._pool):
            if r.scene is look.scene and r.section_s == look.section_s:
                try:
                    self._pool.remove(r)
                except ValueError:  # pushed out by the worker meanwhile
                    continue
                self._adopt(r, look)
                return r
        return None

    def _arm_loop(self) -> None:
        """Prepare the voice that starts the loop, so the jump costs the worker nothing."""
        loop = self.loop
        lv = self._loop_voice
        look = self._look
        if loop is None or (lv is not None and lv[1].signals is look.signals and self._fits(lv[1].r, look)):
            return
        r, look = self._take_spare()
        voice = self._voice(r, look.signals, loop[0])
        with self._spare_lock:
            self._loop_voice = (loop, voice)

    def _voice(self, r: Renderer, signals: NDArray[np.float32], target: int) -> _Voice:
        """A primed voice starting at ``target``, timing the reset + pre-roll (preparer)."""
        t0 = time.perf_counter()
        with self._helping():
            voice = _Voice(r, signals, target, self.preroll)
            voice.prime()
        self._reset_s = 0.5 * self._reset_s + 0.5 * (time.perf_counter() - t0)
        return voice

    def _poll_scene(self) -> None:
        sig = self._stat()
        if sig is None or sig == self._file_sig:
            return
        self._file_sig = sig
        assert self.scene_path is not None
        try:
            scene = Scene.load(self.scene_path)
        except Exception as exc:  # a half-edited or invalid file: keep playing the old
            log.warning("%s: not reloaded (%s)", self.scene_path, exc)
            return
        log.info("%s: changed, crossfading to the new scene", self.scene_path)
        self.swap_at(scene)

    # --------------------------------------------------------------- transport

    def open(self, prefill_timeout_s: float = 10.0) -> None:
        """Start the threads, fill the buffer and open the output stream (paused)."""
        import sounddevice as sd

        sys.setswitchinterval(0.001)  # the callback needs the GIL promptly
        self._arm_loop()  # a loop given up front is ready before the first jump
        self._threads = [
            threading.Thread(target=self._worker, name="preview-worker", daemon=True),
            threading.Thread(target=self._preparer, name="preview-preparer", daemon=True),
            threading.Thread(target=self._builder, name="preview-builder", daemon=True),
        ]
        if self.scene_path is not None and self.watch_interval_s > 0:
            self._threads.append(threading.Thread(target=self._reloader, name="preview-reloader", daemon=True))
        for t in self._threads:
            t.start()
        t0 = time.monotonic()
        while (
            self._w - self._r < self.capacity - self.block
            and self._eof_at is None
            and time.monotonic() - t0 < prefill_timeout_s
        ):
            time.sleep(0.005)
        self._stream = sd.OutputStream(
            samplerate=self.rate,
            blocksize=self.block,
            device=self.device,
            channels=self.channels,
            dtype="float32",
            callback=self._callback,
        )
        self._stream.start()
        log.info(
            "preview: %s, block %d, %d Hz, latency %.1f ms",
            self._stream.device,
            self.block,
            self.rate,
            1000 * self._stream.latency,
        )

    def play(self) -> None:
        """Start or resume playback."""
        self._playing = True

    def pause(self) -> None:
        """Pause (the position is kept; the next block fades out)."""
        self._playing = False

    def toggle(self) -> None:
        """Play / pause."""
        self._playing = not self._playing

    def stop(self) -> None:
        """Pause and go back to the start position (after the fade-out block)."""
        self._playing = False
        self.seek(self.start / self.rate)

    def seek(self, seconds: float) -> None:
        """Go to stem time ``seconds`` (crossfaded while playing, after the buffered frames).

        Right after :meth:`pause` the jump waits for the fade-out block to be played.
        """
        target = min(max(0, int(round(seconds * self.rate))), self.end)
        if self._playing:
            self._jobs.put(("seek", target))
        else:
            self._cmds.put(("jump", target))

    def swap_at(
        self, scene: Scene, at_s: float | None = None, *, motion_origin_s: float = 0.0, section_s: float | None = None
    ) -> int:
        """Crossfade to ``scene`` (in memory) at stem time ``at_s``; returns the swap's id.

        The new scene's renderer is built and pre-rolled on the builder thread and armed: the
        crossfade (``fade_s``) begins exactly at stem sample ``round(at_s * rate)`` when there
        is time to prepare it before that sample is heard (a few blocks plus a renderer build
        and reset ahead of it); frames already buffered past it are rendered again. Later or
        with ``at_s=None`` it begins as soon as possible: while paused, at the paused position
        (play starts in the new scene, no crossfade); while playing, a few blocks after the
        frame now heard. Ahead of the playback it waits until playback gets there (a jump
        beyond it starts it at once). A later call (or :meth:`cancel_swap`) replaces a swap
        that has not begun; :attr:`swap_id` tells which one plays.

        Parameters
        ----------
        scene : Scene
            The scene; its objects' stems must be among the player's stem files.
        at_s : float, optional
            Stem time where the crossfade begins, seconds; None: as soon as possible.
        motion_origin_s : float
            Stem time where the scene's motion t = 0 is, seconds (a section's scene played
            from the section start: t = (time - origin) / section length, clamped to 0..1).
        section_s : float, optional
            Motion time base of a scene without ``timing``, seconds (default: the stems'
            length, as the offline render).
        """
        with self._seq_lock:
            self._swap_seq += 1
            sid = self._swap_seq
        at = None if at_s is None else min(max(0, int(round(at_s * self.rate))), self.end)
        self._builds.put(("swap", _SwapJob(sid, scene, at, float(motion_origin_s), section_s)))
        return sid

    def cancel_swap(self) -> None:
        """Drop a swap that has not begun (the playing scene stays)."""
        with self._seq_lock:
            self._swap_seq += 1

    def set_loop(self, start_s: float | None, end_s: float | None = None) -> None:
        """Loop between ``start_s`` and ``end_s`` seconds; ``None`` clears the loop."""
        if start_s is None or end_s is None:
            self.loop = None
            return
        a, b = int(round(start_s * self.rate)), int(round(end_s * self.rate))
        if b - a < 2 * self.fade:
            raise RenderError(f"loop {start_s}..{end_s} s is shorter than two crossfades")
        self.loop = (max(0, a), b)
        with self._spare_lock:
            lv, self._loop_voice = self._loop_voice, None
            if lv is not None and self._spare is None:
                self._spare = lv[1].r

    def stats(self) -> PlayerStats:
        """Counters now."""
        return PlayerStats(
            position_s=self._position / self.rate,
            xruns=self.xruns,
            underflows=self.underflows,
            frames_delivered=self.frames_delivered,
            buffer_fill=(self._w - self._r) / self.capacity,
            playing=self._playing,
            swaps=self.swaps,
        )

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until the material has been played to its end; True if it was."""
        return self.done.wait(timeout_s)

    def close(self) -> None:
        """Stop the stream and the threads."""
        self._playing = False
        self._quit.set()
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None
        for t in self._threads:
            t.join(timeout=5.0)
        sys.setswitchinterval(self._old_switch)

    def __enter__(self) -> "Player":
        """Open the stream (see :meth:`open`)."""
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the stream (see :meth:`close`)."""
        self.close()


def _nice(level: int) -> None:
    """Lower the calling thread's CPU priority (Linux: per-thread nice); else nothing."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), level)
    except (AttributeError, OSError):
        pass
