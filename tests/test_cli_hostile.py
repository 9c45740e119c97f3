"""Every ``gravity`` subcommand against hostile inputs (issue 18: nothing a file can do takes Gravity down).

Each case runs the real command line as a subprocess, in an empty output folder that is also its
working directory, and must end with:

* exit code 1 (bad input) or 2 (bad usage), within the time limit (a FIFO must not block);
* exactly one non-empty line on stderr, no traceback, at most :data:`LINE_MAX` characters (a
  value is quoted to ~200 characters: a 1 MB hint must not print 1 MB), naming the file, flag or
  field at fault;
* nothing on stdout and no new file in the output folder; every input unchanged.

The corpus is generated in a temporary folder (no large committed files). Every JSON-reading
command goes through :func:`gravity.schema.read_json`, so the whole corpus runs against the two
cheapest readers (``validate``, ``scene``) and a sample of one case per class against the others.
Commands that load the LLM or train only get inputs that fail before anything loads.

The three sweeps (every file through ``validate``, a sample through every reader, every hostile
flag: ~140 processes) are marked ``corpus``: ``make test`` runs them, ``make test-fast`` runs
the rest of this file (the sample through ``scene``, ranges, pipes, Ctrl-C).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_REQUEST = ROOT / "examples/sample_input.json"
SAMPLE_SCENE = ROOT / "examples/sample_output.json"
LINE_MAX = 600  # characters: a path, a quoted value (at most ~200) and the message
RUN_TIMEOUT_S = 60.0  # a blocked read (FIFO) or a runaway allocation fails here instead of hanging
BIG = 1_000_000  # characters of the 1 MB strings
ARG = 100_000  # characters of a hostile command-line argument (Linux caps one argument at 128 KiB)

#: A known hang (a FIFO read as a SOFA blocks): documented, not run, so the suite does not wait for it.


# ------------------------------------------------------------------ the corpus
def _request(**changes: Any) -> dict[str, Any]:
    doc = json.loads(SAMPLE_REQUEST.read_text())
    doc.update(changes)
    return doc


def _with_stem(**fields: Any) -> bytes:
    doc = _request()
    doc["stems"][0].update(fields)
    return json.dumps(doc).encode()


def _scene(**changes: Any) -> bytes:
    doc = json.loads(SAMPLE_SCENE.read_text())
    doc.update(changes)
    return json.dumps(doc).encode()


def _digits(n: int) -> str:
    return "9" * n  # as JSON text: Python parses at most 4300 digits (sys.get_int_max_str_digits)


#: Hostile JSON files: name -> contents. Each class of issue 18 has several cases.
JSON_FILES: dict[str, Callable[[], bytes]] = {
    # encodings
    "latin1.json": lambda: json.dumps(_request(prompt="café au lait"), ensure_ascii=False).encode("latin-1"),
    "utf16_bom.json": lambda: json.dumps(_request()).encode("utf-16"),
    "utf16le_no_bom.json": lambda: json.dumps(_request()).encode("utf-16-le"),
    "utf32_bom.json": lambda: json.dumps(_request()).encode("utf-32"),
    "binary.json": lambda: bytes(range(256)) * 16,
    "nul_bytes.json": lambda: b"\x00" * 64,
    # nesting
    "deep_100k.json": lambda: b"[" * 100_000 + b"]" * 100_000,
    "deep_objects_5k.json": lambda: b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "deep_in_stems.json": lambda: (
        b'{"target_format": "iamf", "max_objects": 4, "stems": ' + b"[" * 500 + b"]" * 500 + b"}"
    ),
    # numbers
    "int_5000_digits.json": lambda: SAMPLE_REQUEST.read_bytes().replace(
        b'"max_objects": 10', f'"max_objects": {_digits(5000)}'.encode(), 1
    ),
    "int_4000_digits.json": lambda: _with_stem(lufs=int(_digits(4000))),
    "int_huge_negative.json": lambda: _with_stem(lufs=-(10**40)),
    "float_1e400.json": lambda: SAMPLE_REQUEST.read_bytes().replace(b'"max_objects": 10', b'"max_objects": 1e400', 1),
    "nan.json": lambda: SAMPLE_REQUEST.read_bytes().replace(b'"max_objects": 10', b'"max_objects": NaN', 1),
    "infinity.json": lambda: _with_stem(lufs=float("-inf")),  # json.dumps writes -Infinity
    # sizes and text
    "hint_1mb.json": lambda: _with_stem(hint="a" * BIG),
    "hint_501.json": lambda: _with_stem(hint="b" * 501),
    "prompt_1mb.json": lambda: json.dumps(_request(prompt="p" * BIG)).encode(),
    "id_1mb.json": lambda: _with_stem(id="i" * BIG),
    "class_1mb.json": lambda: _with_stem(**{"class": "c" * BIG}),
    "key_200k.json": lambda: json.dumps({**_request(), "k" * 200_000: 1}).encode(),
    "stems_100k.json": lambda: json.dumps(
        _request(stems=[{"id": f"s{i}", "class": "pad"} for i in range(100_000)])
    ).encode(),
    "rules_10k.json": lambda: json.dumps(
        _request(rules=[{"type": "mono_low_end", "cutoff_hz": 120}] * 10_000)
    ).encode(),
    "over_4mib.json": lambda: b" " * (4 * 2**20 + 16) + b"{}",
    "scene_text_1mb.json": lambda: _scene(constraints_applied=["x" * BIG]),
    "scene_objects_100k.json": lambda: _scene(objects=[{"id": "v1"}] * 100_000),
    # not the document expected
    "array.json": lambda: b"[1, 2, 3]",
    "number.json": lambda: b"42",
    "string.json": lambda: b'"stems"',
    "null.json": lambda: b"null",
    "empty.json": lambda: b"",
    "whitespace.json": lambda: b" \n\t \n",
    "truncated.json": lambda: SAMPLE_REQUEST.read_bytes()[:-40],
}
#: Paths that are not regular readable files (made by :func:`corpus`).
SPECIAL = ("folder.json", "fifo.json", "missing.json", "loop.json", "dangling.json", "device.json", "noperm.json")
ALL_INPUTS = tuple(JSON_FILES) + SPECIAL
#: One case per class: ``gravity scene`` and ``gravity eval`` (its JSONL rows have their own reader).
SAMPLE_INPUTS = ("fifo.json", "deep_100k.json", "int_5000_digits.json", "latin1.json", "hint_1mb.json", "folder.json")
#: The commands that read JSON through :func:`gravity.schema.read_json`, like ``validate``: these
#: three show that they do (a FIFO does not block, 100k-deep nesting is no RecursionError, a 1 MB
#: value is quoted), the whole corpus against ``validate`` shows what the reader does.
READ_SAMPLE = ("fifo.json", "deep_100k.json", "hint_1mb.json")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hostile inputs, a one-stem song (``stems/tone.wav`` + ``tone_scene.json``), a 1-tap SOFA."""
    import numpy as np
    import soundfile as sf
    import sofar

    d = tmp_path_factory.mktemp("hostile")
    for name, make in JSON_FILES.items():
        (d / name).write_bytes(make())
    (d / "folder.json").mkdir()
    os.mkfifo(d / "fifo.json")
    os.symlink("loop.json", d / "loop.json")
    os.symlink("nowhere.json", d / "dangling.json")
    os.symlink("/dev/zero", d / "device.json")  # a device behind an ordinary name: never ends
    (d / "noperm.json").write_bytes(SAMPLE_REQUEST.read_bytes())
    (d / "noperm.json").chmod(0)
    (d / "request.json").write_bytes(SAMPLE_REQUEST.read_bytes())
    (d / "scene.json").write_bytes(SAMPLE_SCENE.read_bytes())
    (d / "stems").mkdir()
    t = np.arange(48000) / 48000.0
    sf.write(d / "stems/tone.wav", (0.1 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32), 48000)
    scene = json.loads(SAMPLE_SCENE.read_text())
    scene["objects"][0]["id"] = "tone"
    (d / "tone_scene.json").write_text(json.dumps(scene))
    sofa = sofar.Sofa("SimpleFreeFieldHRIR")
    sofa.Data_IR = np.ones((4, 2, 1))  # 1 tap: no delay, no spectrum to interpolate
    sofa.Data_SamplingRate = 48000.0
    sofa.SourcePosition = np.array([[0.0, 0.0, 1.0], [90.0, 0.0, 1.0], [180.0, 0.0, 1.0], [270.0, 0.0, 1.0]])
    sofar.write_sofa(str(d / "one_tap.sofa"), sofa)
    (d / "adapter").mkdir()  # a training run's folder whose train_config.json is hostile
    (d / "adapter/train_config.json").write_bytes(JSON_FILES["deep_100k.json"]())
    (d / "jsonl").mkdir()  # gravity pairs' data folder, its rows hostile
    for split in ("train", "val"):
        (d / "jsonl" / f"{split}.jsonl").write_bytes(JSON_FILES["latin1.json"]())
    return d


