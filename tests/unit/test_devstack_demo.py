"""The demo's pure parts: sizes, how capture records are attributed to a mode, and the loss verdict."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from devstack.demo import DemoSizes, gets_ground_truth, load_comments
from devstack.demo_report import FreshnessWatch, Sent, _capture_mode_kind, _percentile, report
from devstack.runtime.errors import DevstackError


class Record:
    def __init__(self, headers: dict[str, str], body: object) -> None:
        self._headers = [(k, v.encode()) for k, v in headers.items()]
        self._value = json.dumps(body).encode()

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def value(self) -> bytes:
        return self._value


def test_sizes_are_checked_with_the_flag_names() -> None:
    DemoSizes().validate()
    with pytest.raises(DevstackError, match=r"--realtime 0 must be at least 1; --batch -1 must be at least 1"):
        DemoSizes(realtime=0, batch=-1).validate()
    with pytest.raises(DevstackError, match="--timeout 0 must be more than 0 seconds"):
        DemoSizes(timeout_s=0).validate()


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        (
            {"ce_type": "io.seldon.serving.inference.request", "ce_requestid": "a"},
            {"data": {}},
            ("realtime", "request"),
        ),
        (
            {"ce_type": "io.seldon.serving.inference.response", "ce_requestid": "b"},
            {"meta": {"tags": {"batch_id": "x"}}},
            ("batch", "response"),
        ),
        (
            {
                "type": "io.seldon.serving.inference.request",
                "requestid": "c",
                "inferenceservicename": "text-classifier-streaming",
            },
            {},
            ("streaming", "request"),
        ),
        ({"ce_type": "io.seldon.serving.feedback", "ce_requestid": "d"}, {"truth": {}}, ("realtime", "feedback")),
        ({"ce_type": "io.seldon.serving.inference.request", "ce_requestid": "warmup-1"}, {}, None),
    ],
)
def test_capture_records_are_attributed_to_their_mode(headers: dict, body: object, expected: tuple | None) -> None:
    assert _capture_mode_kind(Record(headers, body)) == expected


def test_percentile_picks_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (_percentile(values, 50), _percentile(values, 99), _percentile([3.0], 99)) == (51.0, 99.0, 3.0)


def test_held_out_rows_are_the_ones_training_did_not_see() -> None:
    held_out, train = load_comments()
    assert held_out and train and not {t for t, _ in held_out} & {t for t, _ in train}
    assert {label for _, label in held_out} == {0, 1}


def _loop(tmp_path: Path) -> SimpleNamespace:
    return SimpleNamespace(
        capture_source="the local engine (devstack/engine, as the Seldon 1.17.1 executor)",
        search=SimpleNamespace(url="http://127.0.0.1:9"),
        kafka=SimpleNamespace(bootstrap="127.0.0.1:9"),
        s3=SimpleNamespace(endpoint="http://127.0.0.1:9"),
        indexer=SimpleNamespace(metrics_url="http://127.0.0.1:9/metrics"),
        target_path=tmp_path / "target.yaml",
    )


def _counts(docs: dict[str, int], joined: dict[str, int], truth: int) -> dict:
    def buckets(values: dict[str, int]) -> dict:
        return {"buckets": [{"key": k, "doc_count": n} for k, n in values.items()]}

    return {
        "aggregations": {
            "mode": buckets(docs),
            "joined": {"mode": buckets(joined)},
            "label": buckets({"t:0": 6, "t:1": 4}),
            "by_mode_label": {"buckets": []},
            "with_truth": {
                "doc_count": truth,
                "correct": {"buckets": [{"key": 1, "key_as_string": "true", "doc_count": truth}]},
            },
        }
    }


def _sent() -> Sent:
    sent = Sent(batch_id="b")
    sent.requests.update({"realtime": 6, "batch": 4})
    sent.events.update({("realtime", "request"): 6, ("realtime", "response"): 6, ("realtime", "feedback"): 2})
    sent.events.update({("batch", "request"): 4, ("batch", "response"): 4})
    sent.feedback = {"r1": 0, "r2": 1}
    return sent


def test_report_says_none_lost_only_when_everything_arrived(tmp_path: Path) -> None:
    kafka = Counter({key: n for key, n in _sent().events.items()})
    watch = FreshnessWatch("http://127.0.0.1:9", _sent())
    text, ok = report(
        _loop(tmp_path), _sent(), _counts({"realtime": 6, "batch": 4}, {"realtime": 6, "batch": 4}, 2), kafka, 0, watch
    )
    assert ok and "losses: none" in text and "model correct on 2 (100.0%)" in text
    text, ok = report(
        _loop(tmp_path), _sent(), _counts({"realtime": 6, "batch": 3}, {"realtime": 6, "batch": 3}, 2), kafka, 0, watch
    )
    assert not ok and "losses: SOME" in text
    _, ok = report(
        _loop(tmp_path), _sent(), _counts({"realtime": 6, "batch": 4}, {"realtime": 6, "batch": 4}, 2), kafka, 1, watch
    )
    assert not ok, "a dead-lettered record is a loss"
    short = kafka.copy()
    short[("realtime", "feedback")] -= 1
    _, ok = report(
        _loop(tmp_path), _sent(), _counts({"realtime": 6, "batch": 4}, {"realtime": 6, "batch": 4}, 2), short, 0, watch
    )
    assert not ok, "an event missing on Kafka is a loss"


def test_a_failed_phase_fails_the_demo_and_is_named(tmp_path: Path) -> None:
    sent = _sent()
    sent.failures.append("batch: seldon-batch-processor exited with code 1")
    kafka = Counter(dict(sent.events))
    counts = _counts({"realtime": 6, "batch": 4}, {"realtime": 6, "batch": 4}, 2)
    text, ok = report(_loop(tmp_path), sent, counts, kafka, 0, FreshnessWatch("http://127.0.0.1:9", sent))
    assert not ok and "FAILED: batch: seldon-batch-processor exited with code 1" in text


@pytest.mark.parametrize(("share", "expected"), [(0.0, 0), (0.4, 240), (0.5, 300), (1.0, 600), (0.33, 198)])
def test_ground_truth_goes_to_exactly_the_configured_share(share: float, expected: int) -> None:
    assert sum(gets_ground_truth(i, share) for i in range(600)) == expected


def test_the_drift_lines_say_when_the_shift_began_what_alarmed_and_the_accuracies() -> None:
    from devstack.demo_drift import DriftResult, DriftSizes

    result = DriftResult(
        began=1000.0,
        shift_start=1100.0,
        ended=1180.0,
        sent=900,
        first_alarm=(1120.0, ["oov_rate", "token_psi"]),
        false_alarms=[],
        accuracy_before=(160, 200),
        accuracy_after=(70, 160),
        window_length=20,
    )
    lines = result.lines(lambda t: f"t{t:.0f}")
    assert lines[0].startswith(
        "drift scenario: 900 predictions, stationary from t1000, shift (crypto-spam wave) began t1100"
    )
    assert lines[1] == "  first alarm: window t1120 (shifted window 2), on oov_rate, token_psi"
    assert lines[2] == "  false alarms in the stationary phase: 0"
    assert lines[3:] == [
        "  accuracy before the shift (ground truth): 160/200 = 80.0%",
        "  accuracy after the shift (ground truth): 70/160 = 43.8%",
    ]
    with pytest.raises(DevstackError, match="--window 5 must be at least 10 seconds"):
        DemoSizes(drift=DriftSizes(window_s=5)).validate()


def test_refused_requests_are_reported_apart_and_need_an_outcome(tmp_path: Path) -> None:
    sent = _sent()
    sent.bad = {"demo-bad-x-0": ("an empty ndarray", 400), "demo-bad-x-1": ("a number instead of a text", 400)}
    kafka = Counter(dict(sent.events))
    kafka[("bad", "request")] = 2
    counts = _counts({"realtime": 6, "batch": 4}, {"realtime": 6, "batch": 4}, 2)
    docs = [{"request_id": rid, "outcome": "no_response"} for rid in sent.bad]
    text, ok = report(_loop(tmp_path), sent, counts, kafka, 0, FreshnessWatch("http://127.0.0.1:9", sent), docs)
    assert ok and "bad requests: 2 sent (1 a number instead of a text, 1 an empty ndarray), answered 400 x2" in text
    assert "2 request and 0 response events; in the index: 2 documents, outcome no_response 2" in text
    _, ok = report(_loop(tmp_path), sent, counts, kafka, 0, FreshnessWatch("http://127.0.0.1:9", sent), docs[:1])
    assert not ok, "a refused request without its document is a loss"
    assert _capture_mode_kind(
        Record({"ce_type": "io.seldon.serving.inference.request", "ce_requestid": "demo-bad-x-0"}, {})
    ) == (
        "bad",
        "request",
    )


def test_streaming_answers_must_match_the_messages_and_keep_their_keys(tmp_path: Path) -> None:
    sent = _sent()
    sent.requests["streaming"] = 3
    sent.events.update({("streaming", "request"): 3, ("streaming", "response"): 3})
    sent.streaming_answers, sent.streaming_keys_kept = 3, 3
    kafka = Counter(dict(sent.events))
    docs = {"realtime": 6, "batch": 4, "streaming": 3}
    text, ok = report(
        _loop(tmp_path), sent, _counts(docs, docs, 2), kafka, 0, FreshnessWatch("http://127.0.0.1:9", sent)
    )
    assert (
        ok
        and "streaming answers: 3 messages on the input topic -> 3 on the output topic, 3 with their input's key"
        in text
    )
    assert "\nstreaming " in text, "the table has a streaming row"
    sent.streaming_keys_kept = 2
    _, ok = report(_loop(tmp_path), sent, _counts(docs, docs, 2), kafka, 0, FreshnessWatch("http://127.0.0.1:9", sent))
    assert not ok, "an answer under another key is a loss"
