"""The Go tool builds: tools go.mod generation, recipe keys, the completion marker, and the build orchestration.

Nothing here downloads or compiles: the orchestration tests put a small stand-in `go` on PATH that answers
`go env`, `go mod download -json` and `go build -o DIR/ PKG...` the way the real one does, counting its builds.
That the real cached binaries run (`kube-apiserver --version` and so on) is the integration tests' job.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from devstack.runtime import go_build
from devstack.runtime.errors import DevstackError
from devstack.runtime.go_build import (
    MARKER,
    GoModule,
    GoPart,
    build_part,
    built_bin_dir,
    default_exec_name,
    entry_dir,
    etcd_part,
    go_mod_text,
    kubernetes_part,
    local_replaces,
    pulumi_kubernetes_part,
    pulumi_part,
    read_record,
    recipe_key,
    unpinned_local_replaces,
    write_embed_files,
)

STAGING_NAMES_V1_35 = [  # the local replaces of k8s.io/kubernetes v1.35.4's go.mod, as that tag lists them
    "api", "apiextensions-apiserver", "apimachinery", "apiserver", "cli-runtime", "client-go", "cloud-provider",
    "cluster-bootstrap", "code-generator", "component-base", "component-helpers", "controller-manager", "cri-api",
    "cri-client", "csi-translation-lib", "dynamic-resource-allocation", "endpointslice", "externaljwt", "kms",
    "kube-aggregator", "kube-controller-manager", "kube-proxy", "kube-scheduler", "kubectl", "kubelet", "metrics",
    "mount-utils", "pod-security-admission", "sample-apiserver", "sample-cli-plugin", "sample-controller",
]  # fmt: skip


def upstream_kubernetes_go_mod(extra: tuple[str, ...] = ()) -> str:
    """The shape of k8s.io/kubernetes's go.mod: require at v0.0.0, replace with ./staging/src/k8s.io/<name>."""
    names = [*STAGING_NAMES_V1_35, *extra]
    return (
        "module k8s.io/kubernetes\n\ngo 1.25.0\n\nrequire (\n"
        + "".join(f"\tk8s.io/{n} v0.0.0\n" for n in names)
        + ")\n\nreplace (\n"
        + "".join(f"\tk8s.io/{n} => ./staging/src/k8s.io/{n}\n" for n in names)
        + ")\n"
    )


# --- go.mod generation -----------------------------------------------------------------------------------


def test_kubernetes_go_mod_pins_every_staging_module_to_its_published_version() -> None:
    text = go_mod_text(kubernetes_part("v1.35.4"))
    assert "\tk8s.io/kubernetes v1.35.4\n" in text
    for name in STAGING_NAMES_V1_35:
        assert f"\tk8s.io/{name} => k8s.io/{name} v0.35.4\n" in text
    assert text.count(" => ") == 31
    assert "v0.0.0" not in text
    assert "./staging" not in text


def test_kubernetes_go_mod_follows_the_version() -> None:
    text = go_mod_text(kubernetes_part("v1.36.3"))
    assert "\tk8s.io/kubernetes v1.36.3\n" in text
    assert "\tk8s.io/client-go => k8s.io/client-go v0.36.3\n" in text
    assert "v0.35" not in text


def test_kubernetes_binaries_report_their_version() -> None:
    flags = " ".join(kubernetes_part("v1.35.4").ldflags)
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {package}.gitVersion=v1.35.4" in flags
        assert f"-X {package}.gitMajor=1" in flags
        assert f"-X {package}.gitMinor=35" in flags


def test_the_kubernetes_recipe_covers_every_local_replace_of_the_upstream_go_mod() -> None:
    assert unpinned_local_replaces(kubernetes_part(), upstream_kubernetes_go_mod()) == []


def test_a_staging_module_added_upstream_is_named_before_anything_builds() -> None:
    missing = unpinned_local_replaces(kubernetes_part(), upstream_kubernetes_go_mod(extra=("new-thing",)))
    assert missing == ["k8s.io/new-thing"]


