"""Capture health the index cannot show, from Kafka offsets only (nothing is consumed, no group is joined):

- dead letters per window: for each partition of the dead-letter topic, the offset of the first record at or
  after the window's end minus the one at or after its start (`offsets_for_times`);
- the indexer's lag: end offsets of the capture topic minus the indexer group's committed offsets, when the
  window is computed (the group's committed offsets, read without joining the group).

Used only when the monitor has KAFKA_BOOTSTRAP_SERVERS; each call raises `KafkaUnavailable` on failure, and the
window then records the metric as `unavailable` instead of waiting (the rest of the window does not depend on it).
"""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaException, TopicPartition

from feedback.monitor.settings import DeadLetterSettings

TIMEOUT_S = 10.0


class KafkaUnavailable(Exception):
    """Kafka did not answer an offsets request; the message says which."""


class KafkaOffsets:
    def __init__(self, settings: DeadLetterSettings) -> None:
        self.settings = settings
        config = settings.kafka.client_config()
        self.consumer = Consumer({**config, "group.id": "seldon-feedback-monitor-offsets", "enable.auto.commit": False})
        # The indexer group's committed offsets through a consumer that names the group but never subscribes (an
        # OffsetFetch; it does not join the group). Not AdminClient.list_consumer_group_offsets: after a broker
        # restart its timed-out future aborted the whole process inside librdkafka (rd_kafka_enq_once assertion).
        self.group_reader = Consumer({**config, "group.id": settings.indexer_group, "enable.auto.commit": False})

    def _partitions(self, topic: str) -> list[int]:
        try:
            metadata = self.consumer.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
        except KafkaException as exc:
            raise KafkaUnavailable(f"cannot list topic {topic}: {exc}") from exc
        if metadata is None or metadata.error is not None:
            raise KafkaUnavailable(f"topic {topic} is unknown to the brokers")
        return sorted(metadata.partitions)

    def _offsets_at(self, topic: str, partitions: list[int], time_ms: int) -> dict[int, int]:
        """Per partition, the first offset whose timestamp is >= time_ms (the end offset when there is none)."""
        wanted = [TopicPartition(topic, p, time_ms) for p in partitions]
        try:
            found = self.consumer.offsets_for_times(wanted, timeout=TIMEOUT_S)
            result = {}
            for item in found:
                if item.offset < 0:  # no record that late: the end of the partition
                    _low, high = self.consumer.get_watermark_offsets(
                        TopicPartition(topic, item.partition), timeout=TIMEOUT_S
                    )
                    result[item.partition] = high
                else:
                    result[item.partition] = item.offset
            return result
        except KafkaException as exc:
            raise KafkaUnavailable(f"cannot read offsets of {topic}: {exc}") from exc

    def dead_letters(self, start_s: int, end_s: int) -> int:
        topic = self.settings.dead_letter_topic
        partitions = self._partitions(topic)
        first = self._offsets_at(topic, partitions, start_s * 1000)
        last = self._offsets_at(topic, partitions, end_s * 1000)
        return sum(max(0, last[p] - first[p]) for p in partitions)

    def indexer_lag(self) -> int:
        topic = self.settings.capture_topic
        partitions = self._partitions(topic)
        try:
            committed = self.group_reader.committed([TopicPartition(topic, p) for p in partitions], timeout=TIMEOUT_S)
            lag = 0
            for item in committed:
                partition = TopicPartition(topic, item.partition)
                low, high = self.consumer.get_watermark_offsets(partition, timeout=TIMEOUT_S)
                lag += high - (item.offset if item.offset >= 0 else low)
            return max(0, lag)
        except KafkaException as exc:
            raise KafkaUnavailable(f"cannot read the offsets of group {self.settings.indexer_group}: {exc}") from exc

    def close(self) -> None:
        self.consumer.close()
        self.group_reader.close()
