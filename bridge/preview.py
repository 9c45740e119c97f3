"""gravity-live ``--preview``: the stems, binaural, through the renderer's streaming player,
following the DAW.

:class:`LivePreview` connects a running :class:`~bridge.live.LiveBridge` to a
:class:`renderer.stream.Player` (the engine of ``gravity preview``):

* **transport** — DAW play -> ``play``, stop -> ``pause``. While stopped the paused player is
  parked where the DAW's playhead is (a locate or scrub), so play starts in place. While playing,
  a playhead jump (seek, locate, loop: beyond the transport's jump threshold) *relocates* the
  player: pause (one faded block), move it a little ahead of the playhead, play when the DAW
  gets there (about 0.1 s, on time to a few ms, with a short gap). A smaller drift between the
  player and the bridge's playhead (beyond ``drift_s``) gets a crossfaded ``seek``; that is heard
  only after the player's ring buffer and the new voice's preparation, so it aims *ahead* by
  that lead (buffered seconds plus the preparation time measured on earlier seeks).
* **scenes** — the current section's scene (from the bridge's scene book) is written as the
  scene file the player watches (atomic replace); the player builds it off its audio threads and
  crossfades to it. Keyframes are put on the song timeline (:func:`song_timeline_doc`), so the
  renderer plays at song time *s* the positions the bridge sends at playhead *s*. The next
  section's scene is written ahead of its marker by the measured swap latency, so the crossfade
  lands on the marker.

Threads: the frame listener runs on the bridge's frame thread and only stores the latest frame
(one reference assignment). Everything else — reading the transport (lock-free), talking to the
player, writing scene files — happens in this module's ``gravity-preview`` thread, which wakes
every ``poll_s``. The player's own threads render; its audio callback only copies.

Stem time equals song time: the stems start at the DAW's zero.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Mapping

import numpy as np

from gravity.motion import positions_at, section_seconds
from gravity.scene import Scene, write_json_atomic

from .errors import BridgeError
from .frame import Frame
from .scenes import PreparedScene
from .transport import TransportState

if TYPE_CHECKING:
    from renderer.stream import Player

    from .live import LiveBridge

__all__ = ["LivePreview", "PreviewStats", "song_timeline_doc", "song_timeline_keyframes", "TIMELINE_S"]

log = logging.getLogger("gravity.preview")

TIMELINE = {"bpm": 20.0, "time_signature": "19/4", "section_bars": 512}
"""Timing of the scenes written for the player: one "section" spanning the whole song."""
TIMELINE_S = section_seconds(TIMELINE["bpm"], TIMELINE["time_signature"], TIMELINE["section_bars"])
"""Seconds of song time the player's scenes cover (29184 s, about 8 h)."""
MAX_KEYFRAMES = 129
"""Keyframes per object the scene schema allows."""


def song_timeline_keyframes(keyframes: np.ndarray, section_s: float, start_s: float) -> list[dict[str, float]]:
    """Re-time a section's motion onto the song timeline.

    The bridge places an object at section time ``t = (playhead - start_s) / section_s`` clamped
    to 0..1; the renderer at ``t = stream time / its scene's section length``. The returned
    keyframes, read over :data:`TIMELINE_S`, give at song time *s* the bridge's position at
    playhead *s* (held at the section's first position before it starts and at its last after it
    ends). Exact unless the section has more keyframes than fit (then resampled along its path).

    Parameters
    ----------
    keyframes : np.ndarray [shape=(K, 4)]
        Rows (t, az_deg, el_deg, dist_m), t normalised section time.
    section_s : float
        Section length, seconds (not positive: the t = 0 position throughout).
    start_s : float
        Song time where the section starts, seconds.

    Returns
    -------
    list of dict
        Keyframes ``{t, az_deg, el_deg, dist_m}`` with t from 0 to 1 over :data:`TIMELINE_S`.
    """
    kf = np.asarray(keyframes, dtype=float)
    if not (np.isfinite(section_s) and section_s > 0):
        t = np.array([0.0, 1.0])
        tau = np.zeros(2)
    else:
        tp = (start_s + kf[:, 0] * section_s) / TIMELINE_S
        inner = kf[(tp > 0.0) & (tp < 1.0), 0]
        if len(inner) > MAX_KEYFRAMES - 2:
            inner = np.linspace(inner[0], inner[-1], MAX_KEYFRAMES - 2)
        t_inner = (start_s + inner * section_s) / TIMELINE_S
        keep = np.concatenate([[True], np.diff(t_inner) > 0]) if len(t_inner) else np.zeros(0, bool)
        ends = np.clip((np.array([0.0, TIMELINE_S]) - start_s) / section_s, 0.0, 1.0)
        t = np.concatenate([[0.0], t_inner[keep], [1.0]])
        tau = np.concatenate([ends[:1], inner[keep], ends[1:]])
    pos = positions_at(kf, tau)
    return [{"t": float(a), "az_deg": float(p[0]), "el_deg": float(p[1]), "dist_m": float(p[2])}
            for a, p in zip(t, pos)]


