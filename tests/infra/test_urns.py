"""An existing stack sees no replacement when the program's modules move: every URN the program registered before a
refactor (recorded from main under mocks in tests/infra/data/urns-<env>.txt) is still registered, or is an alias of
a resource the program registers now (its own `aliases`, or inherited from an aliased parent, as the engine
resolves them). Resources a v4 Chart renders are children of the Chart resource and follow its URN the same way.

Re-record only from a released commit: `python -m tests.infra.harness urns <env> > tests/infra/data/urns-<env>.txt`.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest

from tests.infra.harness import ENVIRONMENTS, PROJECT, Registration, Run, run_program

DATA = Path(__file__).parent / "data"
STACK_TYPE = "pulumi:pulumi:Stack"
ROOT_URN = f"urn:pulumi:dev::{PROJECT}::{STACK_TYPE}::{PROJECT}-dev"


def urn(stack: str, parent_urn: str, typ: str, name: str) -> str:
    """A URN the way the mock monitor builds it: the parent's own type (last in its chain) before the type."""
    qualified = f"{parent_urn.split('::')[2].split('$')[-1]}${typ}"
    return f"urn:pulumi:{stack}::{PROJECT}::{qualified}::{name}"


class Resolver:
    """Own URN and alias URNs of every registration of one run (the engine's alias rules, mock URN format)."""

    def __init__(self, run: Run, stack: str) -> None:
        self.stack = stack
        self.by_resource = {id(r.resource): (r, own) for r, own in zip(run.registrations, run.urns, strict=True)}
        self.root = f"urn:pulumi:{stack}::{PROJECT}::{STACK_TYPE}::{PROJECT}-{stack}"

    def parent_urns(self, registration: Registration) -> list[str]:
        """The parent's own URN first, then its alias URNs (children inherit every name the parent had)."""
        parent = registration.opts.parent
        if parent is None:
            return [self.root]
        parent_registration, parent_own = self.by_resource[id(parent)]
        return [parent_own, *self.aliases(parent_registration)]

    def aliases(self, registration: Registration) -> list[str]:
        names: list[str] = []
        parents = self.parent_urns(registration)
        for parent in parents[1:]:  # inherited: same type and name under each former parent URN
            names.append(urn(self.stack, parent, registration.typ, registration.name))
        for alias in registration.opts.aliases or []:
            if isinstance(alias, str):
                names.append(alias)
                continue
            assert isinstance(alias, pulumi.Alias), f"{registration.name}: alias {alias!r}"
            typ = registration.typ if alias.type_ is ... else alias.type_
            name = registration.name if alias.name is ... else alias.name
            assert alias.stack is ... and alias.project is ..., f"{registration.name}: aliases stay in this stack"
            if alias.parent is ...:
                former_parents = parents
            elif alias.parent is None or alias.parent is pulumi.ROOT_STACK_RESOURCE:
                former_parents = [self.root]
            else:
                former_parents = [self.by_resource[id(alias.parent)][1]]
            names.extend(urn(self.stack, parent, str(typ), str(name)) for parent in former_parents)
        return names


def recorded(env: str) -> list[str]:
    return [line for line in (DATA / f"urns-{env}.txt").read_text().splitlines() if line]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_recorded_urn_is_still_registered_or_aliased(env: str) -> None:
    run = run_program(env)
    resolver = Resolver(run, env)
    for registration, own in zip(run.registrations, run.urns, strict=True):  # the formula above is the mocks'
        assert urn(env, resolver.parent_urns(registration)[0], registration.typ, registration.name) == own
    covered = set(run.urns) | {alias for reg in run.registrations for alias in resolver.aliases(reg)}
    missing = [u for u in recorded(env) if u not in covered]
    assert not missing, f"{len(missing)} resource(s) of an existing {env} stack would be replaced: {missing}"
    assert len(recorded(env)) >= 30, "the recorded URN list looks truncated"


def fake_registration(typ: str, name: str, **opts: object) -> Registration:
    return Registration(typ, name, object(), pulumi.ResourceOptions(**opts))  # type: ignore[arg-type]


def test_aliases_cover_a_moved_component_and_its_children_and_nothing_else() -> None:
    """The resolver itself: a component whose type token changed keeps its old URN through `Alias(type_=...)`, its
    child keeps its old URN by inheritance, and without the alias both old URNs are reported missing."""
    old_parent = urn("dev", ROOT_URN, "feedback:feedback:Classifier", "classifier")
    old_child = urn("dev", old_parent, "kubernetes:helm.sh/v4:Chart", "classifier-realtime")
    for aliases, covered in (([pulumi.Alias(type_="feedback:feedback:Classifier")], True), (None, False)):
        parent = fake_registration("feedback:classifier:Classifier", "classifier", aliases=aliases)
        child = fake_registration("kubernetes:helm.sh/v4:Chart", "classifier-realtime", parent=parent.resource)
        new_parent = urn("dev", ROOT_URN, parent.typ, parent.name)
        run = Run([], {}, set(), {}, [parent, child], [], [new_parent, urn("dev", new_parent, child.typ, child.name)])
        resolver = Resolver(run, "dev")
        names = set(run.urns) | {alias for reg in run.registrations for alias in resolver.aliases(reg)}
        assert (old_parent in names, old_child in names) == (covered, covered)
