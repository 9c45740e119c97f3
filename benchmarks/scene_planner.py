"""How long the deterministic planner + rule engine take per scene (issue #2: "well under a second").

Prints median / p95 wall time per scene for 2 (the seed example), 8, 16 and 32 stems, and the
ratio against a baseline measured in the same run: parsing + schema-validating the same
request (the unavoidable cost of reading it). Run: ``python benchmarks/scene_planner.py``.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from gravity.pipeline import make_scene
from gravity.request import Request
from gravity.vocab import STEM_CLASSES

ROOT = Path(__file__).resolve().parent.parent
CLASSES = [
    "lead_vocal",
    "backing_vocal",
    "kick",
    "snare",
    "hihat",
    "percussion",
    "bass",
    "pad",
    "keys",
    "guitar",
    "strings",
    "arp",
    "fx",
    "ambience",
    "synth",
    "brass",
]


def request_doc(n: int) -> dict:
    if n == 2:
        return json.loads((ROOT / "examples/sample_input.json").read_text())
    stems = [
        {
            "id": f"s{i}",
            "class": CLASSES[i % len(CLASSES)] if i < 2 * len(CLASSES) else STEM_CLASSES[i % len(STEM_CLASSES)],
        }
        for i in range(n)
    ]
    return {
        "target_format": "7.1.4",
        "max_objects": max(4, n // 2),
        "style": "club",
        "section": "drop",
        "global": {"bpm": 126, "energy": 0.9, "section_bars": 16},
        "stems": stems,
        "rules": [
            {"type": "anchor", "track_id": "s0", "az_deg": 0, "el_deg": 10, "dist_m": 1.6},
            {"type": "mono_low_end", "hz_below": 120},
            {"type": "avoid_masking", "min_sep_deg": 20},
            {"type": "zone", "track_class": "fx", "mode": "outside", "region": "front"},
            {"type": "motion", "track_class": "arp", "max_deg_per_s": 90},
        ],
    }


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    print(f"{'stems':>5} {'objects':>7} {'median ms':>10} {'p95 ms':>8} {'baseline ms':>12} {'ratio':>7}")
    for n in (2, 8, 16, 32):
        doc = request_doc(n)
        text = json.dumps(doc)
        req = Request.from_dict(doc)
        make_scene(req)  # warm caches (schema validators, grid)
        base = timed(lambda text=text: Request.from_dict(json.loads(text)), 50)
        runs = timed(lambda req=req: make_scene(req, seed=1), 20)
        objs = len(make_scene(req).scene["objects"])
        p95 = sorted(runs)[int(0.95 * (len(runs) - 1))]
        print(
            f"{n:>5} {objs:>7} {statistics.median(runs) * 1e3:>10.1f} {p95 * 1e3:>8.1f} "
            f"{statistics.median(base) * 1e3:>12.2f} {statistics.median(runs) / statistics.median(base):>7.0f}x"
        )


if __name__ == "__main__":
    main()