def test_etcd_pins_its_sibling_modules_at_the_same_version_and_ignores_the_guards() -> None:
    upstream = (
        "module go.etcd.io/etcd/server/v3\n\nreplace (\n"
        "\tgo.etcd.io/etcd/api/v3 => ../api\n\tgo.etcd.io/etcd/client/pkg/v3 => ../client/pkg\n"
        "\tgo.etcd.io/etcd/client/v3 => ../client/v3\n\tgo.etcd.io/etcd/pkg/v3 => ../pkg\n)\n\n"
        "// Bad imports are sometimes causing attempts to pull that code.\n"
        "replace go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY\n\nreplace go.etcd.io/tests/v3 => ./FORBIDDEN_DEPENDENCY\n"
    )
    part = etcd_part("v3.6.16")
    assert unpinned_local_replaces(part, upstream) == []
    text = go_mod_text(part)
    for sibling in ("server/v3", "api/v3", "client/pkg/v3", "client/v3", "pkg/v3"):
        assert f"\tgo.etcd.io/etcd/{sibling} v3.6.16\n" in text


def test_pulumi_requires_pkg_and_sdk_together_and_keeps_the_clipboard_fork() -> None:
    text = go_mod_text(pulumi_part("v3.274.1"))
    assert "\tgithub.com/pulumi/pulumi/pkg/v3 v3.274.1\n" in text
    assert "\tgithub.com/pulumi/pulumi/sdk/v3 v3.274.1\n" in text
    assert "github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e" in text
    assert unpinned_local_replaces(pulumi_part(), "replace github.com/pulumi/pulumi/sdk/v3 => ../sdk\n") == []


def test_the_provider_builds_from_a_local_copy_registered_under_the_python_sdk_version() -> None:
    sdk = importlib.metadata.version("pulumi-kubernetes")
    part = go_build.parts()["pulumi-kubernetes"]
    assert part.version == sdk
    assert part.embed is not None and part.embed.schema_version == sdk
    assert f"-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version={sdk}" in part.ldflags
    assert "\tgithub.com/pulumi/pulumi-kubernetes/provider/v4 => ./src\n" in go_mod_text(part)


@pytest.mark.parametrize(
    ("go_mod", "expected"),
    [
        ("replace a.io/x => ./x\n", ["a.io/x"]),
        ("replace a.io/x v1.2.0 => ../x\n", ["a.io/x"]),
        ("replace (\n\ta.io/x => ./x // why\n\tb.io/y => b.io/y v0.1.0\n\tc.io/z => /z\n)\n", ["a.io/x", "c.io/z"]),
        ("replace a.io/x => a.io/fork v1.0.0\n", []),
        ("require (\n\ta.io/x v1.0.0\n)\n// replace a.io/y => ./y\n", []),
        ("", []),
    ],
)  # fmt: skip
def test_local_replaces_are_read_from_both_go_mod_forms(go_mod: str, expected: list[str]) -> None:
    assert local_replaces(go_mod) == expected


@pytest.mark.parametrize(
    ("package", "name"),
    [
        ("k8s.io/kubernetes/cmd/kube-apiserver", "kube-apiserver"),
        ("go.etcd.io/etcd/server/v3", "server"),
        ("github.com/pulumi/pulumi/pkg/v3/cmd/pulumi", "pulumi"),
        ("example.com/v2", "example.com"),
        ("example.com/tool/v0", "v0"),
    ],
)
def test_default_exec_name_matches_go_build(package: str, name: str) -> None:
    assert default_exec_name(package) == name


def test_the_provider_embed_files_carry_the_plugin_version(tmp_path: Path) -> None:
    schema = {"name": "kubernetes", "version": "", "resources": {"kubernetes:core/v1:Namespace": {"é": 1}}}
    (tmp_path / "schema.json").write_text(json.dumps(schema, indent=4))
    (tmp_path / "terraform-mapping.json").write_text('{\n  "provider": {}\n}\n')
    write_embed_files(tmp_path, "4.34.2")
    embedded = json.loads((tmp_path / "schema-embed.json").read_text())
    assert embedded == {**schema, "version": "4.34.2"}
    assert "\n" not in (tmp_path / "schema-embed.json").read_text()
    assert (tmp_path / "terraform-mapping-embed.json").read_text() == '{"provider":{}}'


