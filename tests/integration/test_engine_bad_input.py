"""The engine under bad input and broken neighbours, as real processes on 127.0.0.1.

What: the local engine (python -m devstack.engine) in front of the real model microservice (or, where the model must
go down and come back, the fake model), logging to a recording receiver.
Wait: each engine's /ready (or /live when its model is down on purpose); events until the receiver has them.
Assert: invalid JSON gets the model's 400 with its reason, a request event and no response event; an oversized body
413 naming the limit and no event; an unknown path 404; in Kafka mode a refused message no output, counted; a
model that is down 503 (gRPC UNAVAILABLE) with the reason and readiness false saying why; a logger that is down
costs nothing but counted send errors; after each, the engine answers the next good request.
Cleanup: the engines fixture stops every engine; the receiver and fake model stop in their fixtures.
"""

from __future__ import annotations

import json
import time
import uuid

import grpc
import pytest
import requests
from confluent_kafka import Consumer, Producer

from devstack.runtime.ports import free_port
from devstack.servers.engine import EngineServer
from devstack.servers.kafka import KafkaServer
from devstack.servers.model import ModelServer
from smoke_tests import seldon_grpc
from tests.fixtures.engine import Engines, FakeModel, Received, RecordingReceiver, predictor_for

pytestmark = pytest.mark.integration

GOOD = b'{"data": {"ndarray": ["This is an input"]}}'
JSON = {"Content-Type": "application/json"}


def predict(engine: EngineServer, body: bytes = GOOD, **headers: str) -> requests.Response:
    return requests.post(f"{engine.url}/api/v1.0/predictions", data=body, headers={**JSON, **headers}, timeout=30)


def event_types(received: list[Received]) -> list[str]:
    return [str(r.header("Ce-Type")).rsplit(".", 1)[-1] for r in received]


def test_invalid_json_gets_the_models_400_a_request_event_and_no_response_event(
    engines: Engines, model_server: ModelServer, recording_receiver: RecordingReceiver
) -> None:
    engine = engines.start(predictor_for(model_server.http_port, model_server.grpc_port, recording_receiver.url))
    broken = b'{"data": {"ndarray": ["broken"'
    answer = predict(engine, broken, **{"Seldon-Puid": "bad-json-1"})
    assert answer.status_code == 400
    assert "not valid JSON" in json.loads(answer.content)["status"]["info"], "the model's own reason is passed on"
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8", "as the real executor (rest/client-exchanges)"
    assert answer.headers["Seldon-Puid"] == "bad-json-1"
    received = recording_receiver.settle()
    assert [(r.header("Ce-Requestid"), r.body) for r in received] == [("bad-json-1", broken)]
    assert event_types(received) == ["request"]

    assert predict(engine).status_code == 200, "the engine keeps serving"
    assert event_types(recording_receiver.wait_for(3)) == ["request", "request", "response"]


def test_an_oversized_body_gets_413_naming_the_limit_and_is_not_logged(
    engines: Engines, model_server: ModelServer, recording_receiver: RecordingReceiver
) -> None:
    engine = engines.start(
        predictor_for(model_server.http_port, model_server.grpc_port, recording_receiver.url),
        extra_args=("--max-body-bytes", "2048"),
    )
    big = json.dumps({"data": {"ndarray": ["x" * 3000]}}).encode()
    answer = predict(engine, big)
    assert answer.status_code == 413
    status = json.loads(answer.content)["status"]
    assert status["reason"] == "REQUEST_TOO_LARGE" and "limit of 2048 bytes (--max-body-bytes)" in status["info"]
    assert f"has {len(big)} bytes" in status["info"]
    assert recording_receiver.settle() == [], "a refused body never reached the model: nothing is logged"
    assert engine.metric("seldon_engine_requests_total", route="predictions", code="413") == 1
    assert predict(engine).status_code == 200, "the engine keeps serving"


def test_an_unknown_path_is_404_and_a_wrong_method_405(
    engines: Engines, model_server: ModelServer, recording_receiver: RecordingReceiver
) -> None:
    engine = engines.start(predictor_for(model_server.http_port, model_server.grpc_port, recording_receiver.url))
    missing = requests.post(f"{engine.url}/api/v1.0/prediction", data=GOOD, headers=JSON, timeout=10)
    assert (missing.status_code, missing.text) == (404, "404 page not found\n")
    assert "Seldon-Puid" not in missing.headers, "gorilla/mux runs no middleware for a path it does not know"
    assert requests.get(f"{engine.url}/api/v1.0/predictions", timeout=10).status_code == 405
    assert recording_receiver.settle() == []
    assert predict(engine).status_code == 200


