"""Maintainer and test tooling that is not part of the local stack (tools/README.md)."""
