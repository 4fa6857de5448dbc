# facefind: one command to set up and run, one to set up and test.
#   make run GALLERY=path/to/photos   index the photos into data/ and serve them on :8000
#   make test                         set up everything the tests need and run them
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
GALLERY ?= gallery
DATA_DIR ?= data
PORT ?= 8000
# PyTorch's CPU-only wheels, where this machine reaches PyTorch's index:
#   make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=

.PHONY: setup run index serve test test-deps lint format clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, pinned to the releases this machine carries (a range would pull a CUDA build)
	$(PIP) install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) install --quiet -e ".[train,dev]"
	touch $@

# YuNet (OpenCV model zoo, pinned by checksum). Where it cannot be downloaded, facefind
# detects with Haar and says so; `python -m indexer fetch-detector --from FILE` installs a copy.
models/face_detection_yunet.onnx: | $(VENV)/.installed
	-$(PY) -m indexer fetch-detector

setup: $(VENV)/.installed models/face_detection_yunet.onnx

index: setup
	$(PY) -m indexer build "$(GALLERY)" --index "$(DATA_DIR)"

serve: setup
	$(PY) -m service --data-dir "$(DATA_DIR)" --port $(PORT)

run: index serve

# The tests also cover distillation from dlib's encoder and the benchmarks' peer system:
# both need dlib (training and benchmarks only; serving never imports it).
$(VENV)/.installed-test: $(VENV)/.installed requirements-teacher.txt benchmarks/requirements-peer.txt
	$(PIP) install --quiet -r requirements-teacher.txt -r benchmarks/requirements-peer.txt
	$(PIP) install --quiet --no-deps face_recognition==1.3.0
	touch $@

test-deps: $(VENV)/.installed-test
	bash scripts/install-test-deps.sh
	# The tests' YuNet is the copy beside the repository (the same bytes as the zoo's).
	$(PY) -m indexer fetch-detector --from ../shared/models/face_detection_yunet.onnx

test: setup test-deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest -q

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format:
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
