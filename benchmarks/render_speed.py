"""Renderer speed: realtime factors and ratios measured in one run (issue #3; not a timed test).

Run from the repository root::

    .venv/bin/python benchmarks/render_speed.py            # full (60 s of audio per case)
    .venv/bin/python benchmarks/render_speed.py --seconds 10
    .venv/bin/python benchmarks/render_speed.py --end-to-end   # case 4 (+ its engine figures)

Cases
-----
1. 16 moving objects (orbits, rises, approaches from gravity.motion patterns), 60 s at 48 kHz,
   offline-style (8192-sample blocks): direct sound only (the HRTF engine) and with the
   scene's room (early reflections + FDN reverb). Target >= 60x realtime.
2. 16 static objects vs ffmpeg ``sofalizer`` rendering 16 static virtual loudspeakers from a
   16-channel file, in the same run: throughput per source-second (both include reading the
   file; sofalizer runs at the SOFA file's 44.1 kHz so it does no resampling). Target >= 3x.
3. Streaming: 64 moving objects at 512-sample blocks: fraction of the block budget
   (512 / 48000 s) used, mean and worst block.
4. End to end, in the same run as case 1's engine figure: ``gravity render`` of case 1's
   scene from 16 PCM-24 stem files (read, render, loudness and true peak, write), as
   ``render_files`` reports it and as a whole process (interpreter start, imports, loading the
   compiled kernels) with the kernels compiled ahead of time (``python -m renderer.aot``, run
   first; the default after ``make install``) and, interleaved in the same run, with numba's
   JIT loading them from its cache (``GRAVITY_KERNELS=jit``: numba's import and set-up,
   ~0.3-0.7 s), with its ratio to the engine and the process's peak memory (the stems are
   24-bit WAV, as DAWs export them: :mod:`gravity.analysis.pcm24` decodes them); the process's
   fixed cost (process minus ``render_files``, whatever the length) and a whole process on a
   song-length render
   (``--song-seconds``, default 240 s, where that cost is paid once per file); then the first
   process with an empty kernel cache (numba compiles) and the next one. Target >= 40x end to
   end.

The machine's load average is printed: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

import hrtf  # noqa: E402
from gravity.motion import Motion, expand  # noqa: E402
from gravity.scene import Scene  # noqa: E402
from renderer import RenderConfig, Renderer, render_files  # noqa: E402
from renderer.parallel import default_threads  # noqa: E402

FS = 48000
PATTERNS = [
    ("orbit", {"direction": "ccw", "period_bars": 4}),
    ("orbit", {"direction": "cw", "period_bars": 8}),
    ("rise", {}),
    ("approach", {}),
    ("ping_pong", {"period_bars": 2}),
    ("fly_over", {}),
    ("pan", {}),
    ("recede", {}),
]


def scene(n_objects: int, seconds: float, moving: bool, *, room: bool = False) -> Scene:
    """Build n objects around the listener; moving ones follow gravity.motion patterns."""
    bars = max(1, round(seconds / 2.0))  # 120 bpm, 4/4: 2 s per bar
    objects = []
    for i in range(n_objects):
        az = -180.0 + 360.0 * (i + 0.5) / n_objects
        base = (az, 10.0 * (i % 3), 1.5 + (i % 4))
        o = {
            "id": f"o{i}",
            "class": "other",
            "az_deg": base[0],
            "el_deg": base[1],
            "dist_m": base[2],
            "width": 0.0,
            "gain_db": -12.0,
            "reverb_send": 0.15 if room else 0.0,
            "early_reflections": 0.25 if room else 0.0,
        }
        if moving:
            name, params = PATTERNS[i % len(PATTERNS)]
            o["motion"] = expand(Motion(name, params), base, section_bars=bars)
        objects.append(o)
    return Scene.from_dict(
        {
            "version": "1.0",
            "bed": {"layout": "binaural", "room_preset": "studio_large"},
            "timing": {"bpm": 120, "time_signature": "4/4", "section_bars": bars},
            "objects": objects,
        }
    )


def run_offline(sc: Scene, x: np.ndarray, cfg: RenderConfig, model: hrtf.HRTFModel, block: int) -> tuple[float, float]:
    """(wall, CPU) seconds to render x (objects, n) in blocks."""
    r = Renderer(sc, FS, cfg, model=model)
    t, c = time.perf_counter(), time.process_time()
    for s in range(0, x.shape[1], block):
        r.process(x[:, s : s + block])
    return time.perf_counter() - t, time.process_time() - c


def children_cpu() -> float:
    """CPU seconds (user + system) used by finished child processes so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


