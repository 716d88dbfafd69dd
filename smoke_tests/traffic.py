"""Send traffic the way clients do: REST predictions and feedback to the executor, messages to model_input.

Every text carries the run's id so that nothing from another run can be mistaken for ours. The puid follows the
real executor's contract (../shared/reference/seldon-executor-1.17.1/README.md, "puid"): a client may send one in
the `Seldon-Puid` request header; the executor answers with the puid it used in the `Seldon-Puid` response header
(its own UUID when none was sent) and never writes it into the body; feedback is joined to its prediction only
when it carries that puid in its own `Seldon-Puid` header; on Kafka the puid travels as the input message's
`Seldon-Puid` header, and the answer keeps the input's key.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from smoke_tests.sinks import CLASS_NAMES
from smoke_tests.target import KafkaTarget

__all__ = [
    "CLASS_NAMES",
    "PUID_HEADER",
    "Prediction",
    "RestClient",
    "answered_puid",
    "check_prediction",
    "new_run_id",
    "produce_streaming",
    "texts",
]

PUID_HEADER = "Seldon-Puid"


_OPENINGS = [
    "Honestly I think",
    "Can someone explain why",
    "Great write-up, but",
    "This is the third time",
    "Thanks for sharing,",
    "I can't believe",
    "Please stop posting this,",
    "Fun fact:",
]
_MIDDLES = [
    "the new release fixes the memory leak",
    "the moderators removed my comment",
    "this subreddit keeps getting better",
    "you clearly have no idea what you are talking about",
    "the benchmark numbers look suspicious",
    "my cat learned to open the fridge",
    "the city finally repaired the bridge",
    "nobody reads the rules before posting",
]
_ENDINGS = ["", " :)", " lol", " &amp; that's that.", " https://example.org/post", "!!!", " ...", " — again."]


def new_run_id() -> str:
    """A fresh id for one run; every request id and text of the run contains it. It starts with a letter, so no
    digit run of it can look like a phone number to the pipeline's default redaction (which would replace it in
    the texts and request ids the suite then looks for)."""
    return "r" + uuid.uuid4().hex[:11]


def texts(run_id: str, count: int, seed: int = 7) -> list[str]:
    """`count` reddit-style comments, each unique to this run."""
    rng = random.Random(f"{seed}-{run_id}")
    return [
        f"{rng.choice(_OPENINGS)} {rng.choice(_MIDDLES)}{rng.choice(_ENDINGS)} [{run_id}-{i}]" for i in range(count)
    ]


def seldon_message(text: str) -> dict[str, Any]:
    return {"data": {"ndarray": [text]}}


@dataclass(frozen=True)
class Prediction:
    puid: str  # the puid the client sent (the join key it will look for)
    text: str
    request: dict[str, Any]
    response: dict[str, Any]
    answered_puid: str | None = None  # the executor's `Seldon-Puid` response header (gRPC: `seldon-puid` metadata)


def answered_puid(headers: Mapping[str, str]) -> str | None:
    """The puid an executor answered with: its `Seldon-Puid` response header (None from a bare model)."""
    return headers.get(PUID_HEADER)


class RestClient:
    """The Seldon protocol over REST, through the executor (or the ingress path in front of it)."""

    def __init__(self, rest_url: str, timeout: float) -> None:
        self.base = rest_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def predict(self, text: str, puid: str) -> Prediction:
        request = seldon_message(text)
        response = self.session.post(
            f"{self.base}/api/v1.0/predictions",
            json=request,
            headers={PUID_HEADER: puid},
            timeout=self.timeout,
        )
        if response.status_code != 200:
            raise AssertionError(f"prediction {puid} answered {response.status_code}: {response.text[:300]}")
        return Prediction(
            puid=puid,
            text=text,
            request=request,
            response=response.json(),
            answered_puid=answered_puid(response.headers),
        )

    def feedback(
        self, prediction: Prediction, truth: int, reward: float = 1.0, with_puid: bool = True
    ) -> dict[str, Any]:
        """Ground truth for one earlier prediction, sent with its puid in the `Seldon-Puid` header (the join key).
        `with_puid=False` sends it as Seldon's own `SeldonClient.feedback` does: without that header, so the
        executor logs it under a fresh puid and the pipeline must join it by its request and response."""
        one_hot = [[1.0, 0.0]] if truth == 0 else [[0.0, 1.0]]
        body = {
            "request": prediction.request,
            "response": prediction.response,
            "truth": {"data": {"names": CLASS_NAMES, "ndarray": one_hot}},
            "reward": reward,
        }
        response = self.session.post(
            f"{self.base}/api/v1.0/feedback",
            json=body,
            headers={PUID_HEADER: prediction.puid} if with_puid else {},
            timeout=self.timeout,
        )
        if response.status_code != 200:
            raise AssertionError(f"feedback {prediction.puid} answered {response.status_code}: {response.text[:300]}")
        return response.json()


def check_prediction(prediction: Prediction, through_executor: bool = True) -> None:
    """The answer a user of the classifier expects: the two class names and one row of probabilities, and (through
    the executor, which answers with the puid it used in the Seldon-Puid header) the puid we sent."""
    data = prediction.response.get("data", {})
    assert data.get("names") == CLASS_NAMES, f"{prediction.puid}: names {data.get('names')}"
    rows = data.get("ndarray")
    assert isinstance(rows, list) and len(rows) == 1 and len(rows[0]) == 2, f"{prediction.puid}: ndarray {rows}"
    assert abs(sum(rows[0]) - 1.0) < 1e-6, f"{prediction.puid}: probabilities {rows[0]} do not sum to 1"
    if not through_executor:
        return
    assert prediction.answered_puid == prediction.puid, (
        f"answered with puid {prediction.answered_puid!r} (Seldon-Puid header / seldon-puid metadata), "
        f"sent {prediction.puid!r}"
    )


def produce_streaming(kafka: KafkaTarget, topic: str, items: list[tuple[str, str]], timeout: float) -> None:
    """One message per (puid, text) on `topic`: key = puid, header Seldon-Puid = puid (the executor's puid for it),
    value = Seldon JSON."""
    from confluent_kafka import Producer

    producer = Producer(kafka.client_config(**{"enable.idempotence": True, "acks": "all", "linger.ms": 5}))
    failures: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(f"{msg.key()!r}: {err}")

    for puid, text in items:
        producer.produce(
            topic,
            key=puid.encode(),
            value=json.dumps(seldon_message(text)).encode(),
            headers=[(PUID_HEADER, puid.encode()), ("Content-Type", b"application/json")],
            on_delivery=delivered,
        )
        producer.poll(0)
    left = producer.flush(timeout)
    assert left == 0, f"{left} messages to {topic} not delivered within {timeout:.0f} s"
    assert not failures, f"delivery to {topic} failed: {failures[:5]}"
