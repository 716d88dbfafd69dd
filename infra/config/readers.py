"""One reader per config namespace, then the rules that span namespaces; `load()` runs them all on one `Reader`,
so every problem of the whole stack config is reported at once, before the first resource is created."""

from __future__ import annotations

import os
import re
import zoneinfo
from pathlib import Path
from typing import Any

import pulumi

from infra.config.keys import (
    CHART_SOURCE_FIELDS,
    EXISTING_KAFKA_CLIENT_SECRETS,
    EXISTING_KAFKA_FIELDS,
    EXISTING_OBJECTSTORE_FIELDS,
    EXISTING_SEARCH_FIELDS,
    KEYS_BY_NAME,
    UPSTREAM_CHARTS,
)
from infra.config.reader import NO_VERSION, Reader, fmt, raw_config
from infra.config.settings import (
    BatchSettings,
    ChartSource,
    ClassifierSettings,
    ExistingKafka,
    ExistingObjectStore,
    ExistingSearch,
    FeedbackSettings,
    FlowbackSettings,
    KafkaSettings,
    Mirrors,
    ObjectStoreSettings,
    PlatformSettings,
    SearchSettings,
    SeldonSettings,
    StackConfig,
    WorkflowsSettings,
)

MIN_SELDON = (1, 3, 0)  # first release with the Kafka server type (serverType: kafka) the streaming classifier uses
BSL_FROM = (1, 18, 0)  # first release under the Business Source License 1.1 (1.17.1 is the last Apache-2.0 one)

_ARGO_TAG = re.compile(r"^v\d+\.\d+\.\d+$")
_MINIO_TAG = re.compile(r"^RELEASE\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z$")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_INDEX = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_MODEL_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")  # a DNS subdomain, as Kubernetes names Secrets
_HOST_PORT = re.compile(r"[A-Za-z0-9.-]+:\d{1,5}")
_HTTP_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?(/\S*)?")
_CHART_REPOSITORY = re.compile(r"(https?|oci)://[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9._~/-]*)?")
_IMAGE_REGISTRY = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
SEARCH_ENGINES = ("elasticsearch", "opensearch")
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # where Pulumi.yaml is: relative chart archives start here


def load(stack: str | None = None) -> StackConfig:
    """Reads and validates the whole stack config; raises ConfigError listing every problem."""
    reader = Reader(raw_config())
    reader.check_unknown()
    settings = StackConfig(
        platform=read_platform(reader, stack or pulumi.get_stack()),
        kafka=read_kafka(reader),
        search=read_search(reader),
        objectstore=read_objectstore(reader),
        workflows=read_workflows(reader),
        seldon=read_seldon(reader),
        classifier=read_classifier(reader),
        feedback=read_feedback(reader),
        batch=read_batch(reader),
        flowback=read_flowback(reader),
    )
    check_across_namespaces(reader, settings)
    reader.raise_errors()
    return settings


def read_platform(reader: Reader, stack: str) -> PlatformSettings:
    app_namespace = reader.get("platform:appNamespace")
    reader.dns_label("platform:appNamespace", app_namespace)
    return PlatformSettings(
        stack=stack,
        app_namespace=app_namespace,
        labels=reader.get("platform:labels"),
        protect=reader.get("platform:protect"),
        pod_disruption_budgets=reader.get("platform:podDisruptionBudgets"),
        default_requests=reader.resources("platform:defaultRequests"),
        mirrors=Mirrors(chart_sources=read_chart_sources(reader), image_registry=read_image_registry(reader)),
        mesh=reader.get("platform:mesh"),
        mesh_trust_domain=read_trust_domain(reader),
    )


