"""The local stack: real servers as processes on 127.0.0.1 (see README.md and docs/architecture.md)."""
