# Two commands, each installs what it needs on first use:
#   make run    the main job: reproduce the paper (Table 1, figures, report) with the shipped models
#   make test   the test suite
PYTHON ?= python3
VENV := .venv
INSTALLED := $(VENV)/.installed

# Offline use: the canonical dataset files beside the checkout, when they are there.
ifneq ($(wildcard ../shared/data),)
export LATENTJAX_DATA_DIR ?= $(abspath ../shared/data)
endif

.PHONY: run test install docs
install: $(INSTALLED)

# The exact tested set (requirements/constraints.txt) within pyproject's ranges: reproducible.
# Silent unless it fails (-qq: pip's errors only).
$(INSTALLED): pyproject.toml requirements/constraints.txt
	@echo "Installing latentjax and its dependencies into $(VENV) (first time only, a few minutes)"
	@$(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install -qq --upgrade pip
	@$(VENV)/bin/python -m pip install -qq -c requirements/constraints.txt -e '.[all,dev]'
	@touch $@

run: $(INSTALLED)
	@$(VENV)/bin/latentjax reproduce --config configs/default.py

# Two test processes (pytest-xdist; each file stays in one, so its fixtures are built once):
# XLA compiles on one core, and the suite is mostly compiling, so a second process keeps both
# of CI's cores busy. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
test: $(INSTALLED)
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# The API reference from the docstrings (also built, warnings as errors, by the suite).
docs: $(INSTALLED)
	$(VENV)/bin/python -m sphinx -W --keep-going -b html docs/api docs/api/_build/html
