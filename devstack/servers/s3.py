"""An S3-compatible server: s3proxy (Apache-2.0) with its filesystem backend, from Maven Central jars.

    s3 = S3Server(run_dir).start()
    boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key,
                 aws_secret_access_key=s3.secret_key, region_name=s3.region)

Path-style addressing (no virtual hosts), AWS signature v2 or v4 with one access key and secret; objects are
plain files under `run_dir/s3/data/<bucket>/`, so a restart keeps them.
"""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path
from typing import Any

from devstack.runtime.errors import DevstackError
from devstack.runtime.java import java_executable, java_process_env, jvm_options
from devstack.runtime.maven import classpath_string
from devstack.runtime.ports import HOST, ensure_free, free_port, is_listening
from devstack.runtime.process import ManagedProcess
from devstack.runtime.startup import remember, remembered, start_failure, still_free

log = logging.getLogger(__name__)

S3PROXY_VERSION = "2.6.0"
ARTIFACT = f"org.gaul:s3proxy:{S3PROXY_VERSION}"
MAIN_CLASS = "org.gaul.s3proxy.Main"
START_TIMEOUT_S = 120.0
DEFAULT_REGION = "us-east-1"
REFUSED_CREDENTIALS = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"}

LOGBACK_XML = """\
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>[%d{ISO8601}] %-5level %logger{20} %msg%n</pattern></encoder>
  </appender>
  <logger name="org.eclipse.jetty" level="WARN"/>
  <logger name="org.gaul.shaded" level="WARN"/>
  <logger name="jclouds" level="WARN"/>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


class S3Server:
    """One s3proxy on 127.0.0.1 with its data and logs under `run_dir/s3`."""

    name = "s3"

    def __init__(
        self,
        run_dir: Path,
        port: int | None = None,
        access_key: str = "devstack",
        secret_key: str | None = None,
        region: str = DEFAULT_REGION,
    ) -> None:
        self.home = Path(run_dir) / "s3"
        self.data_dir = self.home / "data"
        self.log_dir = self.home / "logs"
        self.config_path = self.home / "s3proxy.properties"
        self.logback_path = self.home / "logback.xml"
        saved = remembered(self.home)  # the same data comes back on the same port with the same keys
        self.port = port or saved.get("port") or free_port()
        self._port_chosen_by_us = port is None and not saved
        self._started_once = False
        self.access_key = access_key
        self.secret_key = secret_key or saved.get("secret_key") or secrets.token_hex(16)
        self.region = region
        self.process: ManagedProcess | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / "s3.log"

    def properties(self) -> str:
        return "\n".join(
            [
                f"s3proxy.endpoint=http://{HOST}:{self.port}",
                "s3proxy.authorization=aws-v2-or-v4",
                f"s3proxy.identity={self.access_key}",
                f"s3proxy.credential={self.secret_key}",
                "s3proxy.ignore-unknown-headers=true",
                "jclouds.provider=filesystem-nio2",
                f"jclouds.filesystem.basedir={self.data_dir}",
                f"jclouds.region={self.region}",
                "jclouds.identity=local",  # the filesystem backend ignores these, but s3proxy requires them
                "jclouds.credential=local",
                "",
            ]
        )

    def client(self) -> Any:
        """A boto3 S3 client for this server (path-style)."""
        return s3_client(self.endpoint, self.access_key, self.secret_key, self.region)

    def start(self, timeout: float = START_TIMEOUT_S) -> S3Server:
        if self.process is not None and self.process.running():
            return self
        if not self._started_once:  # a restart must come back on the same port
            self.port = still_free(self.port, self._port_chosen_by_us, "s3")
        ensure_free(self.port, "s3")
        remember(self.home, {"port": self.port, "secret_key": self.secret_key})
        self._started_once = True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.properties())
        self.logback_path.write_text(LOGBACK_XML)
        argv = [
            java_executable(),
            *jvm_options(max_heap="256m", min_heap="64m"),
            f"-Dlogback.configurationFile={self.logback_path}",
            MAIN_CLASS,
            "--properties",
            str(self.config_path),
        ]
        began = time.monotonic()
        self.process = ManagedProcess(
            "s3", argv, self.log_dir, env=java_process_env(classpath_string(ARTIFACT)), ports=[self.port]
        ).start()
        try:
            self.process.wait_ready(self._ready, timeout)
        except DevstackError as exc:
            raise start_failure(self.name, exc, self.log_path, self.config_path) from None
        log.info("s3 ready at %s in %.1f s (data %s)", self.endpoint, time.monotonic() - began, self.data_dir)
        return self

    def _ready(self) -> bool:
        if not is_listening(self.port):
            return False
        from botocore.exceptions import ClientError

        try:
            self.client().list_buckets()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in REFUSED_CREDENTIALS:
                raise DevstackError(
                    f"s3: the server at {self.endpoint} refused our credentials ({exc}); another server may hold "
                    "this port: stop it or leave the port unset so a free one is chosen"
                ) from None
            return False  # still starting (e.g. 503)
        return True

    def create_buckets(self, names: list[str]) -> None:
        """Create buckets; an existing one is kept."""
        s3 = self.client()
        existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
        for name in names:
            if name not in existing:
                s3.create_bucket(Bucket=name)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=20)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": f"s3proxy {S3PROXY_VERSION}",
            "endpoint": self.endpoint,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region": self.region,
            "ports": {"http": self.port},
            "pid": self.process.pid if self.process and self.process.running() else None,
            "log": str(self.log_path),
            "data": str(self.data_dir),
            "rss_bytes": self.process.rss_bytes() if self.process else 0,
        }


def s3_client(endpoint: str, access_key: str, secret_key: str, region: str, max_attempts: int = 2) -> Any:
    """A boto3 S3 client with path-style addressing, checksums only where S3 requires them (s3proxy, MinIO)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": max_attempts},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
