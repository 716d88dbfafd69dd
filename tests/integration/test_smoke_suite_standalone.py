"""The smoke suite runs with nothing but its own requirements: a fresh virtualenv with only
smoke_tests/requirements.txt, and only the files its Dockerfile copies, laid out as in the image.

What: build (once per requirements.txt, cached under ~/.cache/seldon-feedback/smoke-venv/<hash>) a virtualenv with
just those requirements; copy what the Dockerfile COPYs into a folder laid out like the image's WORKDIR.
Assert: every suite module imports there (a failure names the module and its ImportError); pytest collects the
whole suite there; without a target the suite stops with the error that says how to give one.
Cleanup: the image folder is a pytest tmp_path; the cached virtualenv stays for the next run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.runtime.locks import file_lock
from devstack.runtime.paths import cache_dir
from tests.smoke_suite_layout import DOCKERFILE, REQUIREMENTS, dockerfile_copies, image_files, suite_modules

pytestmark = [pytest.mark.builds_venv, pytest.mark.slow]

COMPLETE = ".complete"


def _clean_env() -> dict[str, str]:
    """This machine's environment without the dev virtualenv's Python settings or a smoke target."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "SMOKE_TARGET"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("SMOKE_")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def suite_venv() -> Path:
    """A virtualenv with only smoke_tests/requirements.txt, created on first use (a few minutes) and cached."""
    root = cache_dir("smoke-venv")
    target = root / hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    if (target / COMPLETE).is_file() and (target / "bin" / "python").exists():
        return target
    with file_lock(root / f"{target.name}.lock"):
        if (target / COMPLETE).is_file() and (target / "bin" / "python").exists():
            return target
        shutil.rmtree(target, ignore_errors=True)
        log = root / f"{target.name}.log"
        base = getattr(sys, "_base_executable", sys.executable)
        steps = [
            [base, "-m", "venv", str(target)],
            [str(target / "bin" / "python"), "-m", "pip", "install", "--no-input", "-r", str(REQUIREMENTS)],
        ]
        with log.open("w") as out:
            for argv in steps:
                result = subprocess.run(
                    argv, stdout=out, stderr=subprocess.STDOUT, env=_clean_env(), timeout=1200, check=False
                )
                if result.returncode != 0:
                    shutil.rmtree(target, ignore_errors=True)
                    pytest.fail(f"{' '.join(argv[:4])} ... failed (exit {result.returncode}); see {log}")
        (target / COMPLETE).write_text(REQUIREMENTS.read_text())
    return target


@pytest.fixture(scope="module")
def python() -> Path:
    return suite_venv() / "bin" / "python"


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the Dockerfile copies, at their paths under its WORKDIR (and nothing else of the checkout)."""
    text = DOCKERFILE.read_text()
    workdir, _ = dockerfile_copies(text)
    root = tmp_path_factory.mktemp("smoke-image")
    for source, placed in image_files(text).items():
        local = root / Path(placed).relative_to(workdir)
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, local)
    return root


def _run(python: Path, image_root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**_clean_env(), "PYTHONPATH": str(image_root), "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [str(python), *args], cwd=image_root, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_every_suite_module_imports_with_only_its_requirements(python: Path, image_root: Path) -> None:
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    result = _run(python, image_root, "-c", script, *suite_modules())
    assert result.returncode == 0, (
        f"with only smoke_tests/requirements.txt these suite modules do not import:\n{result.stdout}{result.stderr}"
    )


def test_pytest_collects_the_whole_suite_from_the_image_files(python: Path, image_root: Path) -> None:
    result = _run(python, image_root, "-m", "pytest", "smoke_tests", "--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.returncode == 0, f"collection failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}"
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    modules = {line.split("::", 1)[0] for line in collected}
    expected = {f"smoke_tests/{name.split('.')[-1]}.py" for name in suite_modules() if ".test_" in name}
    assert modules == expected, f"collected tests from {sorted(modules)}, expected every test module {sorted(expected)}"


def test_without_a_target_the_suite_says_how_to_give_one(python: Path, image_root: Path) -> None:
    result = _run(
        python,
        image_root,
        "-m",
        "pytest",
        "smoke_tests/test_infra.py",
        "-p",
        "no:cacheprovider",
        "-q",
        "-k",
        "loopback",
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"the suite passed without any target:\n{output[-2000:]}"
    assert "no smoke target: set SMOKE_TARGET=<file>" in output, output[-3000:]
