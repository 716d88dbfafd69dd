"""One small protocol over the official clients: `elasticsearch` 8.x for Elasticsearch 8, `opensearch-py` for
OpenSearch 2 (a client works with servers of its own major version). Chosen by INDEXER_SEARCH_ENGINE.

Bulk writes go through each client's `helpers.streaming_bulk(..., raise_on_error=False, max_retries=...)`, which
yields one (ok, item) pair per action and retries 429s with backoff; transport failures raise `SearchUnavailable`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from feedback.indexer.settings import SearchSettings

log = logging.getLogger(__name__)

BULK_MAX_RETRIES = 5
BULK_CHUNK_BYTES = 50 * 1024 * 1024


class SearchUnavailable(Exception):
    """The cluster could not be reached or refused the whole request; retry later."""


@dataclass(frozen=True)
class ItemResult:
    doc_id: str
    status: int
    error: Any


class SearchBackend(Protocol):
    engine: str

    def put_index_template(self, name: str, template: dict[str, Any]) -> None: ...

    def put_script(self, script_id: str, script: dict[str, Any]) -> None: ...

    def put_mapping(self, index: str, properties: dict[str, Any]) -> None: ...

    def bulk(self, actions: list[dict[str, Any]]) -> list[ItemResult]: ...

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def refresh(self, index: str) -> None: ...

    def close(self) -> None: ...


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
                max_retries=BULK_MAX_RETRIES,
                initial_backoff=0.5,
                max_backoff=8,
            )
        ]
    except transport_errors as exc:
        raise SearchUnavailable(f"{type(exc).__name__}: {exc}") from exc


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

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        """One search request; a missing index answers no hits (the sweeps run before the first write)."""
        try:
            with self._unavailable(f"search {index}"):
                return dict(self.client.search(index=index, body=body))
        except SearchUnavailable as exc:
            if isinstance(exc.__cause__, self._not_found()):
                return {"hits": {"hits": []}}
            raise

    def refresh(self, index: str) -> None:
        """Make every acknowledged write searchable (a missing index has nothing to refresh)."""
        try:
            with self._unavailable(f"refresh {index}"):
                self.client.indices.refresh(index=index)
        except SearchUnavailable as exc:
            if not isinstance(exc.__cause__, self._not_found()):
                raise

    def put_mapping(self, index: str, properties: dict[str, Any]) -> None:
        """Add the fields of a newer indexer to an index created by an older one (adding fields is allowed; the
        template only reaches new indices). A missing index is fine: the template will create it."""
        try:
            with self._unavailable(f"update the mapping of {index}"):
                self._put_mapping(index, properties)
        except SearchUnavailable as exc:
            if isinstance(exc.__cause__, self._not_found()):
                return
            raise

    def _put_mapping(self, index: str, properties: dict[str, Any]) -> None:
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
            retry_on_timeout=True,
            max_retries=2,
            **auth,
        )

    def _errors(self) -> tuple[type[BaseException], ...]:
        from elasticsearch import ApiError, TransportError

        return (ApiError, TransportError)

    def _streaming_bulk(self) -> Callable[..., Iterable[tuple[bool, dict[str, Any]]]]:
        from elasticsearch.helpers import streaming_bulk

        return streaming_bulk

    def _not_found(self) -> type[BaseException]:
        from elasticsearch import NotFoundError

        return NotFoundError

    def _put_mapping(self, index: str, properties: dict[str, Any]) -> None:
        self.client.indices.put_mapping(index=index, properties=properties)

    def put_index_template(self, name: str, template: dict[str, Any]) -> None:
        with self._unavailable(f"install index template {name}"):
            self.client.indices.put_index_template(**es_template_kwargs(name, template))

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
            retry_on_timeout=True,
            max_retries=2,
            **auth,
        )

    def _errors(self) -> tuple[type[BaseException], ...]:
        from opensearchpy.exceptions import ImproperlyConfigured, TransportError

        return (TransportError, ImproperlyConfigured)

    def _streaming_bulk(self) -> Callable[..., Iterable[tuple[bool, dict[str, Any]]]]:
        from opensearchpy.helpers import streaming_bulk

        return streaming_bulk

    def _not_found(self) -> type[BaseException]:
        from opensearchpy.exceptions import NotFoundError

        return NotFoundError

    def _put_mapping(self, index: str, properties: dict[str, Any]) -> None:
        self.client.indices.put_mapping(index=index, body={"properties": properties})

    def put_index_template(self, name: str, template: dict[str, Any]) -> None:
        with self._unavailable(f"install index template {name}"):
            self.client.indices.put_index_template(name=name, body=template)

    def put_script(self, script_id: str, script: dict[str, Any]) -> None:
        with self._unavailable(f"store script {script_id}"):
            self.client.put_script(id=script_id, body={"script": script})


def create_backend(settings: SearchSettings) -> SearchBackend:
    if settings.engine == "elasticsearch":
        return ElasticsearchBackend(settings)
    return OpenSearchBackend(settings)
