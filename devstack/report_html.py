"""The demo's report to look at: one self-contained HTML file (inline SVG drawn here, a few lines of inline script,
no CDN, no fonts to fetch), so it opens offline from the run folder.

    html = render(ReportData(...))            # pure: data in, text out
    data = gather(search_url, capture_index, monitor_index, window_s, ...)   # from a running stack

Charts (each a `<figure class="chart" id=...>`): documents per mode (sent vs indexed), freshness histogram, label
mix per window, each drift metric against its threshold per window (the shift's start marked, breaches and alarms
dotted), and accuracy on ground truth with its interval per window.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

CHARTS = ("counts", "freshness", "labels", "drift", "accuracy")
PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477")
P_VALUE_METRICS = ("label_chi2", "confidence_ks", "length_ks", "oov_rate")


@dataclass
class DriftPoint:
    value: float | None  # what is plotted: -log10(adjusted p) for tests, the score for score metrics
    threshold: float | None
    breach: bool
    alarm: bool


@dataclass
class WindowRow:
    start: float  # seconds since the epoch
    labels: dict[str, int] = field(default_factory=dict)
    drift: dict[str, DriftPoint] = field(default_factory=dict)
    accuracy: tuple[float, float, float, int] | None = None  # value, lower, upper, labelled documents


@dataclass
class ReportData:
    title: str
    counts: list[tuple[str, int, int]]  # mode, sent, indexed
    freshness_s: list[float]
    windows: list[WindowRow]
    window_s: int
    shift_start: float | None = None
    first_alarm: float | None = None
    summary: list[str] = field(default_factory=list)
    generated_at: float = 0.0


def _clock(time_s: float) -> str:
    return datetime.fromtimestamp(time_s, UTC).strftime("%H:%M:%S")


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(label)}">' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 11, color: str = "#333") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{color}">'
        f"{html.escape(text)}</text>"
    )


def _axes(x0: float, y0: float, x1: float, y1: float, top: float, label: str) -> list[str]:
    return [
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#999"/>',
        f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#999"/>',
        _text(x0 - 4, y1 + 4, f"{top:g}", "end"),
        _text(x0 - 4, y0, "0", "end"),
        _text(x0, y1 - 6, label),
    ]


def bar_chart(groups: Sequence[tuple[str, Sequence[float]]], series: Sequence[str], label: str) -> str:
    width, height, left, bottom, top_pad = 560, 220, 50, 190, 30
    top = max([v for _, values in groups for v in values] + [1])
    slot = (width - left - 10) / max(len(groups), 1)
    bar = slot * 0.8 / max(len(series), 1)
    body = _axes(left, bottom, width - 10, top_pad, top, label)
    for g, (name, values) in enumerate(groups):
        for s, value in enumerate(values):
            h = (bottom - top_pad) * value / top
            x = left + g * slot + slot * 0.1 + s * bar
            body.append(
                f'<rect x="{x:.1f}" y="{bottom - h:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{html.escape(f'{name} {series[s]}: {value:g}')}</title></rect>"
            )
            body.append(_text(x + bar / 2, bottom - h - 3, f"{value:g}", "middle", 10))
        body.append(_text(left + g * slot + slot / 2, bottom + 14, name, "middle"))
    body += [_text(width - 10 - 90 * (len(series) - s), 14, f"■ {n}", color=PALETTE[s]) for s, n in enumerate(series)]
    return _svg(width, height, body, label)


def histogram(values: Sequence[float], label: str, bins: int = 20) -> str:
    if not values:
        return _svg(560, 60, [_text(10, 30, "no samples")], label)
    high = max(values) or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int(value / high * bins))] += 1
    width, height, left, bottom, top_pad = 560, 220, 50, 190, 30
    top = max(counts)
    step = (width - left - 10) / bins
    body = _axes(left, bottom, width - 10, top_pad, top, label)
    for i, count in enumerate(counts):
        h = (bottom - top_pad) * count / top
        body.append(
            f'<rect x="{left + i * step:.1f}" y="{bottom - h:.1f}" width="{step - 1:.1f}" height="{h:.1f}" '
            'fill="#3366cc">'
            f"<title>{i * high / bins:.2f}-{(i + 1) * high / bins:.2f} s: {count}</title></rect>"
        )
    body += [_text(left, bottom + 14, "0 s"), _text(width - 10, bottom + 14, f"{high:.2f} s", "end")]
    return _svg(width, height, body, label)


def _x_scale(windows: Sequence[WindowRow], window_s: int, left: float, right: float) -> Any:
    first = windows[0].start if windows else 0.0
    last = (windows[-1].start + window_s) if windows else 1.0
    span = max(last - first, 1.0)
    return lambda t: left + (right - left) * (t - first) / span


def _shift_marker(data: ReportData, x: Any, top: float, bottom: float) -> list[str]:
    if data.shift_start is None:
        return []
    at = x(data.shift_start)
    return [
        f'<line x1="{at:.1f}" y1="{top}" x2="{at:.1f}" y2="{bottom}" stroke="#dc3912" stroke-dasharray="4 3"/>',
        _text(at + 3, top + 10, "shift", color="#dc3912", size=10),
    ]


def label_chart(data: ReportData) -> str:
    width, height, left, bottom, top_pad = 560, 220, 50, 190, 30
    names = sorted({name for row in data.windows for name in row.labels})
    x = _x_scale(data.windows, data.window_s, left, width - 10)
    body = _axes(left, bottom, width - 10, top_pad, 100, "predicted labels per window (%)")
    for row in data.windows:
        total = sum(row.labels.values()) or 1
        y = bottom
        for i, name in enumerate(names):
            h = (bottom - top_pad) * row.labels.get(name, 0) / total
            x0, x1 = x(row.start), x(row.start + data.window_s)
            body.append(
                f'<rect x="{x0:.1f}" y="{y - h:.1f}" width="{max(x1 - x0 - 1, 1):.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[i % len(PALETTE)]}"><title>{_clock(row.start)} {html.escape(name)}: '
                f"{row.labels.get(name, 0)}</title></rect>"
            )
            y -= h
    body += _shift_marker(data, x, top_pad, bottom)
    body += [_text(width - 10 - 70 * (len(names) - i), 14, f"■ {n}", color=PALETTE[i]) for i, n in enumerate(names)]
    if data.windows:
        body += [
            _text(left, bottom + 14, _clock(data.windows[0].start)),
            _text(width - 10, bottom + 14, _clock(data.windows[-1].start + data.window_s), "end"),
        ]
    return _svg(width, height, body, "predicted labels per window")


def drift_chart(data: ReportData, metric: str) -> str:
    width, height, left, bottom, top_pad = 270, 150, 40, 125, 22
    points = [(row.start, row.drift[metric]) for row in data.windows if metric in row.drift]
    values = [p.value for _, p in points if p.value is not None] + [p.threshold for _, p in points if p.threshold]
    top = max([*values, 1e-9]) * 1.15
    x = _x_scale(data.windows, data.window_s, left, width - 8)
    scale = "-log10 adjusted p" if metric in P_VALUE_METRICS else "score"
    body = _axes(left, bottom, width - 8, top_pad, round(top, 3), f"{metric} ({scale})")
    path = []
    for start, point in points:
        if point.value is None:
            continue
        cx, cy = x(start + data.window_s / 2), bottom - (bottom - top_pad) * point.value / top
        path.append(f"{cx:.1f},{cy:.1f}")
        color = "#dc3912" if point.breach else "#3366cc"
        title = f"{_clock(start)} {metric} {point.value:.3g} (threshold {point.threshold or 0:.3g})"
        title += " ALARM" if point.alarm else (" breach" if point.breach else "")
        body.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{color}"><title>{html.escape(title)}</title></circle>'
        )
        if point.alarm:
            body.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="none" stroke="#dc3912"/>')
    if path:
        body.insert(5, f'<polyline points="{" ".join(path)}" fill="none" stroke="#3366cc" stroke-width="1.2"/>')
    thresholds = [p.threshold for _, p in points if p.threshold is not None]
    if thresholds:
        ty = bottom - (bottom - top_pad) * thresholds[-1] / top
        body.append(
            f'<line x1="{left}" y1="{ty:.1f}" x2="{width - 8}" y2="{ty:.1f}" stroke="#ff9900" stroke-dasharray="5 3"/>'
        )
    body += _shift_marker(data, x, top_pad, bottom)
    return _svg(width, height, body, f"{metric} per window against its threshold")


def accuracy_chart(data: ReportData) -> str:
    width, height, left, bottom, top_pad = 560, 220, 50, 190, 30
    rows = [row for row in data.windows if row.accuracy is not None]
    x = _x_scale(data.windows, data.window_s, left, width - 10)
    body = _axes(left, bottom, width - 10, top_pad, 1, "accuracy on ground truth per window, with its 95 % interval")

    def y(value: float) -> float:
        return bottom - (bottom - top_pad) * value

    band_top = [f"{x(r.start + data.window_s / 2):.1f},{y(r.accuracy[2]):.1f}" for r in rows]  # type: ignore[index]
    band_low = [f"{x(r.start + data.window_s / 2):.1f},{y(r.accuracy[1]):.1f}" for r in reversed(rows)]  # type: ignore[index]
    if rows:
        body.append(f'<polygon points="{" ".join(band_top + band_low)}" fill="#3366cc" fill-opacity="0.2"/>')
        line = [f"{x(r.start + data.window_s / 2):.1f},{y(r.accuracy[0]):.1f}" for r in rows]  # type: ignore[index]
        body.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="#3366cc" stroke-width="1.5"/>')
    for row in rows:
        value, low, high, n = row.accuracy  # type: ignore[misc]
        cx = x(row.start + data.window_s / 2)
        title = f"{_clock(row.start)} accuracy {value:.3f} [{low:.3f}, {high:.3f}] on {n} labelled"
        body.append(f'<circle cx="{cx:.1f}" cy="{y(value):.1f}" r="3" fill="#3366cc"><title>{title}</title></circle>')
    body += _shift_marker(data, x, top_pad, bottom)
    if not rows:
        body.append(_text(left + 10, (bottom + top_pad) / 2, "no window with ground truth yet"))
    return _svg(width, height, body, "accuracy per window")


SCRIPT = """
document.addEventListener('DOMContentLoaded', function () {
  var figures = document.querySelectorAll('figure.chart');
  var nav = document.getElementById('contents');
  figures.forEach(function (figure) {
    var item = document.createElement('li');
    var link = document.createElement('a');
    link.href = '#' + figure.id;
    link.textContent = figure.querySelector('figcaption').textContent;
    item.appendChild(link);
    nav.appendChild(item);
  });
  document.body.setAttribute('data-charts', String(figures.length));
  document.body.setAttribute('data-svgs', String(document.querySelectorAll('figure.chart svg').length));
});
"""

STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1180px; }
figure.chart { display: inline-block; vertical-align: top; margin: 8px 12px 16px 0; }
figcaption { font-weight: bold; margin-bottom: 4px; }
.small { display: inline-block; margin: 0 6px 6px 0; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
"""