def song_timeline_doc(scene: Scene, section_s: float, start_s: float,
                      stems: Collection[str] | None = None) -> dict[str, Any] | None:
    """The scene document the player should load for a section starting at ``start_s`` seconds.

    Moving objects get :func:`song_timeline_keyframes`; the timing becomes :data:`TIMELINE`.
    Objects with a stem outside ``stems`` (no audio file for it) are left out; None when no
    object is left.
    """
    doc = copy.deepcopy(dict(scene.raw))
    objs = []
    for obj, raw in zip(scene.objects, doc.get("objects", [])):
        if stems is not None and not set(obj.stems) <= set(stems):
            continue
        if not obj.is_static:
            raw["motion"] = song_timeline_keyframes(obj.keyframes, section_s, start_s)
        objs.append(raw)
    if not objs:
        return None
    doc["objects"] = objs
    section = (doc.get("timing") or {}).get("section")
    doc["timing"] = {**TIMELINE, **({"section": section} if section else {})}
    return doc


@dataclass(frozen=True)
class PreviewStats:
    """A snapshot of the preview.

    Attributes
    ----------
    playing : bool
        The player is playing.
    position_s : float
        Stem (= song) time of the last frame handed to the sound card, seconds.
    drift_ms : float
        Bridge playhead minus player position at the last check, milliseconds (positive: the
        player is behind).
    seeks : int
        Crossfaded seeks while playing (drift corrections).
    relocations : int
        Playhead jumps followed while playing (pause, move, play on time).
    jumps : int
        Repositionings of the paused player (locates while stopped, relocations).
    last_seek_ms : float or None
        Wall time from the last seek request to its first frame at the sound card, ms.
    last_seek_error_ms : float or None
        Player position minus playhead when that frame was seen, ms.
    lead_ms : float
        How far ahead of the DAW a seek would aim now (ring buffer + preparation), ms.
    swap_lead_ms : float
        Measured swap latency: song time from writing a scene to the player starting it, ms.
    scene_writes, swaps : int
        Scene files written for the player, and scene swaps it completed.
    last_swap_late_ms : float or None
        Song time between where the last scene swap was meant to start (the section's marker, or
        the playhead when the scene changed) and where it started, ms (negative: early).
    underflows, xruns : int
        The player's counters (see :class:`renderer.stream.PlayerStats`).
    """

    playing: bool
    position_s: float
    drift_ms: float
    seeks: int
    relocations: int
    jumps: int
    last_seek_ms: float | None
    last_seek_error_ms: float | None
    lead_ms: float
    swap_lead_ms: float
    scene_writes: int
    swaps: int
    last_swap_late_ms: float | None
    underflows: int
    xruns: int

    def line(self) -> str:
        """A short status fragment."""
        return (f"preview {'play' if self.playing else 'stop'} {self.position_s:.2f} s drift "
                f"{self.drift_ms:+.0f} ms relocations {self.relocations} seeks {self.seeks} swaps {self.swaps} "
                f"underflows {self.underflows}")


@dataclass
class _Pending:
    """A repositioning on its way to the sound card."""

    target: int          # stem sample
    kind: str            # "seek" (playing, crossfaded) or "jump" (paused)
    spare: str           # "fresh" or "stale" (see LivePreview._spare_state)
    issued_s: float      # monotonic seconds
    daw_s: float         # bridge playhead when issued, seconds
    n_transitions: int   # len(player.transitions) when issued
    seen_s: float | None = None  # when the worker began the crossfade (seen by us)


@dataclass
class _SceneWrite:
    """What the player was last given."""

    prepared: PreparedScene | None = None
    start_s: float = 0.0
    doc: dict[str, Any] | None = None
    intended_s: float | None = None  # song time the swap should start at (None: not measurable)
    daw_s: float = 0.0               # playhead when written, seconds
    moves: int = 0                   # seeks + jumps when written (a repositioning spoils the measurement)
    n_transitions: int = 0


