"""The target the smoke suite runs against: where to send traffic and where to look for the captured data.

A target is read from a YAML or JSON file named by `SMOKE_TARGET`, from `SMOKE_*` environment variables, or
both (variables override the file). `devstack.target` writes one for the local stack and
`smoke_tests.from_pulumi` builds one from `pulumi stack output --json`. The layout (every key, with example):

```yaml
name: dev                          # shown in reports
kind: cluster                      # "local" or "cluster" (decides which testinfra checks run)
realtime:                          # the REST (and optionally gRPC) SeldonDeployment
  rest_url: http://127.0.0.1:9000  # base URL; the suite POSTs {rest_url}/api/v1.0/predictions and /feedback
  grpc_address: 127.0.0.1:5001     # optional host:port of the executor's gRPC server
  deployment: text-classifier      # SeldonDeployment name (Ce-Inferenceservicename)
  namespace: seldon
  predictor: default
  executor: true                   # false: rest_url is the bare model (no executor, so nothing is captured)
streaming:                         # optional: the serverType kafka SeldonDeployment
  input_topic: model_input
  output_topic: model_output
  deployment: text-classifier-streaming
collector:                         # optional: the feedback collector (the pipeline check posts CloudEvents to it)
  url: http://127.0.0.1:8080/
monitor:                           # optional: the feedback monitor (its windows are checked in the search engine)
  index: seldon-monitor            # the monitor index, in the same search engine as `search`
  window_s: 900                    # its window length
  settle_s: 120                    # how long after a window's end it is computed
kafka:
  bootstrap: 127.0.0.1:9092
  capture_topic: seldon-capture
  config: {}                       # extra librdkafka settings (security.protocol, sasl.*, ssl.*)
search:
  url: http://127.0.0.1:9200
  index: seldon-capture            # index, alias or pattern the documents are searched in
  username: ""                     # optional basic auth
  password: ""
  verify_certs: true
object_store:
  endpoint: http://127.0.0.1:9000
  bucket: batch
  access_key: ...
  secret_key: ...
  region: us-east-1
batch:                             # optional
  runner: local                    # "local" (`python -m devstack batch run`) or "argo" (submit the WorkflowTemplate)
  rest_host: 127.0.0.1:9000        # local: host:port the seldon-batch-processor calls
  python: /path/to/venv/bin/python # local: the interpreter that runs devstack ("" = the suite's own)
  workdir: /path/to/checkout       # local: the folder holding devstack/ that it runs in ("" = the current one)
  deployment: text-classifier
  namespace: seldon
  workflow_template: batch-workflow  # argo: WorkflowTemplate name
  workflow_namespace: seldon         # argo: namespace it lives and runs in
  workers: 4
  executor: true                   # false: the processor calls the bare model (its requests are not captured)
  input_prefix: smoke/input/
  output_prefix: smoke/output/
flowback:                          # optional: the flow back (Pulumi output `flowback`)
  bucket: flowback                 # the registry bucket (datasets/, registry/), in the object store above
  model_name: text-classifier      # registry/<model_name>/<version>/
  workflow_template: flowback-workflow  # cluster: the WorkflowTemplate ("" = none installed)
  workflow_namespace: seldon
limits:                            # sizes and time limits (seconds); all optional
  realtime_count: 50
  grpc_count: 10
  streaming_count: 50
  batch_count: 200
  feedback_count: 10
  pipeline_count: 100              # events per kind posted straight to the collector
  request_timeout_s: 30
  index_timeout_s: 120
  streaming_timeout_s: 120
  batch_timeout_s: 300
local:                             # kind local: what testinfra checks
  listeners: {kafka: 9092, search: 9200}
  processes: {kafka: 1234}
cluster:                           # kind cluster: what testinfra checks through kubectl
  context: ""                      # kubectl context ("" = current)
  components:                      # component -> namespace and label selector of its pods
    collector: {namespace: seldon-feedback, selector: app.kubernetes.io/component=collector}
```
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

TARGET_ENV = "SMOKE_TARGET"


class TargetError(ValueError):
    """The target description is missing or wrong; the message names the key and the fix."""


@dataclass(frozen=True, kw_only=True)
class RealtimeTarget:
    rest_url: str
    grpc_address: str | None = None
    deployment: str = "text-classifier"
    namespace: str = "seldon"
    predictor: str = "default"
    # executor: a Seldon executor with request logging serves rest_url (puids echoed, events captured). False
    # when rest_url is the bare model microservice (local stack without the executor): answers are checked,
    # capture is not.
    executor: bool = True


@dataclass(frozen=True, kw_only=True)
class CollectorTarget:
    url: str  # where executors send CloudEvents, e.g. http://127.0.0.1:8080/


@dataclass(frozen=True, kw_only=True)
class StreamingTarget:
    input_topic: str = "model_input"
    output_topic: str = "model_output"
    deployment: str = "text-classifier-streaming"


@dataclass(frozen=True, kw_only=True)
class MonitorTarget:
    index: str
    window_s: int = 900
    settle_s: int = 120

    @property
    def wait_s(self) -> float:
        """How long windows covering traffic sent now may take to appear: the window, its settle time, one more
        window for traffic that straddles a boundary, and two minutes for the monitor's own pace."""
        return 2 * self.window_s + self.settle_s + 120


