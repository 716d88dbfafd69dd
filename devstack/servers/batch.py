"""The batch workflow's steps as local processes: the same three steps as charts/batch-workflow's WorkflowTemplate.

1. download-object-store: fetch the input file (one JSON instance per line) from the S3 server;
2. process-batch-inputs: run the real `seldon-batch-processor` (seldon-core 1.17.1, from the model's own
   virtualenv) against the classifier's REST endpoint with the batch id, workers, retries and batch size;
3. upload-object-store: store the output file (one JSON response per line, in completion order, each tagged
   `meta.tags.{batch_id, batch_instance_id, batch_index}`) in the S3 server.

    result = run_batch(BatchJob(store=..., input_key="in/a.jsonl", output_key="out/a.jsonl",
                                host="127.0.0.1:9000", batch_id="b1"), timeout_s=300)

The processor is called with `--gateway-type seldon` (straight to the service, as in a cluster without an
ingress): it then sends `/api/v1.0/predictions` to `host`, which is what the executor and the bare model both
serve. Keep `batch_size` at 1 when the documents must carry `batch_index`: with micro-batches the processor
tags the request with the batch id only (seldon-core batch_processor.py), so the captured request cannot say
which line each instance came from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.names import DEPLOYMENT, NAMESPACE
from devstack.runtime.errors import DevstackError
from devstack.runtime.paths import new_run_dir
from devstack.runtime.process import ManagedProcess
from devstack.servers.s3 import s3_client

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (output lines written so far, input lines)


@dataclass(frozen=True)
class ObjectStoreConfig:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def client(self) -> Any:
        return s3_client(self.endpoint, self.access_key, self.secret_key, self.region, max_attempts=3)


@dataclass(frozen=True, kw_only=True)
class BatchJob:
    """One run of the batch workflow; field names follow the WorkflowTemplate's parameters."""

    store: ObjectStoreConfig
    input_key: str
    output_key: str
    host: str  # host:port of the classifier's REST endpoint
    batch_id: str
    deployment: str = DEPLOYMENT
    namespace: str = NAMESPACE
    workers: int = 4
    retries: int = 3
    batch_size: int = 1
    data_type: str = "data"
    payload_type: str = "ndarray"
    gateway_type: str = "seldon"
    transport: str = "rest"

    def validate(self) -> None:
        if self.workers < 1 or self.retries < 1 or self.batch_size < 1:
            raise DevstackError(
                f"batch job: workers={self.workers}, retries={self.retries}, batch_size={self.batch_size} must each "
                "be at least 1"
            )
        if ":" not in self.host or self.host.startswith(("http://", "https://")):
            raise DevstackError(f"batch job: host={self.host!r} must be host:port (no scheme), e.g. 127.0.0.1:9000")
        if not self.batch_id:
            raise DevstackError("batch job: batch_id is empty; give each run its own id")


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    input_lines: int
    output_lines: int
    failed_lines: int
    seconds: float
    log_path: Path


def processor_argv(processor: Path, job: BatchJob, input_path: Path, output_path: Path) -> list[str]:
    """The `seldon-batch-processor` command line of the WorkflowTemplate's process step (long flags only:
    `-t` is declared twice upstream)."""
    return [
        str(processor),
        "--deployment-name",
        job.deployment,
        "--namespace",
        job.namespace,
        "--host",
        job.host,
        "--gateway-type",
        job.gateway_type,
        "--transport",
        job.transport,
        "--data-type",
        job.data_type,
        "--payload-type",
        job.payload_type,
        "--workers",
        str(job.workers),
        "--retries",
        str(job.retries),
        "--batch-size",
        str(job.batch_size),
        "--batch-id",
        job.batch_id,
        "--input-data-path",
        str(input_path),
        "--output-data-path",
        str(output_path),
        "--log-level",
        "info",
    ]


def default_processor() -> Path:
    """`seldon-batch-processor` from the model's virtualenv (seldon-core 1.17.1), built on first use."""
    from devstack.servers.model import model_bin

    return Path(model_bin("seldon-batch-processor"))


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(1 for _ in handle)
    except FileNotFoundError:
        return 0


def run_batch(
    job: BatchJob,
    timeout_s: float = 600.0,
    work_dir: Path | None = None,
    processor: Path | None = None,
    progress: Progress | None = None,
) -> BatchResult:
    """Run the three steps; raise DevstackError naming the step, with the processor's log tail, on failure."""
    job.validate()
    work_dir = work_dir or new_run_dir("batch-")
    work_dir.mkdir(parents=True, exist_ok=True)
    input_path, output_path = work_dir / "input-data.txt", work_dir / "output-data.txt"
    s3 = job.store.client()
    started = time.monotonic()
    total = _download(s3, job, input_path)
    argv = processor_argv(processor or default_processor(), job, input_path, output_path)
    log_path = _process(argv, job, work_dir, output_path, total, (started, timeout_s), progress)
    written = _count_lines(output_path)
    if progress is not None:
        progress(written, total)
    failed = sum(1 for line in output_path.read_text().splitlines() if '"FAILURE"' in line)
    _upload(s3, job, output_path)
    result = BatchResult(job.batch_id, total, written, failed, time.monotonic() - started, log_path)
    log.info(
        "batch %s: %d/%d lines written (%d failed) in %.1f s",
        job.batch_id,
        written,
        total,
        failed,
        result.seconds,
    )
    return result


def _download(s3: Any, job: BatchJob, input_path: Path) -> int:
    """Step 1, download-object-store: the input file, returning its number of lines."""
    try:
        s3.download_file(job.store.bucket, job.input_key, str(input_path))
    except Exception as exc:
        raise DevstackError(
            f"batch download-object-store: cannot fetch s3://{job.store.bucket}/{job.input_key} from "
            f"{job.store.endpoint} ({exc}); upload the input file first"
        ) from None
    total = _count_lines(input_path)
    log.info("batch %s: %d input lines from s3://%s/%s", job.batch_id, total, job.store.bucket, job.input_key)
    return total


def _process(
    argv: list[str],
    job: BatchJob,
    work_dir: Path,
    output_path: Path,
    total: int,
    limit: tuple[float, float],
    progress: Progress | None,
) -> Path:
    """Step 2, process-batch-inputs: seldon-batch-processor until it exits (or the deadline); returns its log."""
    started, timeout_s = limit  # the whole run's start (monotonic) and its limit in seconds
    proc = ManagedProcess(f"batch-processor-{job.batch_id}"[:80], argv, work_dir).start()
    assert proc.popen is not None
    try:
        while proc.popen.poll() is None:
            if time.monotonic() > started + timeout_s:
                raise DevstackError(
                    f"batch process-batch-inputs: seldon-batch-processor did not finish {total} lines within "
                    f"{timeout_s:.0f} s; last lines of {proc.log_path}:\n{proc.tail()}"
                )
            if progress is not None:
                progress(_count_lines(output_path), total)
            time.sleep(0.5)
    finally:
        proc.stop()
    code = proc.popen.returncode
    if code != 0:
        raise DevstackError(
            f"batch process-batch-inputs: seldon-batch-processor exited with code {code}; last lines of "
            f"{proc.log_path}:\n{proc.tail()}"
        )
    return proc.log_path


def _upload(s3: Any, job: BatchJob, output_path: Path) -> None:
    """Step 3, upload-object-store: the output file."""
    try:
        s3.upload_file(str(output_path), job.store.bucket, job.output_key)
    except Exception as exc:
        raise DevstackError(
            f"batch upload-object-store: cannot store s3://{job.store.bucket}/{job.output_key} ({exc})"
        ) from None
