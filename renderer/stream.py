"""Realtime preview: stems + scene -> the streaming Renderer -> a sound card (sounddevice).

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
* **reloader** (lowest CPU priority): polls the scene file's mtime/size/inode; on a change it
  loads and validates the scene (and the stems it names), builds a renderer and readies it at
  a frame a little ahead of the worker (the swap is *armed* there; the worker crossfades when
  it reaches that frame). A broken scene file is logged and ignored (the old scene keeps
  playing).

Alignment: output frame ``k`` of a preview started at 0 is sample ``k`` of
:func:`renderer.offline.render_files` (the renderer latency is dropped exactly as there:
the first ``latency_samples`` output samples are discarded), so the preview plays the same
samples as the offline render (tested through JACK in ``tests/test_preview.py``).
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

from gravity.scene import Scene

from .config import RenderConfig
from .errors import RenderError
from .offline import load_stems
from .render import Renderer

__all__ = ["Player", "PlayerStats", "preview_main", "add_arguments", "run", "list_devices"]

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
        Scene reloads applied.
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

    def __init__(self, renderer: Renderer, signals: NDArray[np.float32], target: int,
                 preroll: int) -> None:
        """Start ``renderer`` so that its next output frame is stem sample ``target``.

        The renderer restarts ``preroll`` samples (rounded down to a static hop) before the
        target; that stretch and the latency are rendered and dropped on the first pull.
        """
        unit = renderer.block_unit
        p0 = max(0, target - preroll) // unit * unit
        renderer.reset(p0 / renderer.sample_rate)
        self.r = renderer
        self.signals = signals
        self.in_pos = p0  # next input sample fed
        self.out_pos = target  # stem sample of the next output frame
        self.discard = target - p0 + renderer.latency_samples  # output samples to drop

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

    def prime(self) -> None:
        """Render (and drop) the pre-roll and latency now, so :meth:`pull` costs one block."""
        if self.discard:
            self.r.process(self._input(self.discard))
            self.discard = 0

    def pull(self, n: int) -> NDArray[np.float32]:
        """The next ``n`` output frames, (channels, n) float32, aligned with the stems."""
        self.prime()
        self.out_pos += n
        return self.r.process(self._input(n))


class Player:
    """Plays stems placed by a scene in real time through the streaming renderer.

    Parameters
    ----------
    stems : sequence of path
        Stem files (as for :func:`renderer.offline.render_files`).
    scene_path : path
        Scene JSON file; watched for changes and reloaded live (crossfaded).
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
        Ring-buffer depth in blocks the worker renders ahead (latency of transport changes:
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
    capture_s : float
        Test hook: seconds of delivered frames recorded (pre-allocated) in
        :attr:`captured` / :attr:`captured_pos`; 0 records nothing.
    """

    def __init__(
        self,
        stems: Sequence[Path | str],
        scene_path: Path | str,
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
        capture_s: float = 0.0,
    ) -> None:
        if buffer_blocks is None:
            buffer_blocks = max(8, -(-int(0.2 * rate) // max(1, int(block))))
        if block < 16 or rate < 8000 or buffer_blocks < 2:
            raise RenderError(
                f"block={block} must be >= 16, rate={rate} >= 8000 Hz, buffer_blocks >= 2"
            )
        self.stems = [Path(p) for p in stems]
        self.scene_path = Path(scene_path)
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

        self.scene = Scene.load(self.scene_path)
        self._file_sig = self._stat()
        self.signals, _, _ = load_stems(self.stems, self.scene, self.rate)
        first = self._renderer(self.scene, self.signals)
        self._spare: Renderer | None = self._renderer(self.scene, self.signals)
        t0 = time.perf_counter()
        _Voice(self._spare, self.signals, 2 * self.preroll, self.preroll).prime()
        #: seconds a renderer reset + pre-roll takes (running mean); sizes how far ahead a swap is armed
        self._reset_s = time.perf_counter() - t0
        self._spare_lock = threading.Lock()  # spare / loop voice hand-over (not the callback's)
        self._loop_voice: tuple[tuple[int, int], _Voice] | None = None
        self._armed: tuple[_Voice, Scene] | None = None  # a swap waiting for its frame
        self._jobs: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.channels = first.n_channels
        n = self.signals.shape[1]
        self.end = (
            int(round(end_s * self.rate)) if end_s is not None else n + first.tail_samples
        )
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
        #: (ring frame, kind, stem sample) of each transition the worker began
        self.transitions: list[tuple[int, str, int]] = []

        n_cap = int(round(capture_s * self.rate))
        self.captured = np.zeros((n_cap, self.channels), np.float32)
        self.captured_pos = np.full(n_cap, -1, np.int64)
        self.n_captured = 0

        self._cur = _Voice(first, self.signals, self.start, self.preroll)
        self._nxt: _Voice | None = None
        self._fade_done = 0
        self._fade_w = (
            0.5 - 0.5 * np.cos(np.pi * (np.arange(self.fade) + 0.5) / self.fade)
        ).astype(np.float32)  # raised cosine 0 -> 1
        self._cmds: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._quit = threading.Event()
        self._stream: Any = None
        self._threads: list[threading.Thread] = []
        self._old_switch = sys.getswitchinterval()

    # ------------------------------------------------------------------ helpers

    def _renderer(self, scene: Scene, signals: NDArray[np.float32]) -> Renderer:
        n = signals.shape[1]
        return Renderer(
            scene, self.rate, self.config, model=self.model,
            duration_s=n / self.rate if n else None,
        )

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.scene_path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    # ---------------------------------------------------------------- callback

    def _callback(self, outdata: NDArray[np.float32], frames: int, time_info: Any,
                  status: Any) -> None:
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

    def _take_spare(self) -> Renderer:
        """A renderer of the current scene nobody uses (built here if there is none)."""
        with self._spare_lock:
            r, self._spare = self._spare, None
        if r is None or r.scene is not self.scene:
            r = self._renderer(self.scene, self.signals)
        return r

    def _begin(self, kind: str, voice: _Voice, scene: Scene | None = None) -> None:
        """Start a crossfade from the current voice to ``voice`` (worker thread)."""
        self._nxt = voice
        self._pending_scene = scene
        self._fade_done = 0
        self.transitions.append((self._w, kind, voice.out_pos))

    def _jump(self, target: int) -> None:
        """Reposition while paused: drop the buffered frames, restart the current scene."""
        with self._lock:
            self._r = self._w
            self._eof_at = None
            self.done.clear()
            self._nxt = None
            self._cur = _Voice(self._cur.r, self._cur.signals, target, self.preroll)
            self._position = target

    def _handle(self, cmd: str, arg: Any) -> None:
        if cmd == "jump":
            self._jump(min(max(0, int(arg)), self.end))
        elif cmd == "seek":  # a voice prepared by the preparer thread
            self._eof_at = None
            self.done.clear()
            self._begin("seek", arg)
        elif cmd == "swap":
            self._armed = arg

    def _produce(self, n: int) -> None:
        cur = self._cur
        if self._nxt is None:
            pos0 = cur.out_pos
            self._write(cur.pull(n), pos0)
            return
        nxt = self._nxt
        n = min(n, self.fade - self._fade_done)
        pos0 = nxt.out_pos
        a, b = cur.pull(n), nxt.pull(n)
        g = self._fade_w[self._fade_done : self._fade_done + n]
        self._write(a + (b - a) * g, pos0)
        self._fade_done += n
        if self._fade_done >= self.fade:
            old = cur.r
            if self._pending_scene is not None:
                self.scene = self._pending_scene
                self.signals = nxt.signals
                self.swaps += 1
            self._cur, self._nxt = nxt, None
            if old.scene is self.scene:
                with self._spare_lock:
                    self._spare = old

    def _worker(self) -> None:
        wait = self.block / self.rate / 4
        while not self._quit.is_set():
            if self._nxt is None:
                try:
                    self._handle(*self._cmds.get_nowait())
                    continue
                except queue.Empty:
                    pass
            if self._eof_at is not None or self.capacity - (self._w - self._r) < self.block:
                time.sleep(wait)
                continue
            try:
                self._step()
            except Exception:  # never let the worker die silently
                log.exception("preview worker failed; stopping")
                self._eof_at = self._w
                return

    def _step(self) -> None:
        """Render the next (at most one block of) frames, starting transitions on time."""
        pos = (self._nxt or self._cur).out_pos
        n = self.block
        if self._nxt is None and self._armed is not None:
            voice, scene = self._armed
            far = self.capacity + int(4 * self._reset_s * self.rate) + 2 * self.rate
            if not pos <= voice.out_pos <= pos + far:  # missed (or jumped): restart it here
                voice = _Voice(voice.r, voice.signals, pos, self.preroll)
            if voice.out_pos == pos:
                self._armed = None
                self._begin("swap", voice, scene)
                return
            self._armed = (voice, scene)
            n = min(n, voice.out_pos - pos)
        if self.loop is not None and self._nxt is None:
            ls, le = self.loop
            if pos >= le:
                with self._spare_lock:
                    lv, self._loop_voice = self._loop_voice, None
                if lv is not None and lv[0] == self.loop and lv[1].r.scene is self.scene:
                    self._begin("loop", lv[1])
                    return
                if lv is not None and lv[1].r.scene is self.scene:
                    with self._spare_lock:  # stale loop points: give the renderer back
                        if self._spare is None:
                            self._spare = lv[1].r
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
        try:  # below the worker, above the reloader (Linux: per-thread nice)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 5)
        except (AttributeError, OSError):
            pass
        while not self._quit.is_set():
            try:
                cmd, arg = self._jobs.get(timeout=0.01)
            except queue.Empty:
                cmd, arg = "", None
            try:
                if cmd == "seek":
                    voice = self._voice(self._take_spare(), self.signals, int(arg))
                    self._cmds.put(("seek", voice))
                self._arm_loop()
            except Exception:
                log.exception("preview preparer failed")

    def _reloader(self) -> None:
        """Scene-file watcher: reload, build and arm the new scene, below the worker."""
        try:  # the worker must win the CPU, but at nice 19 a busy machine starved reloads for
            # seconds (measured): share the preparer's level (Linux: per-thread nice)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 5)
        except (AttributeError, OSError):
            pass
        while not self._quit.wait(self.watch_interval_s):
            try:
                self._poll_scene()
            except Exception:
                log.exception("preview scene reload failed")

    def _arm_loop(self) -> None:
        """Prepare the voice that starts the loop, so the jump costs the worker nothing."""
        loop = self.loop
        if loop is None or self._loop_voice is not None:
            return
        with self._spare_lock:
            r, self._spare = self._spare, None
        if r is None or r.scene is not self.scene:
            r = self._renderer(self.scene, self.signals)
        voice = self._voice(r, self.signals, loop[0])
        with self._spare_lock:
            self._loop_voice = (loop, voice)

    def _voice(self, r: Renderer, signals: NDArray[np.float32], target: int) -> _Voice:
        """A primed voice starting at ``target``, timing the reset + pre-roll (preparer)."""
        t0 = time.perf_counter()
        voice = _Voice(r, signals, target, self.preroll)
        voice.prime()
        self._reset_s = 0.5 * self._reset_s + 0.5 * (time.perf_counter() - t0)
        return voice

    def _poll_scene(self) -> None:
        sig = self._stat()
        if sig is None or sig == self._file_sig:
            return
        self._file_sig = sig
        try:
            scene = Scene.load(self.scene_path)
            if [o.stems for o in scene.objects] == [o.stems for o in self.scene.objects]:
                signals = self.signals
            else:
                signals, _, _ = load_stems(self.stems, scene, self.rate)
            r = self._renderer(scene, signals)
            # Arm the swap far enough ahead that the reset below is done before the worker
            # gets there (it restarts the voice itself otherwise).
            ahead = self.capacity + self.block + int(2.0 * self._reset_s * self.rate)
            target = (self._nxt or self._cur).out_pos + ahead
            voice = self._voice(r, signals, target)
        except Exception as exc:  # a half-edited or invalid file: keep playing the old
            log.warning("%s: not reloaded (%s)", self.scene_path, exc)
            return
        log.info("%s: changed, crossfading to the new scene at %.2f s", self.scene_path,
                 target / self.rate)
        self._cmds.put(("swap", (voice, scene)))

    # --------------------------------------------------------------- transport

    def open(self, prefill_timeout_s: float = 10.0) -> None:
        """Start the threads, fill the buffer and open the output stream (paused)."""
        import sounddevice as sd

        sys.setswitchinterval(0.001)  # the callback needs the GIL promptly
        self._arm_loop()  # a loop given up front is ready before the first jump
        self._threads = [
            threading.Thread(target=self._worker, name="preview-worker", daemon=True),
            threading.Thread(target=self._preparer, name="preview-preparer", daemon=True),
        ]
        if self.watch_interval_s > 0:
            self._threads.append(
                threading.Thread(target=self._reloader, name="preview-reloader", daemon=True)
            )
        for t in self._threads:
            t.start()
        t0 = time.monotonic()
        while (self._w - self._r < self.capacity - self.block and self._eof_at is None
               and time.monotonic() - t0 < prefill_timeout_s):
            time.sleep(0.005)
        self._stream = sd.OutputStream(
            samplerate=self.rate, blocksize=self.block, device=self.device,
            channels=self.channels, dtype="float32", callback=self._callback,
        )
        self._stream.start()
        log.info("preview: %s, block %d, %d Hz, latency %.1f ms", self._stream.device,
                 self.block, self.rate, 1000 * self._stream.latency)

    def play(self) -> None:
        """Start or resume playback."""
        self._playing = True

    def pause(self) -> None:
        """Pause (the position is kept)."""
        self._playing = False

    def toggle(self) -> None:
        """Play / pause."""
        self._playing = not self._playing

    def stop(self) -> None:
        """Pause and go back to the start position."""
        self._playing = False
        time.sleep(2 * self.block / self.rate)  # let the callback fade out
        self.seek(self.start / self.rate)

    def seek(self, seconds: float) -> None:
        """Go to stem time ``seconds`` (crossfaded while playing, after the buffered frames)."""
        target = min(max(0, int(round(seconds * self.rate))), self.end)
        if self._playing:
            self._jobs.put(("seek", target))
        else:
            self._cmds.put(("jump", target))

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
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------- CLI


def list_devices() -> str:
    """PortAudio host APIs and output devices, one per line."""
    import sounddevice as sd

    apis = sd.query_hostapis()
    lines = []
    for i, d in enumerate(sd.query_devices()):
        if d["max_output_channels"] > 0:
            lines.append(f"{i:3d}  {d['name']}  ({apis[d['hostapi']]['name']}, "
                         f"{d['max_output_channels']} out)")
    return "\n".join(lines) or "no output devices"


def _device(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.strip().isdigit() else value


def preview_main(
    stems: Sequence[Path | str],
    scene_path: Path | str,
    *,
    device: int | str | None = None,
    block: int = 512,
    rate: int = 48000,
    loop: tuple[float, float] | None = None,
    start_s: float = 0.0,
    duration_s: float | None = None,
    interactive: bool = True,
) -> int:
    """Preview stems through a scene on a sound card; returns a process exit code.

    Parameters
    ----------
    stems, scene_path : paths
        Stem files and the scene JSON (reloaded live when it changes).
    device : int or str, optional
        Output device index or name; default device when None.
    block : int
        Callback block size in samples.
    rate : int
        Sample rate in Hz.
    loop : (float, float), optional
        Loop start / end in seconds.
    start_s : float
        Start position in seconds.
    duration_s : float, optional
        Play this many seconds (default: to the end of the render).
    interactive : bool
        Read commands from stdin: ``p`` play/pause, ``s`` stop, ``> 12.5`` seek (seconds),
        ``l 4 12`` loop (``l`` alone clears), ``q`` quit. Otherwise play once and return
        (with ``loop``: until Ctrl-C).
    """
    try:
        player = Player(
            stems, scene_path, device=device, block=block, rate=rate, loop=loop,
            start_s=start_s, end_s=None if duration_s is None else start_s + duration_s,
        )
        player.open()
    except Exception as exc:  # bad stems / scene / device: one clear line
        print(f"gravity preview: {exc}", file=sys.stderr)
        return 1
    cmds: queue.Queue[str] = queue.Queue()
    if interactive:
        def reader() -> None:
            for line in sys.stdin:
                cmds.put(line.strip())
            cmds.put("q")

        threading.Thread(target=reader, name="preview-stdin", daemon=True).start()
        print("commands: p play/pause, s stop, > SECONDS seek, l START END loop, q quit",
              file=sys.stderr)
    player.play()
    try:
        while True:
            print("\r" + player.stats().line(), end="", file=sys.stderr, flush=True)
            if not interactive and player.wait(0.2):
                break
            try:
                c = cmds.get(timeout=0.2) if interactive else ""
            except queue.Empty:
                continue
            parts = c.split()
            if not parts:
                continue
            try:
                if parts[0] == "q":
                    break
                if parts[0] == "p":
                    player.toggle()
                elif parts[0] == "s":
                    player.stop()
                elif parts[0] == ">" and len(parts) == 2:
                    player.seek(float(parts[1]))
                elif parts[0] == "l":
                    player.set_loop(*(map(float, parts[1:3])) if len(parts) == 3 else None)
                else:
                    print(f"\nunknown command {c!r}", file=sys.stderr)
            except (ValueError, RenderError) as exc:
                print(f"\n{exc}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        player.close()
        print("\r" + player.stats().line(), file=sys.stderr)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``gravity preview``."""
    parser.add_argument("stems", nargs="*", type=Path, help="stem files")
    parser.add_argument("--scene", type=Path, help="scene JSON (reloaded when it changes)")
    parser.add_argument("--device", help="output device index or name (see --list-devices)")
    parser.add_argument("--block", type=int, default=512, help="block size in samples")
    parser.add_argument("--rate", type=int, default=48000, help="sample rate in Hz")
    parser.add_argument("--loop", type=float, nargs=2, metavar=("START", "END"),
                        help="loop between two times in seconds")
    parser.add_argument("--start", type=float, default=0.0, help="start time in seconds")
    parser.add_argument("--duration", type=float, help="seconds to play")
    parser.add_argument("--no-interactive", action="store_true",
                        help="play once, read no commands")
    parser.add_argument("--list-devices", action="store_true", help="list output devices")


def run(args: argparse.Namespace) -> int:
    """Run ``gravity preview`` from parsed arguments; returns the exit code."""
    if args.list_devices:
        print(list_devices())
        return 0
    if not args.stems or args.scene is None:
        print("gravity preview: give stem files and --scene", file=sys.stderr)
        return 2
    return preview_main(
        args.stems, args.scene, device=_device(args.device), block=args.block, rate=args.rate,
        loop=tuple(args.loop) if args.loop else None, start_s=args.start,
        duration_s=args.duration, interactive=not args.no_interactive,
    )
