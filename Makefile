# Build, test and demo targets. `make test` is what CI runs (through .ci/run).

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
MACHINE := $(shell uname -m)
BPF_ARCH := $(subst aarch64,arm64,$(subst x86_64,x86,$(MACHINE)))
BPF_DIR := operator/seccomp_recorder/recorder/bpf
BPF_OBJ := $(BPF_DIR)/recorder.bpf.o

.PHONY: all venv bpf crds reference docs-check lint typecheck test test-unit demo demo-cli devcluster bench bench-quick clean

all: venv bpf

venv: $(VENV)/.installed

# requirements/runtime.txt pins the runtime dependencies to what the Dockerfile installs,
# so the tests run the versions the image ships (scripts/lock-runtime writes it).
$(VENV)/.installed: pyproject.toml requirements/runtime.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet --constraint requirements/runtime.txt -e '.[dev,bench]'
	touch $@

# The BPF object is compiled from source with clang against the kernel's BTF
# (CO-RE), so no kernel headers are needed; it is never committed.
bpf: $(BPF_OBJ)

$(BPF_OBJ): $(wildcard $(BPF_DIR)/*.c) $(wildcard $(BPF_DIR)/*.h)
	clang -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(BPF_ARCH) \
		-I/usr/include/$(MACHINE)-linux-gnu -c $(BPF_DIR)/recorder.bpf.c -o $@

# The CRDs under crds/ are generated from the pydantic models: run this after changing
# a model and commit the result (a unit test fails while they differ). The Helm chart
# keeps identical copies, because a chart cannot read files outside its folder.
crds: venv
	$(PY) -m seccomp_recorder.models.crds --write crds/
	$(PY) -m seccomp_recorder.models.crds --write charts/seccomp-recorder/crds/

# docs/reference.md is generated from the same models: run this after changing a model and
# commit the result (a unit test fails while it differs).
reference: venv
	$(PY) -m seccomp_recorder.models.reference --write docs/reference.md

# Run or check every shell command under docs/, as the marker before each block says
# (see docs/README.md). `make test` runs the same tests with the rest of the suite.
docs-check: venv bpf
	$(PY) -m pytest -ra tests/docs $(PYTEST_ARGS)

lint: venv
	$(PY) -m ruff check operator devcluster bench tests
	$(VENV)/bin/lint-imports

typecheck: venv
	$(PY) -m mypy

test: venv bpf lint typecheck
	$(PY) -m pytest -ra $(PYTEST_ARGS)

test-unit: venv
	$(PY) -m pytest -ra tests/unit $(PYTEST_ARGS)

# The operator's main job on a two-node dev cluster: record redis replicas with a
# SeccompRecording, install the profile on every node, run redis under it.
demo: venv bpf
	scripts/demo-cluster

# Record redis-server with the command-line recorder, then enforce the profile.
demo-cli: venv bpf
	scripts/demo-cli

# A dev cluster in the foreground (API server emulator plus NODES node stand-ins
# running pods with runc/crun) until Ctrl-C; needs root. It prints the kubeconfig.
NODES ?= 1
devcluster: venv
	PYTHONPATH=devcluster $(PY) -m seccomp_devcluster --nodes $(NODES)

# The benchmark suite (bench/, see docs/benchmarks.md): measures recorder overhead, server
# throughput, profile fidelity and the control plane, then writes docs/benchmarks.md with
# its results JSON and plots. Needs root and scripts/install-deps; under 30 minutes.
BENCH := PYTHONPATH=bench:devcluster $(PY) -m seccomp_bench run
bench: venv bpf
	$(BENCH) --config full --output docs --command "make bench"

# The same code on a tiny configuration, written to build/bench-quick/ (CI runs it).
bench-quick: venv bpf
	$(BENCH) --config quick --output build/bench-quick --command "make bench-quick"

clean:
	rm -f $(BPF_OBJ)
