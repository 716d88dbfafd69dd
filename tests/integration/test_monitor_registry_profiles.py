"""The monitor finds the reference profile of a registered version (the canary's) in the flow back's registry, on a
real OpenSearch and a real S3 server (s3proxy).

What: a registry bucket with a version registered with its profile (the canary's), one whose profile was replaced
after registration (corrupt), one registered without a profile, and capture documents of the main predictor (its
profile in the folder), the canary and an unregistered version. Wait: nothing; the monitor runs in the test
(`Monitor.run_once`) with a fixed clock after the last window. Assert: the canary's drift and quality are computed
against its own registered profile (stationary window: no breach; its spam wave: every drift metric breaches),
each unknown version is looked up exactly once (cached, retried only after MONITOR_REGISTRY_RETRY_S), the corrupt
and the missing profile are refused with a message naming the file and counted by reason, an unreachable store is
counted and leaves those versions `no_profile` without stopping the monitor. Cleanup: the test's indices; the
bucket has a random name on the session's S3 server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from feedback.flowback.registry import Registry
from feedback.flowback.store import StoreSettings
from feedback.monitor.settings import RegistrySettings

from tests.flowback_data import new_store, store_settings
from tests.integration.test_monitor import Setup
from tests.monitor_data import MODEL_VERSION, profile_data, window_documents

pytestmark = pytest.mark.integration

CANARY = "1.0.0+canaryreg0001"
CORRUPT = "1.0.0+corruptreg001"
WITHOUT_PROFILE = "1.0.0+noprofilereg1"
UNREGISTERED = "1.0.0+unregistered1"
MODEL = "text-classifier"


def artifacts(folder: Path, version: str, *, profile: bool = True) -> Path:
    """A folder as the trainer writes it (the model's bytes do not matter to the monitor)."""
    folder.mkdir()
    (folder / "model.joblib").write_bytes(f"model {version}".encode())
    (folder / "metadata.json").write_text(json.dumps({"version": version, "class_names": ["t:0", "t:1"]}))
    if profile:
        (folder / "profile.json").write_text(json.dumps(profile_data(version)))
    return folder


@pytest.fixture
def setup(search: Any, tmp_path: Path) -> Iterator[Setup]:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "profile.json").write_text(json.dumps(profile_data()))  # the main predictor's
    current = Setup(search.url, tmp_path / "profiles")
    try:
        yield current
    finally:
        current.delete()


@pytest.fixture
def registry(s3: Any, tmp_path: Path) -> Registry:
    store = new_store(s3, "registry")
    registry = Registry(store, MODEL)
    for version in (CANARY, CORRUPT):
        registry.register(artifacts(tmp_path / version, version))
    registry.register(artifacts(tmp_path / WITHOUT_PROFILE, WITHOUT_PROFILE, profile=False))
    # replaced after registration: other bytes than registration.json records
    store.put(registry.file_key(CORRUPT, "profile.json"), json.dumps(profile_data(CANARY)).encode())
    return registry


def write_traffic(setup: Setup) -> None:
    for index in (0, 1):
        setup.write(index, window_documents(120, 400 + index))  # main predictor, local profile
    setup.write(0, window_documents(120, 500), predictor="canary", model_version=CANARY)
    setup.write(1, window_documents(120, 501, spam_share=1.0), predictor="canary", model_version=CANARY)
    for version in (CORRUPT, WITHOUT_PROFILE, UNREGISTERED):
        setup.write(1, window_documents(20, 600), predictor="canary", model_version=version)


def test_the_canary_is_monitored_against_its_registered_profile(setup: Setup, registry: Registry, s3: Any) -> None:
    write_traffic(setup)
    expected_held_out = profile_data(CANARY)["held_out"]["accuracy"]
    settings = RegistrySettings(store=store_settings(s3, registry.store.bucket), model_name=MODEL, retry_s=3600)
    monitor = setup.monitor(setup.after(2), registry=settings)
    assert monitor.run_once() == 2

    drift = setup.by_window(kind="drift", model_version=CANARY)
    assert sorted(drift) == [0, 1] and all(len(results) == 7 for results in drift.values())
    assert {d["status"] for d in drift[0] + drift[1]} == {"ok"}, "computed against the registered profile"
    assert [d["metric"] for d in drift[0] if d["breach"]] == [], "stationary canary traffic must not breach"
    assert {d["metric"] for d in drift[1] if d["breach"]} == {d["metric"] for d in drift[1]}, "the spam wave"
    assert {d["predictor"] for d in drift[0]} == {"canary"}
    accuracy = setup.results(kind="quality", metric="accuracy", model_version=CANARY)
    assert len(accuracy) == 2 and all(a["reference_value"] == pytest.approx(expected_held_out) for a in accuracy), (
        "quality compares with the registered profile's held-out accuracy"
    )
    main = setup.by_window(kind="drift", model_version=MODEL_VERSION)
    assert sorted(main) == [0, 1] and {d["status"] for d in main[0] + main[1]} == {"ok"}

    for version in (CORRUPT, WITHOUT_PROFILE, UNREGISTERED):
        results = setup.results(kind="drift", model_version=version)
        assert len(results) == 7 and {d["status"] for d in results} == {"no_profile"}, version

    source = monitor.profiles.registry
    assert source is not None
    assert source.lookups == 4, "each unknown version once per window run: cached or retried after retry_s only"
    assert monitor.profiles.versions == sorted([MODEL_VERSION, CANARY])
    assert source.get(CANARY) is not None and source.get(CANARY).source.endswith(f"/{CANARY}/profile.json")  # type: ignore[union-attr]
    assert set(source.errors) == {CORRUPT, WITHOUT_PROFILE}, "an unregistered version is not an error"
    assert f"{registry.describe(CORRUPT)}/profile.json is sha256 " in source.errors[CORRUPT]
    assert "register the version again" in source.errors[CORRUPT]
    assert "registered without a profile; retrain it" in source.errors[WITHOUT_PROFILE]
    errors = monitor.metrics.registry_profile_errors
    assert (errors.labels("corrupt")._value.get(), errors.labels("no_profile_file")._value.get()) == (1, 1)
    assert errors.labels("store")._value.get() == 0


def test_an_unreachable_registry_is_counted_and_the_monitor_goes_on(setup: Setup, s3: Any) -> None:
    for index in (0, 1):
        setup.write(index, window_documents(60, 700 + index))
        setup.write(index, window_documents(60, 800 + index), predictor="canary", model_version=CANARY)
    unreachable = StoreSettings(
        endpoint="http://127.0.0.1:9", bucket="flowback", access_key="a", secret_key="s", region=s3.region
    )
    monitor = setup.monitor(setup.after(2), registry=RegistrySettings(store=unreachable, retry_s=3600))
    assert monitor.run_once() == 2
    results = setup.results(kind="drift", model_version=CANARY)
    assert len(results) == 14 and {d["status"] for d in results} == {"no_profile"}
    assert {d["status"] for d in setup.results(kind="drift", model_version=MODEL_VERSION)} == {"ok"}
    source = monitor.profiles.registry
    assert source is not None and source.lookups == 1 and source.failures == {"store": 1}
    assert source.errors[CANARY].startswith("the registry s3://flowback/ cannot be read (MONITOR_REGISTRY_S3_ENDPOINT")
    assert monitor.metrics.registry_profile_errors.labels("store")._value.get() == 1