# --- recipe keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"version": "v1.35.5"},
        {"ldflags": ("-s",)},
        {"replaces": ()},
        {"binaries": (("k8s.io/kubernetes/cmd/kubectl", "kubectl"),)},
        {"requires": (GoModule("k8s.io/kubernetes", "v1.35.5"),)},
    ],
)
def test_the_cache_key_changes_with_the_recipe(change: dict[str, object]) -> None:
    part = kubernetes_part()
    changed = dataclasses.replace(part, **change)
    assert recipe_key(changed) != recipe_key(part)


def test_the_cache_key_is_stable_and_names_the_part_and_version(cache: Path) -> None:
    assert recipe_key(kubernetes_part()) == recipe_key(kubernetes_part())
    entry = entry_dir(kubernetes_part())
    assert entry.parent == cache / "seldon-feedback" / "go-tools"
    assert entry.name == f"kubernetes-v1.35.4-{recipe_key(kubernetes_part())}"


def test_a_new_provider_sdk_version_means_a_new_cache_entry() -> None:
    assert entry_dir(pulumi_kubernetes_part("4.34.2")) != entry_dir(pulumi_kubernetes_part("4.35.0"))


# --- the completion marker ------------------------------------------------------------------------------

TOOL = GoPart(
    name="demo",
    version="v2.1.0",
    requires=(GoModule("example.com/tool/v2", "v2.1.0"),),
    binaries=(("example.com/tool/v2", "demo-tool"), ("example.com/tool/v2/cmd/helper", "helper")),
    ldflags=("-s", "-w"),
)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache, so nothing built earlier on this machine is found."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def finished_entry(part: GoPart) -> Path:
    entry = entry_dir(part)
    (entry / "bin").mkdir(parents=True)
    sizes = {}
    for _, name in part.binaries:
        (entry / "bin" / name).write_bytes(b"\x7fELF" + name.encode())
        sizes[name] = (entry / "bin" / name).stat().st_size
    go_build.write_record(
        entry,
        go_build.BuildRecord(
            part=part.name, version=part.version, key=recipe_key(part), binaries=sizes, wall_s=1.0, cpu_s=1.5,
            peak_rss_mb=30.0, go_version="go1.26.8", built_at="2026-12-01T00:00:00+00:00",
        ),
    )  # fmt: skip
    return entry


def test_a_complete_entry_is_found(cache: Path) -> None:
    entry = finished_entry(TOOL)
    assert built_bin_dir(TOOL) == entry / "bin"
    assert not (entry / (MARKER + ".partial")).exists()


def test_an_entry_without_marker_is_half_built(cache: Path) -> None:
    entry = finished_entry(TOOL)
    (entry / MARKER).unlink()
    assert built_bin_dir(TOOL) is None


def test_a_truncated_binary_makes_the_entry_incomplete(cache: Path) -> None:
    entry = finished_entry(TOOL)
    (entry / "bin" / "helper").write_bytes(b"\x7f")
    assert built_bin_dir(TOOL) is None


def test_a_missing_binary_makes_the_entry_incomplete(cache: Path) -> None:
    entry = finished_entry(TOOL)
    (entry / "bin" / "demo-tool").unlink()
    assert built_bin_dir(TOOL) is None


@pytest.mark.parametrize("garbage", ["", "{", "[]", '{"part": "demo"}', "binaries-as-a-list"])
def test_a_damaged_marker_makes_the_entry_incomplete(cache: Path, garbage: str) -> None:
    entry = finished_entry(TOOL)
    if garbage == "binaries-as-a-list":
        record = json.loads((entry / MARKER).read_text())
        garbage = json.dumps({**record, "binaries": ["demo-tool", "helper"]})
    (entry / MARKER).write_text(garbage)
    assert built_bin_dir(TOOL) is None


def test_a_marker_of_another_recipe_is_not_trusted(cache: Path) -> None:
    entry = finished_entry(TOOL)
    record = json.loads((entry / MARKER).read_text())
    (entry / MARKER).write_text(json.dumps({**record, "key": "0123456789ab"}))
    assert read_record(entry, TOOL) is None


# --- orchestration, with a stand-in `go` -----------------------------------------------------------------

