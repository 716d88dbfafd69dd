"""The roles of infra/search_roles.py against each engine's documented privilege names (as data here), so a typo'd or
invented privilege fails, and against the administrative privileges no service role may hold.

Elasticsearch 8: the named cluster and index privileges of the security privileges reference ("Security privileges",
Elasticsearch Guide 8.x). OpenSearch 2: the static action groups of the security plugin (static_action_groups.yml)
and the transport action names the roles name directly. The OpenSearch roles are also proven on a real secured
OpenSearch (tests/integration/test_search_privileges.py); Elasticsearch's only here and on a cluster.
"""

from __future__ import annotations

import fnmatch

import pytest
import yaml

from infra.search_roles import (
    INDEXER_ROLE,
    MONITOR_ROLE,
    elasticsearch_roles,
    index_patterns,
    opensearch_roles,
    roles_yaml,
)

ES_CLUSTER_PRIVILEGES = frozenset(
    [
        "all",
        "cancel_task",
        "create_snapshot",
        "cross_cluster_replication",
        "cross_cluster_search",
        "grant_api_key",
        "manage",
        "manage_api_key",
        "manage_autoscaling",
        "manage_behavioral_analytics",
        "manage_ccr",
        "manage_connector",
        "manage_data_frame_transforms",
        "manage_data_stream_global_retention",
        "manage_enrich",
        "manage_ilm",
        "manage_index_templates",
        "manage_inference",
        "manage_ingest_pipelines",
        "manage_logstash_pipelines",
        "manage_ml",
        "manage_oidc",
        "manage_own_api_key",
        "manage_pipeline",
        "manage_rollup",
        "manage_saml",
        "manage_search_application",
        "manage_search_query_rules",
        "manage_search_synonyms",
        "manage_security",
        "manage_service_account",
        "manage_slm",
        "manage_token",
        "manage_transform",
        "manage_user_profile",
        "manage_watcher",
        "monitor",
        "monitor_connector",
        "monitor_data_frame_transforms",
        "monitor_data_stream_global_retention",
        "monitor_enrich",
        "monitor_inference",
        "monitor_ml",
        "monitor_rollup",
        "monitor_snapshot",
        "monitor_stats",
        "monitor_text_structure",
        "monitor_transform",
        "monitor_watcher",
        "none",
        "read_ccr",
        "read_connector_secrets",
        "read_ilm",
        "read_pipeline",
        "read_security",
        "read_slm",
        "transport_client",
        "write_connector_secrets",
    ]
)
ES_INDEX_PRIVILEGES = frozenset(
    [
        "all",
        "auto_configure",
        "create",
        "create_doc",
        "create_index",
        "cross_cluster_replication",
        "cross_cluster_replication_internal",
        "delete",
        "delete_index",
        "index",
        "maintenance",
        "manage",
        "manage_data_stream_lifecycle",
        "manage_follow_index",
        "manage_ilm",
        "manage_leader_index",
        "monitor",
        "none",
        "read",
        "read_cross_cluster",
        "view_index_metadata",
        "write",
    ]
)
# What no service role may hold: index administration, lifecycle, everything.
ES_ADMIN_INDEX_PRIVILEGES = frozenset(
    {"all", "create_index", "delete_index", "manage", "manage_ilm", "manage_data_stream_lifecycle", "auto_configure"}
)

OPENSEARCH_ACTION_GROUPS = frozenset(
    [
        "unlimited",
        "cluster_all",
        "cluster_monitor",
        "cluster_composite_ops",
        "cluster_composite_ops_ro",
        "cluster_manage_pipelines",
        "cluster_manage_index_templates",
        "manage_snapshots",
        "indices_all",
        "manage",
        "create_index",
        "manage_aliases",
        "indices_monitor",
        "data_access",
        "write",
        "delete",
        "crud",
        "search",
        "get",
        "read",
        "index",
        "suggest",
        "manage_data_streams",
        "manage_point_in_time",
        "kibana_all_read",
        "kibana_all_write",
    ]
)
# Transport actions a pattern of ours must match (every pattern names at least one real action).
OPENSEARCH_ACTIONS = frozenset(
    [
        "indices:data/write/index",
        "indices:data/write/update",
        "indices:data/write/bulk",
        "indices:data/write/bulk[s]",
        "indices:data/write/delete",
        "indices:data/write/delete/byquery",
        "indices:data/read/search",
        "indices:data/read/scroll",
        "indices:data/read/scroll/clear",
        "indices:admin/mappings/get",
        "indices:admin/refresh",
        "indices:admin/refresh[s]",
        "indices:admin/shards/search_shards",
    ]
)
# Administrative actions no service role's patterns may match.
OPENSEARCH_ADMIN_ACTIONS = frozenset(
    [
        "indices:admin/delete",
        "indices:admin/create",
        "indices:admin/mapping/put",
        "indices:admin/index_template/put",
        "indices:admin/template/put",
        "indices:admin/settings/update",
        "cluster:admin/script/put",
        "cluster:admin/script/delete",
        "cluster:admin/settings/update",
        "cluster:monitor/state",
        "cluster:admin/opendistro/ism/policy/write",
        "cluster:admin/opensearch/ism/policy/write",
        "indices:admin/aliases",
    ]
)
OPENSEARCH_ADMIN_GROUPS = frozenset(
    {"unlimited", "cluster_all", "indices_all", "manage", "create_index", "write", "index", "data_access", "crud"}
)