@dataclass(frozen=True, kw_only=True)
class KafkaTarget:
    bootstrap: str
    capture_topic: str
    config: Mapping[str, str] = field(default_factory=dict)

    def client_config(self, **extra: Any) -> dict[str, Any]:
        """librdkafka settings for a client of this cluster, with `extra` (dots as underscores allowed)."""
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap, **self.config}
        conf.update({key.replace("_", "."): value for key, value in extra.items()})
        return conf


@dataclass(frozen=True, kw_only=True)
class SearchTarget:
    url: str
    index: str
    username: str = ""
    password: str = ""
    verify_certs: bool = True


@dataclass(frozen=True, kw_only=True)
class ObjectStoreTarget:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"


@dataclass(frozen=True, kw_only=True)
class BatchTarget:
    runner: str = "local"
    rest_host: str = ""
    deployment: str = "text-classifier"
    namespace: str = "seldon"
    workflow_template: str = ""
    workflow_namespace: str = ""
    workers: int = 4
    executor: bool = True  # the batch processor's requests go through a logging executor (so they are captured)
    input_prefix: str = "smoke/input/"
    output_prefix: str = "smoke/output/"
    python: str = ""  # local runner: the interpreter for `python -m devstack batch run` ("" = sys.executable)
    workdir: str = ""  # local runner: the checkout it runs in, holding devstack/ ("" = the current folder)


@dataclass(frozen=True, kw_only=True)
class FlowbackTarget:
    bucket: str
    model_name: str = "text-classifier"
    workflow_template: str = ""
    workflow_namespace: str = ""


@dataclass(frozen=True, kw_only=True)
class Limits:
    realtime_count: int = 50
    grpc_count: int = 10
    streaming_count: int = 50
    batch_count: int = 200
    feedback_count: int = 10
    pipeline_count: int = 100
    request_timeout_s: float = 30.0
    index_timeout_s: float = 120.0
    streaming_timeout_s: float = 120.0
    batch_timeout_s: float = 300.0


@dataclass(frozen=True, kw_only=True)
class LocalInfo:
    listeners: Mapping[str, int] = field(default_factory=dict)
    processes: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ClusterComponent:
    namespace: str
    selector: str


@dataclass(frozen=True, kw_only=True)
class ClusterInfo:
    context: str = ""
    components: Mapping[str, ClusterComponent] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Target:
    name: str
    kind: str
    realtime: RealtimeTarget
    kafka: KafkaTarget
    search: SearchTarget
    object_store: ObjectStoreTarget
    streaming: StreamingTarget | None = None
    batch: BatchTarget | None = None
    collector: CollectorTarget | None = None
    monitor: MonitorTarget | None = None
    flowback: FlowbackTarget | None = None
    limits: Limits = field(default_factory=Limits)
    local: LocalInfo | None = None
    cluster: ClusterInfo | None = None


