"""Conformance: every test runs once against the local engine and once against a real executor binary.

The binary is the one named by DEVSTACK_EXECUTOR_BIN (docs/executor.md says how to extract it from the
`seldonio/seldon-core-executor` image); without it those variants skip and say so. The binary is taken to be the
executor of the Seldon version setting (SELDON_VERSION, else `seldon:version` of stacks/Pulumi.dev.yaml, else
1.17.1), so a recording of another version skips for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

from devstack.engine.versions import RECORDED
from devstack.loop import stack_seldon_version
from devstack.servers.engine import EXECUTOR_BIN_ENV, EngineServer, executor_binary
from tests.fixtures.engine import Engines

KINDS = ("engine", "binary")


def binary_version() -> str:
    return os.environ.get("SELDON_VERSION") or stack_seldon_version() or RECORDED


@dataclass(frozen=True)
class Executor:
    """Which executor a conformance test runs against, and how to start it."""

    kind: str  # engine | binary
    engines: Engines

    def start(self, predictor: dict[str, Any], *, seldon_version: str = RECORDED, **options: Any) -> EngineServer:
        if self.kind == "binary" and seldon_version != binary_version():
            pytest.skip(
                f"{EXECUTOR_BIN_ENV} is taken as the Seldon {binary_version()} executor (SELDON_VERSION or "
                f"seldon:version of stacks/Pulumi.dev.yaml); this recording is of {seldon_version}"
            )
        binary = executor_binary() if self.kind == "binary" else False
        return self.engines.start(predictor, binary=binary, seldon_version=seldon_version, **options)


@pytest.fixture(params=KINDS)
def executor(request: pytest.FixtureRequest, engines: Engines) -> Executor:
    if request.param == "binary" and executor_binary() is None:
        pytest.skip(
            f"no real executor binary: set {EXECUTOR_BIN_ENV}=<path of a Seldon executor> to hold it to the same "
            "recordings (docs/executor.md: how to extract it from the seldonio/seldon-core-executor image)"
        )
    return Executor(request.param, engines)
