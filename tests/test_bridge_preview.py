"""gravity-live --preview: the stems through the streaming player, following a DAW over real OSC.

The sound card is a JACK server with the dummy backend (the session's ``device`` fixture in
``tests/conftest.py``: our own server, real time on JACK's clock, nothing heard). The DAW
is a python-osc UDP client sending REAPER's messages (``/play``, ``/stop``, ``/time``,
``/tempo/raw``, ``/marker/@/...``) to a real :class:`bridge.live.LiveBridge`; the stems are WAV
files. The tests measure what the player did: its position against the DAW's playhead, its
pause on ``/stop``, its seek on a jump in ``/time``, the audio it delivered, and the scene it
plays after a section marker.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import soundfile as sf
from pythonosc.udp_client import SimpleUDPClient

from bridge.live import LiveBridge, LiveConfig
from bridge.preview import LivePreview
from bridge.targets import TargetSpec
from helpers import LIVE_REQUEST, ild_db, write_kick_and_vocal
from waiting import free_port, wait_for

FS = 48000
BLOCK = 512
STEM_S = 8.0
MARK_B = 3.5  # song time of marker "B", seconds
ROOT = Path(__file__).resolve().parent.parent

REQUEST = LIVE_REQUEST


def _scene(az: float) -> dict[str, Any]:
    """Both stems on one side (az degrees, + = left), static."""
    objs = [
        {
            "id": sid,
            "class": cls,
            "az_deg": az,
            "el_deg": 0.0,
            "dist_m": 1.5,
            "width": 0.0,
            "gain_db": -6.0,
            "reverb_send": 0.0,
            "early_reflections": 0.0,
        }
        for sid, cls in (("v1", "lead_vocal"), ("k1", "kick"))
    ]
    return {
        "version": "1.0",
        "bed": {"layout": "binaural"},
        "timing": {"bpm": 120, "time_signature": "4/4", "section_bars": 4},
        "objects": objs,
    }


class Daw(threading.Thread):
    """A REAPER-like DAW: while playing it sends ``/time`` every 40 ms; ``truth()`` is its playhead."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.osc = SimpleUDPClient("127.0.0.1", port)
        self.lock = threading.Lock()
        self.playing = False
        self.base, self.t0 = 0.0, time.monotonic()
        self.quit = threading.Event()
        self.start()

    def truth(self, now: float | None = None) -> float:
        with self.lock:
            now = time.monotonic() if now is None else now
            return self.base + (now - self.t0 if self.playing else 0.0)

    def send(self, address: str, *args: Any) -> None:
        self.osc.send_message(address, list(args))

    def play(self) -> None:
        with self.lock:
            self.t0, self.playing = time.monotonic(), True
        self.send("/play", 1)

    def stop(self) -> None:
        with self.lock:
            self.base, self.playing = self.truth_locked(), False
        self.send("/stop", 1)

    def truth_locked(self) -> float:
        return self.base + (time.monotonic() - self.t0 if self.playing else 0.0)

    def locate(self, song_s: float) -> None:
        with self.lock:
            self.base, self.t0 = song_s, time.monotonic()
        self.send("/time", float(song_s))

    def run(self) -> None:
        while not self.quit.wait(0.04):
            if self.playing:
                self.send("/time", float(self.truth()))


