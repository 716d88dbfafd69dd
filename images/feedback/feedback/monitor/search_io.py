"""The monitor's reads of the capture index and its writes to the monitor index, over the indexer's search backend
(`feedback.indexer.search_io`: the official Elasticsearch 8 or OpenSearch 2 client behind one protocol).

The monitor index is also the monitor's state: the document `state` holds the end of the last finished window
and how far late feedback was looked for; result documents have deterministic ids, so a recompute overwrites.
Every failure to reach the cluster raises `SearchUnavailable`; the caller retries the same window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from feedback.indexer.search_io import SearchBackend, SearchUnavailable
from feedback.monitor.core import UNKNOWN, CaptureCounts, Group, Window, iso, parse_time

STATE_ID = "state"
# 2: the mapping carries the setup's marker (`_meta.setup_version`); `python -m feedback.monitor setup` installs,
# the monitor only checks.
TEMPLATE_VERSION = 2
SETUP_COMMAND = "python -m feedback.monitor setup"
SETUP_HINT = (
    f"run `{SETUP_COMMAND}` with credentials that may manage index templates and the monitor index "
    "(on Kubernetes the feedback-pipeline chart's setup Job does it)"
)
COMPOSITE_PAGE = 200


def mapping_properties() -> dict[str, Any]:
    """Every field of a monitor document (the template's mapping)."""
    keyword = {"type": "keyword"}
    date = {"type": "date", "format": "strict_date_optional_time||epoch_millis"}
    number = {"type": "double"}
    return {
        "@timestamp": date,
        "window_start": date,
        "window_end": date,
        "window_seconds": {"type": "integer"},
        "deployment": keyword,
        "predictor": keyword,
        "model_version": keyword,
        "kind": keyword,
        "metric": keyword,
        "class_name": keyword,
        "status": keyword,
        "reason": {"type": "keyword", "ignore_above": 1024},
        "value": number,
        "p_value": number,
        "adjusted_p_value": number,
        "threshold": number,
        "reference_value": number,
        "lower": number,
        "upper": number,
        "samples": {"type": "long"},
        "breach": {"type": "boolean"},
        "alarm": {"type": "boolean"},
        "by_mode": {"properties": {mode: {"type": "long"} for mode in ("realtime", "streaming", "batch")}},
        "computed_at": date,
        "last_window_end": date,
        "feedback_checked_until": date,
        "detail": {"type": "object", "enabled": False},
    }


def setup_meta() -> dict[str, Any]:
    return {"managed_by": "seldon-feedback-monitor", "setup_version": TEMPLATE_VERSION}


def index_template(index: str, shards: int, replicas: int) -> dict[str, Any]:
    return {
        "index_patterns": [index, f"{index}-*"],
        "priority": 200,
        "version": TEMPLATE_VERSION,
        "_meta": {"managed_by": "seldon-feedback-monitor"},
        "template": {
            "settings": {"number_of_shards": shards, "number_of_replicas": replicas},
            "mappings": {"dynamic": False, "_meta": setup_meta(), "properties": mapping_properties()},
        },
    }


@dataclass(frozen=True)
class State:
    last_window_end: float  # seconds since the epoch
    feedback_checked_until: float


def group_filter(group: Group) -> list[dict[str, Any]]:
    """Filters selecting a group's documents; "unknown" matches documents without the field."""
    clauses: list[dict[str, Any]] = []
    for name, value in group.labels.items():
        if value == UNKNOWN:
            clauses.append({"bool": {"must_not": {"exists": {"field": name}}}})
        else:
            clauses.append({"term": {name: value}})
    return clauses


def window_filter(window: Window) -> dict[str, Any]:
    return {"range": {"@timestamp": {"gte": window.start_iso, "lt": window.end_iso}}}


class MonitorStore:
    def __init__(self, backend: SearchBackend, capture_index: str, index: str) -> None:
        self.backend = backend
        self.capture_index = capture_index
        self.index = index

    # ------------------------------------------------------------------------------------- monitor index

    def install(self, shards: int, replicas: int) -> list[str]:
        """The setup (privileged, idempotent): template, index, mapping and marker; returns what was changed. A
        newer version's template or marker is kept (a rollback must not undo it)."""
        from feedback.indexer.setup import same_template

        changed: list[str] = []
        name = f"{self.index}-template"
        template = index_template(self.index, shards, replicas)
        installed = self.backend.get_index_template(name)
        installed_version = int((installed or {}).get("version") or 0)
        if installed_version <= TEMPLATE_VERSION and not (installed is not None and same_template(installed, template)):
            self.backend.put_index_template(name, template)
            changed.append(f"index template {name} version {TEMPLATE_VERSION}")
        meta = self.backend.mapping_meta(self.index)
        if meta is None and self.backend.create_index(self.index):
            changed.append(f"index {self.index}")
            meta = self.backend.mapping_meta(self.index)
        meta = meta or {}
        if int(meta.get("setup_version") or 0) <= TEMPLATE_VERSION and installed_version <= TEMPLATE_VERSION:
            self.backend.put_mapping(self.index, mapping_properties(), setup_meta())
            if meta != setup_meta():
                changed.append(f"mapping of {self.index} (setup version {TEMPLATE_VERSION})")
        return changed

    def setup_problem(self) -> str | None:
        """Why the monitor must not start yet (None: set up for this version or a newer one); reads the index's
        mapping only, which the monitor's role may view."""
        meta = self.backend.mapping_meta(self.index)
        if meta is None:
            return f"the monitor index {self.index} does not exist (the setup has not run): {SETUP_HINT}"
        version = int(meta.get("setup_version") or 0)
        if version < TEMPLATE_VERSION:
            found = f"version {version}" if version else "no setup marker"
            return f"the monitor index {self.index} has {found}, this monitor needs {TEMPLATE_VERSION}: {SETUP_HINT}"
        return None

    def write(self, documents: Iterable[tuple[str, dict[str, Any]]]) -> int:
        actions = [
            {"_op_type": "index", "_index": self.index, "_id": doc_id, "_source": document}
            for doc_id, document in documents
        ]
        if not actions:
            return 0
        failed = [result for result in self.backend.bulk(actions) if not 200 <= result.status < 300]
        if failed:
            first = failed[0]
            raise SearchUnavailable(
                f"{len(failed)} monitor documents not written (first {first.doc_id}: {first.error})"
            )
        return len(actions)

    def read_state(self) -> State | None:
        found = self.backend.search(self.index, {"query": {"ids": {"values": [STATE_ID]}}, "size": 1})
        hits = found.get("hits", {}).get("hits", [])
        if not hits:
            return None
        source = hits[0].get("_source", {})
        end, checked = parse_time(source.get("last_window_end")), parse_time(source.get("feedback_checked_until"))
        if end is None:
            return None
        return State(end, checked if checked is not None else end)

    def write_state(self, state: State, now: float) -> None:
        document = {
            "kind": "state",
            "metric": "state",
            "last_window_end": iso(state.last_window_end),
            "feedback_checked_until": iso(state.feedback_checked_until),
            "computed_at": iso(now),
        }
        self.write([(STATE_ID, document)])
        self.backend.refresh(self.index)

    def breach_history(
        self, group: Group, window: Window, keys: Sequence[str], count: int
    ) -> dict[str, list[bool | None]]:
        """Per metric key, the breach flags of the `count` windows before `window`, nearest first (None: none)."""
        if count <= 0:
            return {}
        first = window.previous(count)
        body = {
            "size": count * len(keys) * 4 + 10,
            "_source": ["window_start", "metric", "class_name", "breach"],
            "query": {
                "bool": {
                    "filter": [
                        {"range": {"window_start": {"gte": first.start_iso, "lt": window.start_iso}}},
                        {"terms": {"metric": sorted({key.split(":", 1)[0] for key in keys})}},
                        *group_filter(group),
                    ]
                }
            },
        }
        flags: dict[tuple[str, float], bool] = {}
        for hit in self.backend.search(self.index, body).get("hits", {}).get("hits", []):
            source = hit.get("_source", {})
            start = parse_time(source.get("window_start"))
            key = (
                source.get("metric", "")
                if not source.get("class_name")
                else f"{source['metric']}:{source['class_name']}"
            )
            if start is not None and isinstance(source.get("breach"), bool):
                flags[(key, start)] = source["breach"]
        return {key: [flags.get((key, float(window.previous(i).start))) for i in range(1, count + 1)] for key in keys}

    # ------------------------------------------------------------------------------------- capture index

    def refresh_capture(self) -> None:
        self.backend.refresh(self.capture_index)

    def earliest_capture_time(self) -> float | None:
        body = {"size": 0, "aggs": {"first": {"min": {"field": "@timestamp"}}}}
        found = self.backend.search(self.capture_index, body)
        value = found.get("aggregations", {}).get("first", {}).get("value")
        return float(value) / 1000.0 if isinstance(value, (int, float)) else None

    def _composite(self, query: dict[str, Any], sources: list[dict[str, Any]], aggs: dict[str, Any]) -> list[dict]:
        buckets: list[dict] = []
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {"size": COMPOSITE_PAGE, "sources": sources}
            if after is not None:
                composite["after"] = after
            body = {"size": 0, "query": query, "aggs": {"groups": {"composite": composite, "aggs": aggs}}}
            found = self.backend.search(self.capture_index, body).get("aggregations", {}).get("groups", {})
            page = found.get("buckets", [])
            buckets += page
            after = found.get("after_key")
            if len(page) < COMPOSITE_PAGE or after is None:
                return buckets

    def capture_counts(self, window: Window) -> dict[Group, CaptureCounts]:
        """Exact counts per group in the window: documents, per mode and outcome, orphan feedback, ground truth."""
        sources = [
            {name: {"terms": {"field": name, "missing_bucket": True}}}
            for name in ("deployment", "predictor", "model_version")
        ]
        aggs = {
            "mode": {"terms": {"field": "mode", "size": 10}},
            "outcome": {"terms": {"field": "outcome", "size": 10}},
            "orphans": {"filter": {"exists": {"field": "orphan_reason"}}},
            "truth": {"filter": {"exists": {"field": "truth"}}},
        }
        counts: dict[Group, CaptureCounts] = {}
        for bucket in self._composite({"bool": {"filter": [window_filter(window)]}}, sources, aggs):
            group = Group.of(bucket["key"])
            current = counts.setdefault(group, CaptureCounts())
            current.documents += int(bucket["doc_count"])
            current.by_mode.update({b["key"]: int(b["doc_count"]) for b in bucket["mode"]["buckets"]})
            current.by_outcome.update({b["key"]: int(b["doc_count"]) for b in bucket["outcome"]["buckets"]})
            current.orphan_feedback += int(bucket["orphans"]["doc_count"])
            current.feedback += int(bucket["truth"]["doc_count"])
        return counts

    def documents(
        self, window: Window, group: Group, fields: Sequence[str], limit: int, extra: Sequence[dict] = ()
    ) -> list[dict[str, Any]]:
        """Up to `limit` documents of the group in the window (sorted by request id, which is random enough to be a
        sample when there are more), with only `fields` in `_source`."""
        body = {
            "size": limit,
            "_source": list(fields),
            "sort": [{"request_id": "asc"}, {"instance": "asc"}],
            "query": {"bool": {"filter": [window_filter(window), *group_filter(group), *extra]}},
        }
        return [hit.get("_source", {}) for hit in self.backend.search(self.capture_index, body)["hits"]["hits"]]

    def late_feedback(self, since: float, until: float, oldest_window: float, window_s: int) -> set[tuple[int, Group]]:
        """(window start, group) of windows that start before `until` whose documents got ground truth with a
        feedback time after `since`: their quality is recomputed."""
        query = {
            "bool": {
                "filter": [
                    {"range": {"feedback_time": {"gt": iso(since)}}},
                    {"range": {"@timestamp": {"gte": iso(oldest_window), "lt": iso(until)}}},
                    {"exists": {"field": "truth"}},
                ]
            }
        }
        sources = [
            {"window": {"date_histogram": {"field": "@timestamp", "fixed_interval": f"{window_s}s"}}},
            *(
                {name: {"terms": {"field": name, "missing_bucket": True}}}
                for name in ("deployment", "predictor", "model_version")
            ),
        ]
        found: set[tuple[int, Group]] = set()
        for bucket in self._composite(query, sources, {}):
            found.add((int(bucket["key"]["window"]) // 1000, Group.of(bucket["key"])))
        return found
