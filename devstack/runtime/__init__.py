"""Shared mechanics of the local stack (processes, ports, paths, locks, tool builds)."""
