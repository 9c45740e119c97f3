# Two commands do all set-up on a fresh machine:
#   make demo   install into .venv and run the main job on the embedded defaults
#   make test   install (with test extras) and run the whole test-suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
OUT    ?= out

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	mkdir -p $(OUT)
	$(BIN)/gravity scene examples/sample_input.json -o $(OUT)/scene.json
	$(BIN)/gravity plot $(OUT)/scene.json -o $(OUT)/scene.png
	@echo "scene: $(OUT)/scene.json  picture: $(OUT)/scene.png"

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(OUT)
