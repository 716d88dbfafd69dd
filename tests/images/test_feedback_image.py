"""The feedback image, built here from images/feedback/Dockerfile, captures: collector and indexer from the image
pass one exact-count round against the local Kafka and search engine.

What: the collector and the indexer started from the image as the feedback-pipeline chart renders them (its
command, user and group, read-only root filesystem, an empty writable /tmp), configured through their
environment like the local servers (devstack/servers/feedback.py: addresses of the session's Kafka and
OpenSearch, this test's own topics and index, free ports bound on 127.0.0.1).
Wait: each /readyz answers 200 (bounded); then until every offset of the capture topic is committed.
Assert: every one of the N CloudEvents gets 200 from the collector, the collector counts N produced, and the index
holds exactly one document per expected request id and instance with the expected fields (sent = indexed,
duplicates = 0).
Cleanup: both containers are stopped and removed; the pipeline's fixture drops nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devstack.images.build import BuildResult
from devstack.images.containers import Container
from devstack.images.tools import Buildah
from devstack.names import STREAMING_DEPLOYMENT
from devstack.servers.feedback import CollectorServer, IndexerServer
from tests.fixtures.charts import RenderFn
from tests.fixtures.feedback import FeedbackPipeline, generate_traffic, post_events
from tests.images.chart_runs import container_of, options_from_pod, pod_of, service_env, stopped_at_the_end

# the first image test builds the images when they changed (a cold build is minutes): its timeout covers that
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(3600)]

START_TIMEOUT_S = 120.0
RELEASE = "feedback-pipeline"


def _ready(url: str) -> bool:
    return requests.get(url, timeout=3).status_code == 200


@pytest.fixture
def start_from_image(
    built_images: dict[str, BuildResult], container_tools: Buildah, run_dir: Path, chart_render: RenderFn
) -> Iterator[object]:
    """start(component, server): run the chart's `component` container of the image with `server`'s settings."""
    objects = chart_render("feedback-pipeline")
    boxes: list[Container] = []

    def start(component: str, server: CollectorServer | IndexerServer) -> Container:
        pod = pod_of(objects, "Deployment", f"{RELEASE}-{component}")
        container = container_of(pod, component)
        options = options_from_pod(pod, container, service_env(server.process.env))
        box = Container(container_tools, built_images["feedback"].reference, run_dir / "images", options)
        boxes.append(box)
        box.start(
            container["command"], ready=lambda: _ready(f"{server.ops_url}/readyz"), timeout=START_TIMEOUT_S,
            ports=server.process.ports,
        )  # fmt: skip
        return box

    def setup(server: IndexerServer) -> None:
        """Run the chart's search setup Job's indexer step (`python -m feedback.indexer setup`) from the image."""
        [job] = [
            obj for obj in objects
            if obj["kind"] == "Job" and obj["metadata"]["name"].startswith(f"{RELEASE}-search-setup-")
        ]  # fmt: skip
        pod = dict(job["spec"]["template"]["spec"])
        steps = [*pod.get("initContainers", []), *pod["containers"]]
        [container] = [step for step in steps if "feedback.indexer" in step["command"]]
        options = options_from_pod(pod, container, service_env(server.process.env))
        with Container(container_tools, built_images["feedback"].reference, run_dir / "images", options) as box:
            done = box.run(container["command"], timeout=START_TIMEOUT_S)
        assert done.returncode == 0, f"the image's indexer setup failed:\n{done.stdout[-2000:]}"

    start.setup = setup  # type: ignore[attr-defined]
    with stopped_at_the_end(boxes):
        yield start


def test_collector_and_indexer_from_the_image_index_every_event_once(
    feedback_pipeline: FeedbackPipeline, start_from_image: object, run_dir: Path
) -> None:
    pipeline = feedback_pipeline
    home = run_dir / "images" / pipeline.name
    collector = CollectorServer(home, pipeline.kafka.bootstrap, pipeline.topic)  # settings and client, not started
    indexer = IndexerServer(
        home, pipeline.kafka.bootstrap, pipeline.topic, pipeline.search.url, pipeline.index,
        batch_wait_s="0.2", streaming_deployments=STREAMING_DEPLOYMENT,
    )  # fmt: skip
    start = start_from_image
    assert callable(start)
    start("collector", collector)
    start.setup(indexer)  # type: ignore[attr-defined]  # what the chart's setup Job does before the indexer starts
    start("indexer", indexer)

    traffic = generate_traffic(ids=300, seed=41)
    sent = {event.request_id for event in traffic.http_events}
    expected = {key: document for key, document in traffic.expected.items() if key[0] in sent}
    statuses = post_events(collector.url, traffic.http_events, concurrency=8)
    assert statuses.count(200) == len(traffic.http_events), sorted(set(statuses))
    assert collector.metric("feedback_collector_events_produced_total") == len(traffic.http_events)

    pipeline.wait_for(pipeline.committed_to_end, 180, "every capture offset committed by the image's indexer")
    pipeline.wait_for(lambda: pipeline.count() >= len(expected), 60, f"{len(expected)} documents searchable")
    pipeline.assert_matches(expected)
    assert pipeline.count() == len(expected)
    assert indexer.metric("feedback_indexer_dead_lettered_total") == 0
