"""The search roles of the feedback services, as data: what the indexer and the monitor may do, and nothing more.

One definition, two dialects: `elasticsearch_roles` is the `roles.yml` the ECK Elasticsearch gets (`spec.auth.roles`),
`opensearch_roles` the security plugin's `roles.yml` for an OpenSearch (`search:existing` with engine opensearch, and
the local secured OpenSearch of the tests). Neither role may delete an index, create one, change a mapping, manage
templates, stored scripts, lifecycle policies or cluster settings: the setup step (`python -m feedback.indexer
setup`, `python -m feedback.monitor setup`, the chart's setup Job) does that with the admin credentials.

Why each privilege (docs/search-privileges.md has the table):
- indexer on the capture index: write (bulk create, index, scripted update of the merge), delete (the hourly
  retention's delete-by-query when search.retentionDays > 0, and the start canary's test document), read (the
  sweeps' searches; delete-by-query searches too), the index's mapping (the setup marker it checks at start) and
  refresh (the sweeps make acknowledged writes searchable first).
- monitor on its own index: write its result and state documents, read them, its mapping (setup marker), refresh;
  on the capture index: read and refresh only.
"""

from __future__ import annotations

from typing import Any

import yaml

INDEXER_ROLE = "seldon-feedback-indexer"
MONITOR_ROLE = "seldon-feedback-monitor"
INDEXER_USER = "seldon-feedback-indexer"
MONITOR_USER = "seldon-feedback-monitor"


def index_patterns(index: str) -> list[str]:
    """The index and the names its template covers (`<index>-*`)."""
    return [index, f"{index}-*"]


def elasticsearch_roles(capture_index: str, monitor_index: str) -> dict[str, Any]:
    """Elasticsearch 8 roles (file realm `roles.yml`), with Elasticsearch's named privileges only."""
    return {
        INDEXER_ROLE: {
            "cluster": [],
            "indices": [
                {
                    "names": index_patterns(capture_index),
                    "privileges": ["index", "delete", "read", "view_index_metadata", "maintenance"],
                    "allow_restricted_indices": False,
                }
            ],
        },
        MONITOR_ROLE: {
            "cluster": [],
            "indices": [
                {
                    "names": index_patterns(monitor_index),
                    "privileges": ["index", "read", "view_index_metadata", "maintenance"],
                    "allow_restricted_indices": False,
                },
                {
                    "names": index_patterns(capture_index),
                    "privileges": ["read", "maintenance"],
                    "allow_restricted_indices": False,
                },
            ],
        },
    }


# OpenSearch's security plugin authorises `_bulk` as a cluster action and its per-shard parts per index; action
# groups such as `write` or `index` also grant indices:admin/mapping/put, so the roles name the actions instead.
OPENSEARCH_WRITE = ["indices:data/write/index*", "indices:data/write/update*", "indices:data/write/bulk*"]
OPENSEARCH_METADATA = ["indices:admin/mappings/get", "indices:admin/refresh*"]


def opensearch_roles(capture_index: str, monitor_index: str) -> dict[str, Any]:
    """OpenSearch 2 security plugin roles (`roles.yml` of the security configuration)."""
    return {
        INDEXER_ROLE: {
            "cluster_permissions": ["indices:data/write/bulk", "indices:data/read/scroll*"],
            "index_permissions": [
                {
                    "index_patterns": index_patterns(capture_index),
                    "allowed_actions": [
                        *OPENSEARCH_WRITE,
                        "indices:data/write/delete*",
                        "read",
                        *OPENSEARCH_METADATA,
                        "indices:admin/shards/search_shards",  # the retention's sliced delete-by-query
                    ],
                }
            ],
        },
        MONITOR_ROLE: {
            "cluster_permissions": ["indices:data/write/bulk"],
            "index_permissions": [
                {
                    "index_patterns": index_patterns(monitor_index),
                    "allowed_actions": [*OPENSEARCH_WRITE, "read", *OPENSEARCH_METADATA],
                },
                {
                    "index_patterns": index_patterns(capture_index),
                    "allowed_actions": ["read", "indices:admin/refresh*"],
                },
            ],
        },
    }


def roles_yaml(roles: dict[str, Any]) -> str:
    return yaml.safe_dump(roles, sort_keys=True)
