"""The seed's s2i route and the Dockerfile make the same image: same command, same files.

`s2i build images/text-classifier seldonio/seldon-core-s2i-python3:1.17.1 <image>` cannot run here (the Go module
proxy refuses source-to-image and no package ships it), so what can be checked is checked by reading:
- `.s2i/environment` names the model class, service type, API and persistence the Dockerfile's ENV and CMD give
  (the builder's run script, seldon-core v1.17.1 `wrappers/s2i/python/s2i/bin/run`, starts
  `seldon-core-microservice $MODEL_NAME --service-type $SERVICE_TYPE --persistence $PERSISTENCE`);
- the files the builder's assemble step installs (`cp -Rf /tmp/src/. /microservice`: the whole source, minus what
  `.s2iignore` removes with filepath.Glob, non-recursive) are the files the Dockerfile COPYs to the same paths
  under /microservice, apart from the build's own files.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from devstack.images.dockerfile import Dockerfile, placements

CONTEXT = Path(__file__).resolve().parents[2] / "images" / "text-classifier"
DOCKERFILE = Dockerfile.read(CONTEXT / "Dockerfile")
# the build's own files: s2i installs them too, the Dockerfile does not need them in the image
BUILD_FILES = {".s2i/environment", ".s2i/bin/assemble", ".s2iignore", ".dockerignore", "Dockerfile"}
S2I_KEYS = ("MODEL_NAME", "SERVICE_TYPE", "API_TYPE", "PERSISTENCE")


def s2i_environment() -> dict[str, str]:
    lines = (CONTEXT / ".s2i" / "environment").read_text().split()
    return dict(line.split("=", 1) for line in lines)


def glob_matches(pattern: str, relative: str) -> bool:
    """Go's filepath.Match of a pattern and a path of the same depth (`*` never crosses "/", dot files match)."""
    parts, wanted = relative.split("/"), pattern.strip("/").split("/")
    return len(parts) == len(wanted) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted, strict=True))


def s2i_installed(context: Path) -> set[str]:
    """The context files s2i's assemble copies into /microservice, relative to it."""
    every = {path.relative_to(context).as_posix() for path in context.rglob("*") if path.is_file()}
    ignore = context / ".s2iignore"
    specs = [line.strip() for line in ignore.read_text().splitlines()] if ignore.is_file() else []
    removed: set[str] = set()
    for spec in (spec for spec in specs if spec and not spec.startswith("#")):
        for relative in every:
            prefixes = ["/".join(relative.split("/")[: n + 1]) for n in range(relative.count("/") + 1)]
            if any(glob_matches(spec, prefix) for prefix in prefixes):  # a removed folder takes its files along
                removed.add(relative)
    return every - removed


def test_s2i_environment_is_what_the_dockerfile_runs() -> None:
    environment = s2i_environment()
    assert set(environment) == set(S2I_KEYS)
    assert {key: DOCKERFILE.env[key] for key in S2I_KEYS} == environment
    command = list(DOCKERFILE.cmd)
    assert command[:4] == ["seldon-core-microservice", environment["MODEL_NAME"], "--service-type", "MODEL"]
    assert command[3] == environment["SERVICE_TYPE"]
    # s2i's run script adds `--persistence $PERSISTENCE`; the Dockerfile leaves it at the microservice's default, 0
    assert environment["PERSISTENCE"] == "0" and "--persistence" not in command
    assert (CONTEXT / f"{environment['MODEL_NAME']}.py").is_file(), "the model class must be a module of that name"


def test_s2i_installs_the_files_the_dockerfile_copies_at_the_same_paths() -> None:
    placed = placements(CONTEXT, DOCKERFILE)
    by_s2i = s2i_installed(CONTEXT)
    copied = {path.relative_to(CONTEXT).as_posix(): target for path, target in placed.items()}
    assert {relative: f"/microservice/{relative}" for relative in copied} == copied, "the Dockerfile moves files"
    assert by_s2i - BUILD_FILES == set(copied), (
        f"only s2i: {sorted(by_s2i - BUILD_FILES - set(copied))}; only the Dockerfile: {sorted(set(copied) - by_s2i)}"
    )
    assert all((CONTEXT / name).is_file() for name in BUILD_FILES), "a build file named here is gone"


def test_the_s2i_ignore_reader_follows_filepath_glob(tmp_path: Path) -> None:
    for relative in ("a.py", "README.md", "pkg/__pycache__/x.pyc", "pkg/b.py", "artifacts/model.joblib", ".s2i/env"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x")
    (tmp_path / ".s2iignore").write_text("# comment\nartifacts\n*.md\n__pycache__\n")
    # `__pycache__` is not recursive in s2i: pkg/__pycache__ stays unless named as pkg/__pycache__
    assert s2i_installed(tmp_path) == {"a.py", "pkg/__pycache__/x.pyc", "pkg/b.py", ".s2i/env", ".s2iignore"}
