"""Who may do what on Kafka: the one table of Kafka users and their ACLs.

The cluster (infra/kafka.py: Strimzi KafkaUsers with `authorization: {type: simple}`) and the local stack
(devstack/servers/kafka.py: the StandardAuthorizer, ACLs made with the admin client) both render this table, so
the two cannot drift apart. Pure data and pure functions: no Pulumi, no Kafka client.

A grant names its resource by role ("capture", "indexerGroup", ...); `KafkaNames` gives the concrete names of one
installation (the stack's topic names, the indexer's group, the streaming executors' groups).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

ResourceType = Literal["topic", "group"]
PatternType = Literal["literal", "prefix"]
Operation = Literal["Read", "Write", "Describe"]

COLLECTOR_USER = "feedback-collector"
INDEXER_USER = "feedback-indexer"
MONITOR_USER = "feedback-monitor"
EXECUTOR_USER = "seldon-executor"  # every SeldonDeployment of the classifier: real-time and streaming
SMOKE_USER = "smoke-tests"
ADMIN_USER = "admin"  # the local stack's super user (provisioning and test fixtures); none on a cluster

# the smoke suite's readers take group ids smoke-tests-<uuid> (smoke_tests/sinks.py); not "smoke-": the local
# smoke fixture's indexer group is smoke-<hex>-indexer (devstack.names.Names.unique), which must stay the indexer's
SMOKE_GROUP_PREFIX = "smoke-tests-"


@dataclass(frozen=True)
class KafkaNames:
    """The concrete names the grants refer to.

    capture_topic, dead_letter_topic, input_topic, output_topic: topic names (kafka:topics).
    indexer_group: the indexer's consumer group (INDEXER_GROUP_ID).
    executor_groups: the consumer groups of the streaming executors, `<predictor>.<deployment>.<namespace>`.
    smoke_group_prefix: prefix of the smoke suite's reader groups.
    """

    capture_topic: str
    dead_letter_topic: str
    input_topic: str
    output_topic: str
    indexer_group: str
    executor_groups: tuple[str, ...] = ()
    smoke_group_prefix: str = SMOKE_GROUP_PREFIX

    def resolve(self, role: str) -> tuple[str, ...]:
        """The names of a grant's resource role; an unknown role is a programming error."""
        by_role: dict[str, tuple[str, ...]] = {
            "capture": (self.capture_topic,),
            "deadLetter": (self.dead_letter_topic,),
            "modelInput": (self.input_topic,),
            "modelOutput": (self.output_topic,),
            "indexerGroup": (self.indexer_group,),
            "executorGroups": self.executor_groups,
            "smokeGroups": (self.smoke_group_prefix,),
        }
        if role not in by_role:
            raise KeyError(f"no Kafka resource role {role!r}; known: {', '.join(sorted(by_role))}")
        return by_role[role]


@dataclass(frozen=True)
class Grant:
    """Allow `operations` on the resource(s) of `role` (a KafkaNames role), matched literally or by prefix."""

    resource: ResourceType
    role: str
    operations: tuple[Operation, ...]
    pattern: PatternType = "literal"


@dataclass(frozen=True)
class Acl:
    """One allow rule, resolved to a concrete resource name."""

    principal: str  # the user name (Strimzi) / User:<name> on the broker
    resource: ResourceType
    name: str
    pattern: PatternType
    operation: Operation


# The table. Read and Write imply Describe on the broker; Describe is listed anyway so the intent is explicit
# (producers and consumers fetch metadata first). Idempotent producers need no cluster grant: Write on a topic
# implies IdempotentWrite since Kafka 3.0 (KIP-679).
CLIENTS: Mapping[str, tuple[Grant, ...]] = {
    # The collector produces each CloudEvent to the capture topic; it reads nothing.
    COLLECTOR_USER: (Grant("topic", "capture", ("Write", "Describe")),),
    # The indexer consumes the capture topic in its group (commits offsets) and dead-letters poison messages.
    INDEXER_USER: (
        Grant("topic", "capture", ("Read", "Describe")),
        Grant("group", "indexerGroup", ("Read",)),
        Grant("topic", "deadLetter", ("Write", "Describe")),
    ),
    # The monitor reads offsets only: end offsets and offsets by time of the capture and dead-letter topics, and
    # the indexer group's committed offsets (OffsetFetch needs Describe on the group and the topic). No records.
    MONITOR_USER: (
        Grant("topic", "capture", ("Describe",)),
        Grant("topic", "deadLetter", ("Describe",)),
        Grant("group", "indexerGroup", ("Describe",)),
    ),
    # Executors: streaming deployments consume the input topic in their group and produce the output topic;
    # with direct Kafka logging (LOGGER_KAFKA_BROKER) any executor produces to the capture topic.
    EXECUTOR_USER: (
        Grant("topic", "modelInput", ("Read", "Describe")),
        Grant("group", "executorGroups", ("Read",)),
        Grant("topic", "modelOutput", ("Write", "Describe")),
        Grant("topic", "capture", ("Write", "Describe")),
    ),
    # The smoke suite sends streaming traffic to the input topic and reads the output and capture topics from the
    # offsets they had when it started (assigned partitions; its client may commit in its own groups).
    SMOKE_USER: (
        Grant("topic", "modelInput", ("Write", "Describe")),
        Grant("topic", "modelOutput", ("Read", "Describe")),
        Grant("topic", "capture", ("Read", "Describe")),
        Grant("group", "smokeGroups", ("Read",), pattern="prefix"),
    ),
}

# Which user each deployable component logs in as: the charts' and SeldonDeployments' client roles.
COMPONENT_USERS: Mapping[str, str] = {
    "collector": COLLECTOR_USER,
    "indexer": INDEXER_USER,
    "monitor": MONITOR_USER,
    "executor": EXECUTOR_USER,
    "smoke": SMOKE_USER,
}


def acls(user: str, names: KafkaNames) -> list[Acl]:
    """Every allow rule of `user`, one per resource name and operation, in table order."""
    if user not in CLIENTS:
        raise KeyError(f"no Kafka user {user!r} in infra/kafka_access.py; known: {', '.join(CLIENTS)}")
    return [
        Acl(user, grant.resource, name, grant.pattern, operation)
        for grant in CLIENTS[user]
        for name in names.resolve(grant.role)
        for operation in grant.operations
    ]


def strimzi_acls(user: str, names: KafkaNames) -> list[dict[str, object]]:
    """`spec.authorization.acls` of a Strimzi KafkaUser: one rule per resource, its operations listed."""
    rules: list[dict[str, object]] = []
    for grant in CLIENTS[user]:
        for name in names.resolve(grant.role):
            rules.append(
                {
                    "type": "allow",
                    "resource": {"type": grant.resource, "name": name, "patternType": grant.pattern},
                    "operations": list(grant.operations),
                    "host": "*",
                }
            )
    return rules
