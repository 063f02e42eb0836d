"""ROUGE on a CNN/DM-sized test set (11,490 pairs): one process vs all cores, same numbers.

    python bench/bench_rouge.py [--pairs 11490]

Pairs are built from the aclsum package's real summaries and documents (no download). Prints the
wall time of each run, the speed-up ratio, and whether the per-example scores are identical.
"""

import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from lsrmwf.data.loading import load_documents  # noqa: E402
from lsrmwf.evaluation.rouge import available_cores, rouge_scores  # noqa: E402


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=11490)
    parser.add_argument("--workers", type=int, default=None, help="default: all available cores")
    args = parser.parse_args()
    ds = load_documents("aclsum", split="train")
    refs, preds = [], []
    for k in range(args.pairs):
        j = k % len(ds)
        words = ds["document"][j].split()
        start = (k * 7) % max(1, len(words) - 70)
        refs.append(ds["summary"][j])
        preds.append(" ".join(words[start : start + 60]))  # a CNN/DM-length "summary" cut from the document
    workers = args.workers or available_cores()
    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), _cpu()
    one = rouge_scores(preds, refs, num_workers=1, progress=False)
    t1, c1 = time.perf_counter(), _cpu()
    many = rouge_scores(preds, refs, num_workers=workers, progress=False)
    t2, c2 = time.perf_counter(), _cpu()
    same = all(np.array_equal(one[k], many[k]) for k in one)
    print(f"pairs: {args.pairs}; cores available: {available_cores()}; load average before: {load_before:.1f}")
    print(f"1 process:   {t1 - t0:.1f} s wall, {c1 - c0:.1f} s CPU ({args.pairs / (t1 - t0):.0f} pairs/s)")
    print(f"{workers} processes: {t2 - t1:.1f} s wall, {c2 - c1:.1f} s CPU ({args.pairs / (t2 - t1):.0f} pairs/s)")
    print(f"speed-up: {(t1 - t0) / (t2 - t1):.2f}x; identical per-example scores: {same}")
    print("means:", {k: round(float(v.mean()), 2) for k, v in many.items()})


if __name__ == "__main__":
    main()
