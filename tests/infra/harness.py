"""Runs the Pulumi program (infra/__main__.py) in-process under `pulumi.runtime.set_mocks`, once per call.

No cluster and no Pulumi CLI: mocks stand in for the engine and record every resource with its resolved inputs.
Each run installs fresh mocks, sets the stack's config (from `stacks/Pulumi.<env>.yaml`, plus test secrets),
executes `infra/__main__.py` anew with `runpy` and collects the stack outputs, with their secret flag.
"""

from __future__ import annotations

import asyncio
import json
import os
import runpy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
MAIN = REPO_ROOT / "infra" / "__main__.py"
STACKS = REPO_ROOT / "stacks"
PROJECT = "seldon-feedback"
ENVIRONMENTS = ("dev", "staging", "prod")

# Secrets a deployer sets with `pulumi config set --secret` (docs/deploy.md step 3); test values only.
TEST_SECRETS = {
    "objectstore:rootPassword": "test-root-password-1",
    "search:indexerPassword": "test-indexer-password",
    "search:monitorPassword": "test-monitor-password",
}
# Secrets that turn a feature on (not set by default, so the default runs keep the feature off); test values only.
OPTIONAL_TEST_SECRETS = {
    "feedback:producerToken": "test-producer-token-" + "t" * 32,
}


UPSTREAM_ENV = "SELDON_FEEDBACK_UPSTREAM"  # the same override the chart tooling reads (the upstream/ folder itself)


def shared_dir() -> Path:
    """`shared/` beside the checkout (CI places it there), or the parent of $SELDON_FEEDBACK_UPSTREAM: upstream
    CRDs and chart values."""
    override = os.environ.get(UPSTREAM_ENV)
    path = Path(override).parent if override else REPO_ROOT.parent / "shared"
    if not (path / "upstream").is_dir():
        raise FileNotFoundError(
            f"{path / 'upstream'} is missing: the infra tests read upstream CRDs and chart values from shared/ "
            f"beside the checkout ({REPO_ROOT}); place the shared/ folder there or set {UPSTREAM_ENV}"
        )
    return path


@dataclass
class Resource:
    """One registered resource: type token, logical name, resolved inputs, transforms from its options."""

    typ: str
    name: str
    inputs: dict[str, Any]
    transforms: list[Any] = field(default_factory=list)
    custom: bool = True


@dataclass
class Registration:
    """A resource object as the program created it, with the options it passed (mocks do not see options)."""

    typ: str
    name: str
    resource: pulumi.Resource
    opts: pulumi.ResourceOptions


@dataclass
class Run:
    """What one program run produced."""

    resources: list[Resource]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    globals: dict[str, Any]
    registrations: list[Registration] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    urns: list[str] = field(default_factory=list)  # URN of each registration, same order

    def registration(self, name: str) -> Registration:
        found = [r for r in self.registrations if r.name == name]
        assert len(found) == 1, f"expected one registration named {name}, got {len(found)}"
        return found[0]

    def parent_of(self, name: str) -> Registration | None:
        parent = self.registration(name).opts.parent
        return next((r for r in self.registrations if r.resource is parent), None)

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name: str | None = None) -> Resource:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {typ} {name or ''}, got {[r.name for r in found]}"
        return found[0]

    def named(self, name: str) -> Resource:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, got {len(found)}"
        return found[0]

    def charts(self) -> list[Resource]:
        return [r for r in self.resources if r.typ in ("kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Release")]

    def custom_resources(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.typ.startswith("kubernetes:") and r.typ.endswith(f":{kind}")]


class RecordingMocks(pulumi.runtime.Mocks):
    """Returns realistic outputs (auto-named metadata.name, Release status) and records every resource."""

    def __init__(self) -> None:
        self.resources: list[Resource] = []
        self.calls: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = integral(dict(args.inputs))
        outputs = dict(inputs)
        if args.typ.startswith("kubernetes:") and args.custom and "helm.sh" not in args.typ:
            metadata = dict(outputs.get("metadata") or {})
            metadata.setdefault("name", f"{args.name}-a1b2c3d4")
            outputs["metadata"] = metadata
        if args.typ == "kubernetes:helm.sh/v3:Release":
            outputs["status"] = {
                "name": inputs.get("name") or args.name,
                "namespace": inputs.get("namespace"),
                "status": "deployed",
                "version": inputs.get("version"),
                "chart": inputs.get("chart"),
            }
        self.resources.append(Resource(args.typ, args.name, inputs, list(args.transforms), bool(args.custom)))
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        self.calls.append(args.token)
        return {}, None


