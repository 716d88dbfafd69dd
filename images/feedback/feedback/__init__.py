"""Seldon feedback pipeline: the collector (CloudEvents over HTTP to Kafka) and the indexer (Kafka to search)."""

__version__ = "0.1.0"