def test_a_model_that_is_down_gives_503_and_readiness_says_why_until_it_is_back(
    engines: Engines, recording_receiver: RecordingReceiver
) -> None:
    http_port, grpc_port = free_port(), free_port()
    engine = engines.start(predictor_for(http_port, grpc_port, recording_receiver.url), require_ready=False)
    status, body = engine.readiness()
    assert status == 503 and f"model 127.0.0.1:{http_port} not reachable" in body
    assert requests.get(f"{engine.url}/live", timeout=10).status_code == 200, "down model, live engine"

    answer = predict(engine, **{"Seldon-Puid": "down-1"})
    assert answer.status_code == 503
    status_message = json.loads(answer.content)["status"]
    assert status_message["reason"] == "MODEL_UNAVAILABLE"
    assert f"the model at http://127.0.0.1:{http_port}/predict cannot be reached" in status_message["info"]
    with pytest.raises(grpc.RpcError) as refused:
        seldon_grpc.predict(engine.grpc_address, "text", "down-g1", timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE and f"127.0.0.1:{grpc_port}" in refused.value.details()
    received = recording_receiver.settle()
    assert event_types(received) == ["request", "request"], "queued before the model call; no response after"

    model = FakeModel(http_port).start()
    try:
        deadline = time.monotonic() + 10
        while engine.readiness()[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert engine.readiness()[0] == 200
        assert predict(engine).status_code == 200, "the engine serves again once the model is back"
    finally:
        model.stop()


def test_a_logger_that_is_down_costs_only_counted_send_errors(engines: Engines, model_server: ModelServer) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/"
    engine = engines.start(predictor_for(model_server.http_port, model_server.grpc_port, nowhere))
    for i in range(3):
        assert predict(engine, **{"Seldon-Puid": f"nolog-{i}"}).status_code == 200
    deadline = time.monotonic() + 20
    while engine.metric("seldon_engine_logger_send_errors_total") < 6 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert engine.metric("seldon_engine_logger_send_errors_total", sink="http", kind="request") == 3
    assert engine.metric("seldon_engine_logger_send_errors_total", sink="http", kind="response") == 3
    assert engine.metric("seldon_engine_logger_sent_total") == 0


def test_a_failed_kafka_mode_prediction_produces_nothing_and_is_counted(
    engines: Engines, model_server: ModelServer, kafka: KafkaServer, recording_receiver: RecordingReceiver
) -> None:
    token = uuid.uuid4().hex[:6]
    in_topic, out_topic = f"engine-{token}-in", f"engine-{token}-out"
    kafka.create_topics([in_topic, out_topic])
    engine = engines.start(
        predictor_for(model_server.http_port, model_server.grpc_port, recording_receiver.url),
        deployment=f"streaming-{token}",  # its own consumer group: <predictor>.<sdep>.<namespace>
        server_type="kafka",
        env={"KAFKA_BROKER": kafka.bootstrap, "KAFKA_INPUT_TOPIC": in_topic, "KAFKA_OUTPUT_TOPIC": out_topic},
    )
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    for key, value in (("good-1", GOOD), ("broken-1", b'{"data": {"ndarray": ["broken"'), ("good-2", GOOD)):
        producer.produce(in_topic, key=key.encode(), value=value, headers=[("Seldon-Puid", key.encode())])
    assert producer.flush(30) == 0
    consumer = Consumer(
        {"bootstrap.servers": kafka.bootstrap, "group.id": f"t-{token}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([out_topic])
    keys: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(keys) < 2:
            keys += [(m.key() or b"").decode() for m in consumer.consume(10, timeout=0.5) if m.error() is None]
        keys += [(m.key() or b"").decode() for m in consumer.consume(10, timeout=2.0) if m.error() is None]
    finally:
        consumer.close()
    assert sorted(keys) == ["good-1", "good-2"], "the refused message produces no output"
    assert engine.metric("seldon_engine_kafka_failures_total", reason="model_400") == 1
    assert engine.metric("seldon_engine_kafka_messages_total", outcome="answered") == 2
    events = recording_receiver.wait_for(5)
    assert sorted((e.header("Ce-Requestid"), event_types([e])[0]) for e in events) == [
        ("broken-1", "request"),
        ("good-1", "request"),
        ("good-1", "response"),
        ("good-2", "request"),
        ("good-2", "response"),
    ]
