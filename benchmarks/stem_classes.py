"""Stem classes from audio features alone, on real recordings (issue 18; not a test).

Run from the repository root::

    .venv/bin/python benchmarks/stem_classes.py build --mirrors /path/to/clones  # once: the audio
    .venv/bin/python benchmarks/stem_classes.py                # the confusion tables (~20 s cached)
    .venv/bin/python benchmarks/stem_classes.py --write-model  # refit gravity/analysis/feature_model.py

Where the data come from
------------------------
``benchmarks/stem_classes_manifest.json`` lists every stem: the public GitHub repository and
commit it comes from, the path(s) in it, its licence, its true class, its group (recording
session or collection) and its role. No audio is committed (several licences are
non-commercial or forbid redistribution); ``build`` makes the files from local clones of those
repositories (``--mirrors DIR`` holds ``owner+name/repo``, ``owner+name`` or ``name`` git
directories, bare or not) into ``DIR`` (default ``/work/stems_real``, or ``$GRAVITY_STEMS_REAL``),
named ``track_NNN`` so that no file name says what it is.

``role: eval`` (119 stems, 25 groups; these are the ones reported):

* MDB Drums (CarlSouthall/MDBDrums; MedleyDB "MusicDelta" raw multitracks, CC BY-NC-SA 4.0): 61
  single-instrument tracks of 15 pop/rock songs (drum kit, electric bass, clean/distorted
  electric and acoustic guitar, male/female singers), 13-42 s each, one group per song;
* mirdata's test excerpts (mir-dataset-loaders/mirdata, tests/resources; each dataset's licence
  in the manifest): PHENICX-Anechoic orchestra parts (1 s), MAESTRO piano, EGFxSet electric
  guitar, Dagstuhl ChoirSet singers, vocadito, TinySOL, Saraga multitrack (violin, voice,
  mridangam, ghatam), 4-way tabla, Medley-solos-DB flute, IDMT-SMT guitar (1-33 s). Left out:
  the excerpts that are placeholders (MULTIVOX's six "singers" are one 440 Hz sine, babyslakh's
  stems are silent, good-sounds and GuitarSet are noise) or silent (PHENICX's trumpets rest);
* sms-tools' freesound sounds (MTG/sms-tools, CC BY 4.0): cello, clarinet, flute, oboe, sax,
  trumpet, violin phrases and notes, piano, organ, vibraphone, singing, speech, mridangam,
  frame drum, rain, sea, wind; and MTG/essentia-audio's tenor sax phrases and a guitar.

``role: train`` (181 stems, never reported): drum-kit stems (kick, snare, hi-hat, toms, full kit)
sequenced from the one-shots of 14 kits, and real loops (Tonejs/audio), Salamander piano notes,
OLPC Berklee sounds (CC BY 3.0), Philharmonia Orchestra notes (skratchdot/philharmonia-samples),
one Slakh2100 stem, eight generated synth bass lines and Gravity's own synthetic song
(``examples/make_stems.py``). Classes the features cannot tell apart or have too few stems of
are folded into a neighbour of the same family (:data:`MODEL_CLASS`: choir and spoken into
lead_vocal, acoustic_guitar into guitar, keys and organ into piano, atmosphere into ambience).

What it measures
----------------
Each stem goes through the product path, :func:`gravity.analysis.analyze_stems` (read, downmix,
resample to 48 kHz, :func:`~gravity.analysis.features.compute_features`), and its features are
cached (``DIR/features.json``; about 2 min to measure all). The classifier is a multinomial
logistic regression on those vectors (:mod:`gravity.analysis.classification`); the numbers are
**leave-one-group-out**: each eval group (one MDB song, one collection) is classified by a model
fitted on every other stem, train-only ones included, so no reported stem, nor any stem of its
session, was seen in training; the answer is :func:`~gravity.analysis.classification.decide`'s,
with the typicality measured against that fold's classes. The regularisation and the
temperature are chosen on those held-out predictions (two numbers). It prints the confusion
table by family and by class, the accuracy, how often the classifier said ``other`` (unsure)
instead, every confident (> 0.8) and every other wrong-family answer, and how often the answers
of each confidence bin were right; then the same for the shipped table (fitted on everything)
applied to the stems, which is *not* an accuracy (it has seen them). ``--harsh`` also holds out
whole collections (all 15 MDB songs at once).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import soundfile as sf
from scipy import optimize, signal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gravity.analysis import analyze_stems  # noqa: E402
from gravity.analysis import classification  # noqa: E402
from gravity.analysis.features import FEATURE_NAMES, StemFeatures  # noqa: E402
from gravity.vocab import family_of  # noqa: E402

MANIFEST = ROOT / "benchmarks" / "stem_classes_manifest.json"
MODEL_PY = ROOT / "gravity" / "analysis" / "feature_model.py"
DEFAULT_DIR = Path(os.environ.get("GRAVITY_STEMS_REAL", "/work/stems_real"))
RATE = 48000
FEATURES_VERSION = 5  # bump when compute_features changes: the cache is then recomputed
LAMBDAS = (0.001, 0.003, 0.01, 0.03)  # L2 strengths tried (per item, on standardised features)
CLASS_WEIGHT_POWER = 0.5  # items weighted by 1 / count(class) ** 0.5: rare classes count, not dominate
CONFIDENT = 0.8
# The model's classes: the manifest's true classes, with those the features cannot tell apart (or
# that have too few examples to learn) folded into a neighbour of the same family.
MODEL_CLASS = {
    "choir": "lead_vocal",
    "spoken": "lead_vocal",
    "acoustic_guitar": "guitar",
    "keys": "piano",
    "organ": "piano",
    "atmosphere": "ambience",
}


# ================================================================== build


def _git_dir(mirrors: Path, repo: str) -> Path:
    owner, name = repo.split("/")
    for cand in (mirrors / f"{owner}+{name}" / "repo", mirrors / f"{owner}+{name}", mirrors / name):
        if cand.is_dir():
            return cand
    raise SystemExit(f"no clone of {repo} under {mirrors} (looked for {owner}+{name}/repo, {owner}+{name}, {name})")


def _git_bytes(gd: Path, commit: str, path: str) -> bytes:
    return subprocess.run(["git", "-C", str(gd), "show", f"{commit}:{path}"], capture_output=True, check=True).stdout


def _decode(data: bytes, tmp: Path) -> np.ndarray:
    """Mono float64 at 48 kHz from encoded audio bytes."""
    tmp.write_bytes(data)
    x, sr = sf.read(str(tmp), always_2d=True)
    x = x.mean(axis=1)
    if sr != RATE:
        g = math.gcd(RATE, sr)
        x = signal.resample_poly(x, RATE // g, sr // g)
    return x


def _render(recipe: dict[str, Any], get: Any, tmp: Path) -> np.ndarray:
    kind = recipe["kind"]
    if kind == "concat":  # notes one after another, each cut to max_s with a 20 ms fade
        out = []
        for p in recipe["paths"]:
            x = _decode(get(p), tmp)[: int(recipe["max_s"] * RATE)]
            fade = min(len(x), int(0.02 * RATE))
            x[len(x) - fade :] *= np.linspace(1.0, 0.0, fade)
            out += [x, np.zeros(int(0.03 * RATE))]
        return np.concatenate(out)
    if kind == "pattern":  # one-shots on a 16-step grid
        hits = [_decode(get(p), tmp)[: int(1.5 * RATE)] for p in recipe["paths"]]
        step = int(round(60.0 / recipe["bpm"] / 4 * RATE))
        n = 16 * recipe["bars"] * step
        y = np.zeros(n + int(1.5 * RATE))
        k = 0
        for i in range(16 * recipe["bars"]):
            if recipe["steps"][i % 16] == "x":
                h = hits[k % len(hits)]
                y[i * step : i * step + len(h)] += h
                k += 1
        return y[:n]
    if kind == "mix":
        parts = [_render(r, get, tmp) for r in recipe["parts"]]
        y = np.zeros(max(len(p) for p in parts))
        for p in parts:
            y[: len(p)] += p
        return y
    raise ValueError(f"unknown recipe kind {kind!r}")


def _synth_bass(r: dict[str, Any]) -> np.ndarray:
    """A synth bass line: a saw or square on a minor scale, 8ths or 16ths, gated, low-passed."""
    rng = np.random.default_rng(r["seed"])
    step_s = 60.0 / r["bpm"] / (4 if r["sixteenths"] else 2)
    n_steps = r["bars"] * (16 if r["sixteenths"] else 8)
    scale = np.array([0, 3, 5, 7, 10, 12])
    degree = np.clip(np.cumsum(rng.integers(-1, 2, n_steps)), 0, len(scale) - 1)
    step = int(round(step_s * RATE))
    f0 = np.repeat(440.0 * 2.0 ** ((r["root_midi"] + scale[degree] - 69) / 12.0), step)
    phase = np.cumsum(f0) / RATE % 1.0
    x = 2.0 * phase - 1.0 if r["wave"] == "saw" else np.where(phase < 0.5, 1.0, -1.0)
    on = int(r["gate"] * step)
    ramp = min(on, int(0.005 * RATE))
    env = np.concatenate([np.linspace(0.0, 1.0, ramp), np.ones(on - ramp), np.zeros(step - on)])
    x = x * np.tile(env, n_steps)
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1.0 / RATE)
    return np.fft.irfft(spec / np.sqrt(1.0 + (f / r["cutoff_hz"]) ** 4), len(x))


def _make_stems() -> Any:
    """``examples/make_stems.py`` as a module (Gravity's synthetic song)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_stems", ROOT / "examples" / "make_stems.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_stems"] = mod
    spec.loader.exec_module(mod)
    return mod


def build(out: Path, mirrors: Path) -> int:
    """Make ``out/track_NNN.*`` and ``out/manifest.json`` from the manifest and local clones."""
    doc = json.loads(MANIFEST.read_text())
    items, sources = doc["items"], doc["sources"]
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".decode.tmp"
    songs: dict[int, dict[str, np.ndarray]] = {}
    for it in items:
        r = it["recipe"]
        if r["kind"] == "synth_bass":
            y = _synth_bass(r)
        elif r["kind"] == "make_stems":
            key = r["seed"]
            if key not in songs:
                songs[key] = _make_stems().render_stems(bpm=r["bpm"], bars=r["bars"], seed=r["seed"], sample_rate=RATE)
            y = songs[key][r["stem"]]
        else:
            src = sources[it["source"]]
            gd = _git_dir(mirrors, src["repo"])

            def get(p: str, gd: Path = gd, c: str = src["commit"]) -> bytes:
                return _git_bytes(gd, c, p)

            if r["kind"] == "file":
                ext = Path(r["path"]).suffix.lower()
                (out / (it["file"] + ext)).write_bytes(get(r["path"]))
                continue
            y = _render(r, get, tmp)
        peak = float(np.max(np.abs(y))) or 1.0
        sf.write(str(out / (it["file"] + ".wav")), 0.5 * y / peak, RATE, subtype="PCM_24")
    tmp.unlink(missing_ok=True)
    shutil.copy(MANIFEST, out / "manifest.json")
    print(f"built {len(items)} stems in {out}")
    return 0


# ================================================================== features


def _file_of(folder: Path, item: dict[str, Any]) -> Path | None:
    found = sorted(p for p in folder.glob(item["file"] + ".*") if p.suffix != ".json")
    return found[0] if found else None


def load_features(folder: Path, items: Sequence[dict[str, Any]]) -> list[StemFeatures]:
    """Every stem's features, through the product path (:func:`analyze_stems`), cached."""
    cache_path = folder / "features.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    if cache.get("version") != FEATURES_VERSION:
        cache = {"version": FEATURES_VERSION, "items": {}}
    feats = []
    t0 = time.time()
    for it in items:
        path = _file_of(folder, it)
        if path is None:
            raise SystemExit(f"{it['file']} is missing in {folder}: run `build` again")
        digest = hashlib.sha1(path.read_bytes()).hexdigest()
        hit = cache["items"].get(it["file"])
        if hit is None or hit["sha1"] != digest:
            rep = analyze_stems([path], bpm=120).stems[0]
            if not rep.ok or rep.features is None:
                raise SystemExit(f"{path}: {rep.error}")
            hit = {"sha1": digest, "features": _features_dict(rep.features)}
            cache["items"][it["file"]] = hit
        feats.append(StemFeatures(**{k: tuple(v) if isinstance(v, list) else v for k, v in hit["features"].items()}))
    cache_path.write_text(json.dumps(cache))
    logging.info("features of %d stems in %.1f s", len(items), time.time() - t0)
    return feats


def _features_dict(f: StemFeatures) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in f.__dict__.items()}