class Session:
    """A started LiveBridge (scenes pinned per section by the DAW) and a LivePreview on the JACK device."""

    def __init__(self, tmp: Path, device: int) -> None:
        t = np.arange(int(STEM_S * FS)) / FS
        stems = {}
        for k, (sid, name, f) in enumerate([("v1", "Lead Vocal", 2500.0), ("k1", "k1", 1500.0)]):
            x = 0.3 * np.sin(2 * np.pi * f * t) * (0.7 + 0.3 * np.sin(2 * np.pi * 0.7 * t + k))
            stems[sid] = tmp / f"{name}.wav"  # "Lead Vocal.wav" is stem v1: the preview links it by id
            sf.write(stems[sid], x.astype(np.float32), FS, subtype="FLOAT")
        for name, az in (("a", 90.0), ("b", -90.0)):
            (tmp / f"{name}.json").write_text(json.dumps(_scene(az)))
        self.sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the ADM-OSC target: discards
        self.sink.bind(("127.0.0.1", 0))
        port = free_port()
        cfg = LiveConfig(
            listen_port=port,
            targets=(TargetSpec.parse(f"adm:127.0.0.1:{self.sink.getsockname()[1]}"),),
            planner="planner",
            plan_in_subprocess=False,
            realtime_priority=False,
            crossfade_beats=0.0,
            allow_dirs=(str(tmp),),  # where /gravity/scene may read the two scenes
        )
        self.bridge = LiveBridge(cfg, REQUEST)
        self.bridge.start()
        self.daw = Daw(port)
        d = self.daw
        d.send("/gravity/scene", str(tmp / "a.json"), "A")
        d.send("/gravity/scene", str(tmp / "b.json"), "B")
        d.send("/tempo/raw", 120.0)
        d.send("/marker/1/name", "A")
        d.send("/marker/1/time", 0.0)
        d.send("/marker/2/name", "B")
        d.send("/marker/2/time", MARK_B)
        wait_for(
            lambda: (
                (b := self.bridge.book) is not None
                and all(b.sections.get(k) is not None and b.sections[k].source.startswith("file:") for k in "ab")
            ),
            20,
            "both scenes pinned",
        )
        wait_for(lambda: len(self.bridge.transport.state.markers) == 2, 5, "the markers")
        self.preview = LivePreview(self.bridge, stems, device=device, block=BLOCK, rate=FS, capture_s=STEM_S)
        self.preview.start()
        self.player = self.preview.player

    def pos(self) -> float:
        return self.player.stats().position_s

    def close(self) -> None:
        self.daw.quit.set()
        self.preview.close()
        self.bridge.stop()
        self.sink.close()


