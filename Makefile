# Two commands do everything on a fresh machine (see README.md):
#   make quickstart   # bootstrap the environment, then run the embedded default end to end
#   make test         # bootstrap the environment, then run the test suite
SHELL := /bin/bash
PY = $(shell bash tools/setup_env.sh --which-python)

.PHONY: env quickstart test test-fast
env:
	bash tools/setup_env.sh

quickstart: env
	$(PY) tools/quickstart.py --work-dir work_dirs/quickstart

test: env
	$(PY) -m pytest -q tests

test-fast: env
	$(PY) -m pytest -q -m "not slow" tests