#: Runs a command and prints its wall time, CPU time, peak resident memory (KiB) and exit code.
#: A small launcher: a child forked from this (large) benchmark process would count its
#: parent's pages in its peak memory until it execs.
_LAUNCHER = (
    "import os, subprocess, sys, time; t = time.perf_counter(); "
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
    "_, st, ru = os.wait4(p.pid, 0); "
    "print(time.perf_counter() - t, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, os.waitstatus_to_exitcode(st))"
)


def cli_render(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """(wall s, CPU s, peak resident memory MiB) of one ``gravity render`` process with ``args``."""
    cmd = [sys.executable, "-m", "gravity", "render", *args, "--quiet"]
    r = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], env={**os.environ, **(env or {})},
                       capture_output=True, text=True, check=True)  # fmt: skip
    wall, cpu, rss_kib, code = r.stdout.split()
    if int(code):
        raise subprocess.CalledProcessError(int(code), cmd)
    return float(wall), float(cpu), float(rss_kib) / 1024.0


def end_to_end(x: np.ndarray, sc: Scene, seconds: float, engine_rt: float, engine: str, song: float = 0.0) -> None:
    """Case 4: ``gravity render`` from stem files, in process and as a process (see above)."""
    print(f"\n`gravity render`, 16 moving objects, {seconds:.0f} s, --block 8192, realtime factor "
          f"(target >= 40x end to end; median of 3)\n  {'':62s}    wall     CPU")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stems = [folder / f"{o.id}.wav" for o in sc.objects]
        for path, sig in zip(stems, x, strict=True):
            sf.write(path, sig, FS, subtype="PCM_24")
        scene_json = folder / "scene.json"
        scene_json.write_text(json.dumps(dict(sc.raw)))
        out = folder / "out.wav"
        runs = []
        for _ in range(3):
            c = time.process_time()
            rep = render_files(stems, scene_json, out, block=8192, progress=False)
            runs.append((rep.realtime_factor, seconds / (time.process_time() - c)))
        rt, rt_cpu = np.median(np.asarray(runs), axis=0)
        args = [*map(str, stems), "--scene", str(scene_json), "-o", str(out), "--block", "8192"]
        aot = subprocess.run([sys.executable, "-m", "renderer.aot"], capture_output=True, text=True, check=False)
        jit = {"GRAVITY_KERNELS": "jit"}
        cli_render(args)  # page cache and kernel cache as a user's second render has them
        cli_render(args, jit)
        procs = [(cli_render(args), cli_render(args, jit)) for _ in range(3)]  # interleaved: same noise
        wall_p, cpu_p, mem_p = np.median(np.asarray([a for a, _ in procs]), axis=0)
        wall_j, cpu_j, _ = np.median(np.asarray([j for _, j in procs]), axis=0)
        print(f"  {'engine only (' + engine + ')':62s} {engine_rt:7.1f}x")
        print(f"  {'render_files: read, render, loudness + true peak, write':62s} "
              f"{rt:7.1f}x {rt_cpu:7.1f}x")  # fmt: skip
        how = "ahead-of-time kernels" if aot.returncode == 0 else "NO ahead-of-time kernels: " + aot.stderr.strip()[:60]
        print(f"  {'whole process: + interpreter, imports, ' + how:62s} "
              f"{seconds / wall_p:7.1f}x {seconds / cpu_p:7.1f}x")  # fmt: skip
        print(f"  {'whole process, kernels from numba JIT cache (GRAVITY_KERNELS=jit)':62s} "
              f"{seconds / wall_j:7.1f}x {seconds / cpu_j:7.1f}x")  # fmt: skip
        print(
            f"  {'ratio render_files / engine, process / engine (wall)':62s} "
            f"{rt / engine_rt:7.2f}x {seconds / wall_p / engine_rt:7.2f}x"
        )
        print(f"  {'whole process: peak resident memory (MiB)':62s} {mem_p:7.0f}")
        print(f"  {'whole process: fixed cost (process - render_files, s)':62s} {wall_p - seconds / rt:7.2f}s")
        if song:  # the fixed cost is paid once per file: a song-length render shows the rate a user sees
            song_x = np.tile(x, (1, int(np.ceil(song / seconds))))[:, : int(song * FS)]
            song_sc = scene(len(song_x), song, True)
            (folder / "song").mkdir()
            song_stems = [folder / "song" / f"{o.id}.wav" for o in song_sc.objects]  # named as the scene's stems
            for path, sig in zip(song_stems, song_x, strict=True):
                sf.write(path, sig, FS, subtype="PCM_24")
            song_json = folder / "song.json"
            song_json.write_text(json.dumps(dict(song_sc.raw)))
            song_args = [*map(str, song_stems), "--scene", str(song_json), "-o", str(out), "--block", "8192"]
            wall_s, cpu_s, _ = np.median(np.asarray([cli_render(song_args) for _ in range(3)]), axis=0)
            print(f"  {f'whole process, a {song / 60:.0f}-minute song ({song:.0f} s)':62s} "
                  f"{song / wall_s:7.1f}x {song / cpu_s:7.1f}x")  # fmt: skip
        fresh = {"NUMBA_CACHE_DIR": str(folder / "numba")}  # a new install: nothing compiled, no AOT module
        first, second = cli_render(args, fresh)[0], cli_render(args, fresh)[0]
        print(f"  {'process, empty kernel cache: first (compiles) / second (s)':62s} "
              f"{first:7.1f}s {second:7.1f}s")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run every case and print the table; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="audio length per case (default 60)")
    ap.add_argument(
        "--end-to-end", action="store_true",
        help="only case 4 and the two engine figures it is compared with",
    )  # fmt: skip
    ap.add_argument("--song-seconds", type=float, default=240.0,
                    help="length of case 4's song-length process run (0 = skip; default 240)")  # fmt: skip
    args = ap.parse_args(argv)
    T = args.seconds
    n = int(T * FS)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {T:.0f} s of audio per case")
    model = hrtf.load_model(rate=FS)
    rng = np.random.default_rng(0)
    x16 = (0.05 * rng.standard_normal((16, n))).astype(np.float32)
    direct = RenderConfig(reverb=False, early_reflections=False, threads=1)
    cores = f"{default_threads()} threads"

    # 1. 16 moving objects.
    rows = []
    t_room = min(T, 20.0)  # the full room is slow: shorter
    n_room = int(t_room * FS)
    for label, cfg, room, block, secs in (
        ("direct, 8192 blocks, 1 thread", direct, False, 8192, T),
        (f"direct, 8192 blocks, {cores}", direct.replace(threads=0), False, 8192, T),
        ("direct, 512 blocks, 1 thread", direct, False, 512, T),
        ("direct, hop 128 (-73 dB sweep), 1 thread", direct.replace(hop=128), False, 8192, T),
        ("direct, hop 512 (-48 dB sweep), 1 thread", direct.replace(hop=512), False, 8192, T),
        (f"room: reflections + reverb ({t_room:.0f} s), 1 thread",
         RenderConfig(threads=1), True, 8192, t_room),
        (f"room: reflections + reverb ({t_room:.0f} s), {cores}",
         RenderConfig(), True, 8192, t_room),
    ):  # fmt: skip
        if args.end_to_end and len(rows) == 2:
            break
        xs = x16 if secs == T else x16[:, :n_room]
        wall, cpu = run_offline(scene(16, T, True, room=room), xs, cfg, model, block)
        rows.append((label, secs / wall, secs / cpu))
    print("\n16 moving objects, realtime factor (target >= 60x)          wall     CPU")
    for label, rt, rc in rows:
        print(f"  {label:48s} {rt:7.1f}x {rc:7.1f}x")
    # 4. End to end, here so that its ratio is to the engine figure of this very run.
    end_to_end(x16, scene(16, T, True), T, rows[1][1], rows[1][0], args.song_seconds)
    if args.end_to_end:
        return 0

    # 2. 16 static objects vs ffmpeg sofalizer, per source-second, same run.
    print("\n16 static sources vs ffmpeg sofalizer (target >= 3x its throughput)")
    ffmpeg = shutil.which("ffmpeg")
    with tempfile.TemporaryDirectory() as tmp:
        ours_wav, ff_wav = Path(tmp) / "in48.wav", Path(tmp) / "in441.wav"
        sf.write(ours_wav, x16.T, FS, subtype="FLOAT")
        n441 = int(T * 44100)
        sf.write(
            ff_wav,
            (0.05 * rng.standard_normal((n441, 16))).astype(np.float32),
            44100,
            subtype="FLOAT",
        )
        dirs = [(float(-180.0 + 360.0 * (i + 0.5) / 16), float(10.0 * (i % 3))) for i in range(16)]
        sc = scene(16, T, False)
        speakers = "|".join(f"{k} {az:.1f} {el:.1f}" for k, (az, el) in enumerate(dirs))
        cmd = [
            ffmpeg or "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(ff_wav),
            "-af",
            f"sofalizer=sofa={hrtf.default_sofa_path()}:type=freq:speakers={speakers}",
            "-f",
            "null",
            "-",
        ]

        def ours(cfg: RenderConfig) -> tuple[float, float]:
            r = Renderer(sc, FS, cfg, model=model)
            t, c = time.perf_counter(), time.process_time()
            with sf.SoundFile(str(ours_wav)) as f:  # streamed from the file, as ffmpeg does
                for blk in f.blocks(8192, dtype="float32", always_2d=True):
                    r.process(blk.T)
            return time.perf_counter() - t, time.process_time() - c

        res = []
        # sofalizer does no equalisation: "same work" is the plain HRTF convolution.
        same = direct.replace(hrtf_eq="none")
        for _ in range(3):  # interleaved repeats: the machine is shared, take medians
            t1, c1 = ours(direct)
            tn, cn = ours(same)
            t_ff = c_ff = float("nan")
            if ffmpeg:
                t, c = time.perf_counter(), children_cpu()
                subprocess.run(cmd, check=True)
                t_ff, c_ff = time.perf_counter() - t, children_cpu() - c
            res.append((t1, c1, tn, cn, t_ff, c_ff))
        med = np.median(np.asarray(res), axis=0)
        print("  16 sources, realtime factor (median of 3)        wall     CPU")
        print(f"  {'ours (read + render, 8192 blocks, 1 thread)':44s} {T / med[0]:7.1f}x {T / med[1]:7.1f}x")
        print(f"  {'ours, same work (no diffuse-field EQ), 1 thread':44s} "
              f"{T / med[2]:7.1f}x {T / med[3]:7.1f}x")  # fmt: skip
        if ffmpeg:
            print(f"  {'ffmpeg sofalizer (read + render, 2 threads)':44s} {T / med[4]:7.1f}x {T / med[5]:7.1f}x")
            rr = np.asarray(res)
            print(
                f"  {'ratio ours (1 thread) / sofalizer, median':44s} "
                f"{np.median(rr[:, 4] / rr[:, 0]):7.2f}x {np.median(rr[:, 5] / rr[:, 1]):7.2f}x"
            )
            print(
                f"  {'ratio ours, same work / sofalizer, median':44s} "
                f"{np.median(rr[:, 4] / rr[:, 2]):7.2f}x {np.median(rr[:, 5] / rr[:, 3]):7.2f}x"
            )
        else:
            print("  ffmpeg not installed: no comparison")  # fmt: skip

    # 3. Streaming: 64 moving objects at 512-sample blocks.
    print("\nstreaming, 64 moving objects, 512-sample blocks (budget 10.67 ms per block)")
    x64 = (0.05 * rng.standard_normal((64, min(n, 10 * FS)))).astype(np.float32)
    for label, cfg, room in (
        ("direct", direct, False),
        ("direct + reverb", RenderConfig(early_reflections=False, threads=1), True),
        ("direct + reflections + reverb", RenderConfig(threads=1), True),
    ):
        r = Renderer(scene(64, T, True, room=room), FS, cfg, model=model)
        times, cpus = [], []
        for s in range(0, x64.shape[1], 512):
            t, c = time.perf_counter(), time.process_time()
            r.process(x64[:, s : s + 512])
            times.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        budget = 512 / FS
        tt, cc = np.asarray(times[10:]), np.asarray(cpus[10:])
        print(
            f"  {label:30s} wall mean {100 * tt.mean() / budget:5.1f}% "
            f"p99 {100 * np.percentile(tt, 99) / budget:5.1f}%"
            f" | CPU mean {100 * cc.mean() / budget:5.1f}% of the budget ({r.n_voices} voices)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
