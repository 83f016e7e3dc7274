# Two commands do all the set-up:  `make demo` (install + run the flagship pipeline)
# and `make test` (install everything + run the suite). CI runs `make test` too.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# CPU wheel unless a GPU is present: an unpinned torch pulls a multi-GB CUDA build.
TORCH  := $(shell command -v nvidia-smi >/dev/null 2>&1 && echo torch || echo torch==2.13.0)
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE  ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test install install-all browser clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

install: $(PY)
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e .

install-all: $(PY)
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[all]'

demo: install
	$(VENV)/bin/curate run pipelines/support.yaml
	$(VENV)/bin/curate datasets show support

# Debian chromium + chromedriver for the browser tests (Argilla UI, HTML reports); needs root or sudo.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium chromium-driver; \
	fi

test: install-all browser
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) datasets runs
