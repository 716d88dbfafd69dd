"""One module per local server, named like its cluster twin in `infra/` (kafka, search, s3, model, feedback, batch).

Each class starts the real server on 127.0.0.1, waits for readiness with a deadline, exposes connection facts as
properties and stops what it started (docs/local-stack.md).
"""
