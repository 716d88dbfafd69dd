"""The monitor: windows of the capture index against the models' reference profiles (docs/monitoring.md)."""
