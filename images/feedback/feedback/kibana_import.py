"""Install Kibana saved objects (the chart's dashboards) through Kibana's import API, waiting for Kibana to be up.

    python -m feedback.kibana_import /dashboards/dashboard.ndjson

POSTs the NDJSON file as multipart form data to `KIBANA_URL/api/saved_objects/_import?overwrite=true` (with
`kbn-xsrf`), basic auth from `KIBANA_USERNAME`/`KIBANA_PASSWORD` when set, the CA from `KIBANA_CA_CERTS`. Retries
connection failures, 429 and 5xx with backoff until `KIBANA_IMPORT_TIMEOUT_S` (600 s); exits 0 when Kibana
reports every object imported, 1 with the objects it refused and why, 2 on bad settings. Standard library only:
the chart's Job runs it in the feedback image.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feedback.config import SettingsError, env_bool, env_float, env_optional, env_str

IMPORT_PATH = "/api/saved_objects/_import?overwrite=true"
RETRYABLE = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class KibanaSettings:
    url: str
    username: str | None
    password: str | None
    ca_certs: str | None
    verify_certs: bool
    timeout_s: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KibanaSettings:
        url = env_str(env, "KIBANA_URL", required=True).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"KIBANA_URL={url!r} is not an http(s) URL such as https://seldon-kibana-kb-http:5601")
        username, password = env_optional(env, "KIBANA_USERNAME"), env_optional(env, "KIBANA_PASSWORD")
        if (username is None) != (password is None):
            raise SettingsError("KIBANA_USERNAME and KIBANA_PASSWORD must be set together")
        return cls(
            url=url,
            username=username,
            password=password,
            ca_certs=env_optional(env, "KIBANA_CA_CERTS"),
            verify_certs=env_bool(env, "KIBANA_VERIFY_CERTS", True),
            timeout_s=env_float(env, "KIBANA_IMPORT_TIMEOUT_S", 600.0, minimum=1.0, maximum=3600.0),
        )


def multipart(ndjson: bytes, filename: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/ndjson\r\n\r\n"
        ).encode()
        + ndjson
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def request(settings: KibanaSettings, ndjson: bytes, filename: str) -> urllib.request.Request:
    body, content_type = multipart(ndjson, filename)
    headers = {"kbn-xsrf": "true", "Content-Type": content_type}
    if settings.username is not None:
        token = base64.b64encode(f"{settings.username}:{settings.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    return urllib.request.Request(settings.url + IMPORT_PATH, data=body, headers=headers, method="POST")


def import_objects(settings: KibanaSettings, path: Path, sleep: Any = time.sleep) -> dict[str, Any]:
    """Kibana's answer to the import; raises RuntimeError when it refused or never answered in time."""
    context = ssl.create_default_context(cafile=settings.ca_certs) if settings.url.startswith("https") else None
    if context is not None and not settings.verify_certs:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    deadline, delay, last = time.monotonic() + settings.timeout_s, 1.0, "no attempt"
    while True:
        try:
            with urllib.request.urlopen(
                request(settings, path.read_bytes(), path.name), timeout=60, context=context
            ) as answer:
                result = json.loads(answer.read())
            if not result.get("success"):
                errors = [f"{e.get('type')} {e.get('id')}: {e.get('error')}" for e in result.get("errors", [])]
                raise RuntimeError(f"Kibana refused {len(errors)} saved objects: {'; '.join(errors)[:2000]}")
            return result
        except urllib.error.HTTPError as exc:
            if exc.code not in RETRYABLE:
                raise RuntimeError(f"Kibana answered {exc.code}: {exc.read()[:500]!r}") from None
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = str(exc)
        if time.monotonic() + delay > deadline:
            raise RuntimeError(
                f"Kibana at {settings.url} did not accept the import in {settings.timeout_s:.0f} s: {last}"
            )
        sleep(delay)
        delay = min(delay * 2, 30.0)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_file():
        print("usage: python -m feedback.kibana_import <saved-objects.ndjson>", file=sys.stderr)
        return 2
    try:
        settings = KibanaSettings.from_env(os.environ)
    except SettingsError as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        return 2
    try:
        result = import_objects(settings, Path(args[0]))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"imported {result.get('successCount', 0)} saved objects into {settings.url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
