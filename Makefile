# Two commands do all set-up on a fresh machine:
#   make demo   install into .venv and run the main job on the embedded defaults
#   make test   install (with test extras) and run the test-suite (all but `slow`; see test-fast, test-all)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
OUT    ?= out

# Debian tools the tests use as independent references, as command:package (ffmpeg: sofalizer,
# ebur128; sox: test signals; oscdump/oscsend: an independent OSC peer; jackd + PortAudio: a
# real audio server, dummy backend, for the realtime preview; chromium: the browser UI's tests,
# driven by playwright; ardour: a real DAW, headless (ardour7-lua), for gravity live's Ardour profile).
SYS_TOOLS ?= ffmpeg:ffmpeg sox:sox oscdump:liblo-tools jackd:jackd2 chromium:chromium ardour:ardour
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo check test test-fast test-all install sysdeps ear-venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# llama-cpp-python has no binary wheels on PyPI. Its default build is -march=native, which can
# pick AMX kernels that crash in some VMs and cannot move between machines, so we build one
# portable AVX2 wheel once per machine and keep it outside the checkout.
LLAMA_VERSION    ?= 0.3.36
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
WHEELS           ?= $(HOME)/.cache/gravity/wheels/llama-$(LLAMA_VERSION)-avx2

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@ls $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || { \
	  echo "building llama-cpp-python $(LLAMA_VERSION) (portable AVX2; ~10 min on 2 cores, once per machine)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip wheel --quiet --no-cache-dir --no-deps \
	    "llama-cpp-python==$(LLAMA_VERSION)" -w $(WHEELS); }
	$(BIN)/python -m pip install --quiet $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

# The tests also exercise training (tiny models on the CPU): torch comes first, pinned to the
# CPU wheel on local disk (an open range would pull a multi-GB CUDA build).
$(VENV)/.installed-train: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev,train]"
	touch $@

# The renderer's kernels compiled ahead of time for this machine (renderer/aot.py, ~20 s): a render
# then starts without importing numba (0.3-0.7 s less per process). Rebuilt when the kernels change;
# where it cannot be built (e.g. no C compiler) numba compiles them in each process instead.
$(VENV)/.kernels: renderer/kernels.py $(VENV)/.installed
	-$(BIN)/python -m renderer.aot
	touch $@

install: $(VENV)/.installed $(VENV)/.kernels

# The main job on the embedded defaults: synthesise the example song's stems, analyse them,
# plan a scene and render it binaurally (MIT KEMAR), with the scene JSON and its picture.
demo: install
	$(BIN)/python examples/make_stems.py $(OUT)/stems
	$(BIN)/gravity render $(OUT)/stems -o $(OUT)/demo.wav
	@echo "listen: $(OUT)/demo.wav   scene: $(OUT)/demo.scene.json   picture: $(OUT)/demo.png"

sysdeps:
	@missing=""; for t in $(SYS_TOOLS); do command -v $${t%%:*} >/dev/null || missing="$$missing $${t#*:}"; done; \
	ldconfig -p | grep -q libportaudio.so.2 || missing="$$missing libportaudio2"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The EBU ADM Renderer (`ear`, ITU-R BS.2127): the tests' independent reader of ADM BW64 exports and
# reference for loudspeaker renders. It pins numpy 1.x, so it lives in its own venv, never in ours.
EAR_VENV    ?= .venv-ear
EAR_VERSION ?= 2.1.0

$(EAR_VENV)/.installed:
	$(PYTHON) -m venv $(EAR_VENV)
	$(EAR_VENV)/bin/python -m pip install --quiet "ear==$(EAR_VERSION)"
	touch $@

ear-venv: $(EAR_VENV)/.installed

# Test tiers (pytest markers, registered in pyproject.toml):
#   make test-fast  everyday work: no model generation (embedded or tiny), no training, nothing slow, no
#                   realtime audio (JACK, Ardour), no hostile-input corpus sweeps (a process per case; one
#                   sample per command stays), one pytest-xdist worker per core, a test file per worker
#                   (< 3 min on 2 cores; the realtime tests want a core of their own, make test runs them)
#   make test       the README's and CI's command (.ci/run): everything but `slow`, e.g. the embedded
#                   model on a representative 40 of its 200 random and hostile requests (< 10 min on 2 cores)
#   make test-all   everything, `slow` included (the full 200 requests)
PYTEST = $(BIN)/python -m pytest

test-fast: $(VENV)/.installed $(VENV)/.kernels sysdeps ear-venv
	$(PYTEST) -m "not llm and not train and not slow and not realtime and not corpus" -n auto --dist loadfile

# Static checks, before the tests in `make test`: lint (pyfar's rule selection, numpy docstrings),
# formatting, types, and the house's import contracts (pyproject.toml).
check: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(VENV)/.installed-train $(VENV)/.kernels sysdeps ear-venv check
	$(PYTEST) -m "not slow"

test-all: $(VENV)/.installed-train $(VENV)/.kernels sysdeps ear-venv
	$(PYTEST)

clean:
	rm -rf $(VENV) $(EAR_VENV) $(OUT)
