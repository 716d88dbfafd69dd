"""What the smoke suite imports and what its image holds: shared by the tests of the suite's independence."""

from __future__ import annotations

import ast
from pathlib import Path

from devstack.images.dockerfile import Copy, Dockerfile, placements

REPO_ROOT = Path(__file__).resolve().parent.parent
SUITE = REPO_ROOT / "smoke_tests"
DOCKERFILE = SUITE / "Dockerfile"
REQUIREMENTS = SUITE / "requirements.txt"


def suite_modules() -> list[str]:
    """Every module of the suite, dotted (`smoke_tests.target`, ..., `smoke_tests.conftest`)."""
    return sorted(
        "smoke_tests" if path.name == "__init__.py" else f"smoke_tests.{path.stem}" for path in SUITE.glob("*.py")
    )


def imported_names(path: Path) -> set[str]:
    """The absolute module names `path` imports, at any depth (inside functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def repo_file(module: str) -> Path | None:
    """The file of the repository that `module` names (a module or a package's __init__), or None."""
    base = REPO_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def local_imports() -> dict[Path, set[Path]]:
    """For each suite file, the repository files it imports (the third-party ones are the requirements' job)."""
    found: dict[Path, set[Path]] = {}
    for path in sorted(SUITE.glob("*.py")):
        files = {repo_file(name) for name in imported_names(path)}
        found[path] = {file for file in files if file is not None}
    return found


def dockerfile_copies(text: str) -> tuple[str, list[Copy]]:
    """(the final WORKDIR, the COPY/ADD instructions that take files from the build context) of a Dockerfile."""
    parsed = Dockerfile.parse(text)
    return parsed.workdir, list(parsed.copies)


def image_files(text: str, context: Path = REPO_ROOT) -> dict[Path, Path]:
    """Every file of the build context that the Dockerfile puts in the image: {context file: path in the image}
    (what `.dockerignore` excludes left out, as the builder does)."""
    return {file: Path(placed) for file, placed in placements(context, Dockerfile.parse(text)).items()}
