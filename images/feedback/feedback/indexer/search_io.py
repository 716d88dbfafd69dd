"""One small protocol over the official clients: `elasticsearch` 8.x for Elasticsearch 8, `opensearch-py` for
OpenSearch 2 (a client works with servers of its own major version). Chosen by INDEXER_SEARCH_ENGINE.

Bulk writes send a prebuilt NDJSON body (`bulk.py`) in one request with the client's own transport and no
client-side retries (`max_retries=0`): the indexer's loop retries while it keeps polling Kafka, so one call never
blocks past its timeout. Whole-request failures become typed errors: `SearchUnavailable` (unreachable, timeout,
429, 5xx), `SearchAuthFailed` (401/403), `RequestTooLarge` (413), `RequestRefused` (another 4xx).
`bulk()` (the sweeps) keeps `helpers.streaming_bulk(raise_on_error=False)`, also without retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from feedback.indexer.settings import SearchSettings

log = logging.getLogger(__name__)

BULK_CHUNK_BYTES = 50 * 1024 * 1024
NDJSON = "application/x-ndjson"


class SearchUnavailable(Exception):
    """The cluster could not be reached, timed out, or answered 429/5xx for the whole request; retry later."""


class SearchTimeout(SearchUnavailable):
    """No answer within INDEXER_SEARCH_TIMEOUT_S (the cluster is slow; the indexer sends smaller requests)."""


class SearchAuthFailed(SearchUnavailable):
    """401/403 for the whole request: credentials or permissions are wrong (readiness goes false until fixed)."""


class RequestTooLarge(Exception):
    """413: the request body is above the cluster's http.max_content_length; send smaller requests."""


class RequestRefused(Exception):
    """Another 4xx for the whole request (e.g. 400 for a body the cluster cannot read)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status


@dataclass(frozen=True)
class ItemResult:
    doc_id: str
    status: int
    error: Any


class SearchBackend(Protocol):
    engine: str

    def put_index_template(self, name: str, template: dict[str, Any]) -> None: ...

    def put_script(self, script_id: str, script: dict[str, Any]) -> None: ...

    def put_mapping(self, index: str, properties: dict[str, Any], meta: dict[str, Any] | None = None) -> None: ...

    def create_index(self, index: str) -> bool: ...

    def mapping_meta(self, index: str) -> dict[str, Any] | None: ...

    def bulk(self, actions: list[dict[str, Any]]) -> list[ItemResult]: ...

    def bulk_ndjson(self, body: bytes) -> dict[str, Any]: ...

    def get_index_template(self, name: str) -> dict[str, Any] | None: ...

    def delete_older_than(self, index: str, field: str, before: str) -> tuple[int, int]: ...

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def open_point_in_time(self, index: str, keep_alive: str) -> str | None: ...

    def search_point_in_time(self, pit_id: str, keep_alive: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def close_point_in_time(self, pit_id: str) -> None: ...

    def refresh(self, index: str) -> None: ...

    def close(self) -> None: ...


def status_of(exc: BaseException | None) -> int | None:
    """The HTTP status of either client's error (elasticsearch: `.meta.status`; opensearch-py: `.status_code`)."""
    status = getattr(getattr(exc, "meta", None), "status", None)
    if not isinstance(status, int):
        status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def item_result(item: dict[str, Any]) -> ItemResult:
    """One entry of a bulk response (`{"update": {"_id": ..., "status": ..., "error": ...}}`)."""
    _, info = next(iter(item.items()))
    return ItemResult(str(info.get("_id")), int(info.get("status", 500)), info.get("error"))


def run_streaming_bulk(
    streaming_bulk: Callable[..., Iterable[tuple[bool, dict[str, Any]]]],
    client: Any,
    actions: list[dict[str, Any]],
    transport_errors: tuple[type[BaseException], ...],
) -> list[ItemResult]:
    try:
        return [
            item_result(item)
            for _, item in streaming_bulk(
                client,
                actions,
                chunk_size=max(1, len(actions)),
                max_chunk_bytes=BULK_CHUNK_BYTES,
                raise_on_error=False,
                raise_on_exception=True,
                max_retries=0,
            )
        ]
    except transport_errors as exc:
        raise SearchUnavailable(f"{type(exc).__name__}: {exc}") from exc


