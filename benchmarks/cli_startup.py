"""How long the ``gravity`` command takes to start and do light work (issue 15: "light doors").

Each command runs as a fresh process, as a user types it; the baseline is ``python -c pass``
in the same run (this machine is noisy: compare the ratios, and the absolute seconds only
against the targets). Targets: ``--version``, ``--help``, ``validate``, ``plot --help``,
``critique --help`` and ``plot`` (reads and checks the scene, lays out the page, draws it with
Pillow and writes a 1600 x 900 PNG) < 0.3 s wall; ``scene --planner planner`` and ``critique``
< 0.5 s wall; ``scene`` with the default model (8 stems: start, load, the default candidates,
the critic) < 3 s wall (issue 17). The machine's load is printed first.

Run: ``python benchmarks/cli_startup.py [--repeats 7]``. Prints median wall seconds per
command, its ratio to the baseline and whether it meets its target; ``-X importtime`` of
``gravity validate`` is written next to it with ``--importtime FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scene_planner import request_doc  # noqa: E402 - the benchmarks' 8-stem request (a sibling script)

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def wall(cmd: list[str], repeats: int) -> float:
    """Median wall time in seconds of ``cmd`` over ``repeats`` runs (one warm-up run first)."""
    times = []
    for n in range(repeats + 1):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.decode(errors='replace')[-400:]}")
        if n:  # the first run warms the page cache and __pycache__
            times.append(dt)
    return statistics.median(times)


def moving_scene(n: int = 16) -> dict:
    """A busy page: ``n`` objects around the listener, every one moving (orbits, pans, rises...)."""
    from gravity.motion import Motion, expand

    patterns = [("orbit", {"period_bars": 4}), ("pan", {}), ("rise", {}), ("fly_over", {}), ("approach", {})]
    objects = []
    for i in range(n):
        base = (-180.0 + 360.0 * (i + 0.5) / n, 10.0 * (i % 3), 1.5 + (i % 4))
        name, params = patterns[i % len(patterns)]
        objects.append(
            {
                "id": f"stem_{i:02d}",
                "class": ["pad", "arp", "guitar", "fx"][i % 4],
                "az_deg": base[0],
                "el_deg": base[1],
                "dist_m": base[2],
                "width": (i % 5) / 4,
                "gain_db": -12.0,
                "reverb_send": 0.2,
                "early_reflections": 0.2,
                "motion": expand(Motion(name, params), base, 8),
            }
        )
    return {
        "version": "1.0",
        "bed": {"layout": "binaural", "room_preset": "studio_large"},
        "timing": {"bpm": 120, "time_signature": "4/4", "section_bars": 8},
        "objects": objects,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--importtime", metavar="FILE", help="write `-X importtime` of gravity validate here")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="gravity-cli-bench-"))
    try:
        request = ROOT / "examples" / "sample_input.json"
        scene = tmp / "scene.json"
        eight = tmp / "eight.json"
        eight.write_text(json.dumps(request_doc(8)))
        busy = tmp / "busy.json"
        busy.write_text(json.dumps(moving_scene(16)))
        gravity = [PY, "-m", "gravity"]
        load1, load5, _ = os.getloadavg()
        print(f"machine load {load1:.2f} (1 min) {load5:.2f} (5 min), {os.cpu_count()} cores")
        subprocess.run(
            [*gravity, "scene", str(request), "--planner", "planner", "-o", str(scene)],
            check=True,
            stderr=subprocess.DEVNULL,
        )
        cases = [  # (label, argv, target seconds or None)
            ("python -c pass (baseline)", [PY, "-c", "pass"], None),
            ("gravity --version", [*gravity, "--version"], 0.3),
            ("gravity --help", [*gravity, "--help"], 0.3),
            ("gravity validate request", [*gravity, "validate", str(request)], 0.3),
            ("gravity validate scene", [*gravity, "validate", str(scene)], 0.3),
            ("gravity plot --help", [*gravity, "plot", "--help"], 0.3),
            ("gravity critique --help", [*gravity, "critique", "--help"], 0.3),
            ("gravity critique", [*gravity, "critique", str(scene), "--request", str(request)], 0.5),
            (
                "gravity scene --planner planner",
                [*gravity, "scene", str(request), "--planner", "planner", "-o", str(tmp / "s2.json")],
                0.5,
            ),
            ("gravity plot (draws a PNG)", [*gravity, "plot", str(scene), "-o", str(tmp / "p.png")], 0.3),
            ("gravity plot (16 moving objects)", [*gravity, "plot", str(busy), "-o", str(tmp / "b.png")], 0.3),
            (  # issue 17: startup + model load + K candidates + critic, 8 stems, the default model
                "gravity scene (default model, 8 stems)",
                [*gravity, "scene", str(eight), "-o", str(tmp / "s8.json")],
                3.0,
            ),
        ]
        base = None
        rows = []
        for label, cmd, target in cases:
            t = wall(cmd, args.repeats)
            base = base or t
            ok = "" if target is None else ("ok" if t < target else f"MISSES {target:.1f} s")
            rows.append({"command": label, "median_s": round(t, 4), "ratio": round(t / base, 2), "target_s": target})
            print(f"{label:34s} {t * 1e3:7.0f} ms  {t / base:5.1f}x baseline  {ok}")
        if args.importtime:
            r = subprocess.run(
                [PY, "-X", "importtime", "-m", "gravity", "validate", str(request)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                check=True,
            )
            Path(args.importtime).write_bytes(r.stderr)
        print(json.dumps({"python": sys.version.split()[0], "repeats": args.repeats, "rows": rows}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
