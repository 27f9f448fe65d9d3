"""The `seccomp-recorder` command line."""