def integral(node: Any) -> Any:
    """Inputs reach the mocks as protobuf Structs, where every number is a float: give whole numbers back their
    integer type, as the Kubernetes API and Helm would see them."""
    if isinstance(node, dict):
        return {key: integral(value) for key, value in node.items()}
    if isinstance(node, list):
        return [integral(value) for value in node]
    if isinstance(node, float) and node.is_integer():
        return int(node)
    return node


def stack_config(env: str) -> dict[str, Any]:
    """The `config:` mapping of stacks/Pulumi.<env>.yaml."""
    document = yaml.safe_load((STACKS / f"Pulumi.{env}.yaml").read_text())
    return dict(document.get("config") or {})


def as_engine_config(config: Mapping[str, Any]) -> dict[str, str]:
    """Config values the way the engine hands them to the program: strings, objects as JSON."""
    engine: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, bool):
            engine[key] = "true" if value else "false"
        elif isinstance(value, dict | list):
            engine[key] = json.dumps(value)
        else:
            engine[key] = str(value)
    return engine


def ensure_event_loop() -> None:
    """Pulumi's mocks run on asyncio's current loop of this thread. `asyncio.run()` anywhere earlier in the same
    pytest process (the engine, an image test, an async client) ends by leaving the main thread without one, and
    the mocks then fail with "There is no current event loop"; give the thread a fresh loop in that case."""
    policy = asyncio.get_event_loop_policy()
    try:
        if not policy.get_event_loop().is_closed():
            return
    except RuntimeError:
        pass
    asyncio.set_event_loop(asyncio.new_event_loop())


def run_program(
    env: str = "dev",
    *,
    config: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    plain: Mapping[str, str] | None = None,
) -> Run:
    """Runs infra/__main__.py fresh with stack `env`'s config (or `config`), `overrides` on top, `secrets` set as
    Pulumi secrets (default: TEST_SECRETS) and `plain` set as plain-text values."""
    values = dict(stack_config(env) if config is None else config)
    values.update(overrides or {})
    secret_values = dict(TEST_SECRETS if secrets is None else secrets)
    engine = as_engine_config(values)
    engine.update(secret_values)
    engine.update(plain or {})
    ensure_event_loop()
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=env, preview=False)
    pulumi.runtime.set_all_config(engine, list(secret_values))

    registrations: list[Registration] = []
    original_init = pulumi.Resource.__init__

    def recording_init(self: pulumi.Resource, t: str, name: str, *args: Any, **kwargs: Any) -> None:
        opts = kwargs.get("opts", args[2] if len(args) > 2 else None)
        registrations.append(Registration(t, name, self, opts or pulumi.ResourceOptions()))
        original_init(self, t, name, *args, **kwargs)

    exported: dict[str, Any] = {}
    resolved: dict[str, Any] = {}
    secret_outputs: set[str] = set()
    program_globals: dict[str, Any] = {}
    original_export = pulumi.export

    def record_export(name: str, value: Any) -> None:
        exported[name] = value

    urns: list[str] = []

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        program_globals.update(runpy.run_path(str(MAIN), run_name="__main__"))
        every_urn = pulumi.Output.all(*(r.resource.urn for r in registrations)).apply(urns.extend)

        def keep(name: str) -> Any:
            output = pulumi.Output.from_input(exported[name])

            def store(args: list[Any]) -> None:
                value, is_secret = args
                resolved[name] = value
                if is_secret:
                    secret_outputs.add(name)

            return pulumi.Output.all(output, pulumi.Output.from_input(output.is_secret())).apply(store)

        return pulumi.Output.all(every_urn, *(keep(name) for name in exported))

    pulumi.export = record_export
    pulumi.Resource.__init__ = recording_init  # type: ignore[method-assign]
    try:
        program()
    finally:
        pulumi.export = original_export
        pulumi.Resource.__init__ = original_init  # type: ignore[method-assign]
    return Run(mocks.resources, resolved, secret_outputs, program_globals, registrations, mocks.calls, urns)


def walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, leaf) of a nested dict/list structure."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, str(index)))
    else:
        yield path, node


def stack_urns(env: str) -> list[str]:
    """The sorted URNs the program registers for stack `env` under mocks (the state an existing stack holds,
    minus what a v4 Chart renders at deploy time: those objects are children of the Chart and follow its URN)."""
    return sorted(set(run_program(env).urns))


if __name__ == "__main__":  # pragma: no cover - developer tool: python -m tests.infra.harness urns <env>
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "urns" or sys.argv[2] not in ENVIRONMENTS:
        sys.stderr.write(f"usage: python -m tests.infra.harness urns {'|'.join(ENVIRONMENTS)}\n")
        raise SystemExit(2)
    sys.stdout.write("".join(f"{urn}\n" for urn in stack_urns(sys.argv[2])))
