"""Runs the Pulumi program (infra/__main__.py) with the real Pulumi engine against a real API server.

The Automation API drives the `pulumi` CLI built by `devstack.runtime.go_build` (never one from PATH): the inline
program is `infra/__main__.py` itself, run as `pulumi up` runs it; state goes to a file backend and secrets to a
passphrase provider, both in a folder of the test's own; the Kubernetes provider is the built plugin, found on
PATH as an ambient plugin (no plugin installation, no download: automatic acquisition is off). `KUBECONFIG` points
the default provider at the cluster.

    with engine_stack(work_dir, kubeconfig, "cluster", config, secrets) as engine:
        result = engine.up()
        engine.preview()  # change summary, ops per resource
"""

from __future__ import annotations

import contextlib
import os
import runpy
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from devstack.runtime import go_build
from tests.infra.harness import MAIN, PROJECT, as_engine_config

ENGINE_PARTS = ("pulumi", "pulumi-kubernetes")
REPLACING_OPS = {"replace", "create-replacement", "delete-replaced", "discard-replaced"}


def engine_binaries() -> dict[str, Path]:
    """The bin folders of the built Pulumi CLI and Kubernetes provider; a DevstackError with the build command."""
    return go_build.require_built(ENGINE_PARTS, "the Pulumi engine is")


def program() -> None:
    """The program `pulumi up` runs: infra/__main__.py, fresh (config is read again on every run)."""
    runpy.run_path(str(MAIN), run_name="__main__")


@dataclass
class Operation:
    """What the engine did (or would do) to one resource: its URN, type and op (create, same, update, replace...)."""

    urn: str
    type: str
    op: str
    diffs: list[str] = field(default_factory=list)


@dataclass
class EngineRun:
    """One engine command's result: the summary counts, each resource's operation, and the wall time."""

    changes: dict[str, int]
    operations: list[Operation]
    seconds: float
    outputs: dict[str, Any] = field(default_factory=dict)

    def ops(self) -> set[str]:
        return {operation.op for operation in self.operations}

    def with_op(self, op: str) -> list[Operation]:
        return [operation for operation in self.operations if operation.op == op]


class EngineStack:
    """A stack of our project on a file backend, in `work_dir`."""

    def __init__(self, stack: auto.Stack, work_dir: Path, passphrase: str) -> None:
        self.stack = stack
        self.work_dir = work_dir
        self.passphrase = passphrase

    @property
    def name(self) -> str:
        return self.stack.name

    @property
    def stack_file(self) -> Path:
        """The stack's settings file (its config, secrets as ciphertext)."""
        return self.work_dir / f"Pulumi.{self.name}.yaml"

    @property
    def state_file(self) -> Path:
        """The file backend's checkpoint of this stack (every resource's inputs and outputs)."""
        return self.work_dir / "state" / ".pulumi" / "stacks" / PROJECT / f"{self.name}.json"

    def _run(self, command: str, **kwargs: Any) -> EngineRun:
        operations: list[Operation] = []

        def on_event(event: auto.EngineEvent) -> None:
            pre = event.resource_pre_event
            if pre is not None and pre.metadata is not None:
                metadata = pre.metadata
                op = metadata.op.value if hasattr(metadata.op, "value") else str(metadata.op)
                operations.append(Operation(metadata.urn, metadata.type, op, list(metadata.diffs or [])))

        began = time.monotonic()
        with _in(self.work_dir):
            result = getattr(self.stack, command)(on_event=on_event, color="never", **kwargs)
        seconds = round(time.monotonic() - began, 1)
        if command == "preview":
            changes = {str(k.value if hasattr(k, "value") else k): v for k, v in result.change_summary.items()}
            return EngineRun(changes, operations, seconds)
        changes = dict(result.summary.resource_changes or {})
        outputs = {key: value.value for key, value in (getattr(result, "outputs", None) or {}).items()}
        return EngineRun(changes, operations, seconds, outputs)

    def up(self) -> EngineRun:
        return self._run("up")

    def preview(self) -> EngineRun:
        return self._run("preview", diff=True)

    def refresh(self) -> EngineRun:
        return self._run("refresh")

    def destroy(self) -> EngineRun:
        return self._run("destroy")

    def set_config(self, values: Mapping[str, Any]) -> None:
        for key, value in as_engine_config(values).items():
            self.stack.set_config(key, auto.ConfigValue(value=value))

    def outputs(self) -> dict[str, Any]:
        """`pulumi stack output --json --show-secrets`, through the built CLI."""
        with _in(self.work_dir):
            return {key: value.value for key, value in self.stack.outputs().items()}


@contextlib.contextmanager
def _in(folder: Path) -> Iterator[None]:
    """Run with `folder` as the working directory: the program's chart paths are relative to it, and the engine
    starts the provider there."""
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


@contextlib.contextmanager
def engine_stack(
    work_dir: Path,
    kubeconfig: Path,
    stack_name: str,
    config: Mapping[str, Any],
    secret_config: Mapping[str, str],
) -> Iterator[EngineStack]:
    """A fresh stack `stack_name` with `config` (plain) and `secret_config` (set as Pulumi secrets), on a file
    backend in `work_dir`; the stack is removed at the end (destroy it first: removing keeps no resources)."""
    binaries = engine_binaries()
    work_dir.mkdir(parents=True, exist_ok=True)
    state, home = work_dir / "state", work_dir / "pulumi-home"
    state.mkdir(exist_ok=True)
    passphrase = secrets.token_hex(16)
    env = {
        "PULUMI_HOME": str(home),
        "PULUMI_BACKEND_URL": f"file://{state}",
        "PULUMI_CONFIG_PASSPHRASE": passphrase,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        "KUBECONFIG": str(kubeconfig),
        # the built provider as an ambient plugin; nothing else of Pulumi's from this machine's PATH
        "PATH": os.pathsep.join([str(binaries["pulumi-kubernetes"]), str(binaries["pulumi"]), os.environ["PATH"]]),
    }
    settings = auto.ProjectSettings(name=PROJECT, runtime="python", backend=auto.ProjectBackend(url=f"file://{state}"))
    options = auto.LocalWorkspaceOptions(
        work_dir=str(work_dir),
        pulumi_home=str(home),
        env_vars=env,
        project_settings=settings,
        pulumi_command=auto.PulumiCommand(root=str(binaries["pulumi"].parent), skip_version_check=True),
        secrets_provider="passphrase",
    )
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the inline program runs in this process: the provider and the CLI see the same
    try:
        with _in(work_dir):
            stack = auto.create_stack(stack_name=stack_name, project_name=PROJECT, program=program, opts=options)
            plain = as_engine_config(config)
            stack.set_all_config({key: auto.ConfigValue(value=value) for key, value in plain.items()})
            for key, value in secret_config.items():
                stack.set_config(key, auto.ConfigValue(value=value, secret=True))
        engine = EngineStack(stack, work_dir, passphrase)
        try:
            yield engine
        finally:
            with _in(work_dir), contextlib.suppress(auto.CommandError):
                stack.workspace.remove_stack(stack_name)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