# ================================================================== model


@dataclass
class Model:
    """A fitted table: standardisation, logistic weights, and each class's spread (for typicality)."""

    mean: np.ndarray  # (features,)
    scale: np.ndarray  # (features,)
    weights: np.ndarray  # (classes, features)
    bias: np.ndarray  # (classes,)
    class_mean: np.ndarray  # (classes, features), in standardised units
    class_sd: np.ndarray  # (classes, features), standardised, floored

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Class scores (before the temperature) of each row of ``x``."""
        return ((x - self.mean) / self.scale) @ self.weights.T + self.bias

    def typicality(self, x: np.ndarray, k: np.ndarray) -> np.ndarray:
        """:func:`classification.typicality` of each row of ``x`` against its class ``k``."""
        z = (x - self.mean) / self.scale
        return np.array(
            [classification.typicality(zi, self.class_mean[ki], self.class_sd[ki]) for zi, ki in zip(z, k, strict=True)]
        )


def fit(x: np.ndarray, y: np.ndarray, n_classes: int, lam: float) -> Model:
    """Multinomial logistic regression, L2 ``lam`` per item, item weights ``1 / count(class) ** 0.5``."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    counts = np.bincount(y, minlength=n_classes).astype(float)
    w_item = 1.0 / counts[y] ** CLASS_WEIGHT_POWER
    w_item = (w_item * len(y) / w_item.sum())[:, None]
    onehot = np.eye(n_classes)[y]
    d = z.shape[1]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[: n_classes * d].reshape(n_classes, d)
        b = theta[n_classes * d :]
        s = z @ w.T + b
        s -= s.max(axis=1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=1, keepdims=True)
        nll = -float(np.sum(w_item * onehot * np.log(p + 1e-12))) / len(y) + 0.5 * lam * float(np.sum(w * w))
        g = (w_item * (p - onehot)) / len(y)
        gw = g.T @ z + lam * w
        return nll, np.concatenate([gw.ravel(), g.sum(axis=0)])

    theta0 = np.zeros(n_classes * d + n_classes)
    res = optimize.minimize(loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    cm = np.array([z[y == k].mean(axis=0) if np.any(y == k) else np.zeros(d) for k in range(n_classes)])
    csd = np.array([z[y == k].std(axis=0) if np.sum(y == k) > 1 else np.ones(d) for k in range(n_classes)])
    return Model(
        mean,
        scale,
        res.x[: n_classes * d].reshape(n_classes, d),
        res.x[n_classes * d :],
        cm,
        np.maximum(csd, classification.CLASS_SD_FLOOR),
    )


def cv_predict(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, held: np.ndarray, n_classes: int, lam: float
) -> tuple[np.ndarray, Any]:
    """Logits of every ``held`` item from a model fitted without its group, and a function giving
    the typicality of those items for a class index per item.
    """
    out = np.full((len(y), n_classes), np.nan)
    models: dict[int, Model] = {}
    for g in sorted(set(groups[held])):
        test = groups == g
        model = fit(x[~test], y[~test], n_classes, lam)
        for i in np.flatnonzero(test & held):
            models[int(i)] = model
        out[test & held] = model.logits(x[test & held])

    def typ(k: np.ndarray) -> np.ndarray:
        return np.array(
            [
                models[int(i)].typicality(x[i : i + 1], k[i : i + 1])[0] if int(i) in models else np.nan
                for i in range(len(y))
            ]
        )

    return out, typ


def fit_temperature(lg: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the log loss of held-out logits."""

    def nll(t: float) -> float:
        s = lg / t
        s = s - s.max(axis=1, keepdims=True)
        return float(-np.mean(s[np.arange(len(y)), y] - np.log(np.exp(s).sum(axis=1))))

    return float(optimize.minimize_scalar(nll, bounds=(0.3, 10.0), method="bounded").x)


def write_model(model: Model, classes: Sequence[str], temperature: float, lam: float, n: int) -> None:
    """Write the table as Python literals, wrapped by hand (``ruff format`` would put one number a line)."""

    def numbers(v: np.ndarray, indent: str) -> list[str]:
        return textwrap.wrap(
            ", ".join(f"{float(a):.4g}" for a in v) + ",",
            116 - len(indent),
            initial_indent=indent,
            subsequent_indent=indent,
            break_long_words=False,
        )

    def words(v: Sequence[str]) -> list[str]:
        return textwrap.wrap(" ".join(f'"{w}",' for w in v), 112, initial_indent="    ", subsequent_indent="    ")

    def block(name: str, v: np.ndarray) -> list[str]:
        return [f"{name}: tuple[float, ...] = (", *numbers(v, "    "), ")"]

    def table(name: str, m: np.ndarray) -> list[str]:
        out = [f"{name}: tuple[tuple[float, ...], ...] = ("]
        for r, c in zip(m, classes, strict=True):
            out += [f"    (  # {c}", *numbers(r, "        "), "    ),"]
        return [*out, ")"]

    lines = [
        '"""The feature classifier\'s table: generated by ``benchmarks/stem_classes.py --write-model``; do not',
        "edit by hand.",
        "",
        f"A multinomial logistic regression (L2 {lam:g}, items weighted 1 / class count ** 0.5) fitted on the",
        f"{n} stems of ``benchmarks/stem_classes_manifest.json`` (real recordings of public multitrack and",
        "instrument sets, sample libraries and Gravity's synthetic song). Inputs are",
        ":meth:`gravity.analysis.features.StemFeatures.vector` (named by ``FEATURES``), standardised by",
        "``MEAN`` and ``SCALE``; the logits ``WEIGHTS @ z + BIAS`` are divided by ``TEMPERATURE`` (fitted",
        "on leave-one-group-out predictions). ``CLASS_MEAN`` and ``CLASS_SD`` are each class's training",
        "stems' mean and spread in standardised units (the typicality check).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "# fmt: off",
        "FEATURES: tuple[str, ...] = (",
        *words(FEATURE_NAMES),
        ")",
        "CLASSES: tuple[str, ...] = (",
        *words(classes),
        ")",
        f"TEMPERATURE = {temperature:.4g}",
        *block("MEAN", model.mean),
        *block("SCALE", model.scale),
        *block("BIAS", model.bias),
        *table("WEIGHTS", model.weights),
        *table("CLASS_MEAN", model.class_mean),
        *table("CLASS_SD", model.class_sd),
        "# fmt: on",
        "",
    ]
    MODEL_PY.write_text("\n".join(lines))
    print(f"wrote {MODEL_PY.relative_to(ROOT)}")


# ================================================================== report


def _decide(
    lg: np.ndarray, typ: Any, durs: np.ndarray, classes: Sequence[str], temperature: float
) -> list[tuple[str, float]]:
    """The runtime's answers (:func:`classification.decide`) for held-out logits."""
    best = np.argmax(np.nan_to_num(lg, nan=-np.inf), axis=1)
    t = typ(best)
    return [
        classification.decide(row / temperature, classes, float(d), float(ti)) if np.isfinite(ti) else ("", 0.0)
        for row, d, ti in zip(lg, durs, t, strict=True)
    ]


def report(
    title: str, truth: Sequence[str], said: Sequence[tuple[str, float]], notes: Sequence[str]
) -> dict[str, float]:
    """Print the confusion tables, the accuracy and every confident wrong answer."""
    n = len(truth)
    fam_t = [family_of(t) for t in truth]
    fam_p = [family_of(c) for c, _ in said]
    answered = [c != "other" for c, _ in said]
    fam_right = sum(a == b for a, b in zip(fam_t, fam_p, strict=True))
    cls_right = sum(t == c for t, (c, _) in zip(truth, said, strict=True))
    unsure = n - sum(answered)
    fam_wrong = sum(a and ft != fp for a, ft, fp in zip(answered, fam_t, fam_p, strict=True))
    confident_wrong = [
        (i, t, c, p)
        for i, (t, (c, p)) in enumerate(zip(truth, said, strict=True))
        if p > CONFIDENT and family_of(t) != family_of(c)
    ]
    print(f"\n=== {title}: {n} stems")
    fams = sorted(set(fam_t) | set(fam_p))
    print("family confusion (rows: truth, columns: said)")
    print(f"{'':>10} " + " ".join(f"{f[:7]:>7}" for f in fams))
    for f in sorted(set(fam_t)):
        row = [sum(a == f and b == g for a, b in zip(fam_t, fam_p, strict=True)) for g in fams]
        print(f"{f:>10} " + " ".join(f"{k:>7}" for k in row))
    print("class confusion (truth: said x count)")
    by: dict[str, Counter[str]] = defaultdict(Counter)
    for t, (c, _) in zip(truth, said, strict=True):
        by[t][c] += 1
    for t in sorted(by):
        print(f"  {t:>16} ({sum(by[t].values()):>2}): " + ", ".join(f"{c} {k}" for c, k in by[t].most_common()))
    print(
        f"family right {fam_right}/{n} = {fam_right / n:.1%}; answered {n - unsure}, of which family right "
        f"{fam_right}/{max(n - unsure, 1)} = {fam_right / max(n - unsure, 1):.1%}; unsure -> other {unsure} "
        f"({unsure / n:.1%}); family wrong {fam_wrong} ({fam_wrong / n:.1%}); class right {cls_right}/{n} = "
        f"{cls_right / n:.1%}"
    )
    confs = np.array([p for _, p in said])
    print(
        f"confidence: median {np.median(confs):.2f}, max {confs.max():.2f}; > {CONFIDENT} on "
        f"{int(np.sum(confs > CONFIDENT))} stems; confident (> {CONFIDENT}) wrong family: {len(confident_wrong)}"
    )
    for i, t, c, p in confident_wrong:
        print(f"  CONFIDENT WRONG: {notes[i]}: truth {t}, said {c} {p:.2f}")
    print("reliability of the answers (confidence bin: answers, class right, family right)")
    for lo, hi in ((0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 1.01)):
        k = [i for i, (c, p) in enumerate(said) if c != "other" and lo <= p < hi]
        if k:
            cr = sum(truth[i] == said[i][0] for i in k) / len(k)
            fr = sum(fam_t[i] == fam_p[i] for i in k) / len(k)
            label = f"{lo:.1f}-{hi:.1f}" if hi <= 1.0 else f"{lo:.1f} (the cap)"
            print(f"  {label:>11}: {len(k):>3}, {cr:.0%}, {fr:.0%}")
    wrong = [i for i, (a, ft, fp) in enumerate(zip(answered, fam_t, fam_p, strict=True)) if a and ft != fp]
    for i in wrong:
        print(f"  wrong family: {notes[i]}: truth {truth[i]}, said {said[i][0]} {said[i][1]:.2f}")
    return {
        "family_acc": fam_right / n,
        "unsure": unsure / n,
        "family_wrong": fam_wrong / n,
        "confident_wrong": float(len(confident_wrong)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", nargs="?", default="run", choices=["run", "build"])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the stems folder (default %(default)s)")
    ap.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"), help="local clones, for build")
    ap.add_argument("--write-model", action="store_true", help="refit the shipped table on every stem")
    ap.add_argument("--harsh", action="store_true", help="also hold out whole collections (all MDB songs at once)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.command == "build":
        sys.path.insert(0, str(ROOT / "benchmarks"))
        return build(args.dir, args.mirrors)
    if not (args.dir / "manifest.json").exists():
        print(
            f"SKIPPED: no stems at {args.dir} (set --dir or $GRAVITY_STEMS_REAL). They are built from public "
            f"repositories listed in {MANIFEST.relative_to(ROOT)}: clone them and run `build --mirrors DIR`."
        )
        return 0
    items = json.loads(MANIFEST.read_text())["items"]
    if tuple(classification.feature_model.FEATURES) != FEATURE_NAMES:
        # The features changed since the table was written: analyze_stems cannot classify with
        # it, so a neutral table ("other" only) stands in while the features are measured.
        print("the shipped table does not match the features: writing a neutral one first")
        d = len(FEATURE_NAMES)
        neutral = Model(np.zeros(d), np.ones(d), np.zeros((1, d)), np.zeros(1), np.zeros((1, d)), np.ones((1, d)))
        write_model(neutral, ["other"], 1.0, 0.0, 0)
        importlib.reload(classification.feature_model)
    feats = load_features(args.dir, items)
    x = np.array([f.vector() for f in feats])
    durs = np.array([f.duration_s for f in feats])
    classes = sorted({MODEL_CLASS.get(it["class"], it["class"]) for it in items})
    y = np.array([classes.index(MODEL_CLASS.get(it["class"], it["class"])) for it in items])
    groups = np.array([it["group"] for it in items])
    held = np.array([it["role"] == "eval" for it in items])
    truth = [MODEL_CLASS.get(it["class"], it["class"]) for it in items]
    notes = [f"{it['file']} {it['group']} ({it['note'] or it['recipe'].get('path', '')})" for it in items]
    eval_idx = np.flatnonzero(held)
    print(
        f"{len(items)} stems ({held.sum()} reported, {len(set(groups[held]))} held-out groups); {len(classes)} classes"
    )

    best: tuple[float, float, np.ndarray, Any] | None = None
    for lam in LAMBDAS:
        lg, typ = cv_predict(x, y, groups, held, len(classes), lam)
        t = fit_temperature(lg[held], y[held])
        s = lg[held] / t
        s = s - s.max(axis=1, keepdims=True)
        nll = float(-np.mean(s[np.arange(held.sum()), y[held]] - np.log(np.exp(s).sum(axis=1))))
        print(f"L2 {lam:g}: held-out log loss {nll:.3f} (temperature {t:.2f})")
        if best is None or nll < best[0]:
            best = (nll, lam, lg, typ)
    assert best is not None
    _, lam, lg, typ = best
    temperature = fit_temperature(lg[held], y[held])
    said = _decide(lg, typ, durs, classes, temperature)
    report(
        f"leave-one-group-out (L2 {lam:g}, temperature {temperature:.2f})",
        [truth[i] for i in eval_idx],
        [said[i] for i in eval_idx],
        [notes[i] for i in eval_idx],
    )
    if args.harsh:
        coll = np.array([g.split(":")[0] for g in groups])
        lg2, typ2 = cv_predict(x, y, coll, held, len(classes), lam)
        said2 = _decide(lg2, typ2, durs, classes, temperature)
        report(
            "leave-one-collection-out (all MDB songs held out together)",
            [truth[i] for i in eval_idx],
            [said2[i] for i in eval_idx],
            [notes[i] for i in eval_idx],
        )
    if args.write_model:
        write_model(fit(x, y, len(classes), lam), classes, temperature, lam, len(items))
    if args.write_model:
        importlib.reload(classification.feature_model)
    shipped = [classification.classify_features(f)[:2] for f in feats]
    report(
        "the shipped table on the same stems (IN-SAMPLE: it was fitted on them; not an accuracy)",
        [truth[i] for i in eval_idx],
        [shipped[i] for i in eval_idx],
        [notes[i] for i in eval_idx],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
