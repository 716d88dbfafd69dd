"""The access table (infra/kafka_access.py) grants each client exactly what it does, nothing that administers the
cluster, and renders the same rules for Strimzi and for the local broker's admin client."""

from __future__ import annotations

import pytest

from infra import kafka_access as access

NAMES = access.KafkaNames(
    capture_topic="cap",
    dead_letter_topic="cap-dlq",
    input_topic="in",
    output_topic="out",
    indexer_group="idx",
    executor_groups=("default.streaming.seldon",),
)


def allowed(user: str) -> set[tuple[str, str, str, str]]:
    return {(a.resource, a.name, a.pattern, a.operation) for a in access.acls(user, NAMES)}


def who(resource: str, name: str, operation: str) -> set[str]:
    return {
        user for user in access.CLIENTS if any(r[:2] == (resource, name) and r[3] == operation for r in allowed(user))
    }


def test_the_table_has_the_coordinated_user_names() -> None:
    assert set(access.CLIENTS) == {
        "feedback-collector",
        "feedback-indexer",
        "feedback-monitor",
        "seldon-executor",
        "smoke-tests",
    }
    assert set(access.COMPONENT_USERS.values()) == set(access.CLIENTS)


def test_who_may_write_and_read_captured_data() -> None:
    assert who("topic", "cap", "Write") == {"feedback-collector", "seldon-executor"}  # HTTP and direct logging
    assert who("topic", "cap", "Read") == {"feedback-indexer", "smoke-tests"}
    assert who("topic", "cap-dlq", "Write") == {"feedback-indexer"}
    assert who("topic", "cap-dlq", "Read") == set()  # the monitor counts dead letters by offsets only
    assert who("group", "idx", "Read") == {"feedback-indexer"}
    assert who("group", "idx", "Describe") == {"feedback-monitor"}


def test_collector_only_writes_the_capture_topic() -> None:
    assert allowed("feedback-collector") == {
        ("topic", "cap", "literal", "Write"),
        ("topic", "cap", "literal", "Describe"),
    }


def test_monitor_reads_no_records_and_writes_nothing() -> None:
    operations = {operation for *_, operation in allowed("feedback-monitor")}
    assert operations == {"Describe"}


def test_streaming_executor_reads_input_in_its_group_and_writes_output() -> None:
    executor = allowed("seldon-executor")
    assert ("topic", "in", "literal", "Read") in executor and ("topic", "out", "literal", "Write") in executor
    assert ("group", "default.streaming.seldon", "literal", "Read") in executor
    assert not any(name == "cap" and op == "Read" for _, name, _, op in executor)


def test_no_grant_administers_the_cluster() -> None:
    for user in access.CLIENTS:
        for resource, _name, pattern, operation in allowed(user):
            assert resource in ("topic", "group") and operation in ("Read", "Write", "Describe"), user
            assert pattern == "literal" or (user, resource) == ("smoke-tests", "group"), user


def test_strimzi_rules_list_the_same_operations() -> None:
    for user in access.CLIENTS:
        flat = {
            (rule["resource"]["type"], rule["resource"]["name"], rule["resource"]["patternType"], op)
            for rule in access.strimzi_acls(user, NAMES)
            for op in rule["operations"]
        }
        assert flat == allowed(user), user
        assert all(rule["type"] == "allow" and rule["host"] == "*" for rule in access.strimzi_acls(user, NAMES))


def test_local_bindings_are_the_same_rules() -> None:
    from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

    from devstack.servers.kafka_auth import acl_bindings

    bindings = {(b.principal, b.restype, b.name, b.resource_pattern_type, b.operation) for b in acl_bindings(NAMES)}
    expected = {
        (
            f"User:{a.principal}",
            ResourceType[a.resource.upper()],
            a.name,
            ResourcePatternType.LITERAL if a.pattern == "literal" else ResourcePatternType.PREFIXED,
            AclOperation[a.operation.upper()],
        )
        for user in access.CLIENTS
        for a in access.acls(user, NAMES)
    }
    assert bindings == expected


def test_no_streaming_deployment_means_no_executor_group() -> None:
    names = access.KafkaNames("cap", "cap-dlq", "in", "out", "idx")
    assert not any(a.resource == "group" for a in access.acls("seldon-executor", names))


def test_unknown_user_or_role_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="no Kafka user 'nobody'"):
        access.acls("nobody", NAMES)
    with pytest.raises(KeyError, match="no Kafka resource role"):
        NAMES.resolve("secrets")
