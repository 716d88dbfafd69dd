"""How often the monitor alarms on stationary traffic, and how fast it sees a shift (not a test; read the table).

    $(python3.11 devstack/dev_env.py ensure)/bin/python bench/bench_monitor.py [--runs 10] [--windows 8]
        [--documents 200] [--shares 0.1,0.2,0.3,0.5,1.0] [--seconds 1800] [--seed 1]

Builds the reference profile with the classifier's own `textclf.profile.build_profile` from the shipped comments
(held-out split as train.py makes it) and a stand-in for the model's probabilities (tests/monitor_data.py: the
model needs its own environment, and thousands of windows through it would take hours), then runs the monitor's
window logic (`drift_statistics` + `decide`: every test, the multiple-testing control and the consecutive-windows
rule, with the default thresholds) on seeded windows of `--documents` documents:

- stationary: `--runs` runs of `--windows` windows of held-out comments. Prints, per metric, the share of windows
  that breached, and the false-alarm rate per window (any metric alarming), which the control is there to keep low;
- shifted: for each spam share of `--shares` (devstack/drift_traffic.py), `--runs` runs of 2 stationary windows,
  then shifted windows until the first alarm or `--windows`; prints the detection rate and windows to detection
  (1 = the first shifted window alarmed; with 2 consecutive windows needed, 2 is the fastest possible).

Bounded: stops after `--seconds` and prints what it measured so far (fewer runs are then said in the table).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
for path in (REPO_ROOT, REPO_ROOT / "images" / "feedback", REPO_ROOT / "images" / "text-classifier"):
    sys.path.insert(0, str(path))

from feedback.monitor.core import DRIFT_METRICS, Result, decide, drift_statistics  # noqa: E402
from feedback.monitor.profiles import Profile, parse_profile  # noqa: E402
from feedback.monitor.settings import Thresholds  # noqa: E402

from tests.monitor_data import profile_data, window_documents  # noqa: E402


def window_results(profile: Profile, thresholds: Thresholds, docs: list[dict], history: dict, seed: int) -> dict:
    stats, _ = drift_statistics(docs, profile, thresholds, seed)
    results = {r.metric: r for r in decide(stats, thresholds, history)}
    for metric in DRIFT_METRICS:
        result = results.get(metric)
        flag = result.breach if isinstance(result, Result) and result.status == "ok" else None
        history[metric] = [flag, *history.get(metric, [])][: max(1, thresholds.consecutive_windows - 1)]
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--shares", default="0.1,0.2,0.3,0.5,1.0")
    parser.add_argument("--seconds", type=float, default=1800.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    deadline = time.monotonic() + args.seconds
    thresholds = Thresholds()
    profile = parse_profile(profile_data(), "bench")
    started = time.monotonic()

    breaches: Counter = Counter()
    alarms, windows_done, runs_done = 0, 0, 0
    for run in range(args.runs):
        if time.monotonic() > deadline:
            break
        history: dict = {}
        for window in range(args.windows):
            seed = args.seed * 1_000_003 + run * 1000 + window
            results = window_results(profile, thresholds, window_documents(args.documents, seed), history, seed)
            breaches.update(m for m, r in results.items() if r.breach)
            alarms += any(r.alarm for r in results.values())
            windows_done += 1
        runs_done += 1
    seconds_per_window = (time.monotonic() - started) / max(windows_done, 1)

    done = max(windows_done, 1)
    print(f"\nstationary: {runs_done} runs x {args.windows} windows of {args.documents} documents ({windows_done})")
    print(f"  false-alarm rate per window (any metric alarms): {alarms}/{windows_done} = {alarms / done:.4f}")
    print("  breach rate per window and metric (before the consecutive rule):")
    for metric in DRIFT_METRICS:
        print(f"    {metric:<14} {breaches[metric] / done:.4f}")
    permutations = thresholds.domain_permutations
    print(f"  compute time per window: {seconds_per_window:.2f} s (domain classifier: {permutations} permutations)")

    print("\nshift (spam share) | runs | detected | windows to detection: median, mean, max")
    for share in (float(s) for s in args.shares.split(",")):
        found: list[int] = []
        tried = 0
        for run in range(args.runs):
            if time.monotonic() > deadline:
                break
            tried += 1
            history = {}
            for window in range(2):
                seed = args.seed * 7_000_001 + run * 1000 + window
                window_results(profile, thresholds, window_documents(args.documents, seed), history, seed)
            for shifted in range(1, args.windows + 1):
                seed = args.seed * 7_000_001 + run * 1000 + 100 + shifted
                docs = window_documents(args.documents, seed, spam_share=share)
                if any(r.alarm for r in window_results(profile, thresholds, docs, history, seed).values()):
                    found.append(shifted)
                    break
        summary = f"{statistics.median(found):g}, {statistics.mean(found):.2f}, {max(found)}" if found else "never"
        print(f"  {share:>16.2f} | {tried:>4} | {len(found):>4}/{tried:<3} | {summary}")
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
