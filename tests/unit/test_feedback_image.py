"""The feedback image's build context, read as text: pinned base and requirements, non-root user, both commands.

The image's pins must fall inside the project's dependency ranges (pyproject.toml), which the tests run with.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from devstack.images.dockerfile import Dockerfile

CONTEXT = Path(__file__).resolve().parents[2] / "images" / "feedback"


def requirements() -> dict[str, str]:
    pins = {}
    for line in (CONTEXT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            assert pinned, f"{line!r} is not pinned with =="
            pins[name] = pinned
    return pins


def test_requirements_are_pinned_inside_the_tested_ranges() -> None:
    pins = requirements()
    wanted = {"aiohttp", "cloudevents", "confluent-kafka", "elasticsearch", "opensearch-py", "prometheus-client"}
    assert wanted <= set(pins)
    project = tomllib.loads((CONTEXT.parents[1] / "pyproject.toml").read_text())["project"]["dependencies"]
    ranges = {canonicalize_name(req.name): req.specifier for req in map(Requirement, project)}
    for name, pinned in pins.items():
        specifier = ranges.get(canonicalize_name(name))
        if specifier is not None:
            assert specifier.contains(pinned), f"{name}=={pinned} is outside pyproject's {specifier}"
    assert pins["elasticsearch"].startswith("8."), "the Elasticsearch 8 client must match the server's major"


def test_dockerfile_is_pinned_and_runs_as_non_root() -> None:
    dockerfile = (CONTEXT / "Dockerfile").read_text()
    base = Dockerfile.parse(dockerfile).base_reference()  # the BASE_IMAGE default: what users build on
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+@sha256:[0-9a-f]{64}", base), base
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and not user[-1].startswith(("root", "0")), user
    assert "COPY feedback/ feedback/" in dockerfile and "--require-hashes -r requirements.lock" in dockerfile


def test_the_image_builds_the_seldon_protos_in_a_stage_and_keeps_only_the_compiled_set() -> None:
    dockerfile = (CONTEXT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    assert len(stages) == 2 and stages[0].startswith("${BASE_IMAGE}") and " AS seldon-protos" in stages[0]
    assert stages[1].startswith("${BASE_IMAGE}"), "both stages build on the BASE_IMAGE argument"
    assert "python -m feedback.seldon_protos build" in stages[0] and "requirements-build.lock" in stages[0]
    final = stages[1]
    assert "requirements-build" not in final, "grpcio-tools must stay in the build stage"
    assert "COPY --from=seldon-protos /seldon-protos/ /app/seldon-protos/" in final
    assert "SELDON_PROTOS_DIR=/app/seldon-protos" in final
    build_pins = dict(
        line.split("==") for line in (CONTEXT / "requirements-build.txt").read_text().splitlines() if "==" in line
    )
    dev = tomllib.loads((CONTEXT.parents[1] / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    ranges = {canonicalize_name(req.name): req.specifier for req in map(Requirement, dev)}
    assert ranges["grpcio-tools"].contains(build_pins["grpcio-tools"]), "the image compiles with a tested grpcio-tools"


def test_both_commands_exist() -> None:
    assert (CONTEXT / "feedback" / "collector" / "__main__.py").is_file()
    assert (CONTEXT / "feedback" / "indexer" / "__main__.py").is_file()


def test_readme_documents_every_variable_the_code_reads() -> None:
    readme = (CONTEXT / "README.md").read_text()
    code = "\n".join(path.read_text() for path in (CONTEXT / "feedback").rglob("*.py"))
    variables = set(re.findall(r'"((?:KAFKA|CAPTURE|COLLECTOR|INDEXER|LOG|SELDON)_[A-Z_]+)"', code))
    assert len(variables) > 30
    missing = sorted(name for name in variables if name not in readme)
    assert not missing, f"undocumented variables: {missing}"
