"""``make demo`` as a listener meets it: the example song's verse through ``gravity render`` with
the runtime's defaults (the shipped model, ``--candidates 2``, the critic choosing), judged by
what an immersive-music engineer expects of a verse (issue 17, acceptance 3).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gravity.critic import CROWDED_DEG, critique
from gravity.motion import keyframes_array
from gravity.request import Request

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.llm
def test_make_demo_verse_keeps_same_band_stems_apart_and_the_lead_and_low_end_centred(example_song, tmp_path):
    out = tmp_path / "demo.wav"
    # make demo's command (Makefile: gravity render $(OUT)/stems -o $(OUT)/demo.wav), verse by default
    r = subprocess.run(
        [sys.executable, "-m", "gravity", "render", str(example_song), "-o", str(out), "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    card_line = next(line for line in r.stderr.splitlines() if line.startswith("scene by "))
    assert "stacked" in card_line and "crowded" in card_line, card_line  # the card, printed
    scene = json.loads(out.with_suffix(".scene.json").read_text())
    analysed = json.loads(subprocess.run(
        [sys.executable, "-m", "gravity", "analyze", str(example_song), "--section", "verse"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=True,
    ).stdout)  # fmt: skip
    request = Request.from_dict(analysed)
    card = critique(request, scene)
    print(f"\n{card_line}\n{card.summary()}")
    assert card.crowded_pairs == 0, f"same-band stems within {CROWDED_DEG:g} deg: {card.pair_issues}"
    assert card.anchors_ok, card.anchor_issues
    by_stem = {s: o for o in scene["objects"] for s in (o.get("stems") or [o["id"]])}
    for stem, tol in (("vox", 12.0), ("kick", 5.0), ("bass", 5.0)):
        kf = keyframes_array(by_stem[stem]["motion"])  # (K, 4): t, az, el, dist
        assert np.all(np.abs(kf[:, 1]) <= tol) and np.all(np.abs(kf[:, 2]) <= 20.0), (stem, kf[:, 1:3])
