"""Peak memory of ``gravity render`` and ``gravity analyze`` on long stems (issue 18; not a test).

Run from the repository root::

    .venv/bin/python benchmarks/memory_bounds.py                    # 16 stems x 10 min, 48 kHz
    .venv/bin/python benchmarks/memory_bounds.py --minutes 1        # quick look
    .venv/bin/python benchmarks/memory_bounds.py --stem-rate 44100  # stems resampled to 48 kHz

What it does
------------
Writes ``--stems`` mono PCM-24 stems of ``--minutes`` each at ``--stem-rate`` into a temp folder
(16 x 10 min at 48 kHz is 1.38 GB; the free space is checked first), a scene placing one object
per stem (binaural, the default room), then runs as separate processes, each measured alone
(``os.wait4`` gives one child's ``ru_maxrss``):

1. ``gravity render DIR --scene S -o OUT``: stems at the render rate are streamed a chunk at a
   time; the whole output is held (10 min of stereo float32: 230 MB) for loudness and limiting;
2. ``gravity analyze DIR``: stems are read whole, one at a time (float64);
3. ``gravity render DIR -o OUT`` without a scene: the analysis, then planning, then the render,
   in one process.

It prints the budget, each peak, the stems' total decoded size (float32) for scale, the wall
time and the machine's load average (a shared machine is noisy in time, not in memory), and
exits 1 when a peak exceeds the budget or a command fails.

Measured (this 2-core machine, load 4-6 from other work; peak RSS, budget 2 GB)
------------------------------------------------------------------------------
16 stems x 10 min, PCM-24, 1.38 GB on disk (1.84 GB as float32 at 48 kHz):

=========================  ==============  =====================  =====================
command                    before (48 kHz)  after (48 kHz stems)   after (44.1 kHz stems)
=========================  ==============  =====================  =====================
render --scene             3.07 GB          0.79 GB                0.77 GB
analyze                    1.62 GB          1.63 GB                1.60 GB
render (analyse + plan)    3.11 GB          1.72 GB                (not run)
=========================  ==============  =====================  =====================

Before, the safety limiter held a dozen float64 arrays as long as the mix (about 2.5 GB for
10 min); it now works a chunk at a time with one gain curve (bit-identical output), and stems
at another rate are resampled block by block instead of held whole (16 x 115 MB at 44.1 kHz).
What remains of a render: the mix itself (230 MB), the gain curve when the limiter acts
(230 MB), the true-peak kernel's copy of one channel (115 MB) and the libraries (~250 MB).
``analyze`` reads each stem whole as float64 (230 MB for 10 min) with a few same-sized
temporaries, one stem at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
CHUNK_S = 10  # seconds of a stem generated and written at a time


def write_stems(folder: Path, n: int, minutes: float, rate: int) -> list[Path]:
    """``n`` mono PCM-24 stems, each a different kind of material (kick, bass, hats, pad ...)."""
    rng = np.random.default_rng(0)
    paths = []
    for k in range(n):
        p = folder / f"stem{k:02d}.wav"
        with sf.SoundFile(p, "w", rate, 1, "PCM_24") as f:
            total = int(minutes * 60 * rate)
            for s in range(0, total, CHUNK_S * rate):
                t = (s + np.arange(min(CHUNK_S * rate, total - s))) / rate
                kind = k % 4
                if kind == 0:  # a decaying low thump twice a second
                    x = 0.7 * np.sin(2 * np.pi * 55 * t) * np.exp(-(t % 0.5) * 18)
                elif kind == 1:  # a bass line
                    x = 0.4 * np.sin(2 * np.pi * (41 + 20 * (np.floor(t) % 4)) * t)
                elif kind == 2:  # noise bursts (hats)
                    x = 0.2 * rng.standard_normal(len(t)) * np.exp(-(t % 0.25) * 60)
                else:  # a pad: three partials, slow swell
                    f0 = 110 * (1 + k % 3)
                    x = 0.15 * (1.2 + np.sin(0.3 * t)) * sum(np.sin(2 * np.pi * f0 * m * t) / m for m in (1, 2, 3))
                f.write(x.astype(np.float32))
        paths.append(p)
    return paths


def write_scene(path: Path, ids: list[str], minutes: float) -> None:
    """One static object per stem, spread around the listener, default room."""
    objs = []
    for i, sid in enumerate(ids):
        az = -150.0 + 300.0 * i / max(1, len(ids) - 1)
        objs.append(
            {
                "id": sid,
                "class": "other",
                "az_deg": round(az, 1),
                "el_deg": 0.0,
                "dist_m": 2.0,
                "width": 0.2,
                "gain_db": -6.0,
                "reverb_send": 0.2,
                "early_reflections": 0.3,
            }
        )
    bars = max(1, round(minutes * 60 * 120 / 60 / 4))
    doc = {
        "version": "1.0",
        "bed": {"layout": "binaural", "room_preset": "studio_small"},
        "timing": {"bpm": 120.0, "time_signature": "4/4", "section_bars": min(bars, 512)},
        "objects": objs,
    }
    path.write_text(json.dumps(doc))


def peak_rss(cmd: list[str]) -> tuple[int, float, int, str]:
    """Run ``cmd``; its exit code, wall seconds, peak RSS in bytes (this child alone) and stderr's tail."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()[-1:]
    return proc.returncode, time.perf_counter() - t0, usage.ru_maxrss * 1024, " ".join(tail)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stems", type=int, default=16)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--stem-rate", type=int, default=48000, help="Hz of the stem files (the render is at 48 kHz)")
    ap.add_argument("--budget-gb", type=float, default=2.0, help="peak RSS allowed per command, GB (1e9 bytes)")
    ap.add_argument("--dir", type=Path, help="work folder (default: a temp folder, removed afterwards)")
    ap.add_argument("--skip-planned", action="store_true", help="leave out case 3 (analysis + render)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gravity-mem-", dir=args.dir))
    need = int(args.stems * args.minutes * 60 * args.stem_rate * 3 * 1.25)  # PCM-24 stems + outputs
    free = shutil.disk_usage(work).free
    print(f"work folder {work}: {free / 1e9:.1f} GB free, {need / 1e9:.2f} GB needed")
    if free < need:
        print("not enough free disk space", file=sys.stderr)
        return 2
    try:
        stems_dir = work / "stems"
        stems_dir.mkdir()
        t0 = time.perf_counter()
        paths = write_stems(stems_dir, args.stems, args.minutes, args.stem_rate)
        on_disk = sum(p.stat().st_size for p in paths)
        decoded = args.stems * args.minutes * 60 * 48000 * 4
        print(
            f"wrote {args.stems} stems x {args.minutes:g} min at {args.stem_rate} Hz PCM-24: "
            f"{on_disk / 1e9:.2f} GB on disk, {decoded / 1e9:.2f} GB as float32 at 48 kHz "
            f"({time.perf_counter() - t0:.0f} s)"
        )
        scene = work / "scene.json"
        write_scene(scene, [p.stem for p in paths], args.minutes)
        gravity = [sys.executable, "-m", "gravity"]
        cases = [
            (
                "render --scene",
                [*gravity, "render", str(stems_dir), "--scene", str(scene), "-o", str(work / "out.wav"), "--quiet"],
            ),
            ("analyze", [*gravity, "analyze", str(stems_dir), "-o", str(work / "request.json")]),
        ]
        if not args.skip_planned:
            cases.append(
                (
                    "render (analyse + plan)",
                    [
                        *gravity,
                        "render",
                        str(stems_dir),
                        "-o",
                        str(work / "planned.wav"),
                        "--quiet",
                        "--planner",
                        "planner",
                    ],
                )
            )
        budget = args.budget_gb * 1e9
        print(f"budget: {budget / 1e9:.2f} GB peak RSS per command; load average {os.getloadavg()}")
        worst, failed = 0.0, 0
        for name, cmd in cases:
            rc, wall, rss, tail = peak_rss(cmd)
            worst, failed = max(worst, rss), failed + (rc != 0)
            verdict = "ok" if rss <= budget and rc == 0 else "OVER BUDGET" if rss > budget else f"FAILED rc={rc}"
            print(
                f"{name:24s} peak RSS {rss / 1e9:5.2f} GB  wall {wall:6.1f} s  load {os.getloadavg()[0]:.2f}  "
                f"{verdict}" + (f"  ({tail})" if rc else "")
            )
        print(f"worst peak {worst / 1e9:.2f} GB of {budget / 1e9:.2f} GB")
        return 0 if worst <= budget and not failed else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