def _snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """(size, mtime ns, SHA-256 of the first 64 KiB) of every regular file: the inputs must not change."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink() or not p.is_file() or p.name == "noperm.json":
            continue
        st = p.stat()
        with p.open("rb") as f:
            out[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns, hashlib.sha256(f.read(65536)).hexdigest())
    return out


@pytest.fixture(scope="module")
def before(corpus: Path) -> dict[str, tuple[int, int, str]]:
    return _snapshot(corpus)


def _gravity(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gravity", *args],
        capture_output=True,
        text=True,
        errors="replace",
        cwd=cwd,
        timeout=RUN_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},  # a library's DeprecationWarning is not Gravity's error line
    )


def _check(args: list[str], expect: str | tuple[str, ...], corpus: Path, out: Path, before: dict[str, Any]) -> str:
    """Run ``gravity args`` and assert the contract above; returns the error line."""
    r = _gravity(args, out)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    shown = r.stderr[:2000]
    assert r.returncode in (1, 2), f"exit {r.returncode}: {shown}"
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, shown
    assert len(lines) == 1, f"{len(lines)} lines on stderr: {shown}"
    line = lines[0]
    assert len(line) <= LINE_MAX, f"{len(line)} characters: {line[:300]}..."
    wanted = (expect,) if isinstance(expect, str) else expect
    assert any(w in line for w in wanted), f"{wanted} not in {line!r}"
    assert r.stdout == "", r.stdout[:500]
    assert sorted(p.name for p in out.iterdir()) == [], "files left in the output folder"
    assert _snapshot(corpus) == before, "an input changed"
    return line


def _skip_unreadable(name: str) -> None:
    if name == "noperm.json" and IS_ROOT:
        pytest.skip("root reads a file without read permission")


# ------------------------------------------------------------------ JSON readers: the whole corpus
@pytest.mark.corpus
@pytest.mark.parametrize("name", ALL_INPUTS)
def test_validate(name: str, corpus: Path, tmp_path: Path, before: dict[str, Any]) -> None:
    _skip_unreadable(name)
    _check(["validate", str(corpus / name)], name, corpus, tmp_path, before)


@pytest.mark.parametrize("name", SAMPLE_INPUTS)
def test_scene(name: str, corpus: Path, tmp_path: Path, before: dict[str, Any]) -> None:
    _skip_unreadable(name)
    args = ["scene", str(corpus / name), "-o", str(tmp_path / "scene.json"), "--planner", "planner"]
    _check(args, name, corpus, tmp_path, before)


# ------------------------------------------------------------------ every other JSON reader: one case per class
# reader -> (arguments with {c} = corpus, {f} = the hostile file, {o} = output folder; marks)
READERS: dict[str, tuple[list[str], tuple[Any, ...]]] = {
    "critique-scene": (["critique", "{f}", "--request", "{c}/request.json"], ()),
    "critique-request": (["critique", "{c}/scene.json", "--request", "{f}"], ()),
    "critique-against": (["critique", "{c}/scene.json", "--request", "{c}/request.json", "--against", "{f}"], ()),
    "plot": (["plot", "{f}", "-o", "{o}/plot.png"], ()),
    "preview": (["preview", "{c}/stems/tone.wav", "--scene", "{f}", "--no-interactive"], ()),
    "live": (["live", "--request", "{f}", "--no-status"], ()),
    "render": (["render", "{c}/stems/tone.wav", "--scene", "{f}", "-o", "{o}/mix.wav", "--quiet"], ()),
    "export": (["export", "{c}/stems/tone.wav", "--scene", "{f}", "-o", "{o}/mix.wav"], ()),
    "data-config": (["data", "{o}/data", "--config", "{f}"], ()),
    "train-config": (["train", "--config", "{f}"], ()),
    "eval-data": (["eval", "--data", "{f}", "--model", "planner", "--limit", "1"], ()),
}


def _args(raw: list[str], corpus: Path, out: Path, hostile: Path | None = None) -> list[str]:
    subs = {"{c}": str(corpus), "{o}": str(out), "{f}": str(hostile)}
    out_args = []
    for a in raw:
        for key, value in subs.items():
            a = a.replace(key, value)
        out_args.append(a)
    return out_args


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("reader", "name"),
    [
        pytest.param(r, n, id=f"{r}-{n}", marks=READERS[r][1])
        for r in READERS
        for n in (SAMPLE_INPUTS if r == "eval-data" else READ_SAMPLE)
    ],
)
def test_reader(reader: str, name: str, corpus: Path, tmp_path: Path, before: dict[str, Any]) -> None:
    _check(_args(READERS[reader][0], corpus, tmp_path, corpus / name), name, corpus, tmp_path, before)


# ------------------------------------------------------------------ flags, outputs and other inputs
def _long(prefix: str = "") -> str:
    return prefix + "h" * ARG


# id -> (arguments with {c} = corpus, {o} = output folder, what the line must name, marks)
FLAGS: dict[str, tuple[list[str], str | tuple[str, ...], tuple[Any, ...]]] = {
    # gravity scene: LLM flags are checked even when no model loads; the seed is a 32-bit seed
    "scene-timeout-negative": (
        ["scene", "{c}/request.json", "--planner", "planner", "--timeout", "-5"],
        "--timeout",
        (),
    ),
    "scene-candidates-0": (["scene", "{c}/request.json", "--candidates", "0"], "--candidates", ()),
    "scene-seed-nan": (["scene", "{c}/request.json", "--seed", "nan"], "--seed", ()),
    "scene-prompt-100k": (["scene", "{c}/request.json", "--planner", "planner", "--prompt", _long()], "prompt", ()),
    "scene-planner-bogus": (["scene", "{c}/request.json", "--planner", "bogus"], "--planner", ()),
    "scene-unknown-flag": (["scene", "{c}/request.json", "--bogus"], "--bogus", ()),
    "scene-long-unknown-flag": (["scene", "{c}/request.json", _long("--")], "unrecognized", ()),
    "scene-output-is-input": (["scene", "{c}/request.json", "-o", "{c}/request.json"], "-o", ()),
    "scene-output-missing-folder": (
        ["scene", "{c}/request.json", "--planner", "planner", "-o", "{o}/no/such/scene.json"],
        "scene.json",
        (),
    ),
    "scene-no-request": (["scene"], "request", ()),
    # gravity plot: the output is checked before the scene is read
    "plot-xyz": (["plot", "{c}/scene.json", "-o", "{o}/x.xyz"], ".xyz", ()),
    "plot-json": (["plot", "{c}/scene.json", "-o", "{o}/x.json"], ".json", ()),
    "plot-missing-folder": (["plot", "{c}/scene.json", "-o", "{o}/no/such/x.png"], "x.png", ()),
    # gravity preview: ranges, then the device (this machine has no sound card)
    "preview-block-0": (
        ["preview", "{c}/stems/tone.wav", "--scene", "{c}/tone_scene.json", "--block", "0"],
        "--block",
        (),
    ),
    "preview-rate-nan": (
        ["preview", "{c}/stems/tone.wav", "--scene", "{c}/tone_scene.json", "--rate", "nan"],
        "--rate",
        (),
    ),
    "preview-start-negative": (
        ["preview", "{c}/stems/tone.wav", "--scene", "{c}/tone_scene.json", "--start", "-1"],
        "--start",
        (),
    ),
    "preview-duration-inf": (
        ["preview", "{c}/stems/tone.wav", "--scene", "{c}/tone_scene.json", "--duration", "inf"],
        "--duration",
        (),
    ),
    "preview-loop-backwards": (
        ["preview", "{c}/stems/tone.wav", "--scene", "{c}/tone_scene.json", "--loop", "5", "1"],
        "--loop",
        (),
    ),
    "preview-no-scene": (["preview", "{c}/stems/tone.wav"], "--scene", ()),
    "preview-head-port-words": (
        ["preview", "{c}/stems/tone.wav", "--scene", "{c}/tone_scene.json", "--head-port", "nine"],
        "--head-port",
        (),
    ),
    "preview-head-port-70000": (
        ["preview", "{c}/stems/tone.wav", "--scene", "{c}/tone_scene.json", "--head-port", "70000"],
        "--head-port",
        (),
    ),
    # gravity render (another session's): hostile HRTFs, outputs and ranges
    "render-hrtf-one-tap": (
        [
            "render",
            "{c}/stems/tone.wav",
            "--scene",
            "{c}/tone_scene.json",
            "-o",
            "{o}/mix.wav",
            "--quiet",
            "--hrtf",
            "{c}/one_tap.sofa",
        ],
        "one_tap.sofa",
        (),
    ),
    "render-hrtf-folder": (
        [
            "render",
            "{c}/stems/tone.wav",
            "--scene",
            "{c}/tone_scene.json",
            "-o",
            "{o}/mix.wav",
            "--quiet",
            "--hrtf",
            "{c}/folder.json",
        ],
        "folder.json",
        (),
    ),
    "render-hrtf-fifo": (
        [
            "render",
            "{c}/stems/tone.wav",
            "--scene",
            "{c}/tone_scene.json",
            "-o",
            "{o}/mix.wav",
            "--quiet",
            "--hrtf",
            "{c}/fifo.json",
        ],
        "fifo.json",
        (),
    ),
    "render-output-mp3": (
        ["render", "{c}/stems/tone.wav", "--scene", "{c}/tone_scene.json", "-o", "{o}/mix.mp3", "--quiet"],
        "mix.mp3",
        (),
    ),
    "render-rate-0": (
        ["render", "{c}/stems/tone.wav", "--scene", "{c}/tone_scene.json", "-o", "{o}/mix.wav", "--rate", "0"],
        "rate",
        (),
    ),
    "render-timeout-negative": (
        ["render", "{c}/stems/tone.wav", "--scene", "{c}/tone_scene.json", "-o", "{o}/mix.wav", "--timeout", "-5"],
        "--timeout",
        (),
    ),
    "render-hop-7": (
        ["render", "{c}/stems/tone.wav", "--scene", "{c}/tone_scene.json", "-o", "{o}/mix.wav", "--hop", "7"],
        "--hop",
        (),
    ),
    "render-map-100k": (
        [
            "render",
            "{c}/stems/tone.wav",
            "--scene",
            "{c}/tone_scene.json",
            "-o",
            "{o}/mix.wav",
            "--map",
            _long("tone="),
        ],
        "stem_map",
        (),
    ),
    # gravity analyze (another session's): stems that are no files, numbers out of range, long text
    "analyze-fifo": (["analyze", "{c}/fifo.json"], "fifo.json", ()),
    "analyze-missing": (["analyze", "{c}/missing.wav"], "missing.wav", ()),
    "analyze-bpm-nan": (["analyze", "{c}/stems", "--bpm", "nan"], "bpm", ()),
    "analyze-max-objects-0": (["analyze", "{c}/stems", "--max-objects", "0"], "max_objects", ()),
    "analyze-style-100k": (["analyze", "{c}/stems", "--style", _long()], "style", ()),
    # gravity live: start-up checks before anything binds or streams
    "live-timeout-negative": (
        ["live", "--request", "{c}/request.json", "--timeout", "-5", "--no-status"],
        "--timeout",
        (),
    ),
    "live-refresh-negative": (
        ["live", "--request", "{c}/request.json", "--refresh", "-1", "--no-status"],
        "--refresh",
        (),
    ),
    "live-soak-nan": (["live", "--request", "{c}/request.json", "--soak", "nan", "--no-status"], "--soak", ()),
    "live-no-source": (["live"], ("--request", "--stems"), ()),
    "live-head-port-bad-host": (
        ["live", "--request", "{c}/request.json", "--head-port", "no host:9100", "--no-status"],
        "no host:9100",  # refused when it binds: the line names the address given
        (),
    ),
    "live-head-port-negative": (
        ["live", "--request", "{c}/request.json", "--head-port", "-1", "--no-status"],
        "--head-port",
        (),
    ),
    "live-target-100k": (
        ["live", "--request", "{c}/request.json", "--target", _long("adm:")],
        "--target",
        (),
    ),
    # gravity data / train: settings by key, with ranges
    "data-set-bogus": (["data", "{o}/data", "--set", "bogus=1"], "bogus", ()),
    "data-set-n-train-abc": (["data", "{o}/data", "--set", "n_train=abc"], "n_train", ()),
    "data-set-100k-value": (["data", "{o}/data", "--set", "n_train=" + _digits(ARG)], "n_train", ()),
    "data-set-100k-key": (["data", "{o}/data", "--set", _long() + "=1"], "unknown setting", ()),
    "data-workers-0": (["data", "{o}/data", "--workers", "0"], "--workers", ()),
    "train-set-bogus": (["train", "--set", "bogus=1"], "bogus", ()),
    "train-set-no-equals": (["train", "--set", "lr"], "lr", ()),
    "train-method-bogus": (["train", "--method", "bogus"], "--method", ()),
    # gravity pairs / eval / convert: checked before a model loads
    "pairs-candidates-0": (["pairs", "{c}/jsonl", "{o}/pairs", "--candidates", "0"], "--candidates", ()),
    "pairs-limit-negative": (["pairs", "{c}/jsonl", "{o}/pairs", "--limit", "-1"], "--limit", ()),
    "pairs-margin-nan": (["pairs", "{c}/jsonl", "{o}/pairs", "--margin", "nan"], "--margin", ()),
    "pairs-data-missing": (["pairs", "{c}/nowhere", "{o}/pairs"], "nowhere", ()),
    "eval-limit-negative": (
        ["eval", "--data", "{c}/request.json", "--model", "planner", "--limit", "-5"],
        "--limit",
        (),
    ),
    "eval-timeout-negative": (
        ["eval", "--data", "{c}/request.json", "--model", "planner", "--timeout", "-5"],
        "--timeout",
        (),
    ),
    "eval-data-missing": (["eval", "--data", "{c}/missing.jsonl", "--model", "planner"], "missing.jsonl", ()),
    "convert-adapter-missing": (["convert", "{c}/nowhere", "{o}/out.gguf"], "nowhere", ()),
    "convert-adapter-fifo": (["convert", "{c}/fifo.json", "{o}/out.gguf"], "fifo.json", ()),
    "convert-train-config-deep": (["convert", "{c}/adapter", "{o}/out.gguf"], "train_config.json", ()),
    # gravity models / validate / the command itself
    "models-fifo": (["models", "--model", "{c}/fifo.json"], "fifo.json", ()),
    "models-folder": (["models", "--model", "{c}/folder.json"], "folder.json", ()),
    "validate-none": (["validate"], "files", ()),
    "no-command": ([], "COMMAND", ()),
    "unknown-command": (["bogus"], "bogus", ()),
}


@pytest.mark.corpus
@pytest.mark.parametrize(("case"), [pytest.param(k, id=k, marks=v[2]) for k, v in FLAGS.items()])
def test_flag(case: str, corpus: Path, tmp_path: Path, before: dict[str, Any]) -> None:
    raw, expect, _ = FLAGS[case]
    _check(_args(raw, corpus, tmp_path), expect, corpus, tmp_path, before)


#: Range checks of numeric flags, in-process (each subprocess costs ~0.4 s; these all go through
#: argparse types or the config classes' checks, which the subprocess cases above exercise).
RANGES: dict[str, tuple[list[str], str]] = {
    "timeout-nan": (["scene", "--timeout", "nan"], "--timeout"),
    "timeout-inf": (["scene", "--timeout", "inf"], "--timeout"),
    "candidates-17": (["scene", "--candidates", "17"], "--candidates"),
    "temperature-negative": (["scene", "--temperature", "-1"], "--temperature"),
    "top-p-0": (["scene", "--top-p", "0"], "--top-p"),
    "top-p-1.5": (["scene", "--top-p", "1.5"], "--top-p"),
    "ctx-0": (["scene", "--ctx", "0"], "--ctx"),
    "threads-0": (["scene", "--threads", "0"], "--threads"),
    "n-gpu-layers--2": (["scene", "--n-gpu-layers", "-2"], "--n-gpu-layers"),
    "max-draft-negative": (["scene", "--max-draft", "-1"], "--max-draft"),
    "llm-seed-negative": (["scene", "--llm-seed", "-3"], "--llm-seed"),
    "seed-negative": (["scene", "--seed", "-1"], "--seed"),
    "seed-2-40": (["scene", "--seed", str(2**40)], "--seed"),
    "seed-5000-digits": (["scene", "--seed", _digits(5000)], "--seed"),
    "seed-float": (["scene", "--seed", "1.5"], "--seed"),
    "preview-block-huge": (["preview", "--block", str(2**20)], "--block"),
    "preview-rate-1": (["preview", "--rate", "1"], "--rate"),
    "preview-start-nan": (["preview", "--start", "nan"], "--start"),
    "preview-duration-0": (["preview", "--duration", "0"], "--duration"),
    "preview-loop-inf": (["preview", "--loop", "0", "inf"], "--loop"),
}


@pytest.mark.parametrize("case", RANGES)
def test_range(case: str, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A numeric flag out of range or not a finite number: exit 2, one line naming the flag, nothing written."""
    from gravity.cli import main

    argv, flag = RANGES[case]
    inputs = (
        [str(corpus / "request.json"), "--planner", "planner", "-o", str(tmp_path / "s.json")]
        if argv[0] == "scene"
        else [str(corpus / "stems/tone.wav"), "--scene", str(corpus / "tone_scene.json"), "--no-interactive"]
    )
    try:
        code = main([argv[0], *inputs, *argv[1:]])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and flag in lines[0] and len(lines[0]) <= LINE_MAX, err
    assert list(tmp_path.iterdir()) == []


