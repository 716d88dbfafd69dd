"""Operators and services that already exist, and mirrors for air-gapped clusters, under mocks: what the program
leaves out, what it still creates, how clients are wired to the existing services, where every chart and image
comes from, and the config errors that name the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra import config
from tests.infra.harness import Run, run_program, walk

CHART = "kubernetes:helm.sh/v4:Chart"
RELEASE = "kubernetes:helm.sh/v3:Release"
OPERATORS_EXISTING = {
    "kafka:operator": "existing",
    "search:operator": "existing",
    "workflows:operator": "existing",
    "seldon:operator": "existing",
}
EXISTING_SERVICES = {
    "kafka:existing": {
        "bootstrap": "kafka.corp.example:9093",
        "tlsSecret": "corp-kafka-ca",
        "saslSecret": "corp-kafka",
    },
    "search:existing": {
        "url": "https://search.corp.example:9200",
        "secret": "corp-search",
        "indexerSecret": "corp-search-indexer",
        "monitorSecret": "corp-search-monitor",
        "caSecret": "corp-ca",
    },
    "objectstore:existing": {"endpoint": "https://s3.corp.example", "secret": "corp-s3"},
}
UPSTREAM = {
    "kafka-operator": "strimzi-kafka-operator",
    "search-operator": "eck-operator",
    "objectstore-minio": "minio",
    "workflows-argo": "argo-workflows",
    "seldon-operator": "seldon-core-operator",
}


def values(run: Run, name: str) -> dict[str, Any]:
    return next(r for r in run.charts() if r.name == name).inputs.get("values") or {}


def kinds(run: Run) -> set[str]:
    return {r.typ.rsplit(":", 1)[-1] for r in run.resources if r.typ.startswith("kubernetes:")}


def test_existing_operators_skip_their_charts_but_keep_every_custom_resource() -> None:
    secrets = {
        "objectstore:rootPassword": "a-long-password",
        "search:indexerPassword": "an-indexer-password",
        "search:monitorPassword": "a-monitor-password",
    }
    run = run_program("dev", overrides=OPERATORS_EXISTING, secrets=secrets)
    assert {r.name for r in run.charts()} == {
        "objectstore-minio",
        "feedback-pipeline",
        "classifier-realtime",
        "classifier-streaming",
        "batch-workflow",
        "flowback-workflow",
    }
    assert {"Kafka", "KafkaNodePool", "KafkaTopic", "Elasticsearch", "Kibana"} <= kinds(run)
    namespaces = {r.inputs["metadata"]["name"] for r in run.of_type("kubernetes:core/v1:Namespace")}
    assert namespaces == {"seldon", "minio"}, "operators that exist bring their own namespaces"
    assert set(run.outputs["namespaces"]) == {"app", "objectStore"}
    for resource in run.custom_resources("Kafka") + run.custom_resources("Elasticsearch"):
        assert not run.registration(resource.name).opts.depends_on, resource.name
    assert run.outputs["collector"]["executorDefaultEndpoint"] == run.outputs["collector"]["url"]


def test_existing_services_are_wired_by_reference_and_nothing_of_theirs_is_made() -> None:
    run = run_program("dev", overrides={**OPERATORS_EXISTING, **EXISTING_SERVICES}, secrets={})
    assert not {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Elasticsearch", "Kibana"} & kinds(run)
    assert not any(r.name.startswith("objectstore-") for r in run.resources), "no MinIO, no copied credentials"
    feedback = values(run, "feedback-pipeline")
    assert feedback["kafka"]["bootstrapServers"] == "kafka.corp.example:9093"
    assert feedback["kafka"]["securityProtocol"] == "sasl_ssl"
    assert feedback["kafka"]["tls"] == {"existingSecret": "corp-kafka-ca", "caCertKey": "ca.crt"}
    assert feedback["kafka"]["sasl"]["existingSecret"] == "corp-kafka"
    assert feedback["kafka"]["sasl"]["mechanism"] == "SCRAM-SHA-512"
    assert feedback["search"]["url"] == "https://search.corp.example:9200"
    search = feedback["search"]
    assert (search["setup"]["existingSecret"], search["setup"]["passwordKey"]) == ("corp-search", "password")
    assert search["indexer"] == {
        "username": "seldon-feedback-indexer",
        "existingSecret": "corp-search-indexer",
        "passwordKey": "password",
    }
    assert search["monitor"]["existingSecret"] == "corp-search-monitor"
    assert not any(r.typ.endswith("Secret") and r.name.startswith("search-") for r in run.resources), "no users made"
    assert feedback["search"]["tls"]["caSecret"] == "corp-ca"
    assert feedback["networkPolicy"] == {"enabled": False}, "policies only know pods of services we make"
    for chart in ("classifier-realtime", "classifier-streaming"):
        assert values(run, chart)["kafka"]["broker"] == "kafka.corp.example:9093"
        assert values(run, chart)["kafka"]["securityProtocol"] == "SASL_SSL"
    batch = values(run, "batch-workflow")["objectStore"]
    assert (batch["endpoint"], batch["existingSecret"]) == ("https://s3.corp.example", "corp-s3")
    flowback = values(run, "flowback-workflow")
    assert (flowback["objectStore"]["endpoint"], flowback["objectStore"]["existingSecret"]) == (
        "https://s3.corp.example",
        "corp-s3",
    )
    assert (flowback["search"]["url"], flowback["search"]["existingSecret"], flowback["search"]["caSecret"]) == (
        "https://search.corp.example:9200",
        "corp-search",
        "corp-ca",
    )
    outputs = run.outputs
    assert outputs["kafka"]["bootstrap"] == "kafka.corp.example:9093"
    assert outputs["kafka"]["caSecret"] == "corp-kafka-ca"
    assert outputs["search"]["credentialsSecret"] == "corp-search"
    assert outputs["search"]["kibanaUrl"] is None
    assert outputs["objectStore"] == {
        "endpoint": "https://s3.corp.example",
        "bucket": "seldon-batch",
        "credentialsSecret": "corp-s3",
    }
    assert set(outputs["components"]) == {"collector", "indexer", "classifier", "classifierStreaming"}
    assert set(outputs["namespaces"]) == {"app"}


@pytest.mark.parametrize(
    ("mirror", "expected"),
    [
        ("https://charts.corp.example/helm", {"repo": "https://charts.corp.example/helm"}),
        ("oci://registry.corp.example/charts", {"oci": "oci://registry.corp.example/charts/"}),
    ],
    ids=["helm-repository", "oci"],
)
def test_every_upstream_chart_comes_from_the_chart_repository(mirror: str, expected: dict[str, str]) -> None:
    run = run_program("dev", overrides={"platform:chartRepository": mirror})
    for resource, chart in UPSTREAM.items():
        inputs = run.named(resource).inputs
        if "repo" in expected:
            assert inputs["chart"] == chart, resource
            assert inputs["repositoryOpts"]["repo"] == expected["repo"], resource
        else:
            assert inputs["chart"] == expected["oci"] + chart, resource
            assert "repositoryOpts" not in inputs, resource


def test_a_chart_source_overrides_the_repository_and_an_archive_is_a_local_path(tmp_path: Path) -> None:
    archive = tmp_path / "eck-operator-3.5.0.tgz"
    archive.write_bytes(b"\x1f\x8b not really a chart, only its path is used here")
    run = run_program(
        "dev",
        overrides={
            "platform:chartRepository": "https://charts.corp.example/helm",
            "platform:chartSources": {"eck-operator": {"archive": str(archive)}},
        },
    )
    inputs = run.named("search-operator").inputs
    assert (Path.cwd() / inputs["chart"]).resolve() == archive
    assert "repositoryOpts" not in inputs
    assert run.named("kafka-operator").inputs["repositoryOpts"]["repo"] == "https://charts.corp.example/helm"


def test_the_image_registry_reaches_every_image_the_platform_runs() -> None:
    registry = "registry.corp.example:5000/mirror"
    run = run_program("dev", overrides={"platform:imageRegistry": registry})
    assert values(run, "kafka-operator")["defaultImageRegistry"] == registry
    eck = values(run, "search-operator")
    assert eck["image"]["repository"] == f"{registry}/eck/eck-operator"
    assert eck["config"]["containerRegistry"] == registry, "Elasticsearch and Kibana images"
    minio = values(run, "objectstore-minio")
    assert minio["image"]["repository"] == f"{registry}/minio/minio"
    assert minio["mcImage"]["repository"] == f"{registry}/minio/mc"
    argo = values(run, "workflows-argo")
    for part in ("controller", "executor", "server"):
        assert argo[part]["image"]["registry"] == registry, part
    seldon = values(run, "seldon-operator")
    assert seldon["image"]["registry"] == seldon["executor"]["image"]["registry"] == registry
    assert seldon["storageInitializer"]["image"] == f"{registry}/seldonio/rclone-storage-initializer:1.17.1"
    repositories = [
        value
        for chart in (
            "feedback-pipeline",
            "classifier-realtime",
            "classifier-streaming",
            "batch-workflow",
            "flowback-workflow",
        )
        for path, value in walk(values(run, chart))
        if path[-1] == "repository"
    ]
    assert len(repositories) == 7
    assert all(value.startswith(f"{registry}/") for value in repositories), repositories


@pytest.mark.parametrize(
    ("reference", "registry", "expected"),
    [
        ("quay.io/strimzi/operator", "mirror.example", "mirror.example/strimzi/operator"),
        ("seldonio/seldon-core-operator", "mirror.example/hub", "mirror.example/hub/seldonio/seldon-core-operator"),
        ("localhost:5000/x/y:1", "m.example:5000", "m.example:5000/x/y:1"),
        ("ghcr.io/a/b", "", "ghcr.io/a/b"),
    ],
)
def test_mirrored_image_reference(reference: str, registry: str, expected: str) -> None:
    assert config.Mirrors(image_registry=registry).image(reference) == expected


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kafka:operator": "maybe"}, "kafka:operator='maybe' is not allowed; use one of install, existing"),
        ({"kafka:existing": {"bootstrap": "kafka"}}, "kafka:existing.bootstrap='kafka' must be host:port"),
        ({"kafka:existing": {"bootstrap": "k:9092", "brokers": 3}}, "kafka:existing="),
        (
            {"kafka:existing": {"bootstrap": "k:9092", "saslSecret": "s"}},
            "kafka:existing.saslSecret needs kafka:existing.tlsSecret",
        ),
        (
            {"kafka:existing": {"bootstrap": "k:9092"}, "kafka:tls": True},
            "kafka:tls is set, but kafka:existing uses a service the platform does not make",
        ),
        ({"search:existing": {"url": "search:9200", "secret": "s"}}, "search:existing.url='search:9200' must be"),
        ({"search:existing": {"url": "http://s:9200"}}, "search:existing.secret is required"),
        ({"search:existing": {"url": "http://s:9200", "secret": "s"}}, "search:existing.indexerSecret is required"),
        (
            {"search:existing": {"url": "http://s:9200", "secret": "s", "indexerSecret": "i"}},
            "search:existing.monitorSecret is required",
        ),
        ({"search:existing": {"url": "http://s:9200", "secret": "s", "engine": "solr"}}, "engine='solr' is not"),
        ({"objectstore:existing": {"endpoint": "http://s3"}}, "objectstore:existing.secret is required"),
        ({"platform:chartRepository": "charts.example"}, "platform:chartRepository='charts.example' is not a chart"),
        ({"platform:chartSources": {"minio": {}}}, "platform:chartSources.minio needs exactly one of repository"),
        ({"platform:chartSources": {"minio": {"archive": "nope.tgz"}}}, "platform:chartSources.minio.archive"),
        ({"platform:chartSources": {"mino": {"repository": "https://x"}}}, "has unknown field(s) mino"),
        ({"platform:imageRegistry": "https://mirror"}, "platform:imageRegistry='https://mirror' is not a registry"),
    ],
    ids=lambda value: json.dumps(value)[:60] if isinstance(value, dict) else None,
)
def test_bad_existing_and_mirror_settings_name_the_key(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(config.ConfigError) as error:
        run_program("dev", overrides=overrides)
    assert message in str(error.value)


def test_the_search_users_need_long_passwords_unless_the_engine_exists() -> None:
    short = {"search:indexerPassword": "short", "search:monitorPassword": "a-monitor-password"}
    with pytest.raises(config.ConfigError) as error:
        run_program("dev", secrets={"objectstore:rootPassword": "a-long-password", **short})
    assert "search:indexerPassword is 5 characters long, at least 12 are required" in str(error.value)
    with pytest.raises(config.ConfigError, match="search:monitorPassword is required"):
        run_program("dev", secrets={"objectstore:rootPassword": "a-long-password", "search:indexerPassword": "x" * 12})


def test_an_existing_object_store_needs_no_root_password() -> None:
    users = {"search:indexerPassword": "an-indexer-password", "search:monitorPassword": "a-monitor-password"}
    run_program("dev", overrides={"objectstore:existing": EXISTING_SERVICES["objectstore:existing"]}, secrets=users)
    with pytest.raises(config.ConfigError, match="objectstore:rootPassword is required"):
        run_program("dev", secrets={})


def test_existing_kafka_takes_per_client_credentials() -> None:
    """kafka:existing keeps saslSecret as every client's login and gives a client listed with <client>Secret its own
    (users and ACLs on that cluster are its owner's)."""
    kafka = {**EXISTING_SERVICES["kafka:existing"], "collectorSecret": "corp-collector", "executorSecret": "corp-exec"}
    run = run_program("dev", overrides={**EXISTING_SERVICES, "kafka:existing": kafka}, secrets={})
    feedback = values(run, "feedback-pipeline")["kafka"]
    assert feedback["sasl"]["existingSecret"] == "corp-kafka" and feedback["sasl"]["usernameKey"] == "username"
    assert feedback["clients"] == {"collector": {"existingSecret": "corp-collector"}}
    for chart in ("classifier-realtime", "classifier-streaming"):
        assert values(run, chart)["kafka"]["sasl"]["existingSecret"] == "corp-exec"
    assert run.outputs["kafka"]["credentialsSecrets"]["smoke"] == "corp-kafka"
    assert "KafkaUser" not in kinds(run)
