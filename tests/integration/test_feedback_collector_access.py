"""Who may send events: the collector's three listeners on the real local collector process and Kafka.

What: one collector with a producer listener (token file as a mounted Secret would be); Seldon-style request and
response events on the event port (no token), feedback from "a labelling tool" on the producer port without a
token, with a wrong one, with a malformed header, with the right one, and forged predictions with the right one.
Wait: every POST is answered (the collector answers only after Kafka acknowledged, acks=all).
Assert: refused requests produce nothing and are counted by reason, exactly; the right token's feedback and the
Seldon events are on the topic once each and nothing else is; /metrics and the probes live on the metrics port
only and the event port serves none of them; neither token appears in the collector's log.
Cleanup: own topics per test; the collector is stopped in `finally` by the pipeline fixture.
"""

from __future__ import annotations

import secrets

import pytest
import requests
from feedback.redaction import redactor_from_env

from tests.fixtures.feedback import FeedbackPipeline, http_event

pytestmark = pytest.mark.integration

T0 = 1_714_564_800_000_000


def test_only_the_right_token_produces_and_every_refusal_is_counted(feedback_pipeline: FeedbackPipeline) -> None:
    token, wrong = secrets.token_hex(32), secrets.token_hex(32)
    token_file = feedback_pipeline.run_dir / f"{feedback_pipeline.name}-producer-token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(token + "\n")
    collector = feedback_pipeline.collector(producer_token_file=token_file)
    name = feedback_pipeline.name

    def feedback(request_id: str) -> tuple[dict[str, str], bytes]:
        event = http_event("feedback", request_id, {"truth": {"data": {"ndarray": [1]}}, "reward": 1}, T0)
        return dict(event.headers), event.body

    attempts = {
        "missing_token": (None, [f"{name}-none-{i}" for i in range(5)]),
        "invalid_token": (f"Bearer {wrong}", [f"{name}-wrong-{i}" for i in range(6)]),
        "malformed_authorization": (f"Basic {token}", [f"{name}-basic-{i}" for i in range(3)]),
    }
    for reason, (authorization, ids) in attempts.items():
        for request_id in ids:
            headers, body = feedback(request_id)
            if authorization is not None:
                headers["Authorization"] = authorization
            answer = requests.post(collector.producer_url, data=body, headers=headers, timeout=30)
            assert answer.status_code == 401, answer.text
            assert answer.json()["reason"] == reason
            assert token not in answer.text and wrong not in answer.text

    accepted = [f"{name}-label-{i}" for i in range(7)]
    for request_id in accepted:
        headers, body = feedback(request_id)
        answer = requests.post(
            collector.producer_url, data=body, headers={**headers, "Authorization": f"Bearer {token}"}, timeout=30
        )
        assert answer.status_code == 200 and answer.json()["status"] == "produced", answer.text

    forged = http_event("request", f"{name}-forged", {"data": {"ndarray": ["forged"]}}, T0)
    answer = requests.post(
        collector.producer_url,
        data=forged.body,
        headers={**forged.headers, "Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 403 and answer.json()["reason"] == "type_not_allowed", answer.text

    seldon = [f"{name}-seldon-{i}" for i in range(4)]
    for n, request_id in enumerate(seldon):  # Seldon's executors: the event port, no token
        for kind, payload in (
            ("request", {"data": {"ndarray": ["hello"]}}),
            ("response", {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.4, 0.6]]}}),
        ):
            event = http_event(kind, request_id, payload, T0 + n)
            assert requests.post(collector.url, data=event.body, headers=event.headers, timeout=30).status_code == 200

    assert collector.metric("feedback_collector_auth_refused_total", reason="missing_token") == 5
    assert collector.metric("feedback_collector_auth_refused_total", reason="invalid_token") == 6
    assert collector.metric("feedback_collector_auth_refused_total", reason="malformed_authorization") == 3
    assert collector.metric("feedback_collector_auth_refused_total") == 14
    assert collector.metric("feedback_collector_events_rejected_total", reason="type_not_allowed") == 1
    assert collector.metric("feedback_collector_events_produced_total", kind="feedback") == len(accepted)
    assert collector.metric("feedback_collector_events_produced_total") == len(accepted) + 2 * len(seldon)

    messages = feedback_pipeline.read_topic(feedback_pipeline.topic)
    keys = sorted(message.key().decode() for message in messages)
    # the key is the request id as the collector's default redaction leaves it (an id holding a phone-like digit
    # run is keyed by its pseudonym, as the indexer keys it)
    redact = redactor_from_env({}, "COLLECTOR").redact_request_id
    expected = sorted(redact(request_id) for request_id in accepted + seldon + seldon)
    assert keys == expected, "refused requests must produce nothing, accepted ones once"

    for path in ("/metrics", "/healthz", "/readyz"):  # the event port serves events only
        assert requests.get(collector.url.rstrip("/") + path, timeout=10).status_code == 405
        assert requests.get(f"{collector.ops_url}{path}", timeout=10).status_code == 200
    event = http_event("feedback", f"{name}-ops", {"reward": 1}, T0)
    assert requests.post(collector.ops_url + "/", data=event.body, headers=event.headers, timeout=10).status_code in (
        404,
        405,
    )

    log_text = collector.log_path.read_text(errors="replace")
    assert "refused a producer request (invalid_token)" in log_text
    assert token not in log_text and wrong not in log_text