# environment variable -> (section, key); a variable set (and not empty) overrides the file
ENV_KEYS: dict[str, tuple[str, str]] = {
    "SMOKE_NAME": ("", "name"),
    "SMOKE_KIND": ("", "kind"),
    "SMOKE_REST_URL": ("realtime", "rest_url"),
    "SMOKE_GRPC_ADDRESS": ("realtime", "grpc_address"),
    "SMOKE_DEPLOYMENT": ("realtime", "deployment"),
    "SMOKE_NAMESPACE": ("realtime", "namespace"),
    "SMOKE_PREDICTOR": ("realtime", "predictor"),
    "SMOKE_INPUT_TOPIC": ("streaming", "input_topic"),
    "SMOKE_OUTPUT_TOPIC": ("streaming", "output_topic"),
    "SMOKE_STREAMING_DEPLOYMENT": ("streaming", "deployment"),
    "SMOKE_KAFKA_BOOTSTRAP": ("kafka", "bootstrap"),
    "SMOKE_CAPTURE_TOPIC": ("kafka", "capture_topic"),
    "SMOKE_SEARCH_URL": ("search", "url"),
    "SMOKE_SEARCH_INDEX": ("search", "index"),
    "SMOKE_SEARCH_USERNAME": ("search", "username"),
    "SMOKE_SEARCH_PASSWORD": ("search", "password"),
    "SMOKE_SEARCH_VERIFY_CERTS": ("search", "verify_certs"),
    "SMOKE_S3_ENDPOINT": ("object_store", "endpoint"),
    "SMOKE_S3_BUCKET": ("object_store", "bucket"),
    "SMOKE_S3_ACCESS_KEY": ("object_store", "access_key"),
    "SMOKE_S3_SECRET_KEY": ("object_store", "secret_key"),
    "SMOKE_S3_REGION": ("object_store", "region"),
    "SMOKE_BATCH_RUNNER": ("batch", "runner"),
    "SMOKE_BATCH_REST_HOST": ("batch", "rest_host"),
    "SMOKE_BATCH_WORKFLOW_TEMPLATE": ("batch", "workflow_template"),
    "SMOKE_BATCH_WORKFLOW_NAMESPACE": ("batch", "workflow_namespace"),
    "SMOKE_BATCH_WORKERS": ("batch", "workers"),
    "SMOKE_COLLECTOR_URL": ("collector", "url"),
    "SMOKE_MONITOR_INDEX": ("monitor", "index"),
    "SMOKE_MONITOR_WINDOW_S": ("monitor", "window_s"),
    "SMOKE_MONITOR_SETTLE_S": ("monitor", "settle_s"),
    **{f"SMOKE_{name.upper()}": ("limits", name) for name in Limits.__dataclass_fields__},
}


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """The nested description the `SMOKE_*` variables in `environ` give (empty values are ignored)."""
    raw: dict[str, Any] = {}
    for var, (section, key) in ENV_KEYS.items():
        value = environ.get(var, "")
        if value == "":
            continue
        (raw.setdefault(section, {}) if section else raw)[key] = value
    if environ.get("SMOKE_KAFKA_CONFIG"):
        raw.setdefault("kafka", {})["config"] = _parse_json("SMOKE_KAFKA_CONFIG", environ["SMOKE_KAFKA_CONFIG"])
    return raw


