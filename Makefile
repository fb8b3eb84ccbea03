# The two commands of the README:  `make demo` (the main job) and `make test`.
# Both create the virtual environment in $(VENV) on first use (torch from requirements-torch.txt, then the package).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# One dependency hash for this Makefile and CI (.ci/run): setup.cfg, pyproject.toml and requirements-torch.txt.
DEPS_HASH := $(shell .ci/deps_hash)
ifeq ($(DEPS_HASH),)
$(error .ci/deps_hash printed no dependency hash)
endif
STAMP := $(VENV)/.installed-$(DEPS_HASH)
# The editable install points the venv at one checkout; this stamp names the checkout (a cached venv may come from
# another clone), so that a target re-installs only when the venv points elsewhere or the dependencies changed.
CHECKOUT_STAMP := $(VENV)/.checkout-$(shell printf '%s' "$(CURDIR)" | sha256sum | cut -c1-12)
ARGS ?=

.PHONY: install test test-slow demo app lint format-check check-gpu

# Each step's failure stops make with pip's own error message (quiet only on success); the stamp is written last.
$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -r requirements-torch.txt
	$(PY) -m pip install -q -c requirements-torch.txt -e ".[dev]"
	@rm -f $(VENV)/.installed-*
	touch $(STAMP)

# pip's output goes to a log to keep a re-pointing quiet; on failure the log is printed and make stops.
$(CHECKOUT_STAMP): $(STAMP)
	@$(PY) -m pip install -q --no-deps --no-build-isolation -e . > $(VENV)/.editable-install.log 2>&1 \
		|| { status=$$?; cat $(VENV)/.editable-install.log >&2; \
		     echo "error: pip install -e . exited $$status (log: $(VENV)/.editable-install.log)" >&2; exit 1; }
	@rm -f $(VENV)/.checkout-*
	@touch $@
	@echo "$(VENV) now runs this checkout ($(CURDIR))"

# Quiet when nothing changed: pip runs only when the venv is new, the dependencies changed or it ran another clone.
install: $(CHECKOUT_STAMP)

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

demo: install
	$(PY) scripts/demo.py $(ARGS)

# The web app on the main job's model and its test split's clips (after `make demo`), on http://127.0.0.1:7860.
DEMO_DIR ?= runs/demo
app: install
	@test -d $(DEMO_DIR)/tfcovr-synthetic || { echo "no model in $(DEMO_DIR)/tfcovr-synthetic: run make demo first"; exit 1; }
	$(PY) scripts/app.py --model $(DEMO_DIR)/tfcovr-synthetic --videos $(DEMO_DIR)/data/clips/test.parquet \
		--video-root $(DEMO_DIR)/data $(ARGS)

lint: install
	$(VENV)/bin/ruff check .

# ruff's formatter is the project's style (pyproject.toml, [tool.ruff.format]); CI runs this after lint.
format-check: install
	$(VENV)/bin/ruff format --check .

# The CUDA paths against the CPU path on tiny data, and the GPU timings (a dry run on CPU-only machines).
check-gpu: install
	PYTHON=$(PY) scripts/check_gpu.sh $(ARGS)