@pytest.fixture(scope="module")
def live(device: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    s = Session(tmp_path_factory.mktemp("live_preview"), device)
    yield s
    s.close()


def tracking_and_lag(s: Session, seconds: float, skip_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Player position minus the DAW's playhead, seconds, sampled every 5 ms for ``seconds``
    (after ``skip_s``); and at each sample how far the sound card's clock (the frames JACK took
    from the player while it played) has fallen behind the wall clock since the first, seconds:
    a JACK period (10.7 ms) of sawtooth, more when a busy machine holds JACK or the callback back.
    """
    errs, lags = [], []
    t_end = time.monotonic() + seconds
    t_skip = time.monotonic() + skip_s
    lag, prev = 0.0, None
    while (now := time.monotonic()) < t_end:
        st = s.player.stats()
        if prev is not None and prev[2] and st.playing:
            lag += (now - prev[0]) - (st.frames_delivered - prev[1]) / FS
        prev = (now, st.frames_delivered, st.playing)
        if now >= t_skip:
            errs.append(st.position_s - s.daw.truth(now))
            lags.append(lag)
        time.sleep(0.005)
    return np.array(errs), np.array(lags)


def tracking(s: Session, seconds: float, skip_s: float = 0.0) -> np.ndarray:
    """Player position minus the DAW's playhead, seconds, sampled every 5 ms for ``seconds``."""
    return tracking_and_lag(s, seconds, skip_s)[0]


def test_parks_where_the_daw_locates_while_stopped(live: Session) -> None:
    assert not live.player.stats().playing
    live.daw.locate(0.5)  # REAPER sends /time when the edit cursor moves while stopped
    t0 = time.monotonic()
    wait_for(lambda: round(live.pos() * FS) == round(0.5 * FS), 2, "the player parked at 0.5 s")
    print(f"\nparked at 0.5 s in {1e3 * (time.monotonic() - t0):.1f} ms")
    time.sleep(0.2)
    assert not live.player.stats().playing and round(live.pos() * FS) == FS // 2


def test_play_follows_the_playhead_with_sound(live: Session) -> None:
    n0 = live.player.n_captured
    live.daw.play()
    t0 = time.monotonic()
    wait_for(lambda: live.pos() > 0.5 + 1e-3, 1, "the player to start")
    start_ms = 1e3 * (time.monotonic() - t0)
    assert live.player.captured_pos[n0] == FS // 2 and live.preview.relocations == 0  # started in place
    # Judged over a second in which the sound card kept time. The player moves with the frames JACK
    # takes: when a busy machine holds JACK or the callback back (26-33 ms seen with one core busy,
    # 251 ms once) it trails the DAW by as much, no error of the follower's, which then rightly
    # seeks (beyond 50 ms) or relocates (beyond 250 ms). Then the DAW locates back (the later tests
    # need the playhead before marker B) and another second is measured.
    for _ in range(5):
        relocations = live.preview.relocations
        err, lag = tracking_and_lag(live, 1.0, skip_s=0.05)
        if lag.max() < 0.02:  # (a JACK period, 10.7 ms, of sawtooth and some jitter)
            break
        print(f"\nthe sound card's clock fell {1e3 * lag.max():.0f} ms behind: measuring another second")
        live.daw.locate(0.5)
        wait_for(
            lambda: live.pos() < 1.0 and abs(live.pos() - live.daw.truth()) < 0.02, 3, "the player back on the playhead"
        )
    else:
        pytest.fail("the sound card's clock fell 20 ms behind in five windows running: too busy to judge")
    med, p90 = 1e3 * float(np.median(np.abs(err))), 1e3 * float(np.percentile(np.abs(err), 90))
    print(
        f"\nplay: audio moving {start_ms:.1f} ms after /play; position - playhead over 1 s: median "
        f"{1e3 * float(np.median(err)):+.1f} ms, |err| p90 {p90:.1f} ms, max {1e3 * np.max(np.abs(err)):.1f} ms; "
        f"sound card clock behind by up to {1e3 * lag.max():.1f} ms; {live.preview.stats()}"
    )
    assert start_ms < 60
    assert med < 20 and p90 < 50  # (a busy 2-core machine may hold a thread back now and then: no max)
    assert live.preview.relocations == relocations  # no relocation while the sound card kept time
    n = live.player.n_captured
    y = live.player.captured[n0:n]
    pos = live.player.captured_pos[n0:n]
    assert len(y) > 0.9 * FS and np.all(np.isfinite(y))
    steady = y[(pos > 0.6 * FS) & (pos < 1.4 * FS)]
    rms = np.sqrt(np.mean(steady**2, axis=0))
    print(
        f"scene A (both stems at +90 deg, left): rms L {rms[0]:.4f} R {rms[1]:.4f}; player scene az "
        f"{[o.keyframes[0, 1] for o in live.player.scene.objects]}"
    )
    assert rms[0] > 0.01 and rms[0] > 2 * rms[1]  # sound, on the left
    assert live.player.underflows == 0


def test_a_jump_in_time_makes_it_seek(live: Session) -> None:
    seeks, relocations = live.preview.seeks, live.preview.relocations
    t_jump = time.monotonic()
    live.daw.locate(2.0)  # e.g. a click in the timeline while playing
    wait_for(lambda: live.preview.relocations > relocations, 1, "a relocation")
    landed = wait_for(
        lambda: abs(live.pos() - live.daw.truth()) < 0.03 and live.pos() >= 2.0 and time.monotonic(),
        2,
        "the player at the new playhead",
    )
    err, lag = tracking_and_lag(live, 0.4)
    print(
        f"\njump 1.x -> 2.0 s: on the new playhead after {1e3 * (landed - t_jump):.0f} ms; afterwards "
        f"position - playhead median {1e3 * float(np.median(err)):+.1f} ms, |max| "
        f"{1e3 * float(np.max(np.abs(err))):.1f} ms (sound card behind by up to {1e3 * lag.max():.1f} ms); "
        f"{live.preview.stats()}"
    )
    assert live.preview.relocations == relocations + 1 and live.preview.seeks == seeks
    assert landed - t_jump < 0.5  # pause, move ahead by the cue lead (0.1 s), play on time
    # (beyond what the sound card lost meanwhile, held back by a busy machine: see tracking_and_lag)
    slack = max(0.0, lag.max() - 0.011)
    assert abs(float(np.median(err))) < 0.015 + slack and float(np.percentile(np.abs(err), 90)) < 0.05 + slack
    # a smaller step (under the transport's jump threshold) is a crossfaded seek, aimed ahead
    t_step = time.monotonic()
    live.daw.locate(live.daw.truth() - 0.15)
    wait_for(lambda: live.preview.seeks > seeks, 1, "a seek")
    landed = wait_for(lambda: abs(live.pos() - live.daw.truth()) < 0.03 and time.monotonic(), 2, "the seek landing")
    err, lag = tracking_and_lag(live, 0.3)
    st = live.preview.stats()
    print(
        f"step back 0.15 s: {live.preview.seeks - seeks} crossfaded seek(s), on the playhead after "
        f"{1e3 * (landed - t_step):.0f} ms (request -> first frame {st.last_seek_ms:.0f} ms, off by "
        f"{st.last_seek_error_ms:+.1f} ms), then |max| {1e3 * float(np.max(np.abs(err))):.1f} ms (sound card "
        f"behind by up to {1e3 * lag.max():.1f} ms)"
    )
    assert landed - t_step < 0.6  # the ring buffer (0.2 s) plus a reset of the spare renderer (measured 0.21 s)
    assert float(np.percentile(np.abs(err), 90)) < 0.05 + max(0.0, lag.max() - 0.011)
    assert live.player.underflows == 0


def test_section_marker_switches_the_players_scene(live: Session) -> None:
    """Scene B is armed at marker B's sample (``swap_at``): the crossfade begins on it, and the
    sound moves from the left to the right half a crossfade later.
    """
    assert live.daw.truth() < MARK_B - 0.1
    wait_for(lambda: live.daw.truth() > MARK_B + 0.4, 3, "the playhead past marker B", 0.01)
    assert [o.keyframes[0, 1] for o in live.player.scene.objects] == [-90.0, -90.0]  # scene B
    swaps = [t for t in list(live.player.transitions) if t[1] == "swap"]
    w, kind, at = swaps[-1]
    st = live.preview.stats()
    late_ms = 1e3 * (at / FS - MARK_B)
    n = live.player.n_captured
    y, pos = live.player.captured[:n], live.player.captured_pos[:n]
    # where the sound crosses over: left-minus-right level in 64-sample windows around the marker
    win = 64
    k0 = int(np.flatnonzero(pos == round((MARK_B - 0.05) * FS))[0])
    seg = y[k0 : k0 + 8 * FS // 50].reshape(-1, win, 2)
    ild = 10 * np.log10(np.mean(seg[:, :, 0] ** 2, axis=1) / np.mean(seg[:, :, 1] ** 2, axis=1))
    assert np.all(np.diff(pos[k0 : k0 + seg.size // 2]) == 1)  # played straight through the marker
    cross = pos[k0 + win * int(np.flatnonzero(ild < 0)[0])] / FS
    print(
        f"\nscene B swap began at song time {at / FS:.4f} s: {late_ms:+.3f} ms from marker B ({MARK_B} s; "
        f"preview measured {st.last_swap_late_ms:+.3f} ms); the sound crosses to the right at {cross:.4f} s "
        f"(marker + {1e3 * (cross - MARK_B):.1f} ms, fade {1e3 * live.player.fade / FS:.0f} ms); "
        f"{st.swap_requests} swap requests, {len(swaps)} swap(s)"
    )
    assert abs(at - MARK_B * FS) <= BLOCK  # on the marker (armed there: in fact to the sample)
    assert st.last_swap_late_ms is not None and abs(st.last_swap_late_ms - late_ms) < 1e-6
    assert 0.0 < cross - MARK_B < live.player.fade / FS  # during the crossfade that began on the marker
    assert len(swaps) == 1  # scene B (A played from the start: no swap)
    after = y[(pos > at + live.player.fade) & (pos < (MARK_B + 0.35) * FS)]
    rms = np.sqrt(np.mean(after**2, axis=0))
    print(f"scene B (both stems at -90 deg, right): rms L {rms[0]:.4f} R {rms[1]:.4f}")
    assert len(after) > 0.1 * FS and rms[1] > 0.01 and rms[1] > 2 * rms[0]


def test_stop_pauses_and_holds(live: Session) -> None:
    t0 = time.monotonic()
    live.daw.stop()
    wait_for(lambda: not live.player.stats().playing, 1, "the player to pause")
    pause_ms = 1e3 * (time.monotonic() - t0)
    time.sleep(0.1)
    p1 = live.pos()
    time.sleep(0.3)
    p2 = live.pos()
    where = live.daw.truth()
    print(f"\n/stop: paused after {pause_ms:.1f} ms; held at {p2:.3f} s (DAW stopped at {where:.3f} s)")
    assert pause_ms < 60
    assert p1 == p2 and abs(p2 - where) < 0.03
    n = live.player.n_captured
    time.sleep(0.1)
    assert live.player.n_captured == n  # nothing more delivered
    # play again: resumes in place, no seek
    relocations = live.preview.relocations
    live.daw.play()
    wait_for(lambda: live.pos() > p2 + 0.05, 1, "playing again")
    err = tracking(live, 0.3)
    live.daw.stop()
    assert live.preview.relocations == relocations and float(np.median(np.abs(err))) < 0.02
    assert live.player.underflows == 0


def test_locate_back_into_section_a_while_stopped_plays_a_then_b_on_the_marker(live: Session) -> None:
    """Stopped in section B, the DAW locates to 2.9 s (section A, 0.6 s before marker B): the
    paused player takes scene A before play (no crossfade heard) and arms B at the marker again.
    """
    wait_for(lambda: not live.player.stats().playing, 1, "the player paused")
    assert live.daw.truth() > MARK_B
    n_tr, swaps0 = live.player.transition_count, live.player.swaps
    t0 = time.monotonic()
    live.daw.locate(2.9)
    wait_for(lambda: live.player.scene.objects[0].keyframes[0, 1] == 90.0, 3, "scene A in the paused player")
    swap_ms = 1e3 * (time.monotonic() - t0)
    wait_for(lambda: round(live.pos() * FS) == round(2.9 * FS), 2, "the player parked at 2.9 s")
    time.sleep(0.5)  # (scene B is armed at the marker meanwhile)
    n0 = live.player.n_captured
    live.daw.play()
    wait_for(lambda: live.daw.truth() > MARK_B + 0.4, 3, "the playhead past marker B", 0.01)
    live.daw.stop()
    n = live.player.n_captured
    y, pos = live.player.captured[n0:n], live.player.captured_pos[n0:n]
    new = list(live.player.transitions)[-(live.player.transition_count - n_tr) :]
    swaps = [stem for _, kind, stem in new if kind == "swap"]

    def ild(a: float, b: float) -> float:
        return ild_db(y[(pos >= a * FS) & (pos < b * FS)], channel_axis=-1)

    a_db, b_db = ild(2.91, MARK_B - 0.01), ild(MARK_B + 0.06, MARK_B + 0.35)
    print(
        f"\nlocate to 2.9 s while stopped: scene A in the paused player after {swap_ms:.0f} ms; swaps at "
        f"{[s / FS for s in swaps]} s; left-right level before the marker {a_db:+.1f} dB, after {b_db:+.1f} dB; "
        f"{live.preview.stats()}"
    )
    # A in the paused player before play (no crossfade heard), then B on the marker's sample. On
    # a loaded machine the preview may hand A over twice (a re-ask it thought stale); both land
    # while paused, at the parked position or the block the worker had already rendered from it.
    assert swaps[-1] == MARK_B * FS and 1 <= len(swaps) - 1 <= 2, swaps
    assert all(round(2.9 * FS) <= at <= round(2.9 * FS) + BLOCK for at in swaps[:-1]), swaps
    assert live.player.swaps == swaps0 + len(swaps)
    assert a_db > 3.0 and b_db < -3.0  # scene A from the first frame played, B after the marker
    assert live.player.underflows == 0


def test_cli_preview_plays_the_stems_folder(device: int, tmp_path: Path) -> None:
    stems = write_kick_and_vocal(tmp_path / "stems", seconds=2.0)
    report = tmp_path / "r.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "gravity",
            "live",
            "--stems",
            str(stems),
            "--bpm",
            "120",
            "--listen",
            str(free_port()),
            "--target",
            f"adm:127.0.0.1:{free_port()}",
            "--preview",
            "--preview-device",
            str(device),
            "--soak",
            "0.05",
            "--no-status",
            "--report",
            str(report),
            "--planner",
            "planner",
        ],  # (no model planning in the background: a core for the preview)
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert r.returncode == 0, r.stderr
    pv = json.loads(report.read_text())["preview"]
    print(f"\ncli --preview over a 3 s soak: {pv}")
    assert pv["position_s"] > 0.5 and pv["underflows"] == 0


def test_cli_preview_without_stems_names_the_flag(tmp_path: Path) -> None:
    req = tmp_path / "request.json"
    req.write_text(json.dumps(REQUEST))
    r = subprocess.run(
        [sys.executable, "-m", "gravity", "live", "--request", str(req), "--listen", str(free_port()), "--preview"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1 and "--preview" in r.stderr and "--stems DIR" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_preview_module_imports_no_live_bridge() -> None:
    """bridge.preview follows a PreviewSource: importing it loads neither bridge.live (no import
    circle) nor the renderer's player (loaded when a preview starts).
    """
    code = (
        "import sys, bridge.preview; "
        "print(sorted(m for m in ('bridge.live', 'bridge.planning', 'renderer.player') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
