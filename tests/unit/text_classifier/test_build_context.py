"""The image build context, checked by reading (no Docker here): what the Dockerfile and s2i files promise."""

from __future__ import annotations

import re
from pathlib import Path

from textclf.fingerprint import training_inputs

from devstack.images.dockerfile import Dockerfile

CONTEXT = Path(__file__).resolve().parents[3] / "images" / "text-classifier"
DOCKERFILE = (CONTEXT / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    """Arguments of every `name` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.split(None, 1)[:1] == [name]]


def copied_sources() -> list[Path]:
    sources = []
    for args in instructions("COPY"):
        *items, _dest = args.split()
        sources.extend(CONTEXT / item.rstrip("/") for item in items if not item.startswith("--"))
    return sources


def test_base_image_is_python_311_pinned_to_a_patch_release_and_digest() -> None:
    assert instructions("FROM") == ["${BASE_IMAGE}"], "the base comes in as the BASE_IMAGE build argument"
    base = Dockerfile.parse(DOCKERFILE).base_reference()  # its default: what users build on
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+@sha256:[0-9a-f]{64}", base), base


def test_runs_as_a_numeric_non_root_user() -> None:
    [user] = instructions("USER")
    assert user.isdigit() and int(user) != 0


def test_every_copied_path_exists_and_every_training_input_is_copied() -> None:
    sources = copied_sources()
    assert all(path.exists() for path in sources), [p for p in sources if not p.exists()]
    for needed in training_inputs(CONTEXT):  # otherwise the image would report another model version
        assert any(needed == src or src in needed.parents for src in sources), needed
    assert any(src.name == "TextClassifier.py" for src in sources)


def test_trains_at_build_and_serves_with_the_seldon_microservice() -> None:
    runs = " ".join(instructions("RUN"))
    assert "pip install --no-input --require-hashes -r requirements.lock" in runs
    assert "python train.py --out /microservice/artifacts" in runs
    [cmd] = instructions("CMD")
    assert cmd == '["seldon-core-microservice", "TextClassifier", "--service-type", "MODEL"]'
    assert "MODEL_ARTIFACTS_DIR=/microservice/artifacts" in " ".join(instructions("ENV"))


def test_s2i_environment_matches_the_original_article() -> None:
    lines = (CONTEXT / ".s2i" / "environment").read_text().split()
    assert dict(line.split("=", 1) for line in lines) == {
        "MODEL_NAME": "TextClassifier",
        "SERVICE_TYPE": "MODEL",
        "API_TYPE": "REST",
        "PERSISTENCE": "0",
    }
    assemble = CONTEXT / ".s2i" / "bin" / "assemble"
    assert assemble.stat().st_mode & 0o111, "assemble must be executable"
    assert "python train.py --out /microservice/artifacts" in assemble.read_text()


def test_requirements_pin_every_package() -> None:
    requirements = [
        line.split(";")[0].strip()
        for line in (CONTEXT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert requirements
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][A-Za-z0-9.+-]*", req) for req in requirements), requirements
    names = {req.split("==")[0].lower() for req in requirements}
    assert {"seldon-core", "scikit-learn", "spacy", "spacy-lookups-data", "setuptools", "gunicorn"} <= names
    assert "seldon-core==1.17.1" in requirements
