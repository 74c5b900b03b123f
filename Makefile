# dos2hl: `make demo` and `make test` set themselves up on a fresh machine (uv into .uv/, the locked
# environment into .venv/) and are fast to re-run when nothing changed.
PY311 ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.8
UV := .uv/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced

export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export PREFECT_HOME := $(abspath .prefect-home)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_LOGGING_LEVEL := WARNING
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 60
export RAY_AUTH_MODE := disabled
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export RAY_USAGE_STATS_ENABLED := 0
# every process of a run or a test (CLI children, flow runs, Ray workers) imports prefect, ray and pyarrow:
# from source that is ~10 s of compiling each on this machine, from bytecode ~4 s. uv compiles the
# environment's packages once when it syncs, and our own modules write theirs on first import (an
# inherited PYTHONDONTWRITEBYTECODE would make every process compile them again)
export UV_COMPILE_BYTECODE := 1
export PYTHONDONTWRITEBYTECODE :=

.PHONY: demo test bench slow lint clean chromium

$(UV):
	$(PY311) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) 2>/dev/null || \
	  .uv/bin/pip install --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): pyproject.toml uv.lock Makefile | $(UV)
	$(UV) sync --frozen --all-extras --python $(PY311) --quiet
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/python -m flows.demo --out demo

test: lint chromium
	$(VENV)/bin/python -m pytest -m "not slow" -n 2 --dist loadfile --durations=20

# the tests make test leaves out for its 15-minute budget (marked slow): OAuth tokens expiring under two Ray
# workers and at 60 s lifetimes, a spent day under two Ray workers, the OAuth flow, the CLI's progress run,
# the generator at scale
slow: $(STAMP) chromium
	$(VENV)/bin/python -m pytest -m slow -n 2 --dist loadfile

bench: $(STAMP) slow
	$(VENV)/bin/python bench/stage.py
	$(VENV)/bin/python bench/generate.py
	$(VENV)/bin/python bench/governor.py --quick
	$(VENV)/bin/python bench/migrate.py --quick
	$(VENV)/bin/python bench/scale.py --quick
	$(VENV)/bin/python bench/propose.py --quick

# report.html is checked in headless Chromium (tests/execution/test_report_html.py): Debian's `chromium`,
# installed here when missing (as root, else through sudo), never by Playwright's own browser download.
# Quick when present: one `command -v`.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else \
	    echo "make chromium: chromium is missing and this user is not root and has no sudo;" \
	         "install it as root: apt-get install --no-install-recommends chromium" >&2; exit 1; fi; \
	  command -v apt-get >/dev/null 2>&1 || { echo "make chromium: no apt-get here;" \
	    "install Chromium so that chromium is on PATH" >&2; exit 1; }; \
	  echo "make chromium: installing Debian's chromium (report.html's browser test)"; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends chromium >/dev/null && command -v chromium; }

# ruff's rule set and mypy's settings are pyproject.toml's (E, F, I, B at 110 columns; strict typed core)
lint: $(STAMP)
	$(VENV)/bin/ruff check dos2hl flows tasks bench tests
	$(VENV)/bin/mypy

clean:
	rm -rf demo .pytest_cache .hypothesis .prefect-home
