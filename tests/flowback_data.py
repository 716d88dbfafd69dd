"""Capture documents for the flow back's tests, shaped like the indexer's (every field is one of its mapping's),
written into a real search engine under the indexer's own index template, plus the object store and settings."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from feedback.flowback.store import ObjectStore, StoreSettings
from feedback.indexer.core import index_template, mapping_properties
from feedback.indexer.search_io import SearchBackend, create_backend
from feedback.indexer.settings import SearchSettings
from opensearchpy import OpenSearch, helpers

CLASS_NAMES = ["t:0", "t:1"]
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SERVING_VERSION = "1.0.0+servingtest"
DEPLOYMENT = "text-classifier"


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def document(
    request_id: str,
    minute: float,
    text: str | None,
    truth_index: int | None = None,
    *,
    instance: int = 0,
    deployment: str = DEPLOYMENT,
    predictor: str = "default",
    predicted_index: int = 0,
    model_version: str = SERVING_VERSION,
    truth: str | None = None,
) -> dict[str, Any]:
    """A joined document (request, response and, with `truth_index` or `truth`, feedback)."""
    moment = iso(at(minute))
    doc: dict[str, Any] = {
        "request_id": request_id,
        "node": "classifier",
        "instance": instance,
        "deployment": deployment,
        "namespace": "seldon",
        "predictor": predictor,
        "mode": "realtime",
        "outcome": "ok",
        "class_names": CLASS_NAMES,
        "probabilities": [0.7, 0.3] if predicted_index == 0 else [0.3, 0.7],
        "predicted_index": predicted_index,
        "predicted_label": CLASS_NAMES[predicted_index],
        "predicted_score": 0.7,
        "@timestamp": moment,
        "request_time": moment,
        "model_version": model_version,
        "response_raw": {"meta": {"tags": {"model_version": model_version}}},
    }
    if text is not None:
        doc["input_text"] = text
    else:  # a feedback the indexer could not join: no request, no response
        for key in ("mode", "outcome", "class_names", "probabilities", "predicted_index", "predicted_label"):
            doc.pop(key)
        doc.pop("predicted_score")
        doc["orphan_reason"] = "no_match"
    if truth_index is not None:
        doc.update(truth=str(truth_index), truth_index=truth_index, feedback_time=moment)
        if 0 <= truth_index < len(CLASS_NAMES):
            doc.update(truth_label=CLASS_NAMES[truth_index], correct=truth_index == predicted_index)
    elif truth is not None:
        doc.update(truth=truth, feedback_time=moment)
    unknown = set(doc) - set(mapping_properties())
    assert not unknown, f"fields the indexer does not write: {unknown}"
    return doc


def index_documents(search_url: str, index: str, documents: Iterable[dict[str, Any]]) -> int:
    client = OpenSearch(hosts=[search_url], timeout=60)
    try:
        client.indices.put_index_template(name=f"{index}-template", body=index_template(index, 1, 0))
        actions = [
            {"_index": index, "_id": f"{d['request_id']}:{d['node']}:{d['instance']}", "_source": d} for d in documents
        ]
        ok, errors = helpers.bulk(client, actions, raise_on_error=False)
        assert not errors, errors
        client.indices.refresh(index=index)
        return ok
    finally:
        client.close()


def backend(search_url: str) -> SearchBackend:
    return create_backend(SearchSettings(engine="opensearch", urls=(search_url,)))


def store_settings(s3: Any, bucket: str) -> StoreSettings:
    return StoreSettings(
        endpoint=s3.endpoint, bucket=bucket, access_key=s3.access_key, secret_key=s3.secret_key, region=s3.region
    )


def new_store(s3: Any, prefix: str = "flowback") -> ObjectStore:
    """A fresh bucket of its own on the shared S3 server."""
    bucket = f"{prefix}-{secrets.token_hex(4)}"
    s3.client().create_bucket(Bucket=bucket)
    return ObjectStore(store_settings(s3, bucket))


def env_for(search_url: str | None, store: ObjectStore, s3: Any, **extra: str) -> dict[str, str]:
    """The FLOWBACK_* environment the CLI reads, for these servers."""
    env = {
        "FLOWBACK_S3_ENDPOINT": s3.endpoint,
        "FLOWBACK_BUCKET": store.bucket,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_REGION": s3.region,
        **extra,
    }
    if search_url is not None:
        env.update(FLOWBACK_SEARCH_URL=search_url, FLOWBACK_SEARCH_ENGINE="opensearch")
    return env
