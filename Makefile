# sarflow: one-command set-up, demo and tests on a fresh Debian-like machine (as root).
#   make demo   set everything up, then run the synthetic event end to end (native engine)
#   make test   set everything up, then run the test suite
# Set-up is idempotent: a second run only checks stamps and returns in seconds.

PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
PIP      := $(PY) -m pip --disable-pip-version-check -q
STAMP    := $(VENV)/.sarflow-installed
RIO_WHEEL := $(VENV)/.rasterio-build
APT_PKGS := libgdal-dev gdal-bin proj-data libsqlite3-mod-spatialite
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_DIR ?= demo-output
PYTEST_ARGS ?=

.PHONY: setup system-deps demo test bench clean

setup: $(STAMP)

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
	@# rasterio's wheel bundles its own GDAL, which crashes a process that also loads the
	@# system GDAL (osgeo): it is built from source against the system library.  That
	@# build is the longest step, so it runs in the background beside the other installs
	@# and its wheel replaces PyPI's at the end.
	@rm -rf $(RIO_WHEEL) && mkdir -p $(RIO_WHEEL) && \
	  if $(PY) -c "import rasterio; from osgeo import gdal; import sys; sys.exit(rasterio.__gdal_version__ != gdal.__version__)" 2>/dev/null; then \
	    echo ok > $(RIO_WHEEL)/status; \
	  else \
	    echo "[setup] building rasterio against the system GDAL (in the background)"; \
	    ( $(PIP) wheel -c constraints.txt --no-binary rasterio --no-deps -w $(RIO_WHEEL) rasterio \
	        > $(RIO_WHEEL)/build.log 2>&1 && echo built > $(RIO_WHEEL)/status \
	        || echo failed > $(RIO_WHEEL)/status ) & \
	  fi
	@$(PIP) install -c constraints.txt numpy
	@$(PY) -c "from osgeo import gdal_array" 2>/dev/null || \
	  $(PIP) install --no-build-isolation --no-cache-dir "gdal==$$(gdal-config --version)"
	@$(PIP) install -c constraints.txt -e ".[dev]"
	@while [ ! -s $(RIO_WHEEL)/status ]; do sleep 2; done; \
	  case "$$(cat $(RIO_WHEEL)/status)" in \
	    built) $(PIP) install --force-reinstall --no-deps $(RIO_WHEEL)/rasterio-*.whl ;; \
	    ok) ;; \
	    *) cat $(RIO_WHEEL)/build.log; echo "[setup] building rasterio failed (log above)"; exit 1 ;; \
	  esac
	@$(PY) -c "import rasterio; from osgeo import gdal_array, gdal; import sys, sarflow; sys.exit(rasterio.__gdal_version__ != gdal.__version__)" || \
	  { echo "[setup] rasterio does not use the system GDAL"; exit 1; }
	@rm -rf $(RIO_WHEEL)
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/sarflow demo $(DEMO_DIR)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
