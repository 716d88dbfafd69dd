"""How a build's `pip install` reaches the package index: the host's pip configuration, mounted read-only.

The builds run `pip install` inside the image being built. On a machine whose index access is configured in pip
configuration files (an index URL, a certificate bundle), the same files are bind-mounted read-only into every
build step (`buildah bud -v host:container:ro`), with the files they name (`cert`, `client-cert`) at the same
paths. Nothing of them is copied into the image or the repository; a mounted file is not part of any layer.
Settings given only as environment variables (PIP_INDEX_URL, ...) do not reach a build: put them in a pip
configuration file.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

# (where pip looks on the host, where the same file goes in the build): global, XDG, then per-user files
CONFIG_LOCATIONS = (
    (Path("/etc/pip.conf"), "/etc/pip.conf"),
    (Path("/etc/xdg/pip/pip.conf"), "/etc/xdg/pip/pip.conf"),
    (Path.home() / ".config" / "pip" / "pip.conf", "/root/.config/pip/pip.conf"),
    (Path.home() / ".pip" / "pip.conf", "/root/.pip/pip.conf"),
)
FILE_KEYS = ("cert", "client-cert")  # config values that name files pip must read


@dataclass(frozen=True)
class Mount:
    host: Path
    container: str

    def volume(self) -> str:
        """The `-v` argument of buildah: read-only."""
        return f"{self.host}:{self.container}:ro"


def config_mounts(locations: tuple[tuple[Path, str], ...] = CONFIG_LOCATIONS) -> list[Mount]:
    """The host's pip configuration files, and the files they name, as read-only mounts for a build."""
    mounts: list[Mount] = []
    explicit = os.environ.get("PIP_CONFIG_FILE")
    found = [(host, inside) for host, inside in locations if host.is_file()]
    global_taken = any(inside == "/etc/pip.conf" for _, inside in found)
    if explicit and explicit != os.devnull and Path(explicit).is_file() and not global_taken:
        found.insert(0, (Path(explicit), "/etc/pip.conf"))
    for host, inside in found:
        mounts.append(Mount(host, inside))
        mounts.extend(Mount(path, str(path)) for path in named_files(host))
    unique: dict[str, Mount] = {}
    for mount in mounts:
        unique.setdefault(mount.container, mount)
    return list(unique.values())


def named_files(config: Path) -> list[Path]:
    """The existing files a pip configuration file names in `cert` / `client-cert` (any section)."""
    parser = configparser.RawConfigParser()
    try:
        parser.read(config)
    except configparser.Error:
        return []
    paths = []
    for section in parser.sections():
        for key in FILE_KEYS:
            value = parser.get(section, key, fallback="").strip()
            if value and Path(value).is_file():
                paths.append(Path(value))
    return paths
