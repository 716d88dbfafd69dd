"""Helm for the chart tests and the local stack: build it once per machine, render our charts to objects.

`helm_binary()` builds Helm v3 from its Go module (`go install helm.sh/helm/v3/cmd/helm@<version>`) into the cache,
keyed by version, under a file lock so that parallel test runs build it once. `render_chart()` runs `helm template`
on one of our charts in `charts/` and returns the rendered objects as dicts, in the order Helm printed them.

`validate_object()` checks a rendered object offline: built-in kinds against the Kubernetes JSON schema bundled in
the `kubernetes-validate` package (strict: unknown fields fail), custom resources against the upstream CRDs in
`../shared/upstream/crds` beside the checkout (unknown fields fail too, where the API server would prune them).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devstack.runtime.errors import DevstackError
from devstack.runtime.locks import file_lock
from devstack.runtime.paths import REPO_ROOT, cache_dir

log = logging.getLogger(__name__)

HELM_VERSION = "v3.22.0"
HELM_MODULE = "helm.sh/helm/v3/cmd/helm"
CHARTS_DIR = REPO_ROOT / "charts"
DEFAULT_RELEASE = "demo"
DEFAULT_NAMESPACE = "seldon"
# KUBE_VERSION is the Kubernetes version `helm template` and `helm lint` assume (Capabilities.KubeVersion).
KUBE_VERSION = "1.29.0"
BUILD_TIMEOUT_S = 1800


def go_env(bin_dir: Path) -> dict[str, str]:
    """Environment for `go install` that keeps modules, build cache and binaries in our cache folder."""
    env = dict(os.environ)
    env.update(
        GOBIN=str(bin_dir),
        GOMODCACHE=str(cache_dir("go", "modcache")),
        GOCACHE=str(cache_dir("go", "build-cache")),
        GOFLAGS="-buildvcs=false -modcacherw",
        CGO_ENABLED="0",
    )
    return env


_WORKING: set[Path] = set()  # binaries that answered `helm version` in this process


def _works(binary: Path, version: str) -> bool:
    """True when the cached binary runs and reports `version` (a truncated or foreign file is rebuilt)."""
    if binary in _WORKING:
        return True
    if not binary.is_file():
        return False
    try:
        result = subprocess.run(
            [str(binary), "version", "--short"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    if result.returncode != 0 or not result.stdout.strip().startswith(version):
        return False
    _WORKING.add(binary)
    return True


def helm_binary(version: str = HELM_VERSION) -> Path:
    """Path of a Helm binary at `version`, built from the Go module proxy on first use (minutes) and cached."""
    override = os.environ.get("SELDON_FEEDBACK_HELM")
    if override:
        path = Path(override)
        if not path.is_file():
            raise DevstackError(f"SELDON_FEEDBACK_HELM={override} is not a file; unset it or point it at a helm binary")
        return path
    home = cache_dir("go", "helm", version)
    binary = home / "bin" / "helm"
    if _works(binary, version):
        return binary
    go = shutil.which("go")
    if go is None:
        raise DevstackError(
            "`go` is not on PATH; install Go >= 1.26 (https://go.dev/dl/) so that Helm can be built, "
            "or set SELDON_FEEDBACK_HELM to an existing helm v3 binary"
        )
    with file_lock(home / "build.lock"):
        if _works(binary, version):
            return binary
        if binary.exists():
            log.warning("the cached helm %s does not run or reports another version; building it again", binary)
            binary.unlink()
        staging = Path(tempfile.mkdtemp(prefix="bin-", dir=home))
        argv = [
            go,
            "install",
            f"-ldflags=-s -w -X helm.sh/helm/v3/internal/version.version={version}",
            f"{HELM_MODULE}@{version}",
        ]
        log.info("building helm %s (once per machine): %s", version, " ".join(argv))
        result = subprocess.run(
            argv, env=go_env(staging), capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
        )
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            tail = "\n".join(result.stderr.splitlines()[-15:])
            raise DevstackError(
                f"building helm {version} with `go install` failed (exit {result.returncode}); check that the Go "
                f"module proxy is reachable and Go is recent enough:\n{tail}"
            )
        binary.parent.mkdir(parents=True, exist_ok=True)
        (staging / "helm").replace(binary)
        shutil.rmtree(staging, ignore_errors=True)
    return binary


def chart_path(chart: str) -> Path:
    """The folder of one of our charts (`text-classifier`, `feedback-pipeline`, `batch-workflow`) or any path."""
    path = CHARTS_DIR / chart if (CHARTS_DIR / chart / "Chart.yaml").is_file() else Path(chart)
    if not (path / "Chart.yaml").is_file():
        known = sorted(p.name for p in CHARTS_DIR.iterdir() if (p / "Chart.yaml").is_file())
        raise DevstackError(f"no chart at {path}; use one of {known} or a path to a chart folder")
    return path


def run_helm(args: Sequence[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run helm with `args` in an isolated Helm home (no repositories, no plugins); never raises on exit status."""
    home = cache_dir("helm-home")
    env = dict(os.environ)
    env.update(
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
    )
    return subprocess.run(
        [str(helm_binary()), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def template_args(
    chart: str,
    values: Mapping[str, Any] | None = None,
    values_files: Sequence[Path] = (),
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
    values_path: Path | None = None,
) -> list[str]:
    """The `helm template` argument list; `values` (if any) must already be written to `values_path`."""
    args = ["template", release, str(chart_path(chart)), "--namespace", namespace, "--kube-version", KUBE_VERSION]
    for path in values_files:
        args += ["--values", str(path)]
    if values and values_path is not None:
        args += ["--values", str(values_path)]
    return args


def render_chart_text(
    chart: str,
    values: Mapping[str, Any] | None = None,
    values_files: Sequence[Path] = (),
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
) -> str:
    """The YAML text `helm template` prints; raises DevstackError with Helm's message when rendering fails."""
    with tempfile.TemporaryDirectory(prefix="helm-values-") as tmp:
        values_path = Path(tmp) / "values.yaml"
        if values:
            values_path.write_text(yaml.safe_dump(dict(values), sort_keys=False))
        args = template_args(chart, values, values_files, release, namespace, values_path)
        result = run_helm(args)
    if result.returncode != 0:
        raise DevstackError(f"helm template of chart {chart} failed; fix the values:\n{result.stderr.strip()}")
    return result.stdout


def render_chart(
    chart: str,
    values: Mapping[str, Any] | None = None,
    values_files: Sequence[Path] = (),
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
) -> list[dict[str, Any]]:
    """Render one of our charts with `helm template` and return every object (dicts, Helm's output order)."""
    text = render_chart_text(chart, values, values_files, release, namespace)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find_object(objects: Sequence[Mapping[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one rendered object of `kind` (and `name`, if given); raises DevstackError listing what was rendered."""
    matches = [o for o in objects if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)]
    if len(matches) != 1:
        rendered = sorted(f"{o.get('kind')}/{o.get('metadata', {}).get('name')}" for o in objects)
        raise DevstackError(f"expected exactly one {kind} named {name or '<any>'}, found {len(matches)} in {rendered}")
    return dict(matches[0])


def lint_chart(
    chart: str, values_files: Sequence[Path] = (), namespace: str = DEFAULT_NAMESPACE
) -> subprocess.CompletedProcess[str]:
    """`helm lint --strict` of one chart with the given values files; the caller checks returncode and output."""
    args = ["lint", "--strict", str(chart_path(chart)), "--namespace", namespace, "--kube-version", KUBE_VERSION]
    for path in values_files:
        args += ["--values", str(path)]
    return run_helm(args)


# ---------------------------------------------------------------------------------------------------------------
# The executor's definition, taken from the text-classifier chart's rendered SeldonDeployment


@dataclass(frozen=True)
class ExecutorDefinition:
    """What a Seldon executor needs, read from the chart's SeldonDeployment (so local and cluster run one definition).

    deployment, namespace: the SeldonDeployment's name and namespace (Ce-Inferenceservicename, Ce-Namespace).
    predictor: spec.predictors[0] as the operator hands it to the executor (ENGINE_PREDICTOR), before defaulting.
    server_type: "rpc" (REST and gRPC) or "kafka" (streaming); protocol and transport as in the spec.
    env: the executor's plain environment from svcOrchSpec.env (KAFKA_*, LOGGER_KAFKA_*); Secret references are
        listed in secret_env instead, as (name, secret, key).
    logger_mode, logger_url: the graph logger (None when capture is off; no URL with direct Kafka capture).
    model_http_port, model_grpc_port: the model container's named ports.
    """

    deployment: str
    namespace: str
    predictor: dict[str, Any]
    server_type: str
    protocol: str
    transport: str
    env: dict[str, str]
    secret_env: tuple[tuple[str, str, str], ...]
    logger_mode: str | None
    logger_url: str | None
    model_http_port: int
    model_grpc_port: int

    def local_predictor(
        self, host: str, http_port: int, grpc_port: int, logger_url: str | None = None
    ) -> dict[str, Any]:
        """The predictor with the endpoint defaults the operator would set, pointing at a model on `host`.

        Mirrors the operator's setContainerPredictiveUnitDefaults: service_host, service_port (gRPC port when the
        transport is gRPC), httpPort, grpcPort. `logger_url` replaces the collector URL (e.g. a local collector).
        """
        predictor = json.loads(json.dumps(self.predictor))
        graph = predictor["graph"]
        endpoint = graph.setdefault("endpoint", {})
        grpc = endpoint.get("type") == "GRPC" or self.transport == "grpc"
        endpoint.update(
            service_host=host, service_port=grpc_port if grpc else http_port, httpPort=http_port, grpcPort=grpc_port
        )
        if logger_url is not None and "logger" in graph and "url" in graph["logger"]:
            graph["logger"]["url"] = logger_url
        return predictor


def executor_definition(
    values: Mapping[str, Any] | None = None,
    values_files: Sequence[Path] = (),
    release: str = "text-classifier",
    namespace: str = DEFAULT_NAMESPACE,
    predictor_name: str | None = None,
) -> ExecutorDefinition:
    """Render the text-classifier chart and read the executor's definition from its SeldonDeployment: of the first
    predictor, or of the one named `predictor_name` (a canary)."""
    sdep = find_object(render_chart("text-classifier", values, values_files, release, namespace), "SeldonDeployment")
    predictors = {p["name"]: p for p in sdep["spec"]["predictors"]}
    if predictor_name is not None and predictor_name not in predictors:
        raise DevstackError(f"the SeldonDeployment has no predictor {predictor_name!r}, only {sorted(predictors)}")
    predictor = predictors[predictor_name] if predictor_name else sdep["spec"]["predictors"][0]
    container = predictor["componentSpecs"][0]["spec"]["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
    env: dict[str, str] = {}
    secret_env: list[tuple[str, str, str]] = []
    for item in predictor.get("svcOrchSpec", {}).get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            secret_env.append((item["name"], ref["name"], ref["key"]))
    logger = predictor["graph"].get("logger")
    return ExecutorDefinition(
        deployment=sdep["metadata"]["name"],
        namespace=sdep["metadata"]["namespace"],
        predictor=predictor,
        server_type=sdep["spec"]["serverType"],
        protocol=sdep["spec"]["protocol"],
        transport=sdep["spec"]["transport"],
        env=env,
        secret_env=tuple(secret_env),
        logger_mode=logger["mode"] if logger else None,
        logger_url=logger.get("url") if logger else None,
        model_http_port=ports.get("http", 9000),
        model_grpc_port=ports.get("grpc", 9500),
    )


# ---------------------------------------------------------------------------------------------------------------
# Offline validation of rendered objects

UPSTREAM_ENV = "SELDON_FEEDBACK_UPSTREAM"


def upstream_dir() -> Path:
    """`shared/upstream` beside the checkout (CI copies `shared/` next to it), or $SELDON_FEEDBACK_UPSTREAM."""
    override = os.environ.get(UPSTREAM_ENV)
    path = Path(override) if override else REPO_ROOT.parent / "shared" / "upstream"
    if not (path / "crds").is_dir():
        raise DevstackError(
            f"upstream CRDs not found at {path / 'crds'}: copy the project's shared/ folder beside the checkout "
            f"(so that ../shared/upstream/crds exists relative to {REPO_ROOT}) or set {UPSTREAM_ENV}"
        )
    return path


def _close_objects(schema: Any) -> Any:
    """A copy of a CRD's OpenAPI schema where objects with `properties` reject unknown fields.

    The API server prunes unknown fields of structural schemas silently; in a chart that is a typo that loses
    configuration, so the tests treat it as an error (except where the CRD preserves unknown fields).
    """
    if isinstance(schema, list):
        return [_close_objects(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _close_objects(value) for key, value in schema.items()}
    if (
        "properties" in closed
        and "additionalProperties" not in closed
        and not closed.get("x-kubernetes-preserve-unknown-fields")
    ):
        closed["additionalProperties"] = False
    return closed


class CrdSchemas:
    """The openAPIV3Schema of every CRD version under `upstream/crds`, keyed by (apiVersion, kind)."""

    def __init__(self, crd_root: Path) -> None:
        self.schemas: dict[tuple[str, str], dict[str, Any]] = {}
        self.sources: dict[tuple[str, str], Path] = {}
        for path in sorted(crd_root.rglob("*.yaml")):
            with path.open() as handle:
                for doc in yaml.load_all(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
                    if not doc or doc.get("kind") != "CustomResourceDefinition":
                        continue
                    group = doc["spec"]["group"]
                    kind = doc["spec"]["names"]["kind"]
                    for version in doc["spec"]["versions"]:
                        schema = version.get("schema", {}).get("openAPIV3Schema")
                        if schema is None:
                            continue
                        key = (f"{group}/{version['name']}", kind)
                        self.schemas[key] = _close_objects(schema)
                        self.sources[key] = path

    def schema_for(self, api_version: str, kind: str) -> dict[str, Any] | None:
        return self.schemas.get((api_version, kind))


_CRDS: CrdSchemas | None = None


def crd_schemas() -> CrdSchemas:
    """The upstream CRD schemas, parsed once per process (the SeldonDeployment CRD alone is 2.5 MB)."""
    global _CRDS
    if _CRDS is None:
        _CRDS = CrdSchemas(upstream_dir() / "crds")
    return _CRDS


def _describe(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('apiVersion')}/{obj.get('kind')} {obj.get('metadata', {}).get('name')}"


def validate_object(obj: Mapping[str, Any], kube_version: str = KUBE_VERSION) -> list[str]:
    """Schema errors of one rendered object ([] when valid); raises DevstackError when no schema is known.

    Built-in kinds use the strict Kubernetes JSON schema of `kube_version` from `kubernetes-validate`; custom
    resources use the upstream CRDs. Each error names the object and the path of the bad field.
    """
    import jsonschema
    import kubernetes_validate

    api_version = str(obj.get("apiVersion", ""))
    kind = str(obj.get("kind", ""))
    crd = crd_schemas().schema_for(api_version, kind)
    if crd is not None:
        validator = jsonschema.Draft7Validator(crd)
        return [
            f"{_describe(obj)}: {'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
            for error in sorted(validator.iter_errors(dict(obj)), key=lambda e: list(map(str, e.absolute_path)))
        ]
    try:
        kubernetes_validate.validate(dict(obj), kube_version, strict=True)
    except kubernetes_validate.SchemaNotFoundError as error:
        raise DevstackError(
            f"no schema for {_describe(obj)} in Kubernetes {kube_version} nor in {upstream_dir() / 'crds'}; "
            "add the CRD there or use a built-in apiVersion"
        ) from error
    except kubernetes_validate.ValidationError as error:
        path = "/".join(str(p) for p in error.absolute_path) or "<root>"
        return [f"{_describe(obj)}: {path}: {error.message}"]
    return []


# ---------------------------------------------------------------------------------------------------------------
# README values tables, generated from the values.yaml comments

TABLE_START = "<!-- values-table:start (generated by `python -m tools.helm tables`; do not edit) -->"
TABLE_END = "<!-- values-table:end -->"


def documented_values(chart: str) -> list[tuple[str, str, Any]]:
    """(dotted key, comment, default) for every commented key of a chart's values.yaml, in file order.

    A key's comment is the block of `#` lines right above it and must start with the key's dotted path. Keys
    without a comment must sit below a commented key (free-form Kubernetes structures such as `resources`); their
    defaults are shown as part of that key's default. Raises DevstackError naming any undocumented key.
    """
    path = chart_path(chart) / "values.yaml"
    values = yaml.safe_load(path.read_text()) or {}
    rows: list[tuple[str, str, Any]] = []
    stack: list[tuple[int, str, bool]] = []  # (indent, key, documented)
    comment: list[str] = []
    problems: list[str] = []
    undocumented: list[str] = []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            comment = []
            continue
        if stripped.startswith("#"):
            text = stripped.lstrip("#").strip()
            if not text.startswith("yaml-language-server"):
                comment.append(text)
            continue
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("- ") or ":" not in stripped:
            comment = []
            continue
        key = stripped.split(":", 1)[0].strip().strip("\"'")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([*(k for _, k, _ in stack), key])
        documented = bool(comment)
        covered = any(doc for _, _, doc in stack)
        if documented:
            text = " ".join(comment)
            if not text.startswith(dotted) and not text.startswith(key):
                problems.append(f"{dotted}: comment must start with the key's name, got {text[:40]!r}")
            default: Any = values
            for part in dotted.split("."):
                default = default.get(part) if isinstance(default, dict) else None
            rows.append((dotted, text, default))
        elif not covered:
            problems.append(f"{dotted}: no comment (add one above it that starts with {dotted!r})")
        else:
            undocumented.append(dotted)
        stack.append((indent, key, documented))
        comment = []
    documented_keys = [key for key, _, _ in rows]
    for dotted in undocumented:
        owner = max((k for k in documented_keys if dotted.startswith(k + ".")), key=len)
        if any(k.startswith(owner + ".") for k in documented_keys):
            problems.append(f"{dotted}: no comment, but its siblings under {owner} have one; document it too")
    if problems:
        raise DevstackError(f"{path}: undocumented or badly documented values:\n" + "\n".join(problems))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def values_table(chart: str) -> str:
    """The markdown table of every value of a chart: key, default, description (from the values.yaml comments)."""
    rows = documented_values(chart)
    keys = [key for key, _, _ in rows]
    lines = ["| key | default | description |", "|---|---|---|"]
    for key, text, default in rows:
        has_documented_children = any(other.startswith(key + ".") for other in keys)
        if isinstance(default, dict) and has_documented_children:
            shown = "(section)"
        else:
            shown = f"`{_cell(json.dumps(default, separators=(', ', ': ')))}`"
        lines.append(f"| `{key}` | {shown} | {_cell(text)} |")
    return "\n".join(lines)


def readme_with_table(chart: str) -> str:
    """The chart README with its values table replaced by a freshly generated one."""
    readme = chart_path(chart) / "README.md"
    text = readme.read_text()
    start = TABLE_START.split(" (", 1)[0]  # an older marker line (naming the tool's old place) is rewritten too
    if start not in text or TABLE_END not in text:
        raise DevstackError(f"{readme} has no values table markers; add the lines {TABLE_START} and {TABLE_END}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(TABLE_END, 1)
    return f"{head}{TABLE_START}\n{values_table(chart)}\n{TABLE_END}{tail}"


def _schema_property(schema: dict[str, Any], dotted: str) -> dict[str, Any] | None:
    """The schema node of a dotted values key (following local $refs to reach children); None if undefined."""
    node: dict[str, Any] = schema
    for part in dotted.split("."):
        while "$ref" in node and "properties" not in node:
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[-1]]
        child = node.get("properties", {}).get(part)
        if child is None:
            return None
        node = child
    return node


def schema_with_descriptions(chart: str) -> str:
    """The chart's values.schema.json text with every documented key's description set to its values.yaml comment."""
    path = chart_path(chart) / "values.schema.json"
    schema = json.loads(path.read_text())
    for key, text, _ in documented_values(chart):
        node = _schema_property(schema, key)
        if node is None:
            raise DevstackError(f"{path}: no property for value {key}; add it (with additionalProperties false)")
        node["description"] = text
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tools.helm tables` rewrites every chart's README values table and schema descriptions from
    the values.yaml comments; `helm-path` builds Helm and prints its path."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args == ["tables"]:
        for chart in sorted(p.name for p in CHARTS_DIR.iterdir() if (p / "Chart.yaml").is_file()):
            (CHARTS_DIR / chart / "README.md").write_text(readme_with_table(chart))
            (CHARTS_DIR / chart / "values.schema.json").write_text(schema_with_descriptions(chart))
            log.info("updated charts/%s/README.md and values.schema.json descriptions", chart)
        return 0
    if args == ["helm-path"]:
        sys.stdout.write(f"{helm_binary()}\n")
        return 0
    sys.stderr.write("usage: python -m tools.helm tables | helm-path\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
