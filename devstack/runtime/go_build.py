"""Build the Go tools (the simulated cluster, the Pulumi engine, Prometheus) from the Go module proxy, once per machine.

The control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok) and the Pulumi
engine (the `pulumi` CLI and the `pulumi-resource-kubernetes` provider) are not on any package registry as
binaries, and most of their main modules cannot be `go install`ed because their go.mod replaces sibling modules
with local folders. Each part is therefore built from a small *tools module* that this file writes: a go.mod that
requires the upstream module at a pinned version and pins each sibling module to its published version (see
`../shared/reference/local-services.md`, sections 4 and 5). `PARTS` is the table of recipes.

Cache layout (under `$XDG_CACHE_HOME/seldon-feedback`, else `~/.cache/seldon-feedback`):

    go/modcache, go/build-cache        GOMODCACHE and GOCACHE, shared with the Helm build (devstack.helm)
    go-tools/<part>-<version>-<key>/   one finished part; <key> is a hash of its recipe
        bin/                           the binaries
        work/go.mod, work/go.sum       the tools module it was built from
        build.log                      the full `go build -v` output
        complete.json                  written last: recipe key, binary sizes, wall time, CPU time, peak RSS

A part counts as built only when `complete.json` matches its recipe and every binary has the recorded size, so
a warm call reads one small file per part and builds nothing; a folder left half-built by an interrupted run is
removed and built again. Concurrent callers (tests in parallel, two checkouts) serialize on a per-part file lock.

Command line (documented in docs/deploy.md):

    python -m devstack.runtime.go_build build [PART ...]   build what is missing (all parts by default)
    python -m devstack.runtime.go_build path PART          print the bin folder of a built part
    python -m devstack.runtime.go_build list               each part: version, binaries, state, measurements
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from devstack.runtime.errors import DevstackError
from devstack.runtime.locks import file_lock
from devstack.runtime.paths import cache_dir
from devstack.runtime.process import tail

log = logging.getLogger(__name__)

KUBERNETES_VERSION = "v1.35.4"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
PULUMI_VERSION = "v3.274.1"
PROMETHEUS_VERSION = "v0.316.0"  # the Go module's version of Prometheus 3.16.0 (v0.3XY.Z is release 3.XY.Z)
# The provider module has no v4 tag; the proxy serves it only as this pseudo-version.
PULUMI_KUBERNETES_PROVIDER_MODULE = "v4.0.0-20260115033456-f47bc2d6f199"
# The provider module requires its SDK module at this version (its own go.mod replaces it with ../sdk).
PULUMI_KUBERNETES_SDK_MODULE = "v4.24.0"

# The 31 staging modules that k8s.io/kubernetes v1.35.4 replaces with ./staging/src/k8s.io/<name> (its go.mod).
KUBERNETES_STAGING = (
    "api",
    "apiextensions-apiserver",
    "apimachinery",
    "apiserver",
    "cli-runtime",
    "client-go",
    "cloud-provider",
    "cluster-bootstrap",
    "code-generator",
    "component-base",
    "component-helpers",
    "controller-manager",
    "cri-api",
    "cri-client",
    "csi-translation-lib",
    "dynamic-resource-allocation",
    "endpointslice",
    "externaljwt",
    "kms",
    "kube-aggregator",
    "kube-controller-manager",
    "kube-proxy",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "metrics",
    "mount-utils",
    "pod-security-admission",
    "sample-apiserver",
    "sample-cli-plugin",
    "sample-controller",
)

GO_DIRECTIVE = "1.26"  # the Go on this machine kind; a module that needs newer Go fails with Go's own message
MIN_GO = (1, 26)
# Flags every part is built with: reproducible paths, no VCS stamping (module zips have none), static binaries.
BUILD_FLAGS = ("-trimpath", "-v")
BUILD_TIMEOUT_S = 3 * 3600.0  # a cold provider build takes ~25 min of 2 cores; a loaded machine may double it
DOWNLOAD_TIMEOUT_S = 900.0
PROGRESS_EVERY_S = 60.0
DEFAULT_PARALLEL = 2  # two builds at once: ~7 GB peak RSS together, 2 compile processes each (go build -p default)
MARKER = "complete.json"
RECIPE_FORMAT = 1  # bump when the way a recipe turns into a build changes, so every part is rebuilt


@dataclass(frozen=True)
class GoModule:
    path: str
    version: str

    def __str__(self) -> str:
        return f"{self.path}@{self.version}"


@dataclass(frozen=True)
class EmbedStep:
    """Copy `module` from the module cache into the build folder (`work/src`), write the files its main package
    embeds but its zip lacks (they are generated and gitignored upstream), and build against that copy."""

    module: GoModule
    folder: str  # the main package's folder inside the module
    schema_version: str  # the plugin version written into the embedded schema


@dataclass(frozen=True)
class GoPart:
    """One recipe: a tools module, the packages to build from it and the binaries they become."""

    name: str
    version: str  # the version the part is known by (cache folder name, progress lines)
    requires: tuple[GoModule, ...]  # the first is the main upstream module
    binaries: tuple[tuple[str, str], ...]  # (package import path, binary name)
    replaces: tuple[tuple[str, str], ...] = ()  # (module path, target: "path version" or "./folder")
    ldflags: tuple[str, ...] = ()
    embed: EmbedStep | None = None
    # local-folder replaces in the main module's go.mod that are guards, not siblings (etcd: FORBIDDEN_DEPENDENCY)
    ignored_local_replaces: tuple[str, ...] = ()
    licence: str = "Apache-2.0"
    tags: tuple[str, ...] = ()  # go build -tags (Prometheus: leave the service discovery plugins out)

    @property
    def main(self) -> GoModule:
        return self.requires[0]

    def pinned_modules(self) -> set[str]:
        return {m.path for m in self.requires} | {path for path, _ in self.replaces}


@dataclass(frozen=True)
class BuildRecord:
    """What `complete.json` holds: enough to trust the folder and to report the cold build cost."""

    part: str
    version: str
    key: str
    binaries: dict[str, int]  # name -> size in bytes
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    go_version: str
    built_at: str
    extra: dict[str, str] = field(default_factory=dict)


def kubernetes_part(version: str = KUBERNETES_VERSION) -> GoPart:
    major, minor = version.lstrip("v").split(".")[:2]
    staging = f"v0.{minor}.{version.rsplit('.', 1)[1]}"
    stamp: list[str] = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        stamp += [
            f"-X {package}.gitVersion={version}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
        ]
    return GoPart(
        name="kubernetes",
        version=version,
        requires=(GoModule("k8s.io/kubernetes", version),),
        replaces=tuple((f"k8s.io/{name}", f"k8s.io/{name} {staging}") for name in KUBERNETES_STAGING),
        binaries=tuple(
            (f"k8s.io/kubernetes/cmd/{name}", name)
            for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
        ),
        ldflags=("-s", "-w", *stamp),
    )


def etcd_part(version: str = ETCD_VERSION) -> GoPart:
    siblings = ("api/v3", "client/pkg/v3", "client/v3", "pkg/v3")
    return GoPart(
        name="etcd",
        version=version,
        requires=(
            GoModule("go.etcd.io/etcd/server/v3", version),
            *(GoModule(f"go.etcd.io/etcd/{s}", version) for s in siblings),
        ),
        binaries=(("go.etcd.io/etcd/server/v3", "etcd"),),
        ldflags=("-s", "-w"),
        ignored_local_replaces=("go.etcd.io/etcd", "go.etcd.io/tests/v3"),
    )


def kwok_part(version: str = KWOK_VERSION) -> GoPart:
    return GoPart(
        name="kwok",
        version=version,
        requires=(GoModule("sigs.k8s.io/kwok", version),),
        binaries=(("sigs.k8s.io/kwok/cmd/kwok", "kwok"),),
        ldflags=("-s", "-w"),
    )


def pulumi_part(version: str = PULUMI_VERSION) -> GoPart:
    return GoPart(
        name="pulumi",
        version=version,
        requires=(
            GoModule("github.com/pulumi/pulumi/pkg/v3", version),
            GoModule("github.com/pulumi/pulumi/sdk/v3", version),
        ),
        replaces=(
            ("github.com/atotto/clipboard", "github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e"),
        ),
        binaries=(("github.com/pulumi/pulumi/pkg/v3/cmd/pulumi", "pulumi"),),
        ldflags=("-s", "-w", f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={version}"),
    )


def pulumi_kubernetes_part(plugin_version: str) -> GoPart:
    """The provider registered as `plugin_version`: the version the Python SDK in this environment asks for."""
    provider = GoModule("github.com/pulumi/pulumi-kubernetes/provider/v4", PULUMI_KUBERNETES_PROVIDER_MODULE)
    return GoPart(
        name="pulumi-kubernetes",
        version=plugin_version,
        requires=(provider, GoModule("github.com/pulumi/pulumi-kubernetes/sdk/v4", PULUMI_KUBERNETES_SDK_MODULE)),
        replaces=((provider.path, "./src"),),
        binaries=((f"{provider.path}/cmd/pulumi-resource-kubernetes", "pulumi-resource-kubernetes"),),
        ldflags=("-s", "-w", f"-X {provider.path}/pkg/version.Version={plugin_version}"),
        embed=EmbedStep(provider, "cmd/pulumi-resource-kubernetes", plugin_version),
    )


def pulumi_kubernetes_sdk_version() -> str:
    """The version of the Python `pulumi-kubernetes` SDK here: the plugin version a program asks the engine for."""
    try:
        return importlib.metadata.version("pulumi-kubernetes")
    except importlib.metadata.PackageNotFoundError:
        raise DevstackError(
            "the Python package pulumi-kubernetes is not installed, so the provider's plugin version is unknown; "
            "run this with the project environment's python (`$(make -s env)/bin/python -m devstack.runtime.go_build`)"
        ) from None


def prometheus_part(version: str = PROMETHEUS_VERSION) -> GoPart:
    """Prometheus and promtool (the alert rules' checks and tests, the local stack's Prometheus). The module has no
    local replaces. Built without the web UI's assets (`builtinassets` off: the API, scraping and rule evaluation
    work without them) and with `remove_all_sd`, which leaves out every service discovery plugin and its cloud SDK
    (the local stack scrapes static targets)."""
    _major, minor, patch = version.lstrip("v").split(".")
    release = f"{minor[0]}.{int(minor[1:])}.{patch}"
    return GoPart(
        name="prometheus",
        version=version,
        requires=(GoModule("github.com/prometheus/prometheus", version),),
        binaries=(
            ("github.com/prometheus/prometheus/cmd/prometheus", "prometheus"),
            ("github.com/prometheus/prometheus/cmd/promtool", "promtool"),
        ),
        ldflags=("-s", "-w", f"-X github.com/prometheus/common/version.Version={release}"),
        tags=("remove_all_sd",),
    )


def parts() -> dict[str, GoPart]:
    """Every part, largest build first (so two parallel builds finish close together)."""
    table = [
        pulumi_kubernetes_part(pulumi_kubernetes_sdk_version()),
        kubernetes_part(),
        prometheus_part(),
        pulumi_part(),
        etcd_part(),
        kwok_part(),
    ]
    return {part.name: part for part in table}


# --- the tools module -------------------------------------------------------------------------------------


def go_mod_text(part: GoPart) -> str:
    """The go.mod of the part's tools module."""
    lines = [
        f"// Written by devstack.runtime.go_build for {part.name} {part.version}; rebuilt, never edited.",
        f"module seldon-feedback.local/go-tools/{part.name}",
        "",
        f"go {GO_DIRECTIVE}",
        "",
        "require (",
        *(f"\t{m.path} {m.version}" for m in part.requires),
        ")",
    ]
    if part.replaces:
        lines += ["", "replace (", *(f"\t{path} => {target}" for path, target in part.replaces), ")"]
    return "\n".join(lines) + "\n"


