"""The names the local stack gives things that other processes find by name: topics, index, bucket, consumer group,
SeldonDeployments, namespace, predictor and graph node. The defaults are the cluster's (stacks/, charts/); one
place, so the loop, the demo, the servers and the target description cannot drift apart."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

CAPTURE_TOPIC = "seldon-capture"
DEAD_LETTER_TOPIC = f"{CAPTURE_TOPIC}-dead-letter"
INPUT_TOPIC = "model_input"
OUTPUT_TOPIC = "model_output"
INDEX = "seldon-feedback"
MONITOR_INDEX = "seldon-monitor"  # never "<INDEX>-...": the indexer's template covers that pattern
BUCKET = "batch"
FLOWBACK_BUCKET = "flowback"  # the flow back's datasets and registry, a bucket of its own (decision 76)
INDEXER_GROUP = "seldon-feedback-indexer"
DEPLOYMENT = "text-classifier"
STREAMING_DEPLOYMENT = "text-classifier-streaming"  # passed to the indexer as INDEXER_STREAMING_DEPLOYMENTS
NAMESPACE = "seldon"
PREDICTOR = "default"
NODE = "classifier"  # the graph node (PREDICTIVE_UNIT_ID, Ce-Modelid)


@dataclass(frozen=True)
class Names:
    """Topic, index, bucket and consumer-group names of one loop stack. The defaults are the cluster's; a stack
    sharing Kafka and the search engine with other tests takes `Names.unique()` so nothing of theirs mixes in
    (the index must not start with another indexer's index name: their templates' patterns would overlap)."""

    capture_topic: str = CAPTURE_TOPIC
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    input_topic: str = INPUT_TOPIC
    output_topic: str = OUTPUT_TOPIC
    index: str = INDEX
    monitor_index: str = MONITOR_INDEX
    bucket: str = BUCKET
    flowback_bucket: str = FLOWBACK_BUCKET
    group_id: str = INDEXER_GROUP

    @classmethod
    def unique(cls, prefix: str = "smoke") -> Names:
        token = f"{prefix}-{secrets.token_hex(3)}"
        return cls(
            capture_topic=f"{token}-capture",
            dead_letter_topic=f"{token}-capture-dead-letter",
            input_topic=f"{token}-model_input",
            output_topic=f"{token}-model_output",
            index=f"{token}-feedback",
            monitor_index=f"{token}-monitor",
            bucket=f"{token}-batch",
            flowback_bucket=f"{token}-flowback",
            group_id=f"{token}-indexer",
        )

    @property
    def topics(self) -> list[str]:
        return [self.capture_topic, self.dead_letter_topic, self.input_topic, self.output_topic]
