"""devstack.servers.batch: the WorkflowTemplate's steps as local processes, with the real seldon-batch-processor.

The success path (M texts in, M tagged predictions out, M documents) is the smoke suite's test_batch.py against
the local stack; here: what a user sees when the input is missing, the endpoint is down, or the job is wrong.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from devstack.runtime.errors import DevstackError
from devstack.runtime.ports import free_port
from devstack.servers.batch import BatchJob, ObjectStoreConfig, processor_argv, run_batch

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(s3: object) -> ObjectStoreConfig:
    bucket = f"batch-test-{uuid.uuid4().hex[:8]}"
    s3.create_buckets([bucket])  # type: ignore[attr-defined]
    return ObjectStoreConfig(
        endpoint=s3.endpoint,  # type: ignore[attr-defined]
        bucket=bucket,
        access_key=s3.access_key,  # type: ignore[attr-defined]
        secret_key=s3.secret_key,  # type: ignore[attr-defined]
        region=s3.region,  # type: ignore[attr-defined]
    )


def test_missing_input_names_the_step_and_the_object(store: ObjectStoreConfig, tmp_path: Path) -> None:
    job = BatchJob(store=store, input_key="absent.jsonl", output_key="out.jsonl", host="127.0.0.1:1", batch_id="b")
    with pytest.raises(DevstackError, match=r"batch download-object-store: cannot fetch s3://batch-test-\w+/absent"):
        run_batch(job, timeout_s=60, work_dir=tmp_path)


def test_unreachable_endpoint_gives_one_tagged_failure_line_per_input(store: ObjectStoreConfig, tmp_path: Path) -> None:
    lines = 5
    store.client().put_object(
        Bucket=store.bucket, Key="down/in.jsonl", Body="".join(json.dumps([f"text {i}"]) + "\n" for i in range(lines))
    )
    job = BatchJob(
        store=store,
        input_key="down/in.jsonl",
        output_key="down/out.jsonl",
        host=f"127.0.0.1:{free_port()}",  # nothing listens there
        batch_id="down-1",
        workers=2,
        retries=1,
    )
    progress: list[tuple[int, int]] = []
    result = run_batch(
        job, timeout_s=240, work_dir=tmp_path, progress=lambda done, total: progress.append((done, total))
    )
    assert (result.input_lines, result.output_lines, result.failed_lines) == (lines, lines, lines)
    assert progress[-1] == (lines, lines)
    body = store.client().get_object(Bucket=store.bucket, Key="down/out.jsonl")["Body"].read().decode()
    outputs = [json.loads(line) for line in body.splitlines()]
    assert [o["status"]["info"] for o in outputs] == ["FAILURE"] * lines
    assert sorted(o["meta"]["batch_index"] for o in outputs) == list(range(lines))
    assert {o["meta"]["batch_id"] for o in outputs} == {"down-1"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"workers": 0}, "must each be at least 1"),
        ({"host": "http://127.0.0.1:9000"}, "must be host:port (no scheme)"),
        ({"batch_id": ""}, "batch_id is empty"),
    ],
)
def test_bad_jobs_are_refused_before_anything_runs(store: ObjectStoreConfig, change: dict, message: str) -> None:
    base = {"store": store, "input_key": "i", "output_key": "o", "host": "127.0.0.1:9000", "batch_id": "b"}
    with pytest.raises(DevstackError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_batch(BatchJob(**{**base, **change}), timeout_s=10)


def test_processor_gets_the_workflow_template_flags(store: ObjectStoreConfig) -> None:
    job = BatchJob(store=store, input_key="i", output_key="o", host="h:1", batch_id="b7", workers=3, batch_size=2)
    argv = processor_argv(Path("/x/seldon-batch-processor"), job, Path("/a/in.txt"), Path("/a/out.txt"))
    flags = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert flags["--gateway-type"] == "seldon" and flags["--host"] == "h:1" and flags["--batch-id"] == "b7"
    assert (flags["--workers"], flags["--batch-size"], flags["--retries"]) == ("3", "2", "3")
    assert (flags["--input-data-path"], flags["--output-data-path"]) == ("/a/in.txt", "/a/out.txt")
    assert "-t" not in argv  # declared twice upstream (transport and batch interval): long flags only
