"""Read a server's Prometheus text endpoint: every sample summed over labels, or one sample filtered by labels."""

from __future__ import annotations

import requests


def _samples(url: str) -> list[tuple[str, str, float]]:
    """(name, labels text, value) of every sample at `url`."""
    samples = []
    for line in requests.get(url, timeout=5).text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        samples.append((name_labels.split("{", 1)[0], name_labels, float(value)))
    return samples


def totals(url: str) -> dict[str, float]:
    """Current samples summed over labels: {"feedback_indexer_retries_total": 3.0, ...}."""
    summed: dict[str, float] = {}
    for name, _labels, value in _samples(url):
        summed[name] = summed.get(name, 0.0) + value
    return summed


def sample(url: str, name: str, **labels: str) -> float:
    """One metric summed over the series whose labels include `labels` (0.0 when there is none)."""
    return sum(
        value
        for found, text, value in _samples(url)
        if found == name and all(f'{key}="{wanted}"' in text for key, wanted in labels.items())
    )
