"""Teach the model a producer's taste from <= 50 of their edits (issue 20, acceptance 3).

A simulated producer (:func:`training.taste.producer`: drums but the kick around the listener,
backing vocals and choirs above) edits the shipped model's proposals; the edits go through the
same path a real producer's take:

1. requests drawn with a seed from the training-data generator (:func:`training.data.make_example`,
   no text: the taste is where the request says nothing), height layouts only, about half of them
   with backing vocals or a choir (the rest have drums but no backing vocals);
2. the shipped model alone (greedy, rules enforced) proposes; the producer edits; every edit that
   changed something is logged with :func:`bridge.ui.record.edit_row` into ``edits-NNNNNN.jsonl``
   (``OUT/edits``: ``--edits`` rows; ``OUT/heldout-edits``: ``--heldout`` rows of a disjoint seed);
3. ``gravity data OUT/data --from-edits OUT/edits`` -> SFT rows and preference pairs;
4. ``gravity train --method dpo`` from ``training/adapter`` (``--config``, default
   ``training/configs/smollm2_cpu_taste.json``; ``--set`` overrides; ``--method sft`` trains on
   the edited scenes as SFT targets instead, for comparison) in a child process;
5. ``gravity convert OUT/dpo/<checkpoint> OUT/tuned.lora.gguf --lora-only``;
6. ``gravity eval --edits OUT/heldout-edits --edits-split all`` for the untuned and the tuned
   adapter: the angle to the producer's placement on the held-out requests, for the stems the
   taste concerns and for all other stems (drift), rules pass rate and critic score.

Each step is skipped when its output is there (delete it, or use a new ``--out``, to redo it);
the training step resumes from ``OUT/dpo/last``. Prints a Markdown table, writes
``OUT/report.json``.

Run: ``python benchmarks/taste.py [--out runs/taste] [--edits 48] [--heldout 36] [--set lr=2e-4 ...]``
(about 30 min on 2 CPU cores, most of it the DPO run).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bridge.ui.record import EditLog, edit_row
from gravity.request import Request
from training.data import DataConfig, make_example
from training.evaluate import EvalConfig, final_scene, load_llm
from training.taste import ABOVE_CLASSES, DRUM_PLACES, evaluate_edits, markdown_edits, moved_stems, producer

log = logging.getLogger("taste")

ROOT = Path(__file__).resolve().parents[1]
# no text at all: the producer's taste is about what the request leaves open
NO_TEXT = DataConfig(p_hint=0.0, p_prompt=0.0, p_scene=0.0, p_compose=0.0, min_stems=3, max_stems=10)


def _taste(cls: str) -> bool:
    return cls in DRUM_PLACES or cls in ABOVE_CLASSES


def requests(seed: int, pool: str) -> Any:
    """Request documents drawn from ``seed`` (an endless generator): height layouts with at least
    one stem of the taste, those with backing vocals/choir and those without alternating.
    """
    want_above = True
    for i in range(100_000):
        doc = make_example(np.random.default_rng([seed, i]), pool, NO_TEXT).request
        request = Request.from_dict(doc)
        if not request.has_height or not any(_taste(s.cls) for s in request.stems):
            continue
        above = any(s.cls in ABOVE_CLASSES for s in request.stems)
        if above == want_above:
            want_above = not want_above
            yield i, doc


def log_edits(llm: Any, seed: int, pool: str, n: int, folder: Path) -> dict[str, Any]:
    """Propose (model alone, rules enforced), edit with the producer, log ``n`` edits to ``folder``."""
    book = EditLog(folder)
    tried = 0
    moved_n = 0
    for i, doc in requests(seed, pool):
        if book.rows >= n:
            break
        tried += 1
        request = Request.from_dict(doc)
        p = llm.propose(request)
        proposed = final_scene(request, p.scene)
        edited = producer(request, proposed)
        moved = moved_stems(proposed, edited)
        if not moved:  # nothing to edit: a producer logs nothing
            continue
        moved_n += len(moved)
        row = edit_row(
            request=doc,
            proposed=proposed,
            edited=edited,
            proposer="llm",
            section=request.section,
            edit={"moved": moved, "by": "simulated producer (training.taste.producer)", "draw": [seed, i]},
            model={"model": llm.name, "lora": Path(str(llm.info.lora)).name if llm.info.lora else None},
            when=1_800_000_000 + i,  # fixed: the logs are a pure function of the seed
        )
        book.append(row)
    return {"edits": book.rows, "requests_tried": tried, "stems_moved": moved_n}


def _child(args: list[str], logfile: Path) -> None:
    """Run ``python -m training.cli ARGS`` (its own process: training's memory is returned after)."""
    cmd = [sys.executable, "-m", "training.cli", *args]
    log.info("$ %s  (log: %s)", " ".join(cmd), logfile)
    with logfile.open("a") as fh:
        rc = subprocess.call(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    if rc:
        raise SystemExit(f"{' '.join(args[:1])} failed (exit {rc}); see {logfile}")


def _group(report: dict[str, Any], which: str) -> dict[str, Any]:
    """Mean / median angle to the producer over the taste's stems or all the others."""
    v = [s["angle_deg"] for s in report["stems"] if _taste(s["class"]) == (which == "taste")]
    b = [s["before_deg"] for s in report["stems"] if _taste(s["class"]) == (which == "taste")]
    r = {"n": len(v)}
    if v:
        r.update(mean=round(float(np.mean(v)), 2), median=round(float(np.median(v)), 2))
        r.update(before_mean=round(float(np.mean(b)), 2))
    return r


def main(argv: list[str] | None = None) -> int:
    """Run the experiment (see the module docstring); returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/taste", help="folder for everything (git-ignored runs/)")
    ap.add_argument("--edits", type=int, default=48, help="the producer's edits to train on (<= 50)")
    ap.add_argument("--heldout", type=int, default=36, help="held-out edited requests (a disjoint seed)")
    ap.add_argument("--seed", type=int, default=2020, help="seed of the training requests")
    ap.add_argument("--heldout-seed", type=int, default=2021, help="seed of the held-out requests")
    ap.add_argument("--config", default="training/configs/smollm2_cpu_taste.json", help="DPO TrainConfig")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="TrainConfig overrides")
    ap.add_argument("--method", default="dpo", choices=("dpo", "sft"), help="dpo on the pairs, or sft on the edits")
    ap.add_argument("--checkpoint", default="last", choices=("last", "best"), help="adapter to convert")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"args": vars(a)}
    untuned = EvalConfig(model_path=None, n_threads=a.threads, pin_hints=False, label="untuned (shipped adapter)")

    t = time.perf_counter()
    if not (out / "edits.json").is_file():  # written last: a run stopped part-way logs again from scratch
        for d in ("edits", "heldout-edits"):
            shutil.rmtree(out / d, ignore_errors=True)
        llm = load_llm(untuned)
        report["edits"] = log_edits(llm, a.seed, "train", a.edits, out / "edits")
        report["heldout_edits"] = log_edits(llm, a.heldout_seed, "heldout", a.heldout, out / "heldout-edits")
        del llm
        (out / "edits.json").write_text(json.dumps([report["edits"], report["heldout_edits"]]) + "\n")
        log.info("edits logged in %.0f s: %s", time.perf_counter() - t, report["edits"])
    report["edits"], report["heldout_edits"] = json.loads((out / "edits.json").read_text())
    if not (out / "data" / "manifest.json").is_file():
        _child(["data", str(out / "data"), "--from-edits", str(out / "edits")], out / "data.log")
    report["data"] = json.loads((out / "data" / "manifest.json").read_text())["counts"]
    dpo = out / "dpo"
    if not (dpo / "summary.json").is_file():
        sets = [f"data_dir={out / 'data'}", f"out_dir={dpo}", *a.set]
        _child(["train", "--config", a.config, "--method", a.method, "--set", *sets], out / "train.log")
    report["train"] = json.loads((dpo / "summary.json").read_text())
    report["train_log"] = [json.loads(x) for x in (dpo / "log.jsonl").read_text().splitlines()]
    gguf = out / "tuned.lora.gguf"
    if not gguf.is_file():
        _child(["convert", str(dpo / a.checkpoint), str(gguf), "--lora-only"], out / "convert.log")

    tuned = EvalConfig(
        model_path=None,
        lora_path=str(gguf),
        n_threads=a.threads,
        pin_hints=False,
        label=f"tuned ({a.method} on the edits)",
    )
    reports = [evaluate_edits(out / "heldout-edits", c, split="all") for c in (untuned, tuned)]
    for r in reports:
        r["taste"], r["other"] = _group(r, "taste"), _group(r, "other")
    report["eval"] = reports
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    md = markdown_edits(reports)
    md += (
        "\n| model | taste's stems: mean / median ° (before) | other stems: mean / median ° (before) |\n|---|---|---|\n"
    )
    for r in reports:
        ta, ot = r["taste"], r["other"]
        md += (
            f"| {r['label']} | {ta.get('mean')} / {ta.get('median')} ({ta.get('before_mean')}; n={ta['n']}) "
            f"| {ot.get('mean')} / {ot.get('median')} ({ot.get('before_mean')}; n={ot['n']}) |\n"
        )
    (out / "report.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
