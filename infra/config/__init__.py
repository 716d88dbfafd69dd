"""Typed, validated stack configuration: the only package that reads `pulumi.Config`.

Every key the program understands is declared once in `keys.KEYS` (name, type, default, description). `load()`
(`readers.py`) reads the stack config, rejects unknown keys in our namespaces, runs one reader per namespace
(platform, kafka, search, objectstore, workflows, seldon, classifier, feedback, batch, flowback) that parses and
range-checks its keys, then the rules across namespaces (replication factor at most the broker count, what the
chosen Seldon version can do, ...), and returns a frozen `StackConfig` (`settings.py`). All problems are reported
together in one ConfigError, each naming the full key, the bad value, what is allowed and how to fix it, before
the first resource is created.

`python -m infra.config regenerate` rewrites the JSON schema of the stack files (`stacks/config.schema.json`) and
the key table of `docs/deploy.md` from `KEYS` (`schema` and `table` print them; `schema.py`), so code, schema and
docs cannot drift apart (a test compares them).
"""

from infra.config.keys import KEYS, KEYS_BY_NAME, NAMESPACES, SECRET_NAME, Key
from infra.config.reader import ConfigError
from infra.config.readers import BSL_FROM, MIN_SELDON, load
from infra.config.schema import json_schema, markdown_table, regenerate
from infra.config.settings import (
    BatchSettings,
    ChartSource,
    ClassifierSettings,
    ExistingKafka,
    ExistingObjectStore,
    ExistingSearch,
    FeedbackSettings,
    FlowbackSettings,
    Image,
    KafkaSettings,
    Mirrors,
    ObjectStoreSettings,
    PlatformSettings,
    Resources,
    SearchSettings,
    SeldonSettings,
    StackConfig,
    Topic,
    WorkflowsSettings,
)

__all__ = [
    "BSL_FROM",
    "KEYS",
    "KEYS_BY_NAME",
    "MIN_SELDON",
    "NAMESPACES",
    "SECRET_NAME",
    "BatchSettings",
    "ChartSource",
    "ClassifierSettings",
    "ConfigError",
    "ExistingKafka",
    "ExistingObjectStore",
    "ExistingSearch",
    "FeedbackSettings",
    "FlowbackSettings",
    "Image",
    "KafkaSettings",
    "Key",
    "Mirrors",
    "ObjectStoreSettings",
    "PlatformSettings",
    "Resources",
    "SearchSettings",
    "SeldonSettings",
    "StackConfig",
    "Topic",
    "WorkflowsSettings",
    "json_schema",
    "load",
    "markdown_table",
    "regenerate",
]
