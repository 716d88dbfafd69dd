"""The Pulumi program of the platform (see `infra/__main__.py`); one module per component."""
