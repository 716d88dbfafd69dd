"""The evaluation report as one self-contained HTML file: inline CSS and SVG, no script, nothing from outside."""

from __future__ import annotations

import html
import json
import math
from typing import Any

WIDTH = 420
ROW_HEIGHT = 26
# The look of the monitor's report (devstack/report_html.py): its palette, font, table borders, captions.
COLOURS = {"candidate": "#3366cc", "serving": "#ff9900"}
STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1180px; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; } td, th { border: 1px solid #ccc; padding: 2px 8px; }
th { text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { padding: .6rem 1rem; font-weight: bold; }
.promote { background: #e6f4ea; color: #109618; } .keep { background: #fce8e6; color: #dc3912; }
.pass { color: #109618; } .fail { color: #dc3912; } code { font-size: .9em; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f} %"


def _interval_chart(entries: list[tuple[str, float, float, float, str]]) -> str:
    """Horizontal interval bars on a 0-100 % axis: (label, low, point, high, colour) per row."""
    height = ROW_HEIGHT * len(entries) + 24
    left, right = 90, WIDTH - 24  # room for the last tick's label
    scale = right - left

    def x(value: float) -> float:
        return left + scale * max(0.0, min(1.0, value))

    parts = [f'<svg width="{WIDTH}" height="{height}" role="img" aria-label="accuracy with interval">']
    for tick in range(0, 101, 20):
        parts.append(
            f'<line x1="{x(tick / 100):.1f}" x2="{x(tick / 100):.1f}" y1="0" y2="{height - 18}" stroke="#eee"/>'
            f'<text x="{x(tick / 100):.1f}" y="{height - 4}" font-size="10" text-anchor="middle">{tick} %</text>'
        )
    for row, (label, low, point, high, colour) in enumerate(entries):
        y = ROW_HEIGHT * row + 14
        if isinstance(point, float) and math.isnan(point):
            parts.append(f'<text x="0" y="{y + 4}" font-size="12">{_e(label)}: no rows</text>')
            continue
        parts.append(
            f'<text x="0" y="{y + 4}" font-size="12">{_e(label)}</text>'
            f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="3"/>'
            f'<circle cx="{x(point):.1f}" cy="{y}" r="5" fill="{colour}"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _set_section(name: str, data: dict[str, Any], confidence: float) -> str:
    rows = []
    for role in ("candidate", "serving"):
        m = data[role]
        rows.append(
            f"<tr><td>{role}</td><td class=n>{m['rows']}</td><td class=n>{m['correct']}</td>"
            f"<td class=n>{_pct(m['accuracy'])}</td><td class=n>{_pct(m['low'])} to {_pct(m['high'])}</td>"
            f"<td class=n>{'n/a' if math.isnan(m['f1_macro']) else format(m['f1_macro'], '.3f')}</td></tr>"
        )
    d = data["difference"]
    chart = _interval_chart(
        [(role, data[role]["low"], data[role]["accuracy"], data[role]["high"], COLOURS[role]) for role in COLOURS]
    )
    labels = ", ".join(f"{_e(label)}: {count}" for label, count in data["per_label"].items())
    return (
        f"<h2>{_e(data['title'])} ({_e(name)})</h2><p>{data['rows']} rows ({labels})</p>"
        f"<table><tr><th>model</th><th>rows</th><th>correct</th><th>accuracy</th>"
        f"<th>{confidence:.0%} interval</th><th>macro F1</th></tr>{''.join(rows)}</table>{chart}"
        f"<p>candidate - serving: <b>{d['difference']:+.4f}</b>, {confidence:.0%} interval "
        f"[{d['low']:+.4f}, {d['high']:+.4f}] (paired: {d['only_candidate_right']} rows only the candidate gets "
        f"right, {d['only_serving_right']} only the serving model)</p>"
    )


def render(report: dict[str, Any]) -> str:
    decision = report["decision"]
    verdict = (
        '<p class="verdict promote">promote: the candidate passes every check of the rule</p>'
        if decision["promote"]
        else '<p class="verdict keep">keep the serving model: the candidate fails the rule</p>'
    )
    checks = "".join(
        f'<li class="{"pass" if check["passed"] else "fail"}">{"pass" if check["passed"] else "fail"}: '
        f"{_e(check['name'])}, {_e(check['detail'])}</li>"
        for check in decision["checks"]
    )
    confidence = float(report["rule"]["confidence"])
    sections = "".join(_set_section(name, data, confidence) for name, data in report["sets"].items())
    dataset = report["dataset"]
    time_range = dataset.get("time_range") or {}
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>evaluation of {_e(report['model'])} {_e(report['candidate']['version'])}</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>{_e(report['model'])}: candidate {_e(report['candidate']['version'])} vs serving "
        f"{_e(report['serving']['version'])}</h1>{verdict}<ul>{checks}</ul>"
        f"<p>dataset <code>{_e(dataset['prefix'])}</code> (hash <code>{_e(str(dataset['content_hash'])[:16])}</code>), "
        f"{_e(time_range.get('start', '?'))} to {_e(time_range.get('end', '?'))}; source model versions "
        f"{_e(', '.join(f'{k}: {v}' for k, v in (dataset.get('source_model_versions') or {}).items()))}</p>"
        f"{sections}<h2>rule</h2><pre>{_e(json.dumps(report['rule'], indent=2, sort_keys=True))}</pre></body></html>\n"
    )
