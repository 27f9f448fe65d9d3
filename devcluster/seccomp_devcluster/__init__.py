"""The dev cluster: an API server emulator and node stand-ins that run pods with runc or crun."""