def es_grants() -> list[tuple[str, str, str]]:
    """(role, index pattern, privilege) of every index grant, plus (role, "cluster", privilege)."""
    grants = []
    for role, body in elasticsearch_roles("seldon-feedback", "seldon-monitor").items():
        grants += [(role, "cluster", privilege) for privilege in body["cluster"]]
        for entry in body["indices"]:
            grants += [(role, name, privilege) for name in entry["names"] for privilege in entry["privileges"]]
    return grants


def os_grants() -> list[tuple[str, str, str]]:
    grants = []
    for role, body in opensearch_roles("seldon-feedback", "seldon-monitor").items():
        grants += [(role, "cluster", action) for action in body["cluster_permissions"]]
        for entry in body["index_permissions"]:
            grants += [(role, name, action) for name in entry["index_patterns"] for action in entry["allowed_actions"]]
    return grants


@pytest.mark.parametrize(("role", "where", "privilege"), es_grants())
def test_every_elasticsearch_privilege_is_a_documented_name_and_not_an_administrative_one(
    role: str, where: str, privilege: str
) -> None:
    known = ES_CLUSTER_PRIVILEGES if where == "cluster" else ES_INDEX_PRIVILEGES
    assert privilege in known, f"{role}: {privilege!r} is not an Elasticsearch 8 {where} privilege"
    assert privilege not in ES_ADMIN_INDEX_PRIVILEGES, f"{role} must not hold {privilege!r}"


def test_the_elasticsearch_roles_grant_no_cluster_privilege_and_reach_only_their_indices() -> None:
    roles = elasticsearch_roles("cap", "mon")
    assert {role: body["cluster"] for role, body in roles.items()} == {INDEXER_ROLE: [], MONITOR_ROLE: []}
    indexer = roles[INDEXER_ROLE]["indices"]
    assert [entry["names"] for entry in indexer] == [index_patterns("cap")]
    assert set(indexer[0]["privileges"]) == {"index", "delete", "read", "view_index_metadata", "maintenance"}
    monitor = {tuple(entry["names"]): set(entry["privileges"]) for entry in roles[MONITOR_ROLE]["indices"]}
    assert monitor == {
        tuple(index_patterns("mon")): {"index", "read", "view_index_metadata", "maintenance"},
        tuple(index_patterns("cap")): {"read", "maintenance"},  # the monitor never writes or deletes captures
    }
    assert all(entry["allow_restricted_indices"] is False for body in roles.values() for entry in body["indices"])


@pytest.mark.parametrize(("role", "where", "action"), os_grants())
def test_every_opensearch_permission_is_a_documented_group_or_matches_a_real_action_and_no_admin_one(
    role: str, where: str, action: str
) -> None:
    if ":" in action:
        assert any(fnmatch.fnmatchcase(name, action) for name in OPENSEARCH_ACTIONS), (
            f"{role}: {action!r} matches no OpenSearch action"
        )
        matched = [name for name in OPENSEARCH_ADMIN_ACTIONS if fnmatch.fnmatchcase(name, action)]
        assert not matched, f"{role}: {action!r} grants administrative actions {matched}"
    else:
        assert action in OPENSEARCH_ACTION_GROUPS, f"{role}: {action!r} is not an OpenSearch action group"
        assert action not in OPENSEARCH_ADMIN_GROUPS, f"{role}: {action!r} includes administrative actions"


def test_a_typo_in_a_privilege_fails_the_check() -> None:
    """The checks above are not vacuous: a misspelt or administrative name is caught."""
    assert "view_index_metdata" not in ES_INDEX_PRIVILEGES
    assert not any(fnmatch.fnmatchcase(name, "indices:data/wirte/index*") for name in OPENSEARCH_ACTIONS)
    assert any(fnmatch.fnmatchcase(name, "indices:admin/*") for name in OPENSEARCH_ADMIN_ACTIONS)


def test_roles_yaml_round_trips() -> None:
    roles = elasticsearch_roles("seldon-feedback", "seldon-monitor")
    assert yaml.safe_load(roles_yaml(roles)) == roles