_REPLACE = re.compile(r"^\s*(?:replace\s+)?(\S+)(?:\s+\S+)?\s+=>\s+(\S+)(?:\s+\S+)?\s*$")


def local_replaces(go_mod: str) -> list[str]:
    """The module paths a go.mod replaces with a local folder (`x => ./dir`, `x v1 => ../dir`), in file order."""
    found: list[str] = []
    in_block = False
    for raw in go_mod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if line.startswith("replace ("):
            in_block = True
            continue
        if in_block and line == ")":
            in_block = False
            continue
        if not (in_block or line.startswith("replace ")):
            continue
        match = _REPLACE.match(line)
        if match and match.group(2).startswith(("./", "../", "/")):
            found.append(match.group(1))
    return found


def unpinned_local_replaces(part: GoPart, main_go_mod: str) -> list[str]:
    """Modules the upstream go.mod takes from a local folder that the part's tools module does not pin: the build
    would fail on them with "unknown revision v0.0.0"; an upgrade that adds a sibling module shows up here."""
    pinned = part.pinned_modules() | set(part.ignored_local_replaces)
    return [path for path in local_replaces(main_go_mod) if path not in pinned]


def recipe_key(part: GoPart) -> str:
    """A short hash of everything that decides the binaries: the recipe, its go.mod and the build flags."""
    fields = dataclasses.asdict(part)
    if not part.tags:  # parts without tags keep the keys (and cache entries) they had before tags existed
        del fields["tags"]
    recipe = {
        "format": RECIPE_FORMAT,
        "part": fields,
        "go.mod": go_mod_text(part),
        "flags": BUILD_FLAGS,
        "cgo": "0",
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def default_exec_name(package: str) -> str:
    """The file name `go build -o <dir>/` gives a main package (a trailing major version element is skipped)."""
    head, _, elem = package.rpartition("/")
    if head and re.fullmatch(r"v[1-9][0-9]*", elem):
        elem = head.rpartition("/")[2]
    return elem


def go_build_argv(go: str, part: GoPart, bin_dir: Path) -> list[str]:
    argv = [go, "build", *BUILD_FLAGS]
    if part.tags:
        argv.append("-tags=" + ",".join(part.tags))
    if part.ldflags:
        argv.append("-ldflags=" + " ".join(part.ldflags))
    return [*argv, "-o", f"{bin_dir}{os.sep}", *(package for package, _ in part.binaries)]


# --- the cache --------------------------------------------------------------------------------------------


def tools_root() -> Path:
    return cache_dir("go-tools")


def entry_dir(part: GoPart) -> Path:
    return tools_root() / f"{part.name}-{part.version}-{recipe_key(part)}"


def read_record(entry: Path, part: GoPart) -> BuildRecord | None:
    """The entry's record if the entry is complete for this recipe: marker present, same key, each binary there
    with the size it had when the build finished. None for a missing, half-built or damaged entry."""
    try:
        record = BuildRecord(**json.loads((entry / MARKER).read_text()))
        if record.key != recipe_key(part) or set(record.binaries) != {name for _, name in part.binaries}:
            return None
        for name, size in record.binaries.items():
            if (entry / "bin" / name).stat().st_size != size:
                return None
    except (OSError, ValueError, TypeError, AttributeError):  # missing, garbled or foreign marker; missing binary
        return None
    return record


def built_bin_dir(part: GoPart) -> Path | None:
    entry = entry_dir(part)
    return entry / "bin" if read_record(entry, part) is not None else None


def require_built(names: Sequence[str], what: str) -> dict[str, Path]:
    """The bin folders of the named parts; a DevstackError naming `what`, every missing part and the command
    that builds them (callers at run time never build: `make go-tools` is the prerequisite step)."""
    table = parts()
    found = {name: built_bin_dir(table[name]) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise DevstackError(
            f"{what} not built: {', '.join(missing)}; build them once with `make go-tools` (or `python -m "
            f"devstack.runtime.go_build build {' '.join(missing)}`; a cold build takes tens of minutes on 2 cores)"
        )
    return {name: path for name, path in found.items() if path is not None}


def write_record(entry: Path, record: BuildRecord) -> None:
    """Write the completion marker atomically; it is the last thing a build writes."""
    partial = entry / (MARKER + ".partial")
    partial.write_text(json.dumps(dataclasses.asdict(record), indent=2) + "\n")
    partial.replace(entry / MARKER)


# --- building ---------------------------------------------------------------------------------------------


def go_executable() -> str:
    go = shutil.which("go")
    if go is None:
        raise DevstackError(
            "`go` is not on PATH; install Go >= 1.26 (Debian: the golang packages, or the official tarball) so that "
            "the control plane and the Pulumi engine can be built"
        )
    return go


def go_env() -> dict[str, str]:
    """Environment for every go command here: our module and build caches, module mode, no cgo, no workspace."""
    env = dict(os.environ)
    env.update(
        GOMODCACHE=str(cache_dir("go", "modcache")),
        GOCACHE=str(cache_dir("go", "build-cache")),
        GOFLAGS="-mod=mod -modcacherw -buildvcs=false",
        GO111MODULE="on",
        GOWORK="off",
        CGO_ENABLED="0",
    )
    env.setdefault("GOTOOLCHAIN", "local")  # never fetch another Go unless the caller asks (GOTOOLCHAIN=go1.27.3)
    return env


def go_version(go: str) -> str:
    result = subprocess.run(
        [go, "env", "GOVERSION"], env=go_env(), capture_output=True, text=True, timeout=60, check=False
    )
    version = result.stdout.strip()
    match = re.fullmatch(r"go(\d+)\.(\d+)(?:\.\d+)?\S*", version)
    if result.returncode != 0 or match is None:
        raise DevstackError(f"`{go} env GOVERSION` failed ({result.stderr.strip()[:200]}); check the Go install")
    if (int(match.group(1)), int(match.group(2))) < MIN_GO:
        raise DevstackError(f"{go} is {version}; the Go tools need Go >= 1.26, install a newer Go")
    return version


def download_module(go: str, part: GoPart, module: GoModule, cwd: Path, log_path: Path) -> dict[str, str]:
    """`go mod download -json module@version` (into our module cache) for `part`; its JSON (Dir, GoMod, ...)."""
    try:
        result = subprocess.run(
            [go, "mod", "download", "-json", str(module)],
            cwd=cwd,
            env=go_env(),
            capture_output=True,
            text=True,
            timeout=DOWNLOAD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DevstackError(
            f"building {part.name} {part.version} failed: downloading {module} took longer than "
            f"{DOWNLOAD_TIMEOUT_S:.0f} s; check that the Go module proxy "
            f"({go_env().get('GOPROXY') or 'the default'}) is reachable and retry"
        ) from None
    with log_path.open("a") as out:
        out.write(f"$ go mod download -json {module}\n{result.stdout}{result.stderr}")
    try:
        info = json.loads(result.stdout) if result.stdout.strip() else {}
    except ValueError:
        info = {}
    if result.returncode != 0 or "Error" in info or not info.get("Dir"):
        reason = " ".join((info.get("Error") or result.stderr or "no output").split())[:300]
        raise DevstackError(
            f"building {part.name} {part.version} failed: the Go module proxy did not serve {module} ({reason}); "
            f"check the version in devstack/runtime/go_build.py and that the proxy is reachable; log: {log_path}"
        )
    return info


def write_embed_files(folder: Path, schema_version: str) -> None:
    """What the provider's `go generate` (generate.go) writes: schema.json with `version` set, and
    terraform-mapping.json, both as compact JSON, beside main.go."""
    schema = json.loads((folder / "schema.json").read_text())
    schema["version"] = schema_version
    (folder / "schema-embed.json").write_text(json.dumps(schema, separators=(",", ":"), ensure_ascii=False))
    mapping = json.loads((folder / "terraform-mapping.json").read_text())
    (folder / "terraform-mapping-embed.json").write_text(json.dumps(mapping, separators=(",", ":"), ensure_ascii=False))


def copy_module(source: Path, target: Path) -> None:
    """A writable copy of a (read-only) module cache folder."""
    shutil.copytree(source, target, symlinks=True)
    for root, _dirs, files in os.walk(target):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)


@dataclass(frozen=True)
class Measured:
    exit_code: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float


def run_measured(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    timeout: float,
    on_tick: Callable[[float], None] = lambda elapsed: None,
    tick_every: float = PROGRESS_EVERY_S,
) -> Measured:
    """Run `argv` with its output appended to `log_path`; measure wall time, CPU time (user + system of the
    process and every child it waited for: go's compile and link processes) and the largest RSS among them."""
    start = time.monotonic()
    with log_path.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        # Same process group as the caller: Ctrl-C in a terminal reaches go too, and go stops its compilers.
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    next_tick = start + tick_every
    killed = False
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            if now - start > timeout and not killed:
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
            if now >= next_tick:
                on_tick(now - start)
                next_tick = now + tick_every
            time.sleep(0.2)
    except BaseException:  # never leave a go build running behind a caller that gave up
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(proc.pid, signal.SIGKILL)
            os.wait4(proc.pid, 0)
        proc.returncode = -9
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keeps Popen from waiting again
    return Measured(
        exit_code=-9 if killed else proc.returncode,
        wall_s=time.monotonic() - start,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
    )


def _packages_compiled(log_path: Path) -> int:
    """Lines `go build -v` printed for built packages (it prints one import path per package)."""
    try:
        with log_path.open("rb") as handle:
            return sum(1 for line in handle if line and not line.startswith((b"go: ", b"$ ", b"#", b"\t")))
    except OSError:
        return 0


def _failure(part: GoPart, what: str, log_path: Path) -> DevstackError:
    last = [line.strip() for line in tail(log_path, 40).splitlines() if line.strip() and not line.startswith("$ ")]
    detail = " | ".join(last[-4:])[-600:] or "no output"
    return DevstackError(
        f"building {part.name} {part.version} failed: {what}; last go output: {detail}; full log: {log_path}; "
        f"fix the cause and rerun `python -m devstack.runtime.go_build build {part.name}`"
    )


def build_part(part: GoPart, go: str | None = None) -> Path:
    """The bin folder of `part`, building it first if the cache has no complete entry for its recipe."""
    entry = entry_dir(part)
    if read_record(entry, part) is not None:
        return entry / "bin"
    go = go or go_executable()
    with file_lock(tools_root() / f"{entry.name}.lock"):
        if read_record(entry, part) is not None:  # another process built it while we waited
            return entry / "bin"
        if entry.exists():
            log.info("%s %s: removing the half-built %s (no completion marker) and building again", part.name,
                     part.version, entry)  # fmt: skip
            shutil.rmtree(entry)
        record = _build_into(entry, part, go)
        write_record(entry, record)
    return entry / "bin"


def _build_into(entry: Path, part: GoPart, go: str) -> BuildRecord:
    work, bin_dir, log_path = entry / "work", entry / "bin", entry / "build.log"
    work.mkdir(parents=True)
    bin_dir.mkdir()
    version = go_version(go)
    (work / "go.mod").write_text(go_mod_text(part))
    log.info("%s %s: building (log: %s)", part.name, part.version, log_path)
    main = download_module(go, part, part.main, work, log_path)
    unpinned = unpinned_local_replaces(part, Path(main["GoMod"]).read_text())
    if unpinned:
        raise DevstackError(
            f"building {part.name} {part.version}: {part.main} takes {', '.join(unpinned)} from local folders and "
            "the tools module does not pin them; add them to the part's recipe in devstack/runtime/go_build.py"
        )
    if part.embed is not None:
        module_dir = Path(main["Dir"]) if part.embed.module == part.main else None
        if module_dir is None:
            module_dir = Path(download_module(go, part, part.embed.module, work, log_path)["Dir"])
        copy_module(module_dir, work / "src")
        write_embed_files(work / "src" / part.embed.folder, part.embed.schema_version)

    def progress(elapsed: float) -> None:
        log.info("%s: %d packages compiled, %.0f min", part.name, _packages_compiled(log_path), elapsed / 60)

    measured = run_measured(
        go_build_argv(go, part, bin_dir),
        cwd=work,
        env=go_env(),
        log_path=log_path,
        timeout=BUILD_TIMEOUT_S,
        on_tick=progress,
    )
    if measured.exit_code == -9:
        raise _failure(part, f"go build ran longer than {BUILD_TIMEOUT_S:.0f} s and was stopped", log_path)
    if measured.exit_code != 0:
        raise _failure(part, f"go build exited {measured.exit_code}", log_path)
    sizes: dict[str, int] = {}
    for package, name in part.binaries:
        built = bin_dir / default_exec_name(package)
        if built.name != name and built.is_file():
            built.replace(bin_dir / name)
        target = bin_dir / name
        if not target.is_file():
            raise _failure(part, f"go build reported success but wrote no {target}", log_path)
        sizes[name] = target.stat().st_size
    shutil.rmtree(work / "src", ignore_errors=True)  # the module copy; go.mod and go.sum stay as a record
    log.info(
        "%s %s: built in %.0f s (CPU %.0f s, peak RSS %.0f MB): %s",
        part.name, part.version, measured.wall_s, measured.cpu_s, measured.peak_rss_mb,
        ", ".join(f"{n} {s / 1e6:.0f} MB" for n, s in sizes.items()),
    )  # fmt: skip
    return BuildRecord(
        part=part.name,
        version=part.version,
        key=recipe_key(part),
        binaries=sizes,
        wall_s=round(measured.wall_s, 1),
        cpu_s=round(measured.cpu_s, 1),
        peak_rss_mb=round(measured.peak_rss_mb, 1),
        go_version=version,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        extra={"cpus": str(os.cpu_count() or 0)},
    )


def select(names: Iterable[str], table: dict[str, GoPart]) -> list[GoPart]:
    names = list(names) or list(table)
    unknown = [name for name in names if name not in table]
    if unknown:
        raise DevstackError(f"unknown Go part(s) {', '.join(unknown)}; use one of {', '.join(table)}")
    return [table[name] for name in dict.fromkeys(names)]


def build(names: Iterable[str] = (), *, parallel: int = DEFAULT_PARALLEL) -> dict[str, Path]:
    """Build the named parts (all by default) that the cache lacks, `parallel` at a time; their bin folders.

    A failure lets the builds already running finish (their result is cached), starts no further build and
    raises the first failure: one line naming the part, the last go output and the full log's path."""
    selected = select(names, parts())
    found = {part.name: built_bin_dir(part) for part in selected}
    todo = [part for part in selected if found[part.name] is None]
    if not todo:
        return {name: path for name, path in found.items() if path is not None}
    go = go_executable()
    failed = threading.Event()

    def build_unless_failed(part: GoPart) -> Path:
        if failed.is_set():
            raise _NotStarted(part.name)
        try:
            return build_part(part, go)
        except DevstackError:
            failed.set()
            raise

    failures: list[DevstackError] = []
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="go-build") as pool:
        futures: dict[str, Future[Path]] = {part.name: pool.submit(build_unless_failed, part) for part in todo}
        for name, future in futures.items():
            try:
                found[name] = future.result()
            except _NotStarted:
                pass
            except DevstackError as exc:
                failures.append(exc)
    if failures:
        first, others = failures[0], failures[1:]
        if others:
            raise DevstackError(f"{first} (and {len(others)} more part(s) failed: see their build.log)")
        raise first
    return {name: path for name, path in found.items() if path is not None}


class _NotStarted(Exception):
    """A part that was not started because another part had failed."""


# --- command line -----------------------------------------------------------------------------------------


def _describe(part: GoPart) -> str:
    entry = entry_dir(part)
    record = read_record(entry, part)
    binaries = ", ".join(name for _, name in part.binaries)
    head = f"{part.name:<18} {part.version:<8} {binaries}"
    if record is None:
        state = "half-built (rebuilt on next build)" if entry.exists() else "not built"
        return f"{head}\n{'':<18} {state}; from {part.main}"
    size = sum(record.binaries.values()) / 1e6
    return (
        f"{head}\n{'':<18} built {record.built_at} with {record.go_version} in {record.wall_s:.0f} s "
        f"(CPU {record.cpu_s:.0f} s, peak RSS {record.peak_rss_mb:.0f} MB), {size:.0f} MB: {entry / 'bin'}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.runtime.go_build", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build_cmd = sub.add_parser("build", help="build the parts the cache lacks (all by default); print bin folders")
    build_cmd.add_argument(
        "parts", nargs="*", metavar="PART", help="etcd, kubernetes, kwok, prometheus, pulumi, pulumi-kubernetes"
    )
    build_cmd.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL, help="builds at once (default 2)")
    path_cmd = sub.add_parser("path", help="print the bin folder of a built part")
    path_cmd.add_argument("part", metavar="PART")
    sub.add_parser("list", help="each part: version, binaries, cache state and its measured cold build")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s go-build: %(message)s", datefmt="%H:%M:%S")
    try:
        if args.command == "build":
            for name, path in build(args.parts, parallel=args.parallel).items():
                print(f"{name}\t{path}")
        elif args.command == "path":
            [part] = select([args.part], parts())
            path = built_bin_dir(part)
            if path is None:
                raise DevstackError(
                    f"{part.name} {part.version} is not built yet; run "
                    f"`python -m devstack.runtime.go_build build {part.name}` (a cold build takes minutes)"
                )
            print(path)
        else:
            for part in parts().values():
                print(_describe(part))
    except DevstackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
