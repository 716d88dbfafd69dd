"""The local search engine is a real one: bulk-indexed documents are all counted and searchable."""

from __future__ import annotations

import uuid

import pytest
import requests
from opensearchpy import OpenSearch, helpers

from devstack.servers.search import SearchServer

pytestmark = pytest.mark.integration

COUNT = 1000


def client(search: SearchServer) -> OpenSearch:
    return OpenSearch(hosts=[search.url], timeout=60)


def test_bulk_index_thousand_documents_count_and_search(search: SearchServer) -> None:
    es = client(search)
    index = f"docs-{uuid.uuid4().hex[:8]}"
    es.indices.create(
        index=index,
        body={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {"properties": {"text": {"type": "text"}, "label": {"type": "keyword"}, "n": {"type": "long"}}},
        },
    )
    actions = (
        {
            "_index": index,
            "_id": f"req-{i}",
            "_source": {
                "text": f"document number {i} says {'hello' if i % 10 == 0 else 'bye'}",
                "label": f"t:{i % 2}",
                "n": i,
            },
        }
        for i in range(COUNT)
    )
    indexed, errors = helpers.bulk(es, actions, chunk_size=250, raise_on_error=False)
    assert (indexed, errors) == (COUNT, [])

    es.indices.refresh(index=index)

    assert es.count(index=index)["count"] == COUNT
    hello = es.search(index=index, body={"query": {"match": {"text": "hello"}}, "size": 0, "track_total_hits": True})
    assert hello["hits"]["total"]["value"] == COUNT // 10
    label = es.count(index=index, body={"query": {"term": {"label": "t:1"}}})
    assert label["count"] == COUNT // 2
    doc = es.get(index=index, id="req-123")
    assert doc["_source"]["n"] == 123
    top = es.search(index=index, body={"query": {"range": {"n": {"gte": 990}}}, "sort": [{"n": "desc"}], "size": 3})
    assert [hit["_source"]["n"] for hit in top["hits"]["hits"]] == [999, 998, 997]


def test_speaks_the_elasticsearch_rest_api_over_plain_http(search: SearchServer) -> None:
    info = requests.get(search.url, timeout=10).json()
    assert info["version"]["distribution"] == "opensearch"
    assert info["version"]["number"].startswith("2.19")
    assert search.url.startswith("http://127.0.0.1:")
    health = requests.get(f"{search.url}/_cluster/health", timeout=10).json()
    assert health["number_of_nodes"] == 1


def test_documents_survive_a_restart_on_the_same_port(search: SearchServer) -> None:
    es = client(search)
    index = f"restart-{uuid.uuid4().hex[:8]}"
    for i in range(50):
        es.index(index=index, id=str(i), body={"n": i})
    es.indices.refresh(index=index)
    port_before = search.port

    search.stop()
    search.start()

    assert search.port == port_before
    health = requests.get(
        f"{search.url}/_cluster/health/{index}", params={"wait_for_status": "yellow", "timeout": "60s"}, timeout=70
    )
    assert health.json()["status"] in ("green", "yellow")
    es = client(search)
    assert es.count(index=index)["count"] == 50


def test_a_new_server_on_old_data_keeps_its_cluster_port_and_documents(tmp_path) -> None:
    first = SearchServer(tmp_path)
    try:
        first.start()
        requests.put(f"{first.url}/kept/_doc/1?refresh=true", json={"n": 1}, timeout=30).raise_for_status()
    finally:
        first.stop()

    second = SearchServer(tmp_path)
    try:
        second.start()
        assert (second.url, second.cluster_name) == (first.url, first.cluster_name)
        assert second.transport_port == first.transport_port, "the node must come back on its own transport port"
        health = requests.get(
            f"{second.url}/_cluster/health/kept", params={"wait_for_status": "yellow", "timeout": "60s"}, timeout=70
        )
        assert health.json()["status"] in ("green", "yellow")
        assert requests.get(f"{second.url}/kept/_count", timeout=30).json()["count"] == 1
    finally:
        second.stop()


def test_two_servers_on_one_machine_each_form_their_own_cluster(search: SearchServer, tmp_path) -> None:
    """Each node binds a transport port of its own and keeps it: with OpenSearch's default range (9300-9400, first
    free) a node restarted while another stack's node held its old port (`make demo --keep` beside `make test`)
    came back on another port and tried to join that other node."""
    other = SearchServer(tmp_path)
    try:
        other.start()
        published = {}
        for server in (search, other):
            nodes = requests.get(f"{server.url}/_nodes/_local/transport", timeout=30).json()["nodes"]
            (node,) = nodes.values()
            published[server.cluster_name] = node["transport"]["publish_address"]
        assert published == {
            search.cluster_name: f"127.0.0.1:{search.transport_port}",
            other.cluster_name: f"127.0.0.1:{other.transport_port}",
        }
        assert search.transport_port != other.transport_port
    finally:
        other.stop()
