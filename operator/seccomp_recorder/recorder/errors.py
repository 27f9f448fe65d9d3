"""Errors of the recorder, each with a message that says what is missing and what to do."""

from __future__ import annotations


class RecorderError(Exception):
    """The recorder cannot start or read its results."""


class KernelTooOld(RecorderError):
    """The running kernel lacks a BPF feature the recorder needs."""


class BtfMissing(RecorderError):
    """The kernel's BTF, needed for the CO-RE relocations, cannot be found."""


class BpfObjectMissing(RecorderError):
    """The compiled BPF object was not built."""


class BpfPermissionDenied(RecorderError):
    """The process may not load or attach BPF programs."""


class TracepointMissing(RecorderError):
    """A tracepoint the recorder attaches to does not exist in this kernel."""
