# One entry point: every target sets up its own virtual environment first.
#   make test    set up, then run the test suite
#   make test-fast  the suite without the slow end-to-end pipeline test
#   make demo    set up, then run the whole pipeline on the generated toy dataset (CPU)
#   make bench   set up, then run the speed benchmark
#   make quality set up, then run the quality benchmark (about 1.5 hours on 2 cores; not in CI)
# GPU machines: make setup MXNET=mxnet-cu112==1.9.1   (any mxnet-cu1xx 1.9.1 wheel)
PYTHON ?= python3
VENV ?= .venv
MXNET ?= mxnet==1.9.1
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(subst =,_,$(MXNET))

.PHONY: setup test test-fast demo bench quality clean

setup: $(STAMP)

$(STAMP): dependencies.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	grep -v '^mxnet' dependencies.txt > $(VENV)/requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q -r $(VENV)/requirements.txt "$(MXNET)"
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

clean:
	rm -rf $(VENV)
