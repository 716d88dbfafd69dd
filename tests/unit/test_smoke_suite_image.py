"""The smoke suite ships alone (its image, the in-cluster Job): it imports only its own modules and its
requirements, and every file it imports is one the Dockerfile copies into the image, at the path it imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.smoke_suite_layout import DOCKERFILE, REPO_ROOT, SUITE, dockerfile_copies, image_files, local_imports


def test_the_suite_imports_nothing_of_the_local_stack_or_the_tests() -> None:
    outside = {
        path.name: sorted(str(file.relative_to(REPO_ROOT)) for file in files if not file.is_relative_to(SUITE))
        for path, files in local_imports().items()
    }
    outside = {name: files for name, files in outside.items() if files}
    assert not outside, (
        f"smoke_tests/ must import only its own modules, but these import other parts of the repository: {outside}; "
        "call the local stack as a subprocess (python -m devstack ...) instead"
    )


def test_every_file_the_suite_imports_is_in_its_image_at_the_same_path() -> None:
    placed = image_files(DOCKERFILE.read_text())
    workdir, _ = dockerfile_copies(DOCKERFILE.read_text())
    needed = {file for files in local_imports().values() for file in files} | set(SUITE.glob("*.py"))
    needed.add(SUITE / "requirements.txt")
    missing = sorted(str(file.relative_to(REPO_ROOT)) for file in needed if file not in placed)
    assert not missing, f"smoke_tests/Dockerfile does not COPY {missing} into the image; add them"
    misplaced = {
        str(file.relative_to(REPO_ROOT)): str(placed[file])
        for file in needed
        if placed[file] != Path(workdir) / file.relative_to(REPO_ROOT)
    }
    assert not misplaced, f"files land where `import` (PYTHONPATH={workdir}) will not find them: {misplaced}"


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        ("WORKDIR /app\nCOPY smoke_tests/requirements.txt smoke_tests/requirements.txt\n", {"requirements.txt"}),
        ("WORKDIR /app\nCOPY --from=kubectl /bin/kubectl /usr/local/bin/kubectl\n", set()),
        ("WORKDIR /app\n# COPY smoke_tests smoke_tests\n", set()),
    ],
    ids=["one-file", "from-another-stage", "commented-out"],
)
def test_the_copy_reader_takes_only_files_from_the_build_context(dockerfile: str, expected: set[str]) -> None:
    assert {file.name for file in image_files(dockerfile)} == expected
