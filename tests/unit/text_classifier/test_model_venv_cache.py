"""The model virtualenv cache: created once, a half-made one rebuilt, a failed one removed with a clear error.

Uses a throwaway requirements file with no packages (nothing is downloaded) and a cache under tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import devstack.servers.model as model
from devstack.runtime.errors import DevstackError


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# nothing to install\n")
    monkeypatch.setattr(model, "REQUIREMENTS", requirements)
    return requirements


def test_created_once_then_reused(isolated: Path) -> None:
    first = model.model_venv()
    assert (first / ".complete").is_file()
    assert (first / "bin" / "python").exists()
    marker_time = (first / ".complete").stat().st_mtime_ns
    assert model.model_venv() == first
    assert (first / ".complete").stat().st_mtime_ns == marker_time  # not rebuilt
    assert model.model_python() == first / "bin" / "python"


def test_half_made_environment_is_rebuilt(isolated: Path, tmp_path: Path) -> None:
    target = tmp_path / "cache" / "seldon-feedback" / "model-venv" / model.requirements_digest()
    target.mkdir(parents=True)
    (target / "left-over-from-an-interrupted-run").write_text("x")
    built = model.model_venv()
    assert built == target
    assert not (target / "left-over-from-an-interrupted-run").exists()
    assert (target / ".complete").is_file()


def test_failed_install_is_removed_and_explained(isolated: Path) -> None:
    isolated.write_text("this is not === a requirement\n")  # pip rejects it locally, no index lookup
    with pytest.raises(DevstackError, match=r"pip install -r requirements.txt failed \(exit \d+\)"):
        model.model_venv()
    assert not (isolated.parent / "cache" / "seldon-feedback" / "model-venv" / model.requirements_digest()).exists()


def test_missing_console_script_names_the_requirements(isolated: Path) -> None:
    with pytest.raises(DevstackError, match="is 'no-such-tool' a console script of a package in"):
        model.model_bin("no-such-tool")


@pytest.fixture
def fake_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for the model venv's python that 'trains' by writing two files and counts its runs."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    python = tmp_path / "python"
    python.write_text(
        '#!/bin/sh\necho run >> "$RUNS"\nmkdir -p "$3"\nprintf model > "$3/model.joblib"\n'
        'printf \'{"v": 1}\' > "$3/metadata.json"\n'
    )
    python.chmod(0o755)
    monkeypatch.setenv("RUNS", str(runs))
    monkeypatch.setattr(model, "model_python", lambda: python)
    monkeypatch.setattr(model, "model_version", lambda: "1.0.0+test")
    return runs


def test_trained_artifacts_are_reused_while_intact(fake_training: Path) -> None:
    first = model.trained_artifacts()
    assert model.trained_artifacts() == first
    assert fake_training.read_text().count("run") == 1


@pytest.mark.parametrize("damage", ["truncate", "delete", "digests"])
def test_damaged_trained_artifacts_are_trained_again(fake_training: Path, damage: str) -> None:
    target = model.trained_artifacts()
    if damage == "truncate":
        (target / "model.joblib").write_bytes(b"mo")
    elif damage == "delete":
        (target / "metadata.json").unlink()
    else:
        (target / model.DIGESTS).write_text("{not json")
    assert model.trained_artifacts() == target
    assert fake_training.read_text().count("run") == 2
    assert (target / "model.joblib").read_bytes() == b"model"
    assert (target / "metadata.json").is_file()


def test_an_entry_finished_before_digests_is_kept(fake_training: Path) -> None:
    target = model.trained_artifacts()
    (target / model.DIGESTS).unlink()
    assert model.trained_artifacts() == target
    assert fake_training.read_text().count("run") == 1
    assert (target / model.DIGESTS).is_file()


def test_environment_whose_interpreter_is_gone_is_rebuilt(isolated: Path) -> None:
    first = model.model_venv()
    (first / "bin" / "python").unlink()  # as when the base Python it links to was removed
    assert model.model_venv() == first
    assert (first / "bin" / "python").exists()
