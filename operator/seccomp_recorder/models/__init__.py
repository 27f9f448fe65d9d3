"""Pure data models of seccomp profiles and recordings, and the algebra on them (no I/O)."""
