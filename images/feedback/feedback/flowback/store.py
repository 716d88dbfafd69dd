"""The object store (S3 API: MinIO on a cluster, s3proxy locally) as bytes in, bytes out, with readable errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from feedback.flowback.errors import FlowbackError


@dataclass(frozen=True)
class StoreSettings:
    endpoint: str | None  # None: AWS's own endpoint for the region
    bucket: str
    access_key: str | None
    secret_key: str | None
    region: str = "us-east-1"


class ObjectStore:
    """One bucket. Keys are `/`-separated; a missing key is `None` from `get`, never an exception."""

    def __init__(self, settings: StoreSettings, client: Any | None = None) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.client = client or _client(settings)

    def describe(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def _call(self, what: str, key: str, function: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return function(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"NoSuchKey", "404", "NotFound"}:
                return None
            if code == "NoSuchBucket":
                raise FlowbackError(
                    f"{self.describe()}: the bucket does not exist; create it or set FLOWBACK_BUCKET to one that does"
                ) from None
            raise FlowbackError(f"cannot {what} {self.describe(key)}: {code or exc}") from None
        except BotoCoreError as exc:
            raise FlowbackError(
                f"cannot {what} {self.describe(key)}: {exc}; check FLOWBACK_S3_ENDPOINT and the credentials"
            ) from None

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Write one object. Plain media types only: s3proxy refuses the signature of `text/html; charset=utf-8`."""
        self._call("write", key, self.client.put_object, Key=key, Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes | None:
        answer = self._call("read", key, self.client.get_object, Key=key)
        return None if answer is None else bytes(answer["Body"].read())

    def exists(self, key: str) -> bool:
        return self._call("look up", key, self.client.head_object, Key=key) is not None

    def delete(self, key: str) -> None:
        self._call("delete", key, self.client.delete_object, Key=key)

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list", prefix, self.client.list_objects_v2, **kwargs) or {}
            found.extend(item["Key"] for item in page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return sorted(found)


def _client(settings: StoreSettings) -> Any:
    """A boto3 client with path-style addressing and checksums only where S3 requires them (s3proxy, MinIO)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=settings.endpoint,
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        region_name=settings.region,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
