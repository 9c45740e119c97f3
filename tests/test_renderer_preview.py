"""Realtime preview through a real PortAudio device (issue 4, acceptance point 4).

A JACK server with the dummy backend (Debian's ``jackd2``) is started once for the session
(``device`` in ``tests/conftest.py``); the player plays through PortAudio's "JACK Audio
Connection Kit" host API, so the audio callback runs in real time on JACK's clock (nothing is
heard). Where ``jackd`` is not installed the tests use any real PortAudio output device, and
skip (saying why) when there is none. The audio device is never mocked. ``material`` (16
orbiting stems and their offline render) is made once for the session too.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soundfile as sf

from helpers import orbit_scene_doc, write_scene_atomic
from renderer.offline import render_files
from renderer.player import Player
from waiting import wait_for

FS = 48000
BLOCK = 512
SECONDS = 4.0


def _play(player: Player, timeout_s: float) -> None:
    player.open()
    try:
        player.play()
        assert player.wait(timeout_s), f"playback did not finish: {player.stats().line()}"
    finally:
        player.close()


def test_preview_equals_offline_render_with_no_underflow(device: int, material: dict) -> None:
    y = material["offline"]
    player = Player(
        material["stems"],
        material["scene"],
        device=device,
        block=BLOCK,
        rate=FS,
        watch_interval_s=0,
        capture_s=len(y) / FS + 1.0,
    )
    assert player.end == len(y)
    _play(player, timeout_s=len(y) / FS + 10.0)
    st = player.stats()
    print(f"\n16 orbiting objects, {BLOCK}-sample blocks: {st.line()}, frames {st.frames_delivered}")
    assert player.underflows == 0
    n = len(y)
    assert player.n_captured >= n
    got = player.captured[:n]
    np.testing.assert_array_equal(player.captured_pos[:n], np.arange(n))
    assert np.array_equal(got, y), f"max |diff| {np.max(np.abs(got - y))}"
    assert not np.any(player.captured[n : player.n_captured])  # silence after the end


def test_scene_rewrite_crossfades_without_click(device: int, material: dict, tmp_path: Path) -> None:
    scene = tmp_path / "scene.json"
    write_scene_atomic(scene, orbit_scene_doc())
    player = Player(
        material["stems"],
        scene,
        device=device,
        block=BLOCK,
        rate=FS,
        end_s=SECONDS,
        watch_interval_s=0.05,
        capture_s=SECONDS + 1.0,
    )
    player.open()
    try:
        player.play()
        time.sleep(0.2)
        write_scene_atomic(scene, orbit_scene_doc(az_shift=60.0))
        assert player.wait(10.0)
    finally:
        player.close()
    assert player.swaps == 1, player.transitions
    assert player.underflows == 0
    ((w, kind, _),) = player.transitions
    assert kind == "swap"
    got = player.captured[: player.n_captured]
    jump = np.max(np.abs(np.diff(got, axis=0)), axis=1)
    near = slice(w - BLOCK, w + player.fade + BLOCK)
    steady = np.concatenate(
        [jump[FS // 4 : w - 2 * BLOCK], jump[w + player.fade + 2 * BLOCK : int((SECONDS - 0.1) * FS)]]
    )
    bound = 1.2 * float(np.max(steady))
    print(f"\nswap at frame {w}: max jump near {np.max(jump[near]):.4f}, steady max {np.max(steady):.4f}")
    assert np.max(jump[near]) < bound
    # the bound does catch a click: a hard cut from the old to the new scene anywhere near the
    # swap frame would exceed it
    new = tmp_path / "new.wav"
    write_scene_atomic(tmp_path / "new.json", orbit_scene_doc(az_shift=60.0))
    render_files(
        material["stems"],
        tmp_path / "new.json",
        new,
        rate=FS,
        block=8192,
        progress=False,
        subtype="FLOAT",
        limit_peaks=False,
    )
    y_new, _ = sf.read(new, dtype="float32", always_2d=True)
    y_old = material["offline"]
    k = np.arange(w - BLOCK, w + BLOCK)
    cut = np.max(np.abs(y_new[k] - y_old[k - 1]))
    print(f"hard cut would jump by up to {cut:.4f} (bound {bound:.4f})")
    assert cut > bound
    # after the fade the new scene plays: it differs from the old scene's offline render
    after = slice(w + player.fade + BLOCK, w + player.fade + 4 * BLOCK)
    pos = player.captured_pos[after]
    assert np.all(np.diff(pos) == 1)
    assert not np.allclose(got[after], material["offline"][pos], atol=1e-3)


def test_seek_lands_where_asked(device: int, material: dict) -> None:
    y = material["offline"]
    player = Player(
        material["stems"],
        material["scene"],
        device=device,
        block=BLOCK,
        rate=FS,
        watch_interval_s=0,
        capture_s=len(y) / FS + 1.0,
    )
    player.open()
    try:
        player.play()
        time.sleep(0.5)
        player.seek(2.0)
        assert player.wait(10.0)
    finally:
        player.close()
    assert player.underflows == 0
    ((w, kind, target),) = player.transitions
    assert kind == "seek" and target == 2 * FS
    pos = player.captured_pos[: player.n_captured]
    k = int(np.flatnonzero(pos == target)[0])
    assert k == w  # the first frame of the new place is the first frame of the crossfade
    assert np.all(pos[k : k + FS // 2] == np.arange(target, target + FS // 2))
    # after the crossfade the frames are the offline render at that place (tails of the
    # material before the pre-roll are missing, so equal to a small tolerance, not exactly)
    s = slice(k + player.fade, k + FS // 2)
    got, ref = player.captured[s], y[pos[s]]
    err = np.sqrt(np.mean((got - ref) ** 2)) / np.sqrt(np.mean(ref**2))
    print(f"\nseek to 2.0 s: first frame {k}, relative rms error after the fade {err:.2e}")
    assert err < 0.05


def test_loop_jumps_back_crossfaded(device: int, material: dict) -> None:
    player = Player(
        material["stems"],
        material["scene"],
        device=device,
        block=BLOCK,
        rate=FS,
        watch_interval_s=0,
        loop=(0.5, 2.0),
        capture_s=4.5,
    )
    player.open()
    try:
        player.play()
        # two wraps (0 -> 2 s, 0.5 -> 2 s: 3.5 s of playing); 1.5 s loops give the preparer time on
        # a busy machine
        wait_for(lambda: sum(t[1] == "loop" for t in list(player.transitions)) >= 2, 10.0, "two wraps")
    finally:
        player.close()
    assert player.underflows == 0
    loops = [t for t in player.transitions if t[1] == "loop"]
    assert len(loops) >= 2 and all(t[2] == FS // 2 for t in loops)
    pos = player.captured_pos[: player.n_captured]
    assert pos.max() < 2 * FS  # never past the loop end
    k = loops[0][0]
    assert pos[k - 1] == 2 * FS - 1 and pos[k] == FS // 2