FAKE_GO = """#!{python}
import json, os, sys, time
from pathlib import Path
args = sys.argv[1:]
state = Path(os.environ["FAKE_GO_STATE"])
if args[:2] == ["env", "GOVERSION"]:
    print("go1.26.8")
elif args[:3] == ["mod", "download", "-json"]:
    path, version = args[3].split("@")
    if os.environ.get("FAKE_GO_REFUSE"):  # what go prints when the proxy answers 403
        error = args[3] + ": reading https://proxy.example/x.info: 403 Forbidden\\n\\tserver response: gone"
        print(json.dumps({{"Path": path, "Version": version, "Error": error}}, indent="\\t"))
        sys.exit(1)
    mod = state / "upstream.mod"
    mod.write_text(os.environ.get("FAKE_GO_UPSTREAM_MOD", "module " + path + "\\n"))
    print(json.dumps({{"Path": path, "Version": version, "Dir": str(state), "GoMod": str(mod)}}))
elif args[0] == "build":
    with (state / "builds").open("a") as out:
        out.write(os.getcwd() + "\\n")
    time.sleep(float(os.environ.get("FAKE_GO_SLEEP", "0")))
    if os.environ.get("FAKE_GO_FAIL"):
        print("example.com/tool/v2/internal")
        print("# example.com/tool/v2/internal", file=sys.stderr)
        print("internal/x.go:3:2: undefined: frobnicate", file=sys.stderr)
        sys.exit(1)
    out_dir = Path(args[args.index("-o") + 1])
    for package in args[args.index("-o") + 2:]:
        head, _, elem = package.rpartition("/")
        if head and elem[1:].isdigit():
            elem = head.rpartition("/")[2]
        (out_dir / elem).write_bytes(b"\\x7fELF " + package.encode())
        print(package)
else:
    sys.exit("fake go: unexpected " + " ".join(args))
"""


