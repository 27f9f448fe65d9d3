"""seccomp-recorder: record the syscalls that programs and pods make, and turn them into seccomp profiles."""

__version__ = "0.1.0"
