# One entry point: every target sets up its own virtual environment first.
#   make test    set up, then run the test suite
#   make test-fast  the suite without the slow end-to-end pipeline test
#   make demo    set up, then run the whole pipeline on the generated toy dataset (CPU)
#   make bench   set up, then run the speed benchmark
#   make quality set up, then run the quality benchmark (about 1.5 hours on 2 cores; not in CI)
#   make gpu-check  on a GPU machine: build features, GPUs, device tests, one step and eval per
#                image on one GPU and on --gpus 0,0, beside the CPU (fails in one line without)
# GPU machines: make setup MXNET=mxnet-cu117==1.9.1   (any mxnet-cu1xx 1.9.1 wheel)
# An MXNet already installed (NVIDIA's NGC container): make setup MXNET=system  (the venv sees
#   the system's packages; MXNet and its numpy are not reinstalled)
PYTHON ?= python3
VENV ?= .venv
MXNET ?= mxnet==1.9.1
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(subst =,_,$(MXNET))

.PHONY: setup test test-fast demo bench quality gpu-check clean

setup: $(STAMP)

ifeq ($(MXNET),system)
$(STAMP): dependencies.txt
	@$(PYTHON) -c "import mxnet" 2>/dev/null || { echo "MXNET=system: $(PYTHON) has no MXNet \
	to use (NVIDIA's NGC MXNet container has one); give its Python with PYTHON=..."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	grep -v -e '^mxnet' -e '^numpy' dependencies.txt > $(VENV)/requirements.txt
	$(PY) -c "import numpy; print('numpy==' + numpy.__version__)" > $(VENV)/constraints.txt
	$(PY) -m pip install --disable-pip-version-check -q -r $(VENV)/requirements.txt \
		-c $(VENV)/constraints.txt
else
$(STAMP): dependencies.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	grep -v '^mxnet' dependencies.txt > $(VENV)/requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q -r $(VENV)/requirements.txt "$(MXNET)"
endif
	$(PY) -c "import mxnet, numpy, pydensecrf.densecrf, matplotlib, tensorboardX; print('mxnet', mxnet.__version__, 'numpy', numpy.__version__)"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

demo: setup
	$(PY) demo/run_demo.py

bench: setup
	$(PY) bench/run_bench.py

quality: setup
	$(PY) bench/quality.py

gpu-check: setup
	$(PY) tools/gpu_check.py

clean:
	rm -rf $(VENV)