@pytest.fixture
def fake_go(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in `go` on PATH; returns its state folder (`builds` has one line per `go build`)."""
    bin_dir, state = tmp_path / "fake-bin", tmp_path / "fake-state"
    bin_dir.mkdir()
    state.mkdir()
    go = bin_dir / "go"
    go.write_text(FAKE_GO.format(python=sys.executable))
    go.chmod(go.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GO_STATE", str(state))
    return state


def builds(state: Path) -> int:
    path = state / "builds"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_build_writes_binaries_go_mod_and_marker_then_a_warm_call_builds_nothing(fake_go: Path) -> None:
    bin_dir = build_part(TOOL)
    assert sorted(p.name for p in bin_dir.iterdir()) == ["demo-tool", "helper"]
    entry = bin_dir.parent
    assert (entry / "work" / "go.mod").read_text() == go_mod_text(TOOL)
    record = read_record(entry, TOOL)
    assert record is not None and record.binaries["demo-tool"] == (bin_dir / "demo-tool").stat().st_size
    assert builds(fake_go) == 1
    assert build_part(TOOL) == bin_dir
    assert builds(fake_go) == 1


def test_a_half_built_entry_is_removed_and_built_again(fake_go: Path) -> None:
    entry = entry_dir(TOOL)
    (entry / "bin").mkdir(parents=True)
    (entry / "bin" / "demo-tool").write_bytes(b"\x7fEL")  # an interrupted run: a partial binary, no marker
    (entry / "bin" / "stale").write_text("left over")
    bin_dir = build_part(TOOL)
    assert builds(fake_go) == 1
    assert sorted(p.name for p in bin_dir.iterdir()) == ["demo-tool", "helper"]
    assert read_record(entry, TOOL) is not None


def test_a_failed_build_names_the_part_the_go_error_and_the_log(fake_go: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_GO_FAIL", "1")
    with pytest.raises(DevstackError) as error:
        build_part(TOOL)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("building demo v2.1.0 failed: go build exited 1;")
    assert "internal/x.go:3:2: undefined: frobnicate" in message
    log_path = entry_dir(TOOL) / "build.log"
    assert f"full log: {log_path};" in message
    assert "undefined: frobnicate" in log_path.read_text()
    assert built_bin_dir(TOOL) is None  # no marker: the next call builds again
    monkeypatch.delenv("FAKE_GO_FAIL")
    assert build_part(TOOL) == entry_dir(TOOL) / "bin"


def test_an_upstream_local_replace_the_recipe_does_not_pin_stops_the_build(
    fake_go: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GO_UPSTREAM_MOD", "module example.com/tool/v2\n\nreplace example.com/lib => ../lib\n")
    with pytest.raises(DevstackError, match=r"takes example\.com/lib from local folders .* add them to the part"):
        build_part(TOOL)
    assert builds(fake_go) == 0


def test_a_version_the_proxy_refuses_is_one_line_naming_the_part(
    fake_go: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GO_REFUSE", "1")
    with pytest.raises(DevstackError) as error:
        build_part(TOOL)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(
        "building demo v2.1.0 failed: the Go module proxy did not serve example.com/tool/v2@v2.1.0"
    )
    assert "403 Forbidden server response: gone" in message
    assert builds(fake_go) == 0


def test_concurrent_callers_build_once(fake_go: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_GO_SLEEP", "1")
    results: list[Path] = []
    callers = [threading.Thread(target=lambda: results.append(build_part(TOOL))) for _ in range(3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=60)
    assert results == [entry_dir(TOOL) / "bin"] * 3
    assert builds(fake_go) == 1


def test_an_unknown_part_lists_the_known_ones() -> None:
    with pytest.raises(
        DevstackError,
        match=r"unknown Go part\(s\) nope; use one of pulumi-kubernetes, kubernetes, prometheus, pulumi, etcd, kwok",
    ):
        go_build.select(["nope"], go_build.parts())


def test_path_of_a_part_not_built_says_how_to_build_it(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert go_build.main(["path", "etcd"]) == 2
    assert (
        "etcd v3.6.16 is not built yet; run `python -m devstack.runtime.go_build build etcd`" in capsys.readouterr().err
    )


def test_path_of_a_built_part_prints_its_bin_folder(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    part = etcd_part()
    entry = finished_entry(part)
    assert go_build.main(["path", "etcd"]) == 0
    assert capsys.readouterr().out.strip() == str(entry / "bin")


def test_a_build_that_outlives_its_limit_is_stopped_and_reported(tmp_path: Path) -> None:
    log_path = tmp_path / "build.log"
    started = time.monotonic()
    measured = go_build.run_measured(
        ["sleep", "30"], cwd=tmp_path, env=dict(os.environ), log_path=log_path, timeout=0.5
    )
    assert measured.exit_code == -9
    assert time.monotonic() - started < 10
    assert log_path.read_text().startswith("$ sleep 30")


def test_cpu_time_of_the_build_and_its_children_is_measured(tmp_path: Path) -> None:
    busy = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'sum(i * i for i in range(10_000_000))'])"
    measured = go_build.run_measured(
        [sys.executable, "-c", busy], cwd=tmp_path, env=dict(os.environ), log_path=tmp_path / "log", timeout=120
    )
    assert measured.exit_code == 0
    assert measured.cpu_s > 0.3  # the grandchild's arithmetic is counted, not only the parent's start-up
    assert measured.peak_rss_mb > 5


def test_prometheus_builds_both_tools_without_service_discovery_and_reports_its_release() -> None:
    part = go_build.prometheus_part()
    assert part.main == go_build.GoModule("github.com/prometheus/prometheus", "v0.316.0")
    assert [name for _, name in part.binaries] == ["prometheus", "promtool"]
    argv = go_build.go_build_argv("go", part, Path("/bin-dir"))
    assert "-tags=remove_all_sd" in argv
    assert "-X github.com/prometheus/common/version.Version=3.16.0" in next(a for a in argv if a.startswith("-ldflags"))
    assert "prometheus" in go_build.parts()


def test_parts_without_tags_keep_their_cache_keys() -> None:
    """Adding the tags field must not rebuild the control plane: a part without tags hashes as before."""
    assert go_build.recipe_key(go_build.kubernetes_part()) == "803428f75c5e", (
        "the key the cache entries were built with"
    )
    part = go_build.kwok_part()
    assert go_build.recipe_key(part) != go_build.recipe_key(dataclasses.replace(part, tags=("x",)))
