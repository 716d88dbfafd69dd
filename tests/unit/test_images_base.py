"""The local base image's recipe and the pieces around it that need no tools: mirror, pip access, tool checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.images import base
from devstack.images.pip_access import config_mounts
from devstack.images.tools import apt_line, ensure_tools, missing_tools
from devstack.runtime.errors import DevstackError

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEB822 = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main

Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main
"""


def test_deb822_sources_become_one_line_entries_for_the_suite_only() -> None:
    entries = base.suite_entries(base.deb822_entries(DEB822))
    assert entries == [
        f"deb [signed-by={KEYRING}] http://deb.debian.org/debian bookworm main",
        f"deb [signed-by={KEYRING}] http://deb.debian.org/debian bookworm-updates main",
    ]
    one_line = "deb http://deb.debian.org/debian-security bookworm-security main\n# deb http://x bookworm main\n"
    assert base.suite_entries(base.one_line_entries(one_line)) == [
        "deb http://deb.debian.org/debian-security bookworm-security main"
    ]
    assert base.suite_entries(["deb http://deb.debian.org/debian trixie main"]) == []


def test_a_machine_without_a_source_for_the_suite_is_told_what_to_add(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "sources.list").write_text("deb http://deb.debian.org/debian trixie main\n")
    monkeypatch.setattr(base, "APT_SOURCES", (tmp_path / "sources.list",))
    with pytest.raises(
        DevstackError, match=r"no source for Debian bookworm .*deb http://deb\.debian\.org/debian bookworm main"
    ):
        base.host_mirror_entries()


def test_the_recipe_mirrors_the_official_slim_image_and_keys_the_cache() -> None:
    recipe = base.recipe()
    assert {"python3", "python3-venv", "passwd", "ca-certificates", "netbase", "tzdata"} <= set(recipe["packages"])
    assert recipe["venv"] == "python3 -m venv /usr/local"  # pip install works as in the official image
    assert recipe["cmd"] == ["python3"] and recipe["env"]["LANG"] == "C.UTF-8"
    assert base.base_reference().endswith(base.base_key()) and len(base.base_key()) == 12
    argv = base.mmdebstrap_argv(Path("/t/rootfs.tar"), Path("/t/sources.list"))
    assert argv[:2] == ["mmdebstrap", "--variant=minbase"] and argv[-3:] == [
        "bookworm",
        "/t/rootfs.tar",
        "/t/sources.list",
    ]


def test_pip_configuration_and_the_files_it_names_are_mounted_read_only(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("certificate")
    config = tmp_path / "pip.conf"
    config.write_text(f"[global]\ncert = {bundle}\nindex-url = https://index.example/simple\n")
    mounts = config_mounts(((config, "/etc/pip.conf"), (tmp_path / "absent.conf", "/root/.pip/pip.conf")))
    assert [mount.volume() for mount in mounts] == [f"{config}:/etc/pip.conf:ro", f"{bundle}:{bundle}:ro"]


def test_missing_tools_name_their_package_and_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    tools = {"no-such-tool-xyz": "no-such-package-xyz", "sh": "dash"}
    assert missing_tools(tools) == {"no-such-tool-xyz": "no-such-package-xyz"}
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(
        DevstackError,
        match="run as root: apt-get update && apt-get install -y --no-install-recommends no-such-package-xyz",
    ):
        ensure_tools(tools)
    assert apt_line(["b", "a", "b"]) == "apt-get update && apt-get install -y --no-install-recommends a b"