def _output_devices() -> int:
    try:
        import sounddevice as sd

        return sum(1 for d in sd.query_devices() if d["max_output_channels"] > 0)
    except OSError:  # no PortAudio at all: no device either
        return 0


def test_preview_without_a_sound_card_says_so(corpus: Path, tmp_path: Path, before: dict[str, Any]) -> None:
    """A server or a container has no output device: one line saying so and how to list them."""
    if _output_devices():
        pytest.skip("this machine has an output device: preview would play")
    args = ["preview", str(corpus / "stems/tone.wav"), "--scene", str(corpus / "tone_scene.json"), "--no-interactive"]
    line = _check(args, "no audio output device", corpus, tmp_path, before)
    assert "--list-devices" in line
    line = _check([*args, "--device", "3"], "no audio output device", corpus, tmp_path, before)
    assert "--list-devices" in line


def test_a_valid_validate_still_passes(corpus: Path, tmp_path: Path) -> None:
    """The corpus' good files are good: every failure above is the hostile input's."""
    r = _gravity(["validate", str(corpus / "request.json"), str(corpus / "scene.json")], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(": valid ") == 2 and r.stderr == ""


def test_utf8_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """RFC 8259 lets a parser ignore a UTF-8 BOM (Windows editors write one): it is not an error."""
    p = tmp_path / "bom.json"
    p.write_bytes(b"\xef\xbb\xbf" + SAMPLE_REQUEST.read_bytes())
    r = _gravity(["validate", str(p)], tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"{p}: valid request", r.stderr


def test_several_problems_one_line_each_and_bounded(tmp_path: Path) -> None:
    """250 bad stems: a header, the first 20 problems one line each, then a count of the rest."""
    doc = _request(stems=[{"id": f"s{i}", "class": "bogus"} for i in range(250)], max_objects=4)
    p = tmp_path / "many_bad.json"
    p.write_text(json.dumps(doc))
    r = _gravity(["scene", str(p), "--planner", "planner"], tmp_path)
    lines = r.stderr.splitlines()
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert lines[0] == "gravity: error: 250 problems:"
    assert len(lines) == 1 + 20 + 1 and lines[-1] == "  ... and 230 more"
    assert all(str(p) in line and "class" in line for line in lines[1:-1])
    v = _gravity(["validate", str(p)], tmp_path)  # validate: one line a problem, at most 20, then the count
    lines = v.stderr.splitlines()
    assert v.returncode == 1 and len(lines) == 21 and lines[-1] == f"{p}: ... and 230 more issues"


def test_broken_pipe_is_quiet(tmp_path: Path) -> None:
    """``gravity scene ... | true``: the reader is gone before the scene is written; exit 141
    (128 + SIGPIPE, as a shell reports it), nothing on stderr.
    """
    big = json.loads(SAMPLE_REQUEST.read_text())
    big["stems"] = [{"id": f"s{i}", "class": "pad"} for i in range(64)]
    big["max_objects"] = 64
    big["rules"] = []
    p = tmp_path / "big.json"
    p.write_text(json.dumps(big))
    cmd = f"{sys.executable} -m gravity scene {p} --planner planner | true"
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert r.returncode == 141 and r.stderr == "", r.stderr


def test_ctrl_c_exits_130_quietly() -> None:
    """SIGINT while a subcommand runs (here one blocked reading stdin): exit 130, nothing on stderr."""
    import signal
    import time

    code = (
        "import sys, gravity.cli as c\n"
        "def run(args):\n"
        "    print('ready', flush=True)\n"
        "    sys.stdin.read()\n"
        "    return 0\n"
        "c.importlib.import_module('gravity.cli.models').run = run\n"
        "sys.exit(c.main(['models']))\n"
    )
    # A shell starts background jobs with SIGINT ignored, children inherit that, and Python then
    # installs no KeyboardInterrupt handler: give the child the default disposition, as a terminal does.
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 - no threads in the child yet
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    # wait with stdin still open: communicate() would close it, and an end of file that reaches
    # the blocked read before the signal does ends the command normally (exit 0)
    proc.wait(timeout=RUN_TIMEOUT_S)
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.close()
    err = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == 130 and err == "", err


def test_quote_bounds_any_value() -> None:
    """The one helper every error uses to show a user's value: ~200 characters at most, never raises."""
    from gravity.errors import QUOTE_LIMIT, clip, quote

    assert quote("slightly left") == "'slightly left'"  # short: exactly repr
    assert quote("a" * BIG) == "'" + "a" * QUOTE_LIMIT + "'... (1,000,000 characters)"
    big = int(_digits(4000))
    assert quote(big) == "<integer of about 4000 digits>"
    assert quote(10**50) == str(10**50)
    assert len(quote(list(range(100_000)))) <= QUOTE_LIMIT + 20 and quote([1, 2]) == "[1, 2]"
    assert len(quote({"k" * 10_000: 1})) <= QUOTE_LIMIT + 20
    assert clip("abc") == "abc" and clip("x" * 300) == "x" * QUOTE_LIMIT + "... (300 characters)"


def test_read_json_bounds_are_stated() -> None:
    """The limits the errors quote, and the largest documents the schema admits fit inside them."""
    from gravity.schema import MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_JSON_INT, check_request

    assert (MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_JSON_INT) == (4 * 2**20, 32, 2**63 - 1)
    stems = [{"id": f"s{i:03d}", "class": "pad", "hint": "h" * 500} for i in range(256)]
    biggest = _request(stems=stems, max_objects=128, rules=[], prompt="p" * 2000)
    assert check_request(biggest) == [] and len(json.dumps(biggest)) < MAX_JSON_BYTES / 20
    too_many = check_request(_request(stems=stems + [{"id": "x", "class": "pad"}]))
    assert [(i.path, i.message, i.rule) for i in too_many] == [("stems", "257 entries; the limit is 256", "maxItems")]