def render(data: ReportData) -> str:
    counts = [(mode, (sent, indexed)) for mode, sent, indexed in data.counts]
    metrics = sorted({m for row in data.windows for m in row.drift})
    figures = [
        ("counts", "Documents per mode: sent and indexed", bar_chart(counts, ("sent", "indexed"), "documents")),
        ("freshness", "Freshness: answer logged to searchable (s)", histogram(data.freshness_s, "requests")),
        ("labels", "Label mix over time", label_chart(data)),
        (
            "drift",
            "Drift against the training profile (orange: threshold; red: breach; ring: alarm)",
            "".join(f'<div class="small">{drift_chart(data, m)}</div>' for m in metrics)
            or "<p>no drift results yet</p>",
        ),
        ("accuracy", "Accuracy with its interval over time", accuracy_chart(data)),
    ]
    rows = "".join(
        f"<tr><td style='text-align:left'>{html.escape(mode)}</td><td>{sent}</td><td>{indexed}</td></tr>"
        for mode, sent, indexed in data.counts
    )
    summary = "".join(f"<li>{html.escape(line)}</li>" for line in data.summary)
    generated = datetime.fromtimestamp(data.generated_at or 0, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    body = "".join(
        f'<figure class="chart" id="{cid}"><figcaption>{html.escape(caption)}</figcaption>{svg}</figure>'
        for cid, caption, svg in figures
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(data.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body data-charts="0"><h1>{html.escape(data.title)}</h1><p>generated {generated}; windows of {data.window_s} s</p>
<ul>{summary}</ul><table><tr><th>mode</th><th>sent</th><th>indexed</th></tr>{rows}</table>
<h2>Charts</h2><ul id="contents"></ul>{body}
<script>{SCRIPT}</script></body></html>
"""


# ------------------------------------------------------------------------------------------ from a stack


def _search(url: str, index: str, body: dict[str, Any]) -> dict[str, Any]:
    requests.post(f"{url}/{index}/_refresh", timeout=30)
    return requests.post(f"{url}/{index}/_search", json=body, timeout=60).json()


def plotted(doc: dict[str, Any]) -> DriftPoint:
    metric, adjusted = doc.get("metric"), doc.get("adjusted_p_value")
    if metric in P_VALUE_METRICS and isinstance(adjusted, (int, float)):
        value = -math.log10(max(float(adjusted), 1e-300))
        threshold = -math.log10(float(doc["threshold"])) if doc.get("threshold") else None
    else:
        value, threshold = doc.get("value"), doc.get("threshold")
    return DriftPoint(value, threshold, bool(doc.get("breach")), bool(doc.get("alarm")))


def gather_windows(
    search_url: str, capture_index: str, monitor_index: str, window_s: int, deployment: str, since: float
) -> list[WindowRow]:
    """Per window since `since`: predicted labels (capture index) and the deployment's drift and accuracy results."""
    rows: dict[float, WindowRow] = {}
    labels = _search(
        search_url,
        capture_index,
        {
            "size": 0,
            "query": {"bool": {"filter": [{"range": {"@timestamp": {"gte": since * 1000, "format": "epoch_millis"}}}]}},
            "aggs": {
                "w": {
                    "date_histogram": {"field": "@timestamp", "fixed_interval": f"{window_s}s"},
                    "aggs": {"label": {"terms": {"field": "predicted_label", "size": 10}}},
                }
            },
        },
    )
    for bucket in labels.get("aggregations", {}).get("w", {}).get("buckets", []):
        row = rows.setdefault(bucket["key"] / 1000, WindowRow(bucket["key"] / 1000))
        row.labels = {b["key"]: b["doc_count"] for b in bucket["label"]["buckets"]}
    results = _search(
        search_url,
        monitor_index,
        {
            "size": 10_000,
            "query": {
                "bool": {
                    "filter": [
                        {"term": {"deployment": deployment}},
                        {"terms": {"kind": ["drift", "quality"]}},
                        {"range": {"window_start": {"gte": since * 1000, "format": "epoch_millis"}}},
                    ]
                }
            },
        },
    )
    for hit in results.get("hits", {}).get("hits", []):
        doc = hit["_source"]
        start = datetime.fromisoformat(doc["window_start"].replace("Z", "+00:00")).timestamp()
        row = rows.setdefault(start, WindowRow(start))
        if doc["kind"] == "drift" and doc.get("status") == "ok":
            row.drift[doc["metric"]] = plotted(doc)
        elif doc["metric"] == "accuracy" and doc.get("status") == "ok" and "class_name" not in doc:
            row.accuracy = (doc["value"], doc["lower"], doc["upper"], int(doc["samples"]))
    return [rows[start] for start in sorted(rows)]


def alarms(windows: Sequence[WindowRow]) -> list[tuple[float, list[str]]]:
    """(window start, metrics that alarmed) of every window with a drift alarm, in time order."""
    found = []
    for row in windows:
        alarmed = sorted(metric for metric, point in row.drift.items() if point.alarm)
        if alarmed:
            found.append((row.start, alarmed))
    return found