_TRUST_DOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_PRINCIPAL = re.compile(r"[^/\s]+/ns/[a-z0-9]([-a-z0-9]*[a-z0-9])?/sa/[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def read_trust_domain(reader: Reader) -> str:
    domain = reader.get("platform:meshTrustDomain")
    if not _TRUST_DOMAIN.fullmatch(domain):
        reader.error(
            f"platform:meshTrustDomain={domain!r} is not a trust domain; write a DNS-like name such as cluster.local"
        )
    return domain


def read_chart_sources(reader: Reader) -> dict[str, ChartSource]:
    """Every upstream chart's source: platform:chartSources.<chart>, else platform:chartRepository, else none
    (the component's own repository)."""
    sources: dict[str, ChartSource] = {}
    default = reader.get("platform:chartRepository")
    if default:
        if _CHART_REPOSITORY.fullmatch(default):
            sources = {chart: ChartSource(repository=default.rstrip("/")) for chart in UPSTREAM_CHARTS}
        else:
            reader.error(
                f"platform:chartRepository={default!r} is not a chart repository URL; write https://<host>/<path> "
                f"(a Helm repository) or oci://<registry>/<path> (charts in an OCI registry)"
            )
    for chart, value in reader.get("platform:chartSources").items():
        where = f"platform:chartSources.{chart}"
        if not isinstance(value, dict):
            reader.error(f"{where}={value!r} is not an object; write {{repository: <URL>}} or {{archive: <path>}}")
            continue
        unknown = sorted(set(value) - set(CHART_SOURCE_FIELDS))
        if unknown:
            allowed = ", ".join(CHART_SOURCE_FIELDS)
            reader.error(f"{where} has unknown field(s) {', '.join(unknown)}; allowed: {allowed}")
            continue
        repository, archive = ("" if value.get(part) is None else str(value[part]) for part in CHART_SOURCE_FIELDS)
        if bool(repository) == bool(archive):
            reader.error(f"{where} needs exactly one of repository (a chart repository URL) and archive (a .tgz path)")
        elif repository and not _CHART_REPOSITORY.fullmatch(repository):
            reader.error(f"{where}.repository={repository!r} is not an https:// or oci:// chart repository URL")
        elif archive:
            path = Path(archive) if Path(archive).is_absolute() else PROJECT_ROOT / archive
            if not archive.endswith(".tgz") or not path.is_file():
                reader.error(
                    f"{where}.archive={archive!r} is not a chart archive: no .tgz file at {path} (`helm pull "
                    f"{chart} --version <version>` writes one; relative paths start at the project folder)"
                )
            # the path as the engine sees it: relative to the program's working directory, like our own charts
            archive = os.path.relpath(path, Path.cwd())
        sources[chart] = ChartSource(repository=repository.rstrip("/"), archive=archive)
    return sources


def read_image_registry(reader: Reader) -> str:
    registry = reader.get("platform:imageRegistry")
    if registry and not _IMAGE_REGISTRY.fullmatch(registry.rstrip("/")):
        reader.error(
            f"platform:imageRegistry={registry!r} is not a registry; write host[:port][/path] without a scheme, "
            f"e.g. registry.example.com:5000/mirror"
        )
    return str(registry).rstrip("/")


def _existing(reader: Reader, name: str, fields: tuple[str, ...]) -> dict[str, Any] | None:
    """The object of an `existing` key with string fields, or None when unset (problems recorded)."""
    value = reader.get(name)
    if not value:
        return None
    bad = sorted(key for key in fields if key in value and not isinstance(value[key], str))
    for key in bad:
        reader.error(f"{name}.{key}={value[key]!r} must be a string")
    return {key: value[key] for key in fields if isinstance(value.get(key), str) and value[key]}


def _secret_name(reader: Reader, where: str, value: str) -> None:
    if not _SECRET_NAME.fullmatch(value):
        reader.error(f"{where}={value!r} is not a Secret name (lower-case letters, digits, '-' and '.')")


def _conflicts(reader: Reader, existing: str, keys: tuple[str, ...], why: str) -> None:
    """Keys set to a non-default value that an `existing` key makes meaningless: refused, never ignored."""
    for name in keys:
        if reader.get(name) != KEYS_BY_NAME[name].default:
            reader.error(f"{name} is set, but {existing} uses a service the platform does not make ({why}); remove it")


def read_existing_kafka(reader: Reader) -> ExistingKafka | None:
    value = _existing(reader, "kafka:existing", EXISTING_KAFKA_FIELDS)
    if value is None:
        return None
    bootstrap = value.get("bootstrap", "")
    if not bootstrap or not all(_HOST_PORT.fullmatch(part) for part in bootstrap.split(",")):
        reader.error(f"kafka:existing.bootstrap={bootstrap!r} must be host:port (several separated by commas)")
    tls_secret, sasl_secret = value.get("tlsSecret", ""), value.get("saslSecret", "")
    for field_name, secret in (("tlsSecret", tls_secret), ("saslSecret", sasl_secret)):
        if secret:
            _secret_name(reader, f"kafka:existing.{field_name}", secret)
    client_secrets = {role: value[field] for field, role in EXISTING_KAFKA_CLIENT_SECRETS.items() if value.get(field)}
    for field_name in EXISTING_KAFKA_CLIENT_SECRETS:
        if value.get(field_name):
            _secret_name(reader, f"kafka:existing.{field_name}", value[field_name])
    if client_secrets and not sasl_secret:
        reader.error(
            f"kafka:existing.{next(iter(f for f in EXISTING_KAFKA_CLIENT_SECRETS if value.get(f)))} needs "
            "kafka:existing.saslSecret (the credentials of the clients without their own Secret, and the SASL "
            "login itself); set kafka:existing.saslSecret"
        )
    mechanism = value.get("saslMechanism", "SCRAM-SHA-512" if sasl_secret else "")
    if mechanism and not sasl_secret:
        reader.error("kafka:existing.saslMechanism needs kafka:existing.saslSecret (the Secret with the credentials)")
    elif mechanism and mechanism not in SASL_MECHANISMS:
        allowed = ", ".join(SASL_MECHANISMS)
        reader.error(f"kafka:existing.saslMechanism={mechanism!r} is not allowed; use one of {allowed}")
    if sasl_secret and not tls_secret:
        reader.error(
            "kafka:existing.saslSecret needs kafka:existing.tlsSecret: the Seldon executor speaks SASL only over TLS "
            "(KAFKA_SECURITY_PROTOCOL=sasl_ssl); add the Secret with the cluster's CA certificate (key ca.crt)"
        )
    _conflicts(reader, "kafka:existing", ("kafka:tls", "kafka:authentication"), "its TLS and SASL are its fields")
    return ExistingKafka(
        bootstrap=bootstrap,
        tls_secret=tls_secret,
        sasl_secret=sasl_secret,
        sasl_mechanism=mechanism,
        client_secrets=client_secrets,
    )


def read_existing_search(reader: Reader) -> ExistingSearch | None:
    value = _existing(reader, "search:existing", EXISTING_SEARCH_FIELDS)
    if value is None:
        return None
    url, engine = value.get("url", ""), value.get("engine", "elasticsearch")
    if not _HTTP_URL.fullmatch(url):
        reader.error(f"search:existing.url={url!r} must be an http:// or https:// URL")
    if engine not in SEARCH_ENGINES:
        reader.error(f"search:existing.engine={engine!r} is not allowed; use one of {', '.join(SEARCH_ENGINES)}")
    secret = value.get("secret", "")
    if not secret:
        reader.error("search:existing.secret is required: the Secret (in platform:appNamespace) with the password")
    else:
        _secret_name(reader, "search:existing.secret", secret)
    if value.get("caSecret"):
        _secret_name(reader, "search:existing.caSecret", value["caSecret"])
    _conflicts(reader, "search:existing", ("search:tls",), "its TLS is its URL and caSecret")
    for service in ("indexer", "monitor"):
        field_name = f"{service}Secret"
        if not value.get(field_name):
            reader.error(
                f"search:existing.{field_name} is required: the Secret (in platform:appNamespace) with the password "
                f"of the {service}'s own user ({service}Username, role seldon-feedback-{service} of "
                f"docs/search-privileges.md); the {service} no longer uses the admin user"
            )
        else:
            _secret_name(reader, f"search:existing.{field_name}", value[field_name])
    return ExistingSearch(
        url=url,
        engine=engine,
        username=value.get("username", "elastic" if engine == "elasticsearch" else "admin"),
        secret=secret,
        secret_key=value.get("secretKey", "password"),
        indexer_username=value.get("indexerUsername", "seldon-feedback-indexer"),
        indexer_secret=value.get("indexerSecret", ""),
        monitor_username=value.get("monitorUsername", "seldon-feedback-monitor"),
        monitor_secret=value.get("monitorSecret", ""),
        ca_secret=value.get("caSecret", ""),
    )


def read_existing_objectstore(reader: Reader) -> ExistingObjectStore | None:
    value = _existing(reader, "objectstore:existing", EXISTING_OBJECTSTORE_FIELDS)
    if value is None:
        return None
    endpoint, secret = value.get("endpoint", ""), value.get("secret", "")
    if not _HTTP_URL.fullmatch(endpoint):
        reader.error(f"objectstore:existing.endpoint={endpoint!r} must be an http:// or https:// URL")
    if not secret:
        reader.error(
            "objectstore:existing.secret is required: the Secret (in platform:appNamespace) with keys accessKey and "
            "secretKey"
        )
    else:
        _secret_name(reader, "objectstore:existing.secret", secret)
    return ExistingObjectStore(endpoint=endpoint, secret=secret)


def read_kafka(reader: Reader) -> KafkaSettings:
    get = reader.get
    brokers, controllers = get("kafka:brokers"), get("kafka:controllers")
    replication, min_isr = get("kafka:replicationFactor"), get("kafka:minInsyncReplicas")
    partitions, retention = get("kafka:partitions"), get("kafka:retentionHours")
    for name, value in (
        ("kafka:brokers", brokers),
        ("kafka:replicationFactor", replication),
        ("kafka:minInsyncReplicas", min_isr),
        ("kafka:partitions", partitions),
        ("kafka:retentionHours", retention),
    ):
        reader.at_least(name, value, 1)
    if controllers not in (1, 3, 5):
        reader.error(f"kafka:controllers={controllers} must be 1, 3 or 5 (a KRaft quorum needs an odd size)")
    if replication > brokers:
        reader.error(
            f"kafka:replicationFactor={replication} exceeds kafka:brokers={brokers}; "
            f"lower the replication factor or add brokers"
        )
    if min_isr > replication:
        reader.error(
            f"kafka:minInsyncReplicas={min_isr} exceeds kafka:replicationFactor={replication}; "
            f"producers with acks=all could never write"
        )
    reader.version("kafka:operatorChartVersion")
    reader.version("kafka:version")
    reader.dns_label("kafka:operatorNamespace", get("kafka:operatorNamespace"))
    cluster_name = get("kafka:clusterName")
    reader.dns_label("kafka:clusterName", cluster_name, 40)
    for name in ("kafka:brokerStorage", "kafka:controllerStorage"):
        reader.quantity(name, get(name))
    existing = read_existing_kafka(reader)
    tls = get("kafka:tls") if existing is None else bool(existing.tls_secret)
    authentication = get("kafka:authentication")
    scram = authentication == "scram-sha-512" if existing is None else bool(existing.sasl_secret)
    tls_client_auth = existing is None and authentication == "tls"
    if scram and not tls and existing is None:
        reader.error(
            "kafka:authentication=scram-sha-512 needs kafka:tls=true: the Seldon executor speaks SASL only over TLS "
            "(KAFKA_SECURITY_PROTOCOL=sasl_ssl); set kafka:tls to true"
        )
    if tls_client_auth and not tls:
        reader.error(
            "kafka:authentication=tls needs kafka:tls=true: client certificates are checked on the TLS listener; "
            "set kafka:tls to true (or kafka:authentication=scram-sha-512)"
        )
    topics = {role: reader.topic(role, partitions, retention) for role in KEYS_BY_NAME["kafka:topics"].default}
    names = [topic.name for topic in topics.values()]
    if len(set(names)) != len(names):
        reader.error(f"kafka:topics gives two roles the same topic name ({', '.join(names)}); use distinct names")
    return KafkaSettings(
        operator=get("kafka:operator"),
        existing=existing,
        operator_namespace=get("kafka:operatorNamespace"),
        operator_chart_version=get("kafka:operatorChartVersion"),
        version=get("kafka:version"),
        cluster_name=cluster_name,
        brokers=brokers,
        controllers=controllers,
        broker_storage=get("kafka:brokerStorage"),
        controller_storage=get("kafka:controllerStorage"),
        storage_class=get("kafka:storageClass"),
        broker_resources=reader.resources("kafka:brokerResources"),
        controller_resources=reader.resources("kafka:controllerResources"),
        replication_factor=replication,
        min_insync_replicas=min_isr,
        model_input=topics["modelInput"],
        model_output=topics["modelOutput"],
        capture=topics["capture"],
        dead_letter=topics["deadLetter"],
        tls=tls,
        scram=scram,
        tls_client_auth=tls_client_auth,
    )


def read_search(reader: Reader) -> SearchSettings:
    get = reader.get
    if reader.version("search:version")[0] not in (8, NO_VERSION[0]):
        reader.error(
            f"search:version={get('search:version')} is not an 8.x release; the indexer uses the elasticsearch 8 "
            f"client, which supports Elasticsearch 8 only"
        )
    reader.version("search:operatorChartVersion")
    reader.dns_label("search:operatorNamespace", get("search:operatorNamespace"))
    nodes = get("search:nodes")
    reader.at_least("search:nodes", nodes, 1)
    reader.dns_label("search:clusterName", get("search:clusterName"), 36)
    reader.quantity("search:storage", get("search:storage"))
    reader.at_least("search:kibanaReplicas", get("search:kibanaReplicas"), 1)
    existing = read_existing_search(reader)
    why = "(the indexer's and the monitor's own Elasticsearch users; search:existing brings its own)"
    indexer_password = reader.secret("search:indexerPassword", required=existing is None, why=why, min_length=12)
    monitor_password = reader.secret("search:monitorPassword", required=existing is None, why=why, min_length=12)
    if existing is not None:  # the existing engine's users are its own (search:existing.indexerSecret, ...)
        indexer_password = monitor_password = None
    return SearchSettings(
        operator=get("search:operator"),
        existing=existing,
        operator_namespace=get("search:operatorNamespace"),
        operator_chart_version=get("search:operatorChartVersion"),
        version=get("search:version"),
        cluster_name=get("search:clusterName"),
        nodes=nodes,
        storage=get("search:storage"),
        storage_class=get("search:storageClass"),
        resources=reader.resources("search:resources"),
        tls=get("search:tls") if existing is None else existing.url.startswith("https://"),
        kibana=get("search:kibana"),
        kibana_replicas=get("search:kibanaReplicas"),
        indexer_password=indexer_password,
        monitor_password=monitor_password,
    )


def read_objectstore(reader: Reader) -> ObjectStoreSettings:
    get = reader.get
    mode, replicas = get("objectstore:mode"), get("objectstore:replicas")
    if mode == "standalone" and replicas != 1:
        reader.error(f"objectstore:replicas={replicas} needs objectstore:mode=distributed (standalone runs one pod)")
    if mode == "distributed" and replicas < 4:
        reader.error(f"objectstore:replicas={replicas} is too few for objectstore:mode=distributed (at least 4)")
    bucket = get("objectstore:bucket")
    if not _BUCKET.fullmatch(bucket):
        reader.error(f"objectstore:bucket={bucket!r} is not a valid S3 bucket name (3-63 lower-case letters, digits)")
    reader.version("objectstore:chartVersion")
    for name in ("objectstore:imageTag", "objectstore:mcImageTag"):
        if not _MINIO_TAG.match(get(name)):
            reader.error(f"{name}={get(name)!r} is not a MinIO release tag; write e.g. RELEASE.2024-12-18T13-15-44Z")
    reader.dns_label("objectstore:namespace", get("objectstore:namespace"))
    reader.quantity("objectstore:storage", get("objectstore:storage"))
    existing = read_existing_objectstore(reader)
    root_password = reader.secret("objectstore:rootPassword", required=existing is None, why="(MinIO root credentials)")
    return ObjectStoreSettings(
        existing=existing,
        namespace=get("objectstore:namespace"),
        chart_version=get("objectstore:chartVersion"),
        image_tag=get("objectstore:imageTag"),
        mc_image_tag=get("objectstore:mcImageTag"),
        mode=mode,
        replicas=replicas,
        storage=get("objectstore:storage"),
        resources=reader.resources("objectstore:resources"),
        bucket=bucket,
        root_user=get("objectstore:rootUser"),
        root_password=root_password if root_password is not None else pulumi.Output.secret(""),
    )


def read_workflows(reader: Reader) -> WorkflowsSettings:
    get = reader.get
    reader.version("workflows:chartVersion")
    if not _ARGO_TAG.match(get("workflows:imageTag")):
        reader.error(f"workflows:imageTag={get('workflows:imageTag')!r} is not a release tag; write e.g. v3.7.11")
    reader.dns_label("workflows:namespace", get("workflows:namespace"))
    return WorkflowsSettings(
        operator=get("workflows:operator"),
        namespace=get("workflows:namespace"),
        chart_version=get("workflows:chartVersion"),
        image_tag=get("workflows:imageTag"),
        server=get("workflows:server"),
    )


def read_seldon(reader: Reader) -> SeldonSettings:
    get = reader.get
    text = get("seldon:version")
    version = reader.version("seldon:version")
    accept_bsl = get("seldon:acceptBsl")
    if version != NO_VERSION and version < MIN_SELDON:
        reader.error(
            f"seldon:version={text} is older than {fmt(MIN_SELDON)}: the streaming classifier needs "
            f"the executor's Kafka server type (serverType: kafka), first released in Seldon Core 1.3.0; "
            f"use 1.17.1 (the last Apache-2.0 release)"
        )
    if version >= BSL_FROM and not accept_bsl:
        reader.error(
            f"seldon:version={text} is licensed under the Business Source License 1.1 (Seldon Core "
            f">= 1.18.0; production use needs a licence from Seldon); set seldon:acceptBsl to true to accept it, "
            f"or use 1.17.1 (the last Apache-2.0 release)"
        )
    reader.dns_label("seldon:namespace", get("seldon:namespace"))
    settings = SeldonSettings(
        operator=get("seldon:operator"),
        namespace=get("seldon:namespace"),
        version=text,
        accept_bsl=accept_bsl,
        cert_manager=get("seldon:certManager"),
        logger_work_queue_size=get("seldon:loggerWorkQueueSize"),
        logger_write_timeout_ms=get("seldon:loggerWriteTimeoutMs"),
    )
    reader.at_least("seldon:loggerWorkQueueSize", settings.logger_work_queue_size, 1)
    reader.at_least("seldon:loggerWriteTimeoutMs", settings.logger_write_timeout_ms, 0)
    return settings


def read_classifier(reader: Reader) -> ClassifierSettings:
    get = reader.get
    settings = ClassifierSettings(
        image=reader.image("classifier:image"),
        replicas=get("classifier:replicas"),
        streaming=get("classifier:streaming"),
        streaming_replicas=get("classifier:streamingReplicas"),
        streaming_workers=get("classifier:streamingWorkers"),
        logger_mode=get("classifier:loggerMode"),
        capture_sink=get("classifier:captureSink"),
        resources=reader.resources("classifier:resources"),
        canary_model_version=get("classifier:canaryModelVersion"),
        canary_traffic=get("classifier:canaryTraffic"),
    )
    if not 1 <= settings.canary_traffic <= 99:
        reader.error(f"classifier:canaryTraffic must be from 1 to 99 (percent), got {settings.canary_traffic}")
    version = settings.canary_model_version
    if version is not None and not _MODEL_VERSION.fullmatch(version):
        reader.error(
            f"classifier:canaryModelVersion {version!r} is not a registry version such as 1.0.0+3f2a9c1d0b7e "
            "(python -m feedback.flowback show lists them)"
        )
    reader.at_least("classifier:replicas", settings.replicas, 1)
    reader.at_least("classifier:streamingReplicas", settings.streaming_replicas, 1)
    reader.at_least("classifier:streamingWorkers", settings.streaming_workers, 0)
    return settings


def read_feedback(reader: Reader) -> FeedbackSettings:
    get = reader.get
    settings = FeedbackSettings(
        image=reader.image("feedback:image"),
        collector_replicas=get("feedback:collectorReplicas"),
        indexer_replicas=get("feedback:indexerReplicas"),
        index=get("feedback:index"),
        sampling_rate=get("feedback:samplingRate"),
        index_shards=get("feedback:indexShards"),
        retention_days=get("feedback:retentionDays"),
        no_response_after_seconds=get("feedback:noResponseAfterSeconds"),
        feedback_join_delay_seconds=get("feedback:feedbackJoinDelaySeconds"),
        feedback_join_window_seconds=get("feedback:feedbackJoinWindowSeconds"),
        sweep_interval_seconds=get("feedback:sweepIntervalSeconds"),
        monitor=get("feedback:monitor"),
        monitor_index=get("feedback:monitorIndex"),
        monitor_window_seconds=get("feedback:monitorWindowSeconds"),
        monitor_settle_seconds=get("feedback:monitorSettleSeconds"),
        monitor_thresholds=read_monitor_thresholds(reader),
        alerts=get("feedback:alerts"),
        **read_feedback_access(reader),
        redaction=read_redaction(reader),
    )
    reader.at_least("feedback:collectorReplicas", settings.collector_replicas, 1)
    if settings.index_shards is not None and not 1 <= settings.index_shards <= 64:
        reader.error(f"feedback:indexShards={settings.index_shards} must be from 1 to 64")
    if settings.retention_days is not None and not 0 <= settings.retention_days <= 36_500:
        reader.error(f"feedback:retentionDays={settings.retention_days} must be from 0 (keep forever) to 36500")
    for key, value in (
        ("feedback:noResponseAfterSeconds", settings.no_response_after_seconds),
        ("feedback:feedbackJoinDelaySeconds", settings.feedback_join_delay_seconds),
        ("feedback:feedbackJoinWindowSeconds", settings.feedback_join_window_seconds),
        ("feedback:sweepIntervalSeconds", settings.sweep_interval_seconds),
    ):
        minimum, maximum = SWEEP_RANGES[key]
        if value is not None and not minimum <= value <= maximum:
            reader.error(f"{key}={value:.10g} must be from {minimum:.10g} to {maximum:.10g} seconds")
    reader.at_least("feedback:indexerReplicas", settings.indexer_replicas, 1)
    if settings.sampling_rate is not None and not 0.0 <= settings.sampling_rate <= 1.0:
        reader.error(f"feedback:samplingRate={settings.sampling_rate} must be between 0 and 1")
    if not _INDEX.fullmatch(settings.index) or len(settings.index) > 200:
        reader.error(f"feedback:index={settings.index!r} is not a valid index name (lower-case, no spaces or * ? /)")
    monitor_index = settings.monitor_index
    if not _INDEX.fullmatch(monitor_index) or len(monitor_index) > 200:
        reader.error(
            f"feedback:monitorIndex={monitor_index!r} is not a valid index name (lower-case, no spaces or * ? /)"
        )
    elif monitor_index == settings.index or monitor_index.startswith(f"{settings.index}-"):
        reader.error(
            f"feedback:monitorIndex={monitor_index!r} must not be feedback:index or start with '{settings.index}-' "
            f"(the indexer's template covers that pattern); use another name such as seldon-monitor"
        )
    window = settings.monitor_window_seconds
    if window is not None and not 10 <= window <= 86_400:
        reader.error(f"feedback:monitorWindowSeconds={window} must be from 10 to 86400 seconds")
    settle = settings.monitor_settle_seconds
    if settle is not None and not 0 <= settle <= 86_400:
        reader.error(f"feedback:monitorSettleSeconds={settle} must be from 0 to 86400 seconds")
    return settings


# the indexer's sweep timings, in seconds: the ranges IndexerSettings accepts (images/feedback/.../indexer/settings.py)
SWEEP_RANGES: dict[str, tuple[float, float]] = {
    "feedback:noResponseAfterSeconds": (1.0, 86_400.0),
    "feedback:feedbackJoinDelaySeconds": (1.0, 86_400.0),
    "feedback:feedbackJoinWindowSeconds": (1.0, 30 * 86_400.0),
    "feedback:sweepIntervalSeconds": (0.1, 3600.0),
}

# field -> (type, minimum, maximum) of feedback:monitorThresholds; the monitor's settings hold the defaults
MONITOR_THRESHOLD_RANGES: dict[str, tuple[type, float, float]] = {
    "fdr": (float, 1e-6, 0.5),
    "consecutiveWindows": (int, 1, 100),
    "psi": (float, 0.001, 10.0),
    "domainAuc": (float, 0.5, 1.0),
    "accuracyDrop": (float, 0.0, 1.0),
    "minSamples": (int, 5, 100_000),
}


REDACTION_PATTERNS = ("email", "phone")
# never redacted: the services validate them (feedback.redaction.STRUCTURAL_HEADERS)
STRUCTURAL_HEADERS = ("id", "specversion", "type", "time", "datacontenttype", "content-type", "transport")
_HEADER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def read_redaction(reader: Reader) -> dict[str, Any]:
    """feedback:redaction -> the chart's `redact` values (the same for collector and indexer), only the fields set;
    each field checked here as the services would check it at start, so a typo fails at preview."""
    raw = dict(reader.get("feedback:redaction"))
    values: dict[str, Any] = {}

    def strings(name: str) -> list[str] | None:
        value = raw.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            reader.error(f"feedback:redaction.{name}={value!r} must be a list of non-empty strings")
            return None
        return value

    fields = strings("fields")
    if fields is not None:
        values["fields"] = ",".join(fields)
    patterns = strings("patterns")
    if patterns is not None:
        unknown = [p for p in patterns if p not in REDACTION_PATTERNS] if patterns != ["none"] else []
        if unknown:
            reader.error(
                f"feedback:redaction.patterns: unknown pattern(s) {', '.join(unknown)}; use email, phone or [none] "
                "(your own expressions go in feedback:redaction.regexes)"
            )
        values["patterns"] = ",".join(patterns)
    for name in ("regexes", "keyRegexes"):
        expressions = strings(name)
        if expressions is None:
            continue
        for expression in expressions:
            try:
                re.compile(expression)
            except re.error as exc:
                reader.error(f"feedback:redaction.{name}: {expression!r} is not a valid regular expression ({exc})")
        values[name] = expressions
    headers = strings("headers")
    if headers is not None:
        if headers not in (["*"], ["none"]):
            for header in headers:
                attribute = header.lower().removeprefix("ce-").removeprefix("ce_")
                if not _HEADER.fullmatch(header) or attribute in STRUCTURAL_HEADERS:
                    reader.error(
                        f"feedback:redaction.headers: {header!r} cannot be redacted; list CloudEvent attributes or "
                        f"Kafka headers other than {', '.join(STRUCTURAL_HEADERS)}, or use [*] or [none]"
                    )
        values["headers"] = ",".join(headers)
    secret = raw.get("hashKeySecret")
    if secret is not None:
        if not isinstance(secret, str):
            reader.error(f"feedback:redaction.hashKeySecret={secret!r} must be the name of a Secret")
        else:
            _secret_name(reader, "feedback:redaction.hashKeySecret", secret)
            values["hashKeySecret"] = secret
    return values


def read_monitor_thresholds(reader: Reader) -> dict[str, float | int | str]:
    thresholds = dict(reader.get("feedback:monitorThresholds"))
    for name, value in thresholds.items():
        if name == "multipleTesting":
            if value not in ("bh", "bonferroni"):
                reader.error(f"feedback:monitorThresholds.multipleTesting={value!r} must be bh or bonferroni")
            continue
        kind, low, high = MONITOR_THRESHOLD_RANGES[name]
        number_ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number_ok or (kind is int and not float(value).is_integer()) or not low <= value <= high:
            what = "a whole number" if kind is int else "a number"
            reader.error(f"feedback:monitorThresholds.{name}={value!r} must be {what} from {low:g} to {high:g}")
    return thresholds


def read_feedback_access(reader: Reader) -> dict[str, Any]:
    """Who may send events and read metrics: feedback:seldonServiceAccounts, feedback:metrics*, feedback:producer*."""
    get = reader.get
    accounts = tuple(get("feedback:seldonServiceAccounts"))
    for account in accounts:
        reader.dns_label("feedback:seldonServiceAccounts", account, max_len=253)
    metrics_namespace = get("feedback:metricsNamespace")
    if metrics_namespace:
        reader.dns_label("feedback:metricsNamespace", metrics_namespace)
    pod_labels = dict(get("feedback:metricsPodLabels"))
    if not pod_labels:
        reader.error(
            "feedback:metricsPodLabels={} would admit every pod of feedback:metricsNamespace to the metrics ports; "
            "name the scraper's labels, e.g. {app.kubernetes.io/name: prometheus}"
        )
    principals = tuple(get("feedback:metricsPrincipals"))
    for principal in principals:
        if not _PRINCIPAL.fullmatch(principal):
            reader.error(
                f"feedback:metricsPrincipals: {principal!r} is not an Istio principal; write "
                "<trust domain>/ns/<namespace>/sa/<service account>, e.g. cluster.local/ns/monitoring/sa/prometheus"
            )
    namespaces = tuple(get("feedback:producerNamespaces"))
    for namespace in namespaces:
        reader.dns_label("feedback:producerNamespaces", namespace)
    token = reader.secret("feedback:producerToken", required=False, why="")
    if namespaces and token is None:
        reader.error(
            "feedback:producerNamespaces is set but feedback:producerToken is not: the producer port opens only with "
            "a token; set it with `pulumi config set --secret feedback:producerToken <token>` or drop the namespaces"
        )
    return {
        "seldon_service_accounts": accounts,
        "metrics_namespace": metrics_namespace,
        "metrics_pod_labels": pod_labels,
        "metrics_principals": principals,
        "producer_token": token,
        "producer_namespaces": namespaces,
    }


def read_batch(reader: Reader) -> BatchSettings:
    settings = BatchSettings(workers=reader.get("batch:workers"), retries=reader.get("batch:retries"))
    reader.at_least("batch:workers", settings.workers, 1)
    reader.at_least("batch:retries", settings.retries, 0)
    return settings


_CRON_FIELD = re.compile(r"[0-9A-Za-z*/,?-]+")
_LOOKBACK = re.compile(r"[1-9][0-9]*[smhd]")
# Each rule field: (type, low, high), as charts/flowback-workflow/values.schema.json bounds the chart's `rule`.
FLOWBACK_RULE_RANGES: dict[str, tuple[type, float, float]] = {
    "confidence": (float, 0.5, 0.999),
    "heldOutMaxDrop": (float, 0.0, 1.0),
    "feedbackMinGain": (float, -1.0, 1.0),
    "minFeedbackRows": (int, 1, 100_000),
}


def read_flowback(reader: Reader) -> FlowbackSettings:
    get = reader.get
    bucket = get("flowback:bucket")
    if not _BUCKET.fullmatch(bucket):
        reader.error(f"flowback:bucket={bucket!r} is not a valid S3 bucket name (3-63 lower-case letters, digits)")
    schedule = get("flowback:schedule").strip()
    fields = schedule.split()
    if schedule and (len(fields) != 5 or not all(_CRON_FIELD.fullmatch(f) for f in fields)):
        reader.error(
            f"flowback:schedule={schedule!r} is not a five-field cron expression (minute hour day month weekday), "
            "e.g. '0 3 * * *'; leave it empty for no schedule"
        )
    timezone = get("flowback:timezone").strip()
    if timezone:
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            reader.error(f"flowback:timezone={timezone!r} is not an IANA time zone such as Europe/Berlin or UTC")
        if not schedule:
            reader.error("flowback:timezone is set but flowback:schedule is empty; set a schedule or remove it")
    lookback = get("flowback:lookback").strip()
    if not _LOOKBACK.fullmatch(lookback):
        reader.error(f"flowback:lookback={lookback!r} must be a number and one of s, m, h, d, such as 24h or 7d")
    return FlowbackSettings(
        enabled=get("flowback:enabled"),
        bucket=bucket,
        schedule=schedule,
        timezone=timezone,
        lookback=lookback,
        rule=read_flowback_rule(reader),
    )


def read_flowback_rule(reader: Reader) -> dict[str, float | int | bool]:
    rule = dict(reader.get("flowback:rule"))
    for name, value in rule.items():
        if name == "feedbackSignificant":
            if not isinstance(value, bool):
                reader.error(f"flowback:rule.feedbackSignificant={value!r} must be true or false")
            continue
        kind, low, high = FLOWBACK_RULE_RANGES[name]
        number_ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number_ok or (kind is int and not float(value).is_integer()) or not low <= value <= high:
            what = "a whole number" if kind is int else "a number"
            reader.error(f"flowback:rule.{name}={value!r} must be {what} from {low:g} to {high:g}")
    return rule


# ---- rules across namespaces -----------------------------------------------------------------------------------


def check_across_namespaces(reader: Reader, cfg: StackConfig) -> None:
    """Rules that relate keys of different namespaces: what the chosen Seldon version can do, indexers vs
    partitions, disruption budgets vs replicas, operator vs application namespace."""
    check_seldon_features(reader, cfg)
    if cfg.feedback.indexer_replicas > cfg.kafka.capture.partitions:
        reader.error(
            f"feedback:indexerReplicas={cfg.feedback.indexer_replicas} exceeds the capture topic's partitions "
            f"({cfg.kafka.capture.partitions}); extra indexers would sit idle: raise kafka:partitions or lower the "
            f"replicas"
        )
    if cfg.platform.pod_disruption_budgets:  # only with room to evict one pod
        for name, replicas in (
            ("feedback:collectorReplicas", cfg.feedback.collector_replicas),
            ("feedback:indexerReplicas", cfg.feedback.indexer_replicas),
            ("classifier:replicas", cfg.classifier.replicas),
            ("kafka:brokers", cfg.kafka.brokers),
            ("search:nodes", cfg.search.nodes),
        ):
            if replicas < 2:
                reader.error(
                    f"platform:podDisruptionBudgets=true needs {name} >= 2 (with {replicas} a budget would block "
                    f"every node drain); raise {name} or turn budgets off"
                )
    check_mesh(reader, cfg)
    if cfg.flowback.bucket == cfg.objectstore.bucket:
        reader.error(
            f"flowback:bucket={cfg.flowback.bucket} equals objectstore:bucket: the registry gets a bucket of its own "
            "(its own access policy and no lifecycle rules that expire batch files); choose another name"
        )
    installs_strimzi = cfg.kafka.operator == "install" and cfg.kafka.existing is None
    if installs_strimzi and cfg.kafka.operator_namespace == cfg.platform.app_namespace:
        reader.error(
            f"kafka:operatorNamespace={cfg.kafka.operator_namespace} equals platform:appNamespace: the Strimzi chart "
            f"watches the application namespace and would create its RoleBindings twice; use a separate namespace"
        )


def check_mesh(reader: Reader, cfg: StackConfig) -> None:
    """Mesh-only settings need platform:mesh=istio; with it, the Seldon pods need a ServiceAccount to be admitted."""
    if cfg.platform.mesh == "none" and cfg.feedback.metrics_principals:
        reader.error(
            "feedback:metricsPrincipals is set but platform:mesh=none: principals only mean something inside a mesh; "
            "set platform:mesh=istio or drop feedback:metricsPrincipals"
        )
    if cfg.platform.mesh == "istio" and not cfg.feedback.seldon_service_accounts:
        reader.error(
            "platform:mesh=istio needs feedback:seldonServiceAccounts (at least one): without a principal no executor "
            "could log to the collector"
        )


# The executor versions that brought what a setting asks for (docs/deploy.md, "What each Seldon version can do";
# recorded in ../shared/reference/seldon-executor-1.17.1/versions/). `Seldon-Skip-Logging` (honoured from 1.13.0)
# has no setting here: it is a request header the caller sends.
FEEDBACK_EVENTS_FROM = (1, 4, 0)  # the 1.3 executor logs no io.seldon.serving.feedback event
DIRECT_KAFKA_LOGGING_FROM = (1, 11, 0)  # --log_kafka_broker / LOGGER_KAFKA_BROKER
KAFKA_TLS_FROM = (1, 13, 0)  # KAFKA_SECURITY_PROTOCOL=ssl
KAFKA_SASL_FROM = (1, 15, 0)  # KAFKA_SASL_*
LOGGER_MODES_WITH_FEEDBACK = ("all", "response")  # the executor logs feedback only in these graph logger modes


def check_seldon_features(reader: Reader, cfg: StackConfig) -> None:
    """Every setting that needs a newer executor than seldon:version is refused, naming the key and the version."""
    version = cfg.seldon.version_tuple
    if version == NO_VERSION or version < MIN_SELDON:
        return  # already reported: not a version, or older than any supported one
    minimums = [
        (cfg.kafka.tls, KAFKA_TLS_FROM, "kafka:tls=true", "TLS to Kafka (KAFKA_SECURITY_PROTOCOL=ssl)"),
        (cfg.kafka.scram, KAFKA_SASL_FROM, "kafka:authentication=scram-sha-512", "SASL to Kafka"),
        (
            cfg.kafka.tls_client_auth,
            KAFKA_TLS_FROM,
            "kafka:authentication=tls",
            "client certificates for Kafka (KAFKA_SSL_CLIENT_CERT/KEY)",
        ),
        (
            cfg.classifier.capture_sink == "kafka",
            DIRECT_KAFKA_LOGGING_FROM,
            "classifier:captureSink=kafka",
            "direct Kafka logging, LOGGER_KAFKA_BROKER / --log_kafka_broker",
        ),
    ]
    for active, minimum, setting, feature in minimums:
        if active and version < minimum:
            reader.error(
                f"{setting} needs seldon:version >= {fmt(minimum)} ({feature} arrived in the executor then); "
                f"seldon:version={cfg.seldon.version}"
            )
    mode = cfg.classifier.logger_mode
    if mode in LOGGER_MODES_WITH_FEEDBACK and version < FEEDBACK_EVENTS_FROM:
        reader.error(
            f"classifier:loggerMode={mode} captures ground truth (feedback events), which seldon:version="
            f"{cfg.seldon.version} cannot do: the {version[0]}.{version[1]} executor logs no feedback events (they "
            f"arrive with {fmt(FEEDBACK_EVENTS_FROM)}); use seldon:version >= {fmt(FEEDBACK_EVENTS_FROM)} "
            f"(1.17.1 is the last Apache-2.0 release), or set classifier:loggerMode=request to capture requests only"
        )
