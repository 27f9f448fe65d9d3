"""Enforcement of profiles on processes through libseccomp."""