class LivePreview:
    """Plays the stems through :class:`renderer.stream.Player`, following a running LiveBridge.

    Measured as it runs (see :meth:`stats`): how long a seek takes to prepare, and how much
    song time passes between writing a scene and the player starting it (the swap latency).

    Parameters
    ----------
    bridge : LiveBridge
        Started; its transport and scene book are followed.
    stems : mapping of str to path
        Stem id (as in the request) -> audio file.
    drift_s : float
        Player-vs-playhead difference beyond which the player seeks, seconds.
    poll_s : float
        How often the follower thread checks the transport, seconds.
    watch_interval_s : float
        The player's scene-file polling period, seconds.
    cue_lead_s : float
        Play pressed while the paused player sits elsewhere: it is moved this far ahead of the
        playhead and starts when the DAW gets there, seconds.
    workdir : path, optional
        Where the player's scene file (and stem links, when stem ids differ from file names) go;
        default a temporary folder removed by :meth:`close`.
    clock : callable
        Monotonic clock, seconds (the bridge's).
    **player_options
        Passed to :class:`renderer.stream.Player` (``device``, ``block``, ``rate``,
        ``buffer_blocks``, ``capture_s``, ...).
    """

    WARMUP_WRITES = 4
    """Scene rewrites while the DAW is stopped at start-up: the player sizes its swap margin
    from a running mean of its renderer reset time, which starts cold (the first reset is slow);
    a few reloads bring it to its steady value, so the measured swap latency holds later."""

    def __init__(self, bridge: "LiveBridge", stems: Mapping[str, str | os.PathLike[str]], *,
                 drift_s: float = 0.05, poll_s: float = 0.005, watch_interval_s: float = 0.02,
                 cue_lead_s: float = 0.1, workdir: str | os.PathLike[str] | None = None,
                 clock: Callable[[], float] = time.monotonic, **player_options: Any) -> None:
        if not stems:
            raise BridgeError("--preview needs stem files")
        if drift_s <= 0 or poll_s <= 0:
            raise BridgeError(f"drift_s ({drift_s}) and poll_s ({poll_s}) must be positive")
        self.bridge = bridge
        self.stems = {sid: Path(p) for sid, p in stems.items()}
        self.drift_s = float(drift_s)
        self.poll_s = float(poll_s)
        self.watch_interval_s = float(watch_interval_s)
        self._cue_lead_s = float(cue_lead_s)
        self._workdir = None if workdir is None else Path(workdir)
        self._clock = clock
        self._options = player_options
        self.player: Player | None = None
        self.scene_path: Path | None = None
        self._dir: Path | None = None
        self._own_dir = False
        self._frame: Frame | None = None
        self._thread: threading.Thread | None = None
        self._quit = threading.Event()
        self._pending: _Pending | None = None
        self._cue: float | None = None
        self._written = _SceneWrite()
        # seek preparation time (request -> crossfade begins), seconds, measured: with a spare
        # renderer of the current scene, and right after a scene swap (the player builds one)
        self._prep_s = {"fresh": 0.005, "stale": 0.1}
        self._swap_lead_s = 0.5  # song time from a scene write to its swap (measured)
        self._warmups = self.WARMUP_WRITES
        self._next_warmup = 0.0
        self._calibrated = False
        self._swap_measured = 0
        self._swaps_seen = 0
        self._drift = 0.0
        self._last = (clock(), 0.0)  # (monotonic s, player position s) at the previous check
        self._paused_at: float | None = None
        self.seeks = 0
        self.relocations = 0
        self.jumps = 0
        self.scene_writes = 0
        self.last_seek_ms: float | None = None
        self.last_seek_error_ms: float | None = None
        self.last_swap_late_ms: float | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Write the current scene, open the player (paused at the playhead), start following.

        Raises :class:`BridgeError` when the bridge is not started or no scene object has a stem
        file; the player's own errors (stems, sound device) propagate.
        """
        if self.player is not None:
            return
        book = self.bridge.book
        sch = self.bridge.scheduler
        if book is None or sch is None:
            raise BridgeError("start the bridge before the preview")
        if self._workdir is None:
            self._dir, self._own_dir = Path(tempfile.mkdtemp(prefix="gravity-preview-")), True
        else:
            self._dir = self._workdir
            self._dir.mkdir(parents=True, exist_ok=True)
        self.scene_path = self._dir / "preview.scene.json"
        try:
            files = self._stem_files()
            sec = sch.section
            name, start = (sec.name, sec.start_s) if sec is not None else (None, 0.0)
            pos = self.bridge.transport.position()
            if not self._write(book.resolve(name), start, pos, playing=False):
                raise BridgeError("--preview: no object of the scene has a stem file to play "
                                  f"(stems: {sorted(self.stems)})")
            from renderer.stream import Player  # the bridge imports the renderer for the preview only

            self._written.n_transitions = 0
            self.player = Player(files, self.scene_path, start_s=max(0.0, pos),
                                 watch_interval_s=self.watch_interval_s, **self._options)
            self.player.open()
            self._prep_s["stale"] = self._time_renderer_build() + self._prep_s["fresh"]
        except BaseException:
            self.close()
            raise
        self.bridge.add_frame_listener(self._on_frame)
        self._thread = threading.Thread(target=self._run, name="gravity-preview", daemon=True)
        self._thread.start()
        log.info("preview: %d stem(s), following the DAW (seek beyond %.0f ms of drift)", len(files),
                 1e3 * self.drift_s)

    def close(self) -> None:
        """Stop following, close the player, remove the temporary folder."""
        self._quit.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self.player is not None:
            self.player.close()
        if self._own_dir and self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._own_dir = False

    def __enter__(self) -> "LivePreview":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _time_renderer_build(self) -> float:
        """Seconds to build one renderer of the current scene (what a seek after a scene swap
        costs the player first)."""
        from renderer.render import Renderer

        p = self.player
        assert p is not None and self._written.doc is not None
        t0 = time.perf_counter()
        Renderer(Scene.from_dict(self._written.doc), p.rate, p.config, model=p.model,
                 duration_s=p.signals.shape[1] / p.rate or None)
        return time.perf_counter() - t0

    def _stem_files(self) -> list[Path]:
        """The stem files, named so the player matches them to stem ids (file stem = id); links
        in the work folder where the analysis renamed an id."""
        if all(p.stem == sid for sid, p in self.stems.items()):
            return list(self.stems.values())
        assert self._dir is not None
        links = self._dir / "stems"
        links.mkdir(exist_ok=True)
        out = []
        for sid, p in self.stems.items():
            link = links / f"{sid}{p.suffix}"
            if not link.exists():
                os.symlink(p.resolve(), link)
            out.append(link)
        return out

    # ------------------------------------------------------------------ frame thread
    def _on_frame(self, frame: Frame) -> None:
        """Frame listener (the bridge's frame thread): remember the frame, nothing else."""
        self._frame = frame

    # ------------------------------------------------------------------ follower thread
    def _run(self) -> None:
        while not self._quit.wait(self.poll_s):
            try:
                self._tick()
            except Exception as exc:  # the follower must outlive its own bugs
                self.bridge.events.report("preview", "preview follower failed: %r", exc)

    def _tick(self) -> None:
        p = self.player
        assert p is not None
        now = self._clock()
        st = self.bridge.transport.state
        daw = st.reported_position(now)
        ps = p.stats()
        pos = ps.position_s
        self._drift = daw - pos
        self._scene(st, daw)
        self._check_swaps(st.playing and ps.playing)
        self._check_landing(daw, pos, now)
        self._last = (now, pos)
        end_s = p.end / p.rate
        if st.playing and 0.0 <= daw < end_s:
            self._follow(daw, pos, ps.playing, ps.buffer_fill, now)
            return
        self._cue = None  # stopped, before zero (a count-in) or past the material: silent, parked
        if ps.playing:
            p.pause()
            self._paused_at = now
            self._pending = None  # a seek still on its way is overtaken by the parking jump
            return
        if self._paused_at is not None and now - self._paused_at < 3.0 * p.block / p.rate:
            return  # the callback is still fading out the last block
        target = min(max(daw, 0.0), end_s)
        if self._pending is None and abs(target - pos) * p.rate >= 1.0:
            self._issue(target, "jump", daw, now)

    def _follow(self, daw: float, pos: float, playing: bool, fill: float, now: float) -> None:
        """The DAW plays inside the material: start, or keep the player on its playhead.

        A jump of the playhead (further than the transport's jump threshold) relocates the
        player: pause (one faded block), move the paused player a little ahead of the playhead,
        and play when the DAW gets there — precise and quick (about ``cue_lead_s``), with a short
        gap. A smaller drift (over ``drift_s``) is corrected by a crossfaded seek aimed ahead by
        the buffered audio plus the expected preparation (see :meth:`_lead`).
        """
        p = self.player
        assert p is not None
        pend = self._pending
        if not playing:
            if pend is not None:
                return  # a jump on its way
            if self._paused_at is not None and now - self._paused_at < 3.0 * p.block / p.rate:
                return  # the callback is still fading out the last block
            cue = self._cue
            if cue is not None and abs(pos - cue) * p.rate < 1.0:  # cued ahead of the playhead
                if cue - 2.0 * self._cue_lead_s < daw < cue - self.poll_s / 2:
                    return  # start when the DAW gets there
                if cue - self.poll_s / 2 <= daw <= cue + self.drift_s:
                    self._cue = None
                    p.play()
                    return
                if daw > cue:  # the jump took longer than the lead: cue further ahead
                    self._cue_lead_s = min(1.0, 2.0 * self._cue_lead_s)
            elif abs(daw - pos) <= self.drift_s:
                self._cue = None
                p.play()
                return
            self._cue = daw + self._cue_lead_s
            self._issue(self._cue, "jump", daw, now)
            return
        self._cue = None
        if pend is not None:
            expected = pend.daw_s + (now - pend.issued_s)
            if abs(daw - expected) <= self.drift_s:
                return  # its landing is awaited; a new DAW jump supersedes it
        if abs(daw - pos) > self.bridge.transport.jump_threshold_s:
            self._pending = None
            self.relocations += 1
            p.pause()
            self._paused_at = now
        elif abs(daw - pos) > self.drift_s:
            self._issue(daw + self._lead(fill), "seek", daw, now)

    def _spare_state(self) -> str:
        """``"stale"`` right after a scene swap (the player has no spare renderer of the new
        scene and builds one for the next seek), else ``"fresh"``."""
        tr = self.player.transitions if self.player is not None else []
        return "stale" if tr and tr[-1][1] == "swap" else "fresh"

    def _lead(self, fill: float) -> float:
        """How far ahead of the playhead a seek issued now should aim, seconds: the buffered
        audio (``fill`` of the ring) plus the expected preparation."""
        p = self.player
        assert p is not None
        return fill * p.capacity / p.rate + self._prep_s[self._spare_state()]

    def _issue(self, target_s: float, kind: str, daw: float, now: float) -> None:
        p = self.player
        assert p is not None
        target = min(max(0, int(round(target_s * p.rate))), p.end)
        self._pending = _Pending(target, kind, self._spare_state(), now, daw, len(p.transitions))
        p.seek(target / p.rate)  # paused: an immediate jump; playing: crossfaded after the buffer
        if kind == "seek":
            self.seeks += 1
            log.debug("preview: seek to %.3f s (playhead %.3f s)", target / p.rate, daw)
        else:
            self.jumps += 1

    def _check_landing(self, daw: float, pos: float, now: float) -> None:
        """Follow the pending repositioning until it is heard; measure the seek preparation."""
        pend = self._pending
        p = self.player
        if pend is None or p is None:
            return
        at = int(round(pos * p.rate))
        if pend.kind == "jump":
            if at == pend.target or now - pend.issued_s > 1.0:
                self._pending = None
            return
        if pend.seen_s is None:
            if any(kind == "seek" and stem == pend.target for _, kind, stem in p.transitions[pend.n_transitions:]):
                pend.seen_s = now
                est = self._prep_s[pend.spare]
                self._prep_s[pend.spare] = est + 0.5 * (min(0.5, now - pend.issued_s) - est)
        t0, pos0 = self._last
        jumped = abs(pos - (pos0 + (now - t0))) > 2.0 * p.block / p.rate  # off the old trajectory
        if pend.seen_s is not None and jumped and pend.target <= at < pend.target + (now - pend.seen_s + 0.05) * p.rate:
            landed = now - (at - pend.target) / p.rate
            self.last_seek_ms = 1e3 * (landed - pend.issued_s)
            self.last_seek_error_ms = 1e3 * (pos - daw)
            self._pending = None
        elif now - pend.issued_s > 2.0:  # lost (superseded, or the material ended)
            self._pending = None

    # ------------------------------------------------------------------ scenes
    def _scene(self, st: TransportState, daw: float) -> None:
        """Give the player the scene of the current section, or of the next one when its marker
        is closer than the swap latency.

        The swap latency (song time from writing a scene to the player starting it: its file
        poll, building a renderer, the ring buffer, the arming margin) is measured on every swap
        while playing; the first time the DAW plays, the current scene is written once more to
        measure it before the first section change (a swap between equal scenes, crossfaded), after
        :attr:`WARMUP_WRITES` rewrites while stopped at start-up.
        """
        frame, book = self._frame, self.bridge.book
        if frame is None or book is None:
            return
        prepared, start, prearm = book.resolve(frame.section), frame.section_start_s, False
        i = st.marker_index(daw)
        if i >= 0 and st.markers[i].time_s > start:  # crossed a marker the last frame has not shown yet
            prepared, start = book.resolve(st.markers[i].name), st.markers[i].time_s
        if st.playing and st.markers:
            j = i + 1
            if j < len(st.markers) and st.markers[j].time_s - daw <= self._swap_lead_s:
                m = st.markers[j]
                prepared, start, prearm = book.resolve(m.name), m.time_s, True
        w = self._written
        now = self._clock()
        warm = not st.playing and self._warmups > 0 and now >= self._next_warmup
        calibrate = st.playing and not self._calibrated and w.intended_s is None and daw > 0.0
        if prepared is w.prepared and start == w.start_s and not (calibrate or warm):
            return
        if warm:
            self._warmups -= 1
            self._next_warmup = now + self.watch_interval_s + 0.15  # one reload at a time
        self._calibrated |= calibrate
        self._write(prepared, start, daw, playing=st.playing, prearm=prearm, force=calibrate or warm)

    def _write(self, prepared: PreparedScene, start_s: float, daw: float, *, playing: bool,
               prearm: bool = False, force: bool = False) -> bool:
        """Write ``prepared`` (section starting at ``start_s``) for the player; False if it has
        no object the player has audio for. An unchanged scene is not rewritten unless ``force``."""
        assert self.scene_path is not None
        w = self._written
        w.prepared, w.start_s = prepared, start_s
        doc = song_timeline_doc(prepared.scene, prepared.section_s, start_s, self.stems)
        if doc is None:
            self.bridge.events.report("preview-stems", "preview: no object of section %r's scene has a stem file; "
                                      "keeping the previous scene", prepared.section)
            return False
        if doc == w.doc and not force:
            return True  # the same scene (a re-published book): nothing to swap
        write_json_atomic(doc, self.scene_path)
        w.doc, w.daw_s, w.moves = doc, daw, self.seeks + self.jumps
        w.intended_s = (start_s if prearm else max(start_s, daw)) if playing else None
        w.n_transitions = len(self.player.transitions) if self.player is not None else 0
        self.scene_writes += 1
        log.debug("preview: scene for section %r from %.3f s written", prepared.section, start_s)
        return True

    def _check_swaps(self, playing: bool) -> None:
        """Measure where the last written scene started playing; keep the swap latency."""
        p = self.player
        assert p is not None
        if p.swaps == self._swaps_seen:
            return
        self._swaps_seen = p.swaps
        w = self._written
        swaps = [stem for _, kind, stem in p.transitions[w.n_transitions:] if kind == "swap"]
        if not swaps or w.intended_s is None:
            return
        at = swaps[-1] / p.rate
        self.last_swap_late_ms = 1e3 * (at - w.intended_s)
        if playing and w.moves == self.seeks + self.jumps and 0.0 < at - w.daw_s < 3.0:
            # played straight through: the latency in song time (a running mean after the first)
            lat = at - w.daw_s
            self._swap_lead_s = lat if self._swap_measured == 0 else 0.5 * (self._swap_lead_s + lat)
            self._swap_measured += 1
        w.intended_s = None

    # ------------------------------------------------------------------ reading
    @property
    def warming_up(self) -> bool:
        """True until the start-up scene rewrites (:attr:`WARMUP_WRITES`) are done."""
        return self._warmups > 0

    def stats(self) -> PreviewStats:
        """Counters now."""
        p = self.player
        ps = p.stats() if p is not None else None
        return PreviewStats(
            playing=bool(ps and ps.playing), position_s=ps.position_s if ps else 0.0,
            drift_ms=1e3 * self._drift, seeks=self.seeks, relocations=self.relocations, jumps=self.jumps,
            last_seek_ms=self.last_seek_ms, last_seek_error_ms=self.last_seek_error_ms,
            lead_ms=1e3 * (self._lead(ps.buffer_fill) if ps and p else 0.0), swap_lead_ms=1e3 * self._swap_lead_s,
            scene_writes=self.scene_writes, swaps=ps.swaps if ps else 0, last_swap_late_ms=self.last_swap_late_ms,
            underflows=ps.underflows if ps else 0, xruns=ps.xruns if ps else 0)
