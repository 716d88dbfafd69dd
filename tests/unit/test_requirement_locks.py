"""Each image installs only from a hash-checked lock, and each lock pins exactly its requirements' pins.

A requirements.txt edited without `make locks` (a bumped, added or removed pin) fails here, as does a lock entry
without hashes or a Dockerfile `pip install` that is not `--require-hashes -r <its lock>`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from devstack.images.dockerfile import logical_lines
from tools.locks import LOCKS, Lock, coverage_problems, read_lock, read_pins

REPO_ROOT = Path(__file__).resolve().parents[2]
# Dockerfile -> the lock each of its pip installs must use, in order
DOCKERFILE_LOCKS = {
    "images/feedback/Dockerfile": ["requirements-build.lock", "requirements.lock"],
    "images/text-classifier/Dockerfile": ["requirements.lock"],
    "smoke_tests/Dockerfile": ["smoke_tests/requirements.lock"],
}


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_the_lock_pins_exactly_its_requirements(name: str) -> None:
    assert coverage_problems(LOCKS[name]) == []


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_every_locked_package_has_a_sha256_of_each_file(name: str) -> None:
    locked = read_lock(LOCKS[name].path.read_text())
    assert len(locked) >= 10, locked
    assert all(entry.hashes and all(h.startswith("sha256:") for h in entry.hashes) for entry in locked.values())


@pytest.mark.parametrize(("dockerfile", "locks"), sorted(DOCKERFILE_LOCKS.items()))
def test_every_pip_install_is_hash_checked_from_its_lock(dockerfile: str, locks: list[str]) -> None:
    lines = logical_lines((REPO_ROOT / dockerfile).read_text())
    installs = [line for line in lines if line.startswith("RUN") and "pip install" in line]
    assert len(installs) == len(locks), installs
    for line, lock in zip(installs, locks, strict=True):
        assert "--require-hashes" in line and re.search(rf"-r {re.escape(lock)}(\s|$)", line), line
        assert " -r requirements" not in line.replace(f"-r {lock}", ""), f"{line}: installs from a file without hashes"
    copied = " ".join(line for line in lines if line.startswith("COPY"))
    assert all(lock in copied for lock in locks), copied


def _copy(lock: Lock, tmp_path: Path) -> Lock:
    for name in (lock.lock, *lock.inputs):
        shutil.copy(lock.folder / name, tmp_path / name)
    return Lock(lock.name, tmp_path, lock.lock, lock.inputs)


@pytest.fixture
def feedback_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lock:
    monkeypatch.setattr("tools.locks.REPO_ROOT", tmp_path.parent)
    return _copy(LOCKS["feedback"], tmp_path)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_a_bumped_pin_without_regeneration_fails(feedback_copy: Lock) -> None:
    _edit(feedback_copy.folder / "requirements.txt", "aiohttp==3.14.5", "aiohttp==3.14.6")
    problems = coverage_problems(feedback_copy)
    assert any("has aiohttp==3.14.5, its inputs pin 3.14.6" in p for p in problems), problems
    assert "make locks" in problems[-1]


def test_an_added_pin_without_regeneration_fails(feedback_copy: Lock) -> None:
    requirements = feedback_copy.folder / "requirements.txt"
    requirements.write_text(requirements.read_text() + "httpx==0.28.1\n")
    assert any("lacks httpx==0.28.1" in p for p in coverage_problems(feedback_copy))


def test_a_removed_pin_without_regeneration_fails(feedback_copy: Lock) -> None:
    _edit(feedback_copy.folder / "requirements.txt", "orjson==3.13.0\n", "")
    assert any("still has orjson==3.13.0" in p for p in coverage_problems(feedback_copy))


def test_a_lock_entry_without_hashes_fails(feedback_copy: Lock) -> None:
    lock = feedback_copy.path
    text = lock.read_text()
    block = re.search(r"^orjson==3\.13\.0 \\\n(?:    --hash=\S+(?: \\)?\n)+", text, re.M)
    assert block
    lock.write_text(text.replace(block.group(0), "orjson==3.13.0\n"))
    assert any("orjson has no --hash" in p for p in coverage_problems(feedback_copy))


def test_markers_are_evaluated_for_the_images_python() -> None:
    text = 'numpy==1.26.4 ; python_version >= "3.9"\nnumpy==1.24.4 ; python_version < "3.9"\n# note\nsix==1.17.0\n'
    assert read_pins(text) == {"numpy": "1.26.4", "six": "1.17.0"}


def test_an_unpinned_requirement_cannot_be_locked() -> None:
    from devstack.runtime.errors import DevstackError

    with pytest.raises(DevstackError, match="is not pinned as name==version"):
        read_pins("aiohttp>=3\n")
