"""Search privileges on a real secured OpenSearch (security plugin from Maven Central, HTTPS, internal users).

What: the roles of infra/search_roles.py (`opensearch_roles`) on a node of their own, with three users: the indexer,
the monitor and the admin. Waits: the node is ready (admin health check). Asserts: before the setup the services
are told to run it and cannot do it themselves; the setup step with the admin credentials prepares the indices and
is idempotent; the indexer's role writes, merges with the stored script, deletes documents (retention), reads and
refreshes, and is refused deleting the index, putting a template, a script or a mapping, creating an index,
reading the cluster settings and writing the monitor index; the monitor's role writes its index and reads the
capture index only; the real indexer process, logged in as its own user over HTTPS, indexes every record of a
Kafka topic exactly once. The tests run in file order (before the setup, then after). Cleanup: the node and the
indexer stop with the module and the test; their data is under the run folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from feedback.indexer.bulk import ItemOutcome, body, classify_item, create_op, parse_bulk_answer
from feedback.indexer.core import TEMPLATE_VERSION
from feedback.indexer.main import Indexer
from feedback.indexer.metrics import IndexerMetrics
from feedback.indexer.search_io import OpenSearchBackend
from feedback.indexer.settings import IndexerSettings, SearchSettings
from feedback.indexer.setup import SETUP_COMMAND, setup_problem
from feedback.monitor.search_io import MonitorStore

from devstack.capture_traffic import direct_record
from devstack.feedback_pipeline import FeedbackPipeline
from devstack.servers.feedback import PACKAGE_DIR
from devstack.servers.secure_search import SecureSearchServer
from infra.search_roles import INDEXER_ROLE, MONITOR_ROLE, opensearch_roles
from tests.fixtures import running

pytestmark = pytest.mark.integration

TOKEN = uuid.uuid4().hex[:6]
PIPELINE = f"priv-{TOKEN}"  # the end-to-end test's FeedbackPipeline: its index is <name>-index
CAPTURE = f"{PIPELINE}-index"
MONITOR = f"priv-{TOKEN}-monitor"
PAIRS = 300  # request + response pairs the real indexer process writes as its own user
PASSWORDS = {"indexer": "Idx-" + uuid.uuid4().hex, "monitor": "Mon-" + uuid.uuid4().hex}
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def secure_search(run_dir: Path) -> Iterator[SecureSearchServer]:
    users = {"indexer": (PASSWORDS["indexer"], [INDEXER_ROLE]), "monitor": (PASSWORDS["monitor"], [MONITOR_ROLE])}
    yield from running(SecureSearchServer(run_dir, users=users, roles=opensearch_roles(CAPTURE, MONITOR)))


def settings_for(server: SecureSearchServer, user: str, password: str) -> SearchSettings:
    return SearchSettings(
        engine="opensearch",
        urls=(server.url,),
        username=user,
        password=password,
        ca_certs=server.ca_cert,
        request_timeout_s=TIMEOUT_S,
    )


def backend_for(server: SecureSearchServer, user: str) -> OpenSearchBackend:
    password = server.admin_password if user == "admin" else PASSWORDS[user]
    return OpenSearchBackend(settings_for(server, user, password))


def setup_env(server: SecureSearchServer, prefix: str, user: str, index: str) -> dict[str, str]:
    password = server.admin_password if user == "admin" else PASSWORDS[user]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("INDEXER_", "MONITOR_"))}
    env.update(
        {
            "PYTHONPATH": str(PACKAGE_DIR),
            f"{prefix}_SEARCH_ENGINE": "opensearch",
            f"{prefix}_SEARCH_URL": server.url,
            f"{prefix}_SEARCH_USERNAME": user,
            f"{prefix}_SEARCH_PASSWORD": password,
            f"{prefix}_SEARCH_CA_CERTS": server.ca_cert,
            f"{prefix}_INDEX": index,
            f"{prefix}_INDEX_REPLICAS": "0",
            f"{prefix}_SETUP_TIMEOUT_S": "60",
        }
    )
    return env


def run_setup(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, "setup"],
        env=env,
        cwd=PACKAGE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def as_user(server: SecureSearchServer, user: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    password = server.admin_password if user == "admin" else PASSWORDS[user]
    return requests.request(
        method, server.url + path, auth=(user, password), verify=server.ca_cert, timeout=TIMEOUT_S, **kwargs
    )


def indexer_for(server: SecureSearchServer) -> Indexer:
    settings = IndexerSettings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",  # never reached: these tests only use the search side
            "INDEXER_SEARCH_ENGINE": "opensearch",
            "INDEXER_SEARCH_URL": server.url,
            "INDEXER_SEARCH_USERNAME": "indexer",
            "INDEXER_SEARCH_PASSWORD": PASSWORDS["indexer"],
            "INDEXER_SEARCH_CA_CERTS": server.ca_cert,
            "INDEXER_INDEX": CAPTURE,
            "INDEXER_INDEX_REPLICAS": "0",
        }
    )
    indexer = Indexer(settings, backend_for(server, "indexer"), IndexerMetrics(), threading.Event())
    indexer.consumer.close()  # the search side only: no Kafka client may keep trying 127.0.0.1:9
    indexer.dead_letters.close()
    return indexer


def test_before_the_setup_the_services_are_told_to_run_it_and_cannot_run_it_themselves(
    secure_search: SecureSearchServer,
) -> None:
    problem = setup_problem(CAPTURE, backend_for(secure_search, "indexer"))
    assert problem is not None and "does not exist" in problem and SETUP_COMMAND in problem
    monitor_problem = MonitorStore(backend_for(secure_search, "monitor"), CAPTURE, MONITOR).setup_problem()
    assert monitor_problem is not None and "python -m feedback.monitor setup" in monitor_problem
    refused = run_setup("feedback.indexer", setup_env(secure_search, "INDEXER", "indexer", CAPTURE))
    assert refused.returncode == 1, refused.stderr
    assert "setup refused (403)" in refused.stderr and "admin credentials" in refused.stderr
    refused = run_setup("feedback.monitor", setup_env(secure_search, "MONITOR", "monitor", MONITOR))
    assert refused.returncode == 1 and "setup refused (403)" in refused.stderr, refused.stderr


def test_the_setup_with_admin_credentials_prepares_both_indices_and_is_idempotent(
    secure_search: SecureSearchServer,
) -> None:
    for module, prefix, index in (("feedback.indexer", "INDEXER", CAPTURE), ("feedback.monitor", "MONITOR", MONITOR)):
        first = run_setup(module, setup_env(secure_search, prefix, "admin", index))
        assert first.returncode == 0, first.stderr
        again = run_setup(module, setup_env(secure_search, prefix, "admin", index))
        assert again.returncode == 0, again.stderr
        assert "complete already" in again.stderr, again.stderr
    indexer_backend = backend_for(secure_search, "indexer")
    assert setup_problem(CAPTURE, indexer_backend) is None
    assert (indexer_backend.mapping_meta(CAPTURE) or {})["setup_version"] == TEMPLATE_VERSION
    assert MonitorStore(backend_for(secure_search, "monitor"), CAPTURE, MONITOR).setup_problem() is None


def test_the_indexer_role_writes_merges_deletes_and_reads(secure_search: SecureSearchServer) -> None:
    indexer = indexer_for(secure_search)
    try:
        assert indexer._check_setup() is None
        assert indexer._canary() is None  # create, scripted merge with the stored script, delete
        fields = {"request_id": "r1", "node": "n", "instance": 0, "request_raw": {}, "response_raw": {}}
        old = {"@timestamp": "2020-01-01T00:00:00Z", **fields}
        ops = [create_op(f"doc-{n}", CAPTURE, old, [], [fields], "realtime") for n in range(3)]
        answer = parse_bulk_answer(indexer.backend.bulk_ndjson(body(ops)))
        assert [item.status for item in answer.items] == [201, 201, 201]
        indexer.backend.refresh(CAPTURE)
        assert len(indexer.backend.search(CAPTURE, {"query": {"match_all": {}}})["hits"]["hits"]) == 3
        assert indexer.backend.delete_older_than(CAPTURE, "@timestamp", "2021-01-01T00:00:00Z") == (3, 0)
    finally:
        indexer.backend.close()


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("DELETE", f"/{CAPTURE}", None),
        ("PUT", "/_index_template/priv-evil", {"index_patterns": ["priv-evil*"]}),
        ("PUT", "/_scripts/priv-evil", {"script": {"lang": "painless", "source": "ctx._source.x = 1"}}),
        ("PUT", f"/{CAPTURE}/_mapping", {"properties": {"evil": {"type": "keyword"}}}),
        ("PUT", f"/{CAPTURE}-new", None),
        ("GET", "/_cluster/settings", None),
        ("PUT", "/_cluster/settings", {"persistent": {"action.auto_create_index": True}}),
        ("DELETE", f"/{MONITOR}", None),
    ],
)
def test_the_indexer_role_is_refused_every_administration(
    secure_search: SecureSearchServer, method: str, path: str, payload: dict[str, Any] | None
) -> None:
    answer = as_user(secure_search, "indexer", method, path, json=payload)
    assert answer.status_code == 403, answer.text
    assert "security_exception" in answer.text
    assert as_user(secure_search, "admin", "HEAD", f"/{CAPTURE}").status_code == 200  # the index is still there


def test_the_indexer_role_cannot_write_the_monitor_index_and_the_indexer_calls_that_forbidden(
    secure_search: SecureSearchServer,
) -> None:
    line = b'{"index":{"_index":"' + MONITOR.encode() + b'","_id":"x"}}\n{"kind":"evil"}\n'
    answer = parse_bulk_answer(backend_for(secure_search, "indexer").bulk_ndjson(line))
    [item] = answer.items
    assert item.status == 403
    assert classify_item(item.status, item.error) is ItemOutcome.FORBIDDEN  # retried, never dead-lettered


def test_the_monitor_role_writes_its_index_and_only_reads_the_capture_index(secure_search: SecureSearchServer) -> None:
    store = MonitorStore(backend_for(secure_search, "monitor"), CAPTURE, MONITOR)
    assert store.write([("w1", {"kind": "window", "metric": "count", "value": 1.0})]) == 1
    store.backend.refresh(MONITOR)
    store.backend.refresh(CAPTURE)
    assert store.backend.search(CAPTURE, {"query": {"match_all": {}}})["hits"] is not None
    line = b'{"index":{"_index":"' + CAPTURE.encode() + b'","_id":"x"}}\n{"request_id":"evil"}\n'
    [item] = parse_bulk_answer(store.backend.bulk_ndjson(line)).items
    assert item.status == 403
    for method, path in (
        ("DELETE", f"/{MONITOR}"),
        ("PUT", "/_index_template/priv-evil"),
        ("GET", "/_cluster/settings"),
    ):
        answer = as_user(
            secure_search, "monitor", method, path, json={"index_patterns": ["x*"]} if method == "PUT" else None
        )
        assert answer.status_code == 403, (method, path, answer.text)


def test_the_real_indexer_process_indexes_everything_as_its_own_user(
    secure_search: SecureSearchServer, kafka: Any, run_dir: Path
) -> None:
    """`python -m feedback.indexer` with the indexer's credentials over HTTPS: sent = indexed, duplicates = 0, and
    its setup ran only with the admin's (the devstack start runs it, as the chart's Job does)."""
    pipeline = FeedbackPipeline(kafka, secure_search, run_dir, name=PIPELINE)
    try:
        records = []
        for n in range(PAIRS):
            request_id = f"e2e-{n}"
            records.append(direct_record("request", request_id, {"data": {"ndarray": [f"text {n}"]}}, 1_000 + n))
            response = {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.3, 0.7]]}}
            records.append(direct_record("response", request_id, response, 1_001 + n))
        pipeline.produce(records)
        indexer = pipeline.indexer_server(
            batch_wait_s="0.2",
            search_username="indexer",
            search_password=PASSWORDS["indexer"],
            search_ca_certs=secure_search.ca_cert,
        )
        indexer.setup_env = {
            "INDEXER_SEARCH_USERNAME": "admin",
            "INDEXER_SEARCH_PASSWORD": secure_search.admin_password,
        }
        indexer.start(timeout=180)
        pipeline.wait_for(pipeline.committed_to_end, 180, "every record committed")
        as_user(secure_search, "admin", "POST", f"/{CAPTURE}/_refresh")
        query = {
            "size": 0,
            "query": {"prefix": {"request_id": "e2e-"}},
            "aggs": {"ids": {"cardinality": {"field": "request_id"}}},
        }
        found = as_user(secure_search, "admin", "POST", f"/{CAPTURE}/_search", json=query).json()
        assert found["hits"]["total"]["value"] == PAIRS  # sent = indexed
        assert found["aggregations"]["ids"]["value"] == PAIRS  # duplicates = 0
        assert indexer.metric("feedback_indexer_dead_lettered_total") == 0
        assert indexer.metric("feedback_indexer_search_auth_failures_total") == 0
    finally:
        pipeline.stop_all()
