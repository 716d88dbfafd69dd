"""Reading Dockerfiles and build contexts as the builder does (devstack/images/dockerfile.py): pure functions."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.images.build import content_key
from devstack.images.catalog import IMAGES, ImageSpec
from devstack.images.dockerfile import Dockerfile, context_files, ignore_rules, is_ignored, placements
from devstack.runtime.errors import DevstackError

SMOKE = """\
ARG KUBECTL_IMAGE=registry.k8s.io/kubectl:v1.31.4
ARG BASE_IMAGE=python:3.11.11-slim-bookworm
FROM ${KUBECTL_IMAGE} AS kubectl

FROM ${BASE_IMAGE}
COPY --from=kubectl /bin/kubectl /usr/local/bin/kubectl
WORKDIR /app
# COPY ignored.txt .
COPY smoke_tests/requirements.txt \\
     smoke_tests/requirements.txt
ENV PYTHONPATH=/app PYTHONUNBUFFERED=1
USER 10001
EXPOSE 8080 9090/tcp
ENTRYPOINT ["python", "-m", "pytest"]
"""


def test_the_parser_reads_bases_copies_and_the_final_stage() -> None:
    parsed = Dockerfile.parse(SMOKE)
    assert parsed.arg_defaults == {
        "KUBECTL_IMAGE": "registry.k8s.io/kubectl:v1.31.4",
        "BASE_IMAGE": "python:3.11.11-slim-bookworm",
    }
    assert parsed.stages == ("${KUBECTL_IMAGE}", "${BASE_IMAGE}")
    assert parsed.base_reference() == "python:3.11.11-slim-bookworm"
    assert parsed.base_reference({"BASE_IMAGE": "localhost/base:1"}) == "localhost/base:1"
    [copy] = parsed.copies  # the --from copy reads another image, the commented one is no instruction
    assert (copy.sources, copy.destination, copy.workdir) == (
        ("smoke_tests/requirements.txt",),
        "smoke_tests/requirements.txt",
        "/app",
    )
    assert parsed.env == {"PYTHONPATH": "/app", "PYTHONUNBUFFERED": "1"}
    assert (parsed.user, parsed.workdir, parsed.exposed) == ("10001", "/app", (8080, 9090))
    assert parsed.entrypoint == ("python", "-m", "pytest")


def test_a_from_variable_without_its_arg_is_named() -> None:
    with pytest.raises(DevstackError, match=r"\$BASE.*declares no ARG BASE"):
        Dockerfile.parse("FROM $BASE\n").base_reference()


@pytest.mark.parametrize(
    ("patterns", "path", "ignored"),
    [
        ("*.pyc", "a.pyc", True),
        ("*.pyc", "pkg/a.pyc", False),  # `*` stays in one path element: only the root level
        ("**/*.pyc", "pkg/deep/a.pyc", True),
        ("**/__pycache__", "pkg/__pycache__/a.cpython-311.pyc", True),  # a matching folder takes its files
        ("artifacts/", "artifacts/model.joblib", True),
        ("/README.md", "README.md", True),
        ("docs\n!docs/keep.md", "docs/keep.md", False),  # the last matching rule wins
        ("docs\n!docs/keep.md", "docs/other.md", True),
        ("# comment\n\n", "anything", False),
        ("data?.csv", "data1.csv", True),
        ("[ab].txt", "c.txt", False),
    ],
)
def test_dockerignore_rules_follow_docker(patterns: str, path: str, ignored: bool) -> None:
    assert is_ignored(path, ignore_rules(patterns)) is ignored


def test_context_files_are_what_the_copies_read_minus_the_ignored(tmp_path: Path) -> None:
    for relative in ("app/main.py", "app/__pycache__/main.cpython-311.pyc", "requirements.txt", "notes.md"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(relative)
    (tmp_path / ".dockerignore").write_text("**/__pycache__\n")
    parsed = Dockerfile.parse("FROM x\nWORKDIR /srv\nCOPY requirements.txt .\nCOPY app/ app/\n")
    assert [p.relative_to(tmp_path).as_posix() for p in context_files(tmp_path, parsed)] == [
        "app/main.py",
        "requirements.txt",
    ]
    assert {p.relative_to(tmp_path).as_posix(): t for p, t in placements(tmp_path, parsed).items()} == {
        "app/main.py": "/srv/app/main.py",
        "requirements.txt": "/srv/requirements.txt",
    }
    with pytest.raises(DevstackError, match=r"COPY missing\.txt .*names nothing"):
        context_files(tmp_path, Dockerfile.parse("FROM x\nCOPY missing.txt .\n"))


def test_the_content_key_changes_with_what_the_build_reads_and_only_that(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE=python:3.11\nFROM ${BASE_IMAGE}\nCOPY app.py .\n")
    (tmp_path / "app.py").write_text("print(1)\n")
    spec = ImageSpec("probe", tmp_path, tmp_path / "Dockerfile", ("BASE_IMAGE",))
    args, ids = {"BASE_IMAGE": "localhost/base:1"}, {"BASE_IMAGE": "aaaa"}
    first = content_key(spec, args, ids)
    (tmp_path / "unrelated.txt").write_text("not copied")
    assert content_key(spec, args, ids) == first
    assert content_key(spec, args, {"BASE_IMAGE": "bbbb"}) != first  # a rebuilt base rebuilds the image
    (tmp_path / "app.py").write_text("print(2)\n")
    assert content_key(spec, args, ids) != first


def test_every_dockerfile_takes_its_bases_as_build_arguments_with_upstream_defaults() -> None:
    for spec in IMAGES.values():
        parsed = Dockerfile.read(spec.dockerfile)
        assert set(spec.base_args) <= set(parsed.arg_defaults), spec.name
        assert parsed.stages[-1] == "${BASE_IMAGE}", spec.name
        assert parsed.base_reference().startswith("python:3.11."), spec.name
    smoke = Dockerfile.read(IMAGES["smoke-tests"].dockerfile)
    assert smoke.arg_defaults["KUBECTL_IMAGE"].startswith("registry.k8s.io/kubectl:v1.")
