# syntax=docker/dockerfile:1
#
# The seccomp-recorder image: the operator (seccomp-recorder-operator), the node agent
# (seccomp-recorder-agent, or python -m seccomp_recorder.agent as the operator's
# DaemonSet runs it) and the command-line recorder (seccomp-recorder).
#
#     docker build -t registry.example.com/seccomp-recorder:0.1.0 .
#
# NOTE: no image has been built from this file yet: the machines it was written on have
# no Docker engine. The tests in tests/image/ run instead, on the same Debian 12
# packages: hadolint on this file; `make bpf` and `pip wheel` as the build stage runs
# them; the wheel and requirements/runtime.txt installed into a fresh venv, then
# `pip check` and each command's --help; and checks that the apt, Python and package
# versions pinned here are those of the test machine and the project's venv. Not run:
# the base image, the apt-get installs, the user and the copies between the stages.
#
# The apt pins are Debian 12 (bookworm) versions. Debian's archive keeps only the
# newest version of a package, so a security update makes a pin fail until it is
# raised to the new version.

ARG PYTHON_VERSION=3.11.7

FROM python:${PYTHON_VERSION}-slim-bookworm AS build

# clang compiles the recorder's eBPF program. It is CO-RE, relocated against the node
# kernel's BTF when it is loaded, so no kernel headers are needed. libbpf-dev provides
# bpf_helpers.h.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        clang=1:14.0-55.7~deb12u1 \
        libbpf-dev=1:1.1.2-0+deb12u1 \
        make=4.3-4.1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# The runtime dependencies first, pinned, so that a code change reuses this layer.
COPY requirements/ requirements/
RUN python -m venv /opt/seccomp-recorder \
    && /opt/seccomp-recorder/bin/pip install --no-cache-dir --no-deps \
        --requirement requirements/runtime.txt

COPY pyproject.toml README.md Makefile ./
COPY operator/ operator/

# `make bpf` is the target CI builds the BPF object with. The wheel carries the object
# as package data, next to the loader that finds it.
RUN make bpf \
    && PIP_CONSTRAINT=requirements/build.txt \
        pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
    && /opt/seccomp-recorder/bin/pip install --no-cache-dir --no-deps /dist/seccomp_recorder-*.whl \
    && /opt/seccomp-recorder/bin/pip check

FROM python:${PYTHON_VERSION}-slim-bookworm

# libbpf1 loads the eBPF program (through ctypes, as libbpf.so.1); libseccomp2 compiles
# profiles into filters for `seccomp-recorder run` (through pyseccomp).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libbpf1=1:1.1.2-0+deb12u1 \
        libseccomp2=2.5.4-1+deb12u1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 65532 seccomp-recorder \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin seccomp-recorder

COPY --from=build /opt/seccomp-recorder /opt/seccomp-recorder
ENV PATH=/opt/seccomp-recorder/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Non-root by default, which is all the operator needs. The agent's privileges (root,
# BPF and tracing capabilities, host mounts) come from the DaemonSet the operator builds.
USER 65532:65532
CMD ["seccomp-recorder", "--help"]