def safe_detail(exc: BaseException, status: int | None) -> str:
    """What a failed request is logged and dead-lettered with: for an answer of the engine, its error types and
    field names only (the engine's text can quote a document's values); for no answer (connection refused, a
    timeout), the client's own message, which holds no document data."""
    from feedback.indexer.bulk import search_error_detail

    body = getattr(exc, "body", None)
    info = body if isinstance(body, dict) else getattr(exc, "info", None)
    if isinstance(info, dict):
        return search_error_detail(status, info, type(exc).__name__)
    if status is not None:
        return f"{type(exc).__name__} {status}"
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def es_template_kwargs(name: str, template: dict[str, Any]) -> dict[str, Any]:
    """The elasticsearch 8.x client takes body fields as keyword arguments (`_meta` becomes `meta`)."""
    kwargs: dict[str, Any] = {"name": name}
    for key, value in template.items():
        kwargs["meta" if key == "_meta" else key] = value
    return kwargs


class _ClientBackend:
    """What both official clients share: errors become `SearchUnavailable`, bulk goes through `streaming_bulk`."""

    client: Any

    def _errors(self) -> tuple[type[BaseException], ...]:
        raise NotImplementedError

    def _streaming_bulk(self) -> Callable[..., Iterable[tuple[bool, dict[str, Any]]]]:
        raise NotImplementedError

    @contextmanager
    def _unavailable(self, what: str) -> Iterator[None]:
        try:
            yield
        except self._errors() as exc:
            raise SearchUnavailable(f"cannot {what}: {exc}") from exc

    def _not_found(self) -> type[BaseException]:
        raise NotImplementedError

    def bulk(self, actions: list[dict[str, Any]]) -> list[ItemResult]:
        return run_streaming_bulk(self._streaming_bulk(), self.client, actions, self._errors())

    def _status(self, exc: BaseException) -> int | None:
        raise NotImplementedError

    def _perform(self, method: str, path: str, params: dict[str, Any], body: bytes, content_type: str) -> Any:
        raise NotImplementedError

    def bulk_ndjson(self, body: bytes) -> dict[str, Any]:
        """One `_bulk` request with a prebuilt NDJSON body; the answer filtered to what the indexer reads."""
        from feedback.indexer.bulk import BULK_FILTER_PATH

        try:
            answer = self._perform("POST", "/_bulk", {"filter_path": BULK_FILTER_PATH}, body, NDJSON)
        except self._errors() as exc:
            status = self._status(exc)
            detail = safe_detail(exc, status)
            if status in (401, 403):
                raise SearchAuthFailed(f"the search cluster refused our credentials ({status}): {detail}") from exc
            if status == 413:
                raise RequestTooLarge(f"request of {len(body)} bytes refused (413): {detail}") from exc
            if status is not None and 400 <= status < 500 and status != 429 and status != 408:
                raise RequestRefused(status, detail) from exc
            if "Timeout" in type(exc).__name__ or status == 408:
                raise SearchTimeout(detail) from exc
            raise SearchUnavailable(detail) from exc
        return dict(answer)

    def get_index_template(self, name: str) -> dict[str, Any] | None:
        """The installed composable template `name` (None when there is none)."""
        try:
            with self._unavailable(f"read index template {name}"):
                answer = self.client.indices.get_index_template(name=name)
        except SearchUnavailable as exc:
            if isinstance(exc.__cause__, self._not_found()):
                return None
            raise
        templates = answer.get("index_templates") or []
        return dict(templates[0]["index_template"]) if templates else None

    def delete_older_than(self, index: str, field: str, before: str) -> tuple[int, int]:
        """Delete the documents whose `field` is before `before` (retention); returns how many were deleted and how
        many were skipped because they changed after the deletion's search (version conflicts)."""
        body = {"query": {"range": {field: {"lt": before}}}}
        try:
            with self._unavailable(f"apply the retention to {index}"):
                answer = self.client.delete_by_query(
                    index=index, body=body, conflicts="proceed", wait_for_completion=True, slices="auto"
                )
        except SearchUnavailable as exc:
            if isinstance(exc.__cause__, self._not_found()):
                return 0, 0
            raise
        return int(answer.get("deleted", 0)), int(answer.get("version_conflicts", 0))

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        """One search request; a missing index answers no hits (the sweeps run before the first write)."""
        try:
            with self._unavailable(f"search {index}"):
                return dict(self.client.search(index=index, body=body))
        except SearchUnavailable as exc:
            if isinstance(exc.__cause__, self._not_found()):
                return {"hits": {"hits": []}}
            raise

    def open_point_in_time(self, index: str, keep_alive: str) -> str | None:
        """A point in time of `index` (a snapshot that later writes do not change), kept `keep_alive` after each
        use ("5m"); None when the index does not exist (nothing to read)."""
        try:
            with self._unavailable(f"open a point in time of {index}"):
                return self._open_point_in_time(index, keep_alive)
        except SearchUnavailable as exc:
            if isinstance(exc.__cause__, self._not_found()):
                return None
            raise

    def search_point_in_time(self, pit_id: str, keep_alive: str, body: dict[str, Any]) -> dict[str, Any]:
        """One search of the point in time (no index: the point in time names it); its answer's `pit_id` is the
        id to use next."""
        with self._unavailable("search a point in time"):
            return dict(self.client.search(body={**body, "pit": {"id": pit_id, "keep_alive": keep_alive}}))

    def close_point_in_time(self, pit_id: str) -> None:
        with self._unavailable("close a point in time"):
            self._close_point_in_time(pit_id)

    def _open_point_in_time(self, index: str, keep_alive: str) -> str:
        raise NotImplementedError

    def _close_point_in_time(self, pit_id: str) -> None:
        raise NotImplementedError

    def refresh(self, index: str) -> None:
        """Make every acknowledged write searchable (a missing index has nothing to refresh)."""
        try:
            with self._unavailable(f"refresh {index}"):
                self.client.indices.refresh(index=index)
        except SearchUnavailable as exc:
            if not isinstance(exc.__cause__, self._not_found()):
                raise

    def put_mapping(self, index: str, properties: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        """Add the fields of a newer indexer to an index created by an older one (adding fields is allowed; the
        template only reaches new indices), and replace the mapping's `_meta` (the setup's marker) when given. A
        missing index is fine: the template will create it."""
        body: dict[str, Any] = {"properties": properties}
        if meta is not None:
            body["_meta"] = meta
        try:
            with self._unavailable(f"update the mapping of {index}"):
                self._put_mapping(index, body)
        except SearchUnavailable as exc:
            if isinstance(exc.__cause__, self._not_found()):
                return
            raise

    def create_index(self, index: str) -> bool:
        """Create `index` (its settings and mapping come from the matching template); False when it exists."""
        try:
            with self._unavailable(f"create the index {index}"):
                self.client.indices.create(index=index)
        except SearchUnavailable as exc:
            if "resource_already_exists_exception" in str(exc.__cause__):
                return False
            raise
        return True

    def mapping_meta(self, index: str) -> dict[str, Any] | None:
        """The `_meta` of `index`'s mapping ({} when it has none); None when the index does not exist. Needs only
        the index privilege to read its metadata (view_index_metadata; OpenSearch indices:admin/mappings/get)."""
        try:
            with self._unavailable(f"read the mapping of {index}"):
                answer = dict(self.client.indices.get_mapping(index=index))
        except SearchUnavailable as exc:
            if isinstance(exc.__cause__, self._not_found()):
                return None
            raise
        for entry in answer.values():
            return dict((entry.get("mappings") or {}).get("_meta") or {})
        return None

    def _put_mapping(self, index: str, body: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.client.close()


class ElasticsearchBackend(_ClientBackend):
    engine = "elasticsearch"

    def __init__(self, settings: SearchSettings) -> None:
        from elasticsearch import Elasticsearch

        auth: dict[str, Any] = {}
        if settings.api_key:
            auth["api_key"] = settings.api_key
        elif settings.username is not None:
            auth["basic_auth"] = (settings.username, settings.password or "")
        self.client = Elasticsearch(
            list(settings.urls),
            ca_certs=settings.ca_certs,
            verify_certs=settings.verify_certs,
            request_timeout=settings.request_timeout_s,
            retry_on_timeout=False,
            max_retries=0,
            **_es_serializer(),
            **auth,
        )

    def _errors(self) -> tuple[type[BaseException], ...]:
        from elasticsearch import ApiError, TransportError

        return (ApiError, TransportError)

    def _status(self, exc: BaseException) -> int | None:
        meta = getattr(exc, "meta", None)
        status = getattr(meta, "status", None)
        return int(status) if isinstance(status, int) else None

    def _perform(self, method: str, path: str, params: dict[str, Any], body: bytes, content_type: str) -> Any:
        headers = {"content-type": content_type, "accept": "application/json"}
        return self.client.perform_request(method, path, params=params, headers=headers, body=body).body

    def _streaming_bulk(self) -> Callable[..., Iterable[tuple[bool, dict[str, Any]]]]:
        from elasticsearch.helpers import streaming_bulk

        return streaming_bulk

    def _not_found(self) -> type[BaseException]:
        from elasticsearch import NotFoundError

        return NotFoundError

    def _put_mapping(self, index: str, body: dict[str, Any]) -> None:
        kwargs = {"meta" if key == "_meta" else key: value for key, value in body.items()}
        self.client.indices.put_mapping(index=index, **kwargs)

    def put_index_template(self, name: str, template: dict[str, Any]) -> None:
        with self._unavailable(f"install index template {name}"):
            self.client.indices.put_index_template(**es_template_kwargs(name, template))

    def _open_point_in_time(self, index: str, keep_alive: str) -> str:
        return str(self.client.open_point_in_time(index=index, keep_alive=keep_alive)["id"])  # POST /<index>/_pit

    def _close_point_in_time(self, pit_id: str) -> None:
        self.client.close_point_in_time(id=pit_id)  # DELETE /_pit

    def put_script(self, script_id: str, script: dict[str, Any]) -> None:
        with self._unavailable(f"store script {script_id}"):
            self.client.put_script(id=script_id, script=script)


class OpenSearchBackend(_ClientBackend):
    engine = "opensearch"

    def __init__(self, settings: SearchSettings) -> None:
        from opensearchpy import OpenSearch

        auth: dict[str, Any] = {}
        if settings.username is not None:
            auth["http_auth"] = (settings.username, settings.password or "")
        self.client = OpenSearch(
            list(settings.urls),
            ca_certs=settings.ca_certs,
            verify_certs=settings.verify_certs,
            timeout=settings.request_timeout_s,
            retry_on_timeout=False,
            max_retries=0,
            serializer=_OrjsonOpenSearchSerializer(),
            **auth,
        )

    def _errors(self) -> tuple[type[BaseException], ...]:
        from opensearchpy.exceptions import ImproperlyConfigured, TransportError

        return (TransportError, ImproperlyConfigured)

    def _status(self, exc: BaseException) -> int | None:
        status = getattr(exc, "status_code", None)
        return status if isinstance(status, int) else None

    def _perform(self, method: str, path: str, params: dict[str, Any], body: bytes, content_type: str) -> Any:
        return self.client.transport.perform_request(
            method, path, params=params, body=body, headers={"content-type": content_type}
        )

    def _streaming_bulk(self) -> Callable[..., Iterable[tuple[bool, dict[str, Any]]]]:
        from opensearchpy.helpers import streaming_bulk

        return streaming_bulk

    def _not_found(self) -> type[BaseException]:
        from opensearchpy.exceptions import NotFoundError

        return NotFoundError

    def _put_mapping(self, index: str, body: dict[str, Any]) -> None:
        self.client.indices.put_mapping(index=index, body=body)

    def put_index_template(self, name: str, template: dict[str, Any]) -> None:
        with self._unavailable(f"install index template {name}"):
            self.client.indices.put_index_template(name=name, body=template)

    def _open_point_in_time(self, index: str, keep_alive: str) -> str:
        # POST /<index>/_search/point_in_time (OpenSearch 2.4+)
        return str(self.client.create_pit(index=index, params={"keep_alive": keep_alive})["pit_id"])

    def _close_point_in_time(self, pit_id: str) -> None:
        self.client.delete_pit(body={"pit_id": [pit_id]})  # DELETE /_search/point_in_time

    def put_script(self, script_id: str, script: dict[str, Any]) -> None:
        with self._unavailable(f"store script {script_id}"):
            self.client.put_script(id=script_id, body={"script": script})


def _es_serializer() -> dict[str, Any]:
    """orjson for the Elasticsearch client's JSON answers (elastic-transport ships the serializer)."""
    from elastic_transport import OrjsonSerializer

    return {"serializer": OrjsonSerializer()}


class _OrjsonOpenSearchSerializer:
    """opensearch-py's JSON serializer, with orjson (a bulk answer of 1000 items decodes several times faster)."""

    mimetype = "application/json"

    def loads(self, data: str | bytes) -> Any:
        import orjson

        return orjson.loads(data)

    def dumps(self, data: Any) -> str | bytes:
        import orjson

        if isinstance(data, str | bytes):
            return data
        return orjson.dumps(data).decode("utf-8")  # the client's helpers measure and join str


def create_backend(settings: SearchSettings) -> SearchBackend:
    if settings.engine == "elasticsearch":
        return ElasticsearchBackend(settings)
    return OpenSearchBackend(settings)
