"""The search adapters: one protocol over the elasticsearch 8.x and opensearch-py clients.

Elasticsearch 8 cannot run in the local stack (licence), so its adapter is exercised here against a small HTTP
stub on 127.0.0.1 that answers like Elasticsearch 8 and records what the official client sent: the template
request body and the NDJSON bulk body (scripted upserts with deterministic ids). OpenSearch runs for real in the
integration tests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from feedback.indexer.bulk import body, create_op, parse_bulk_answer
from feedback.indexer.core import (
    MERGE_SCRIPT_ID,
    bulk_action,
    coalesce,
    decode_message,
    document_parts,
    index_template,
    stored_script,
)
from feedback.indexer.search_io import (
    ElasticsearchBackend,
    ItemResult,
    OpenSearchBackend,
    RequestRefused,
    RequestTooLarge,
    SearchAuthFailed,
    SearchUnavailable,
    create_backend,
    es_template_kwargs,
    item_result,
    run_streaming_bulk,
)
from feedback.indexer.settings import SearchSettings


class FakeElasticsearch8(BaseHTTPRequestHandler):
    """Answers as Elasticsearch 8.15 would; item statuses for bulk come from `statuses` (by _id), default 201."""

    requests: list[tuple[str, str, bytes]] = []
    statuses: dict[str, int] = {}
    whole_status: int | None = None  # answer every _bulk request with this status (whole-request failures)
    missing_index = "no-such-index"

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.requests.append(("GET", self.path, b""))
        self._answer(200, {"version": {"number": "8.15.0"}, "tagline": "You Know, for Search"})

    def do_PUT(self) -> None:
        self.do_POST("PUT")

    def do_POST(self, method: str = "POST") -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.requests.append((method, self.path, body))
        if self.path.startswith(f"/{self.missing_index}/"):
            error = {"type": "index_not_found_exception", "reason": f"no such index [{self.missing_index}]"}
            self._answer(404, {"error": error, "status": 404})
            return
        if self.path.startswith(f"/{self.missing_index}/_pit"):
            self._answer(404, {"error": {"type": "index_not_found_exception"}, "status": 404})
            return
        if "/_pit" in self.path:  # POST /<index>/_pit?keep_alive=...
            self._answer(200, {"id": "pit-1"})
            return
        if "/_search" in self.path:
            answer: dict[str, Any] = {"took": 1, "hits": {"total": {"value": 1}, "hits": [{"_id": "a", "_source": {}}]}}
            if body and "pit" in json.loads(body):
                answer["pit_id"] = "pit-2"  # Elasticsearch may hand out a new id with every page
            self._answer(200, answer)
            return
        if not self.path.startswith("/_bulk"):
            self._answer(200, {"acknowledged": True})
            return
        if self.whole_status is not None:
            self._answer(self.whole_status, {"error": {"type": "whole_request", "reason": "refused"}, "status": 0})
            return
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        items = []
        for meta in lines[::2]:
            ((op, info),) = meta.items()
            status = self.statuses.get(info["_id"], 201)
            item: dict[str, Any] = {"_index": info["_index"], "_id": info["_id"], "status": status}
            if status >= 300:
                item["error"] = {
                    "type": "mapper_parsing_exception" if status == 400 else "es_rejected_execution_exception"
                }
            items.append({op: item})
        self._answer(200, {"took": 1, "errors": any(i[next(iter(i))]["status"] >= 300 for i in items), "items": items})

    def do_DELETE(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.requests.append(("DELETE", self.path, body))
        self._answer(200, {"succeeded": True, "num_freed": 1})

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def fake_es() -> Iterator[str]:
    FakeElasticsearch8.requests = []
    FakeElasticsearch8.statuses = {}
    FakeElasticsearch8.whole_status = None
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeElasticsearch8)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def request_actions(count: int) -> list[dict[str, Any]]:
    headers = [
        ("type", b"io.seldon.serving.inference.request"),
        ("requestid", b"puid-7"),
        ("modelid", b"classifier"),
        ("inferenceservicename", b"text-classifier"),
    ]
    texts = json.dumps({"data": {"ndarray": [f"text {i}" for i in range(count)]}}).encode()
    event = decode_message(headers, texts, 1_714_564_800_000)
    return [bulk_action(part, "seldon-feedback") for part in coalesce((0, p) for p in document_parts(event, ()))]


def test_backend_is_chosen_by_engine() -> None:
    es = create_backend(SearchSettings(engine="elasticsearch", urls=("http://127.0.0.1:9",)))
    opensearch = create_backend(SearchSettings(engine="opensearch", urls=("http://127.0.0.1:9",)))
    assert isinstance(es, ElasticsearchBackend) and es.engine == "elasticsearch"
    assert isinstance(opensearch, OpenSearchBackend) and opensearch.engine == "opensearch"


def test_es_template_kwargs_rename_meta() -> None:
    kwargs = es_template_kwargs("t", index_template("seldon-feedback", 1, 1))
    assert kwargs["name"] == "t" and kwargs["meta"] == {"managed_by": "seldon-feedback-indexer"}
    assert "_meta" not in kwargs and kwargs["index_patterns"] == ["seldon-feedback", "seldon-feedback-*"]


def test_elasticsearch8_adapter_installs_the_template(fake_es: str) -> None:
    backend = ElasticsearchBackend(SearchSettings(engine="elasticsearch", urls=(fake_es,)))
    template = index_template("seldon-feedback", 2, 1)
    backend.put_index_template("seldon-feedback-template", template)
    method, path, body = FakeElasticsearch8.requests[-1]
    assert (method, path) == ("PUT", "/_index_template/seldon-feedback-template")
    assert json.loads(body) == template  # exactly our template, `_meta` included
    backend.put_script(MERGE_SCRIPT_ID, stored_script())
    method, path, body = FakeElasticsearch8.requests[-1]
    assert (method, path) == ("PUT", f"/_scripts/{MERGE_SCRIPT_ID}")
    assert json.loads(body) == {"script": {"lang": "painless", "source": stored_script()["source"]}}
    backend.close()


def test_elasticsearch8_adapter_bulk_sends_scripted_upserts_and_sorts_results(fake_es: str) -> None:
    backend = ElasticsearchBackend(SearchSettings(engine="elasticsearch", urls=(fake_es,)))
    actions = request_actions(3)
    FakeElasticsearch8.statuses = {"puid-7:classifier:1": 400}
    results = backend.bulk(actions)
    assert sorted(results, key=lambda r: r.doc_id) == [
        ItemResult("puid-7:classifier:0", 201, None),
        ItemResult("puid-7:classifier:1", 400, {"type": "mapper_parsing_exception"}),
        ItemResult("puid-7:classifier:2", 201, None),
    ]
    method, path, body = FakeElasticsearch8.requests[-1]
    assert method in ("PUT", "POST") and path == "/_bulk"
    lines = [json.loads(line) for line in body.splitlines()]
    assert lines[0] == {"update": {"_index": "seldon-feedback", "_id": "puid-7:classifier:0", "retry_on_conflict": 5}}
    assert lines[1]["scripted_upsert"] is True and lines[1]["upsert"] == {}
    assert lines[1]["script"]["id"] == MERGE_SCRIPT_ID
    assert lines[1]["script"]["params"]["doc"]["input_text"] == "text 0"
    backend.close()


def test_elasticsearch8_adapter_searches_refreshes_and_extends_the_mapping(fake_es: str) -> None:
    backend = ElasticsearchBackend(SearchSettings(engine="elasticsearch", urls=(fake_es,)))
    query = {"size": 2, "query": {"term": {"outcome": "pending"}}, "collapse": {"field": "request_id"}}
    assert backend.search("seldon-feedback", query)["hits"]["hits"] == [{"_id": "a", "_source": {}}]
    method, path, body = FakeElasticsearch8.requests[-1]
    assert path.startswith("/seldon-feedback/_search") and json.loads(body) == query
    backend.refresh("seldon-feedback")
    assert FakeElasticsearch8.requests[-1][1].startswith("/seldon-feedback/_refresh")
    backend.put_mapping("seldon-feedback", {"outcome": {"type": "keyword"}})
    method, path, body = FakeElasticsearch8.requests[-1]
    assert (method, path) == ("PUT", "/seldon-feedback/_mapping")
    assert json.loads(body) == {"properties": {"outcome": {"type": "keyword"}}}
    # before the first write the index does not exist: nothing to sweep, refresh or extend, and no error
    missing = FakeElasticsearch8.missing_index
    assert backend.search(missing, query) == {"hits": {"hits": []}}
    backend.refresh(missing)
    backend.put_mapping(missing, {"outcome": {"type": "keyword"}})
    backend.close()


def test_elasticsearch8_adapter_pages_a_point_in_time(fake_es: str) -> None:
    """What the official 8.x client sends for an export's snapshot: POST /<index>/_pit, searches without an index
    carrying {"pit": {"id", "keep_alive"}}, DELETE /_pit with the latest id."""
    from feedback.flowback.export import Snapshot

    backend = ElasticsearchBackend(SearchSettings(engine="elasticsearch", urls=(fake_es,)))
    with Snapshot(backend, "seldon-feedback", keep_alive="2m") as snapshot:
        assert snapshot.pit_id == "pit-1"
        method, path, _ = FakeElasticsearch8.requests[-1]
        assert (method, path.split("?")[0]) == ("POST", "/seldon-feedback/_pit") and "keep_alive=2m" in path
        snapshot.search({"size": 5, "sort": [{"request_id": "asc"}]})
        method, path, body = FakeElasticsearch8.requests[-1]
        assert (method, path.split("?")[0]) == ("POST", "/_search"), "a point in time names its index itself"
        assert json.loads(body)["pit"] == {"id": "pit-1", "keep_alive": "2m"}
        assert snapshot.pit_id == "pit-2"
        snapshot.search({"size": 5})
        assert json.loads(FakeElasticsearch8.requests[-1][2])["pit"]["id"] == "pit-2"
    method, path, body = FakeElasticsearch8.requests[-1]
    assert (method, path, json.loads(body)) == ("DELETE", "/_pit", {"id": "pit-2"})
    with Snapshot(backend, FakeElasticsearch8.missing_index) as missing:  # no index yet: an empty snapshot
        assert missing.pit_id is None and missing.search({"size": 5})["hits"]["hits"] == []
    backend.close()


def test_unreachable_cluster_raises_search_unavailable() -> None:
    backend = ElasticsearchBackend(
        SearchSettings(engine="elasticsearch", urls=("http://127.0.0.1:9",), request_timeout_s=1)
    )
    with pytest.raises(SearchUnavailable):
        backend.bulk(request_actions(1))
    with pytest.raises(SearchUnavailable):
        backend.put_index_template("t", index_template("seldon-feedback", 1, 0))
    opensearch = OpenSearchBackend(
        SearchSettings(engine="opensearch", urls=("http://127.0.0.1:9",), request_timeout_s=1)
    )
    with pytest.raises(SearchUnavailable):
        opensearch.bulk(request_actions(1))
    with pytest.raises(SearchUnavailable):
        opensearch.search("seldon-feedback", {"size": 1})


def test_run_streaming_bulk_uses_report_not_raise_mode() -> None:
    seen: dict[str, Any] = {}

    def streaming_bulk(
        client: Any, actions: list[dict[str, Any]], **kwargs: Any
    ) -> Iterator[tuple[bool, dict[str, Any]]]:
        seen.update(kwargs)
        for action in actions:
            yield True, {"update": {"_id": action["_id"], "status": 200}}

    results = run_streaming_bulk(streaming_bulk, None, request_actions(2), (ConnectionError,))
    assert [r.status for r in results] == [200, 200]
    # no retries inside the helper: the indexer's loop retries while it keeps polling Kafka
    assert seen["raise_on_error"] is False and seen["max_retries"] == 0 and seen["raise_on_exception"] is True


def test_item_result_reads_errors() -> None:
    item = {"update": {"_id": "a", "status": 429, "error": {"type": "es_rejected_execution_exception"}}}
    assert item_result(item) == ItemResult("a", 429, {"type": "es_rejected_execution_exception"})


def ndjson_creates(count: int) -> bytes:
    ops = [create_op(f"d{i}", "seldon-feedback", {"request_id": f"d{i}"}, [], [], "realtime") for i in range(count)]
    return body(ops)


def test_elasticsearch8_adapter_sends_the_prebuilt_ndjson_body_as_it_is(fake_es: str) -> None:
    backend = ElasticsearchBackend(SearchSettings(engine="elasticsearch", urls=(fake_es,)))
    sent = ndjson_creates(3)
    FakeElasticsearch8.statuses = {"d1": 409}
    answer = parse_bulk_answer(backend.bulk_ndjson(sent))
    assert [(item.doc_id, item.status) for item in answer.items] == [("d0", 201), ("d1", 409), ("d2", 201)]
    _, path, received = FakeElasticsearch8.requests[-1]
    assert path.startswith("/_bulk?filter_path=") and received == sent
    backend.close()


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, SearchAuthFailed), (403, SearchAuthFailed), (413, RequestTooLarge), (400, RequestRefused)],
)
def test_whole_request_refusals_are_told_apart(fake_es: str, status: int, error: type[Exception]) -> None:
    """401/403, 413 and 400 were all "search unavailable", retried forever with every partition paused."""
    backend = ElasticsearchBackend(SearchSettings(engine="elasticsearch", urls=(fake_es,)))
    FakeElasticsearch8.whole_status = status
    with pytest.raises(error):
        backend.bulk_ndjson(ndjson_creates(2))
    backend.close()


def test_the_client_never_retries_by_itself(fake_es: str) -> None:
    """One bulk call once blocked 3 x 30 s (client retries on timeout) and 6 times on 429 (helper retries): past
    max.poll.interval.ms. Now one call is one request; the indexer's loop retries while it keeps polling."""
    for backend in (
        ElasticsearchBackend(SearchSettings(engine="elasticsearch", urls=(fake_es,))),
        OpenSearchBackend(SearchSettings(engine="opensearch", urls=(fake_es,))),
    ):
        for status in (429, 503):
            FakeElasticsearch8.whole_status = status
            before = sum(1 for _, path, _ in FakeElasticsearch8.requests if path.startswith("/_bulk"))
            with pytest.raises(SearchUnavailable):
                backend.bulk_ndjson(ndjson_creates(1))
            after = sum(1 for _, path, _ in FakeElasticsearch8.requests if path.startswith("/_bulk"))
            assert after - before == 1, (type(backend).__name__, status, after - before)
        backend.close()