def _parse_json(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TargetError(
            f'{name} is not valid JSON ({exc}); give an object such as \'{{"security.protocol": "SSL"}}\''
        ) from None


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `override` laid over it, section by section."""
    out: dict[str, Any] = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_file(path: Path) -> dict[str, Any]:
    """The description in a YAML or JSON file (JSON is YAML, so one parser reads both)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise TargetError(f"{TARGET_ENV}={path}: cannot read it ({exc.strerror}); point it at a target file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TargetError(f"{TARGET_ENV}={path}: not valid YAML/JSON ({exc})") from None
    if not isinstance(data, dict):
        raise TargetError(f"{TARGET_ENV}={path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _coerce(where: str, annotation: str, value: Any) -> Any:
    """Turn `value` (from YAML or an environment string) into the field's type, or explain what is wrong."""
    if "int" in annotation and "Mapping" not in annotation:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise TargetError(f"{where}={value!r} is not a whole number") from None
        if number < 0:
            raise TargetError(f"{where}={number} must not be negative")
        return number
    if annotation == "float":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TargetError(f"{where}={value!r} is not a number of seconds") from None
        if number <= 0:
            raise TargetError(f"{where}={number} must be more than 0 seconds")
        return number
    if annotation == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise TargetError(f"{where}={value!r} is not a boolean (true/false)")
    if annotation.startswith("str"):
        if value is None and "None" in annotation:
            return None
        if isinstance(value, dict | list):
            raise TargetError(f"{where} must be a string, got {type(value).__name__}")
        return str(value)
    return value


def _section(cls: type, where: str, raw: Any) -> Any:
    if not isinstance(raw, Mapping):
        raise TargetError(f"{where} must be a mapping, got {type(raw).__name__}")
    fields = cls.__dataclass_fields__
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise TargetError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in raw:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise TargetError(f"{where}.{name} is required; set it in the target file or its SMOKE_* variable")
            continue
        values[name] = _coerce(f"{where}.{name}", str(spec.type), raw[name])
    return cls(**values)


def parse(raw: Mapping[str, Any]) -> Target:
    """A validated `Target` from a nested description; raises TargetError naming the bad key."""
    allowed = set(Target.__dataclass_fields__)
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise TargetError(f"target: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    kind = str(raw.get("kind", "local"))
    if kind not in {"local", "cluster"}:
        raise TargetError(f"target.kind={kind!r} is not one of 'local', 'cluster'")
    for required in ("realtime", "kafka", "search", "object_store"):
        if required not in raw:
            raise TargetError(
                f"target.{required} is missing; give a target file ({TARGET_ENV}=path) or the SMOKE_* variables "
                "(see smoke_tests/target.py and docs/smoke-tests.md)"
            )
    batch = _section(BatchTarget, "batch", raw["batch"]) if raw.get("batch") else None
    if batch is not None:
        if batch.runner not in {"local", "argo"}:
            raise TargetError(f"batch.runner={batch.runner!r} is not one of 'local', 'argo'")
        if batch.runner == "local" and not batch.rest_host:
            raise TargetError("batch.rest_host is required for batch.runner=local (host:port of the executor)")
        if batch.runner == "argo" and not (batch.workflow_template and batch.workflow_namespace):
            raise TargetError("batch.workflow_template and batch.workflow_namespace are required for batch.runner=argo")
    kafka_raw = dict(raw["kafka"]) if isinstance(raw["kafka"], Mapping) else raw["kafka"]
    if isinstance(kafka_raw, dict) and "config" in kafka_raw:
        config = kafka_raw["config"] or {}
        if not isinstance(config, Mapping):
            raise TargetError("kafka.config must be a mapping of librdkafka settings")
        kafka_raw["config"] = {str(k): str(v) for k, v in config.items()}
    cluster = None
    if raw.get("cluster"):
        cluster_raw = raw["cluster"]
        if not isinstance(cluster_raw, Mapping):
            raise TargetError("cluster must be a mapping")
        components = {
            name: _section(ClusterComponent, f"cluster.components.{name}", spec)
            for name, spec in (cluster_raw.get("components") or {}).items()
        }
        cluster = ClusterInfo(context=str(cluster_raw.get("context") or ""), components=components)
    local = None
    if raw.get("local"):
        local_raw = raw["local"]
        if not isinstance(local_raw, Mapping):
            raise TargetError("local must be a mapping")
        local = LocalInfo(
            listeners={
                str(k): _coerce(f"local.listeners.{k}", "int", v) for k, v in (local_raw.get("listeners") or {}).items()
            },
            processes={
                str(k): _coerce(f"local.processes.{k}", "int", v) for k, v in (local_raw.get("processes") or {}).items()
            },
        )
    target = Target(
        name=str(raw.get("name", kind)),
        kind=kind,
        realtime=_section(RealtimeTarget, "realtime", raw["realtime"]),
        kafka=_section(KafkaTarget, "kafka", kafka_raw),
        search=_section(SearchTarget, "search", raw["search"]),
        object_store=_section(ObjectStoreTarget, "object_store", raw["object_store"]),
        streaming=_section(StreamingTarget, "streaming", raw["streaming"]) if raw.get("streaming") else None,
        batch=batch,
        collector=_section(CollectorTarget, "collector", raw["collector"]) if raw.get("collector") else None,
        monitor=_section(MonitorTarget, "monitor", raw["monitor"]) if raw.get("monitor") else None,
        flowback=_section(FlowbackTarget, "flowback", raw["flowback"]) if raw.get("flowback") else None,
        limits=_section(Limits, "limits", raw.get("limits") or {}),
        local=local,
        cluster=cluster,
    )
    for where, url in (("realtime.rest_url", target.realtime.rest_url), ("search.url", target.search.url)):
        if not url.startswith(("http://", "https://")):
            raise TargetError(f"{where}={url!r} must start with http:// or https://")
    if not target.object_store.endpoint.startswith(("http://", "https://")):
        raise TargetError(f"object_store.endpoint={target.object_store.endpoint!r} must start with http:// or https://")
    return target


def load(environ: Mapping[str, str] | None = None) -> Target | None:
    """The target from `SMOKE_TARGET` and/or `SMOKE_*` variables, or None when neither is set."""
    environ = os.environ if environ is None else environ
    overrides = env_overrides(environ)
    path = environ.get(TARGET_ENV, "")
    if not path and not (set(overrides) - {"limits"}):
        return None
    raw = read_file(Path(path)) if path else {}
    return parse(merge(raw, overrides))


def to_dict(target: Target) -> dict[str, Any]:
    """The description as plain data (for writing a target file)."""
    data = asdict(target)
    return {key: value for key, value in data.items() if value is not None}


def write(target: Target, path: Path) -> Path:
    """Write `target` as YAML to `path` (mode 0600: it holds credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(to_dict(target), sort_keys=False))
    path.chmod(0o600)
    return path
