# sarflow: one-command set-up, demo and tests on a fresh Debian-like machine (as root).
#   make demo   set everything up, then run the synthetic event end to end (native engine)
#   make test   set everything up (and the tests' reference venv, in parallel), then run the tests
# Set-up is idempotent: a second run only checks stamps and returns in seconds.

PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
PIP      := $(PY) -m pip --disable-pip-version-check -q
STAMP    := $(VENV)/.sarflow-installed
VENV_REF ?= .venv-ref
REF_PIP  := $(VENV_REF)/bin/python -m pip --disable-pip-version-check -q
REF_STAMP := $(VENV_REF)/.sarflow-reference
APT_PKGS := libgdal-dev gdal-bin proj-data libsqlite3-mod-spatialite
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_DIR ?= demo-output
PYTEST_ARGS ?=

.PHONY: setup reference system-deps demo test bench clean

# One GDAL per process: sarflow's venv has the system GDAL's bindings and no rasterio; the
# reference venv has rasterio (its own GDAL) and no osgeo.
export ONE_GDAL_MAIN = import importlib.util as u, sys; from osgeo import gdal_array; import sarflow; sys.exit(u.find_spec("rasterio") is not None)
export ONE_GDAL_REF = import importlib.util as u, sys; import sarsen, xarray_sentinel, rasterio; sys.exit(u.find_spec("osgeo") is not None)

setup: $(STAMP)

reference: $(REF_STAMP)

system-deps:
	@if ! command -v gdal-config >/dev/null 2>&1 || ! dpkg -s $(APT_PKGS) >/dev/null 2>&1; then \
	  echo "[setup] installing Debian packages: $(APT_PKGS)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PKGS) >/dev/null; \
	fi

$(STAMP): setup.cfg pyproject.toml constraints.txt Makefile | system-deps
	@echo "[setup] virtualenv $(VENV) (numpy, GDAL $$(gdal-config --version) bindings, pinned packages)"
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade "pip>=24" setuptools wheel
	@$(PIP) install -c constraints.txt numpy
	@$(PY) -c "from osgeo import gdal_array" 2>/dev/null || \
	  $(PIP) install --no-build-isolation --no-cache-dir "gdal==$$(gdal-config --version)"
	@$(PIP) install -c constraints.txt -e ".[dev]"
	@# The tests' references moved to $(VENV_REF); a venv made before that may still hold them.
	@$(PIP) uninstall -y -q sarsen xarray-sentinel rioxarray rasterio 2>/dev/null || true
	@$(PY) -c "$$ONE_GDAL_MAIN" || \
	  { echo "[setup] rasterio is installed in $(VENV): its wheel bundles a second GDAL; pip uninstall rasterio"; exit 1; }
	@# numba compiles the native engine's kernels once and caches them (sarflow/sentinel1/
	@# __pycache__): a tiny simulated event through the engine does it here, not in the demo.
	@echo "[setup] compiling the native engine's kernels (numba, cached)"
	@tmp=$$(mktemp -d) && $(VENV)/bin/sarflow -q simulate $$tmp/ev --size 64 --scenes-per-window 1 >/dev/null && \
	  $(VENV)/bin/sarflow -q preprocess $$tmp/ev/event.yaml --workers 1 --no-progress >/dev/null; \
	  rc=$$?; rm -rf $$tmp; [ $$rc = 0 ] || { echo "[setup] the native engine failed on a tiny simulated event"; exit 1; }
	@touch $(STAMP)

# sarsen and xarray-sentinel, the independent references the tests compare with, read rasters
# through rasterio, whose wheel bundles its own GDAL; a process that also loads the system
# GDAL (osgeo, sarflow's) crashes. So they get their own virtualenv without osgeo, and the
# tests talk to them through a pipe (tests/reference.py). No rasterio build from source.
$(REF_STAMP): tests/reference-requirements.txt constraints.txt Makefile
	@echo "[setup] reference virtualenv $(VENV_REF) (sarsen, xarray-sentinel: the tests' references)"
	@[ -x $(VENV_REF)/bin/python ] || $(PYTHON) -m venv $(VENV_REF)
	@$(REF_PIP) install -c constraints.txt -r tests/reference-requirements.txt
	@$(VENV_REF)/bin/python -c "$$ONE_GDAL_REF" || \
	  { echo "[setup] osgeo is importable in $(VENV_REF): remove it there"; exit 1; }
	@touch $(REF_STAMP)

demo: setup
	$(VENV)/bin/sarflow demo $(DEMO_DIR)

test:
	@$(MAKE) --no-print-directory -j2 setup reference
	$(PY) -m pytest $(PYTEST_ARGS)

bench:
	@$(MAKE) --no-print-directory -j2 setup reference
	@# bench_hokkaido.py (a paper-sized event end to end, about 45 min on 2 cores) runs alone.
	@for b in bench/bench_*.py; do [ $$b = bench/bench_hokkaido.py ] && continue; \
	  echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(VENV_REF) $(DEMO_DIR) .pytest_cache
