# Two entry points for a fresh clone: `make test` and `make demo`.
# Each (re)creates .venv only when what it depends on changed, so a second run
# spends seconds on set-up.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SITE := $(VENV)/lib/python3.11/site-packages
DEPS := $(VENV)/.deps-installed
STUBS := $(VENV)/typestubs/.ready
VISION_MSGS := $(VENV)/.vision-msgs-built
TRT_STUBS_PIN := $(shell sed -n 's/^TENSORRT_STUBS = "\(.*\)"/\1/p' setup.py)
PYTEST_ARGS ?=

.PHONY: setup test lint typecheck demo clean

setup: $(DEPS) $(STUBS) $(VISION_MSGS)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(DEPS): setup.py package.xml | $(PY)
	$(PY) -m pip install --quiet -e '.[runtime,ros,ros-build,training,dev]'
	touch $@

$(STUBS): $(DEPS) .ci/tensorrt_stubs.py
	$(PY) -m pip install --quiet --no-deps '$(TRT_STUBS_PIN)'
	$(PY) .ci/tensorrt_stubs.py $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') $(VENV)/typestubs
	touch $@

$(VISION_MSGS): $(DEPS) $(wildcard resource/vision_msgs/msg/*.msg) resource/vision_msgs/CMakeLists.txt resource/vision_msgs/build.sh
	resource/vision_msgs/build.sh $(VENV)
	touch $@

lint: setup
	$(VENV)/bin/ruff check mtl_perception test launch .ci

typecheck: setup
	$(VENV)/bin/mypy

test: setup lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; echo $$rc > $(VENV)/pytest-exit-code; exit $$rc

demo: setup
	@echo "The demo is not built yet (issue: demo models and make demo)."

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
