"""Every image we build on is pinned by digest: each Dockerfile's FROM, and each ARG default naming an image.

A tag (`python:3.11.11-slim-bookworm`) can be re-pushed; `name:tag@sha256:<64 hex>` cannot. The tag stays beside
the digest so a reader (and an update bot) sees the version. The local build (`python -m devstack images build`)
replaces exactly these ARGs with its stand-ins, so every digest-pinned ARG must be one the catalog overrides.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from devstack.images.catalog import IMAGES
from devstack.images.dockerfile import logical_lines, substitute

REPO_ROOT = Path(__file__).resolve().parents[2]
PINNED = re.compile(r"[a-z0-9][a-z0-9._/-]*(?::[0-9]+)?(?:/[a-z0-9._-]+)*:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}")


def dockerfiles() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*Dockerfile*", "*Containerfile*"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(REPO_ROOT / name for name in listed if (REPO_ROOT / name).is_file())


def base_references(text: str) -> tuple[dict[str, str], list[str]]:
    """(ARG defaults declared before the first FROM, each FROM's image with those defaults substituted); a FROM
    that names an earlier stage or `scratch` is left out (it pulls nothing)."""
    defaults: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []
    for line in logical_lines(text):
        instruction, _, args = line.partition(" ")
        words = args.split()
        if instruction.upper() == "ARG" and not stages and not images and "=" in args:
            name, _, default = args.partition("=")
            defaults[name.strip()] = default.strip().strip('"')
        elif instruction.upper() == "FROM":
            flags = [word for word in words if not word.startswith("--")]
            image = substitute(flags[0], defaults)
            if len(flags) >= 3 and flags[1].upper() == "AS":
                stages.add(flags[2])
            if image not in stages and image != "scratch":
                images.append(image)
    return defaults, images


def test_the_repository_has_the_three_dockerfiles() -> None:
    names = {str(path.relative_to(REPO_ROOT)) for path in dockerfiles()}
    assert {"images/feedback/Dockerfile", "images/text-classifier/Dockerfile", "smoke_tests/Dockerfile"} <= names


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_every_base_is_pinned_by_tag_and_digest(path: Path) -> None:
    defaults, images = base_references(path.read_text())
    assert images, f"{path}: no FROM found"
    unpinned = [image for image in images if not PINNED.fullmatch(image)]
    assert not unpinned, (
        f"{path.relative_to(REPO_ROOT)} builds on {unpinned}, not pinned as name:tag@sha256:<64 hex>; "
        "give the ARG default (or FROM) the published digest of that tag, with a comment saying where it came from"
    )
    image_args = {name: value for name, value in defaults.items() if name.endswith("_IMAGE")}
    loose = {name: value for name, value in image_args.items() if not PINNED.fullmatch(value)}
    assert not loose, f"{path.relative_to(REPO_ROOT)}: ARG defaults not pinned by digest: {loose}"


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_the_local_build_overrides_every_image_argument(name: str) -> None:
    """The local build cannot pull the digests: it must replace every ARG that names an image with a stand-in."""
    spec = IMAGES[name]
    defaults, _ = base_references(spec.dockerfile.read_text())
    image_args = {arg for arg in defaults if arg.endswith("_IMAGE")}
    assert image_args == set(spec.base_args), (
        f"{spec.dockerfile.relative_to(REPO_ROOT)} declares image arguments {sorted(image_args)}, the local build "
        f"sets {sorted(spec.base_args)}: add the missing ones to devstack/images/catalog.py"
    )


def test_every_digest_says_where_it_came_from() -> None:
    for path in dockerfiles():
        text = path.read_text()
        for digest in set(re.findall(r"@sha256:[0-9a-f]{64}", text)):
            line = next(number for number, row in enumerate(text.splitlines()) if digest in row)
            comments = "\n".join(row for row in text.splitlines()[max(0, line - 8) : line] if row.startswith("#"))
            assert re.search(r"digest", comments, re.I) and "@" in comments, (
                f"{path.relative_to(REPO_ROOT)}: the digest {digest[:20]}... has no comment above it naming its source"
            )


@pytest.mark.parametrize(
    ("reference", "ok"),
    [
        ("python:3.11.11-slim-bookworm@sha256:" + "a" * 64, True),
        ("registry.k8s.io/kubectl:v1.31.4@sha256:" + "0" * 64, True),
        ("localhost:5000/x/y:1@sha256:" + "b" * 64, True),
        ("python:3.11.11-slim-bookworm", False),
        ("python@sha256:" + "a" * 64, False),  # no tag: the version a reader sees is gone
        ("python:3.11@sha256:abc", False),
    ],
)
def test_the_pin_pattern(reference: str, ok: bool) -> None:
    assert bool(PINNED.fullmatch(reference)) is ok
