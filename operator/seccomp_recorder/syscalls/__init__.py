"""Per-architecture syscall tables: name and number lookups, and validation of names."""
