"""Where LSR-MWF's extra training-step time goes: torch.profiler, plain BART vs LSR-MWF.

Same models and batch as ``bench/bench_model.py`` (same options). Profiles ``--steps`` training
steps of each model (alternating, after a warm-up step) and prints, per aten op, the self CPU time
per step of BART and of LSR-MWF and the difference, sorted by the difference, grouped as matmul /
attention / other. Self CPU time of a ``mm`` is the GEMM; of ``native_layer_norm`` the layer norm,
and so on, so the table says whether the extra time is in the extra layers' matmuls and attention
(what the FLOP ratio counts) or in the work around them.

``--clock wall`` (default) is torch.profiler's self CPU time, which is wall time on the thread: on a
machine that other jobs load, it also counts the time the process waits for a core, op by op at
random. ``--clock cpu`` times each aten op with the thread's CPU time instead (a dispatch mode around
every op, forward, backward and optimizer alike); run it with ``OMP_NUM_THREADS=1`` so that all the
work is on the timed thread. Its "outside ops" row is the step's remaining CPU time: Python, the
autograd engine, and the timing mode's own overhead.

    OMP_NUM_THREADS=2 python bench/profile_model.py --steps 3
    OMP_NUM_THREADS=1 python bench/profile_model.py --steps 3 --clock cpu   # on a loaded machine
"""

import os
import statistics
import sys
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_model as bm  # noqa: E402

MATMUL = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::mv", "aten::addmv", "aten::dot"}
ATTENTION = {"aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_scaled_dot_product_flash_attention_for_cpu_backward"}


def kind(op):
    return "matmul" if op in MATMUL else "attention" if op in ATTENTION else "other"


class CpuTimeProfile(TorchDispatchMode):
    """Thread CPU time and call count of every aten op run under it, by op name ("aten::mm")."""

    def __init__(self):
        super().__init__()
        self.times, self.calls = defaultdict(float), defaultdict(int)
        self.total = 0.0

    def __enter__(self):
        self._start = time.thread_time_ns()
        return super().__enter__()

    def __exit__(self, *exc):
        self.total = (time.thread_time_ns() - self._start) / 1e3
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        t = time.thread_time_ns()
        out = func(*args, **(kwargs or {}))
        name = func._schema.name
        self.times[name] += (time.thread_time_ns() - t) / 1e3  # microseconds, like torch.profiler
        self.calls[name] += 1
        return out


def self_times(prof, steps):
    """Self CPU microseconds per step and call counts per step, by op name."""
    times, calls = defaultdict(float), defaultdict(float)
    for evt in prof.key_averages():
        if evt.key.startswith("ProfilerStep") or evt.key.startswith("## "):
            continue
        times[evt.key] += evt.self_cpu_time_total / steps
        calls[evt.key] += evt.count / steps
    return times, calls


def main():
    parser_args = bm.parse()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    names = ("bart", "lsrmwf")
    models = {n: bm.build(parser_args, n == "lsrmwf") for n in names}
    batches = {n: bm.make_batch(parser_args, n == "lsrmwf", m) for n, m in models.items()}
    opts = {n: torch.optim.Adam(m.parameters(), lr=1e-5) for n, m in models.items()}
    for n in names:
        models[n].train()
        bm.train_step(models[n], opts[n], batches[n])  # warm-up, Adam state

    flops = {n: bm.step_flops(models[n], batches[n]) for n in names}  # (matmul + attention, attention)
    steps = max(parser_args.steps, 1)
    per_step = {n: [] for n in names}
    for i in range(steps):  # alternating (and alternating which goes first), so machine load hits both alike
        for n in (names if i % 2 == 0 else names[::-1]):
            if parser_args.clock == "cpu":
                with CpuTimeProfile() as prof:
                    bm.train_step(models[n], opts[n], batches[n])
                t, c = dict(prof.times), dict(prof.calls)
                t["(outside ops)"] = prof.total - sum(prof.times.values())
            else:
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    bm.train_step(models[n], opts[n], batches[n])
                t, c = self_times(prof, 1)
            per_step[n].append((t, c))
    # Each op's median over the profiled steps: a step that the machine's load slowed down moves
    # the medians less than it would move means.
    results, totals = {}, {}
    for n in names:
        keys = set().union(*(t for t, _ in per_step[n]))
        results[n] = ({k: statistics.median(t.get(k, 0.0) for t, _ in per_step[n]) for k in keys},
                      {k: statistics.median(c.get(k, 0) for _, c in per_step[n]) for k in keys})
        totals[n] = sum(results[n][0].values())

    (tb, cb), (tl, cl) = results["bart"], results["lsrmwf"]
    ops = set(tb) | set(tl)
    by_kind = defaultdict(lambda: [0.0, 0.0])
    for op in ops:
        by_kind[kind(op)][0] += tb.get(op, 0.0)
        by_kind[kind(op)][1] += tl.get(op, 0.0)
    what = "thread CPU time" if parser_args.clock == "cpu" else "torch.profiler self CPU time"
    print(f"threads={torch.get_num_threads()} steps profiled per model={steps}; {what} per step (ms), "
          "each op's median over the steps")
    print(f"{'':12}{'BART':>10}{'LSR-MWF':>10}{'extra':>10}{'ratio':>8}{'FLOP ratio':>12}{'share of extra':>16}")
    extra_total = totals["lsrmwf"] - totals["bart"]
    flop_ratio = {
        "matmul": (flops["lsrmwf"][0] - flops["lsrmwf"][1]) / (flops["bart"][0] - flops["bart"][1]),
        "attention": flops["lsrmwf"][1] / flops["bart"][1],
        "total": flops["lsrmwf"][0] / flops["bart"][0],
    }
    for k in ("matmul", "attention", "other"):
        b, l = by_kind[k]
        fr = f"{flop_ratio[k]:12.3f}" if k in flop_ratio else f"{'':12}"
        print(f"{k:12}{b / 1e3:10.1f}{l / 1e3:10.1f}{(l - b) / 1e3:10.1f}{l / max(b, 1e-9):8.3f}{fr}{(l - b) / extra_total:16.1%}")
    print(f"{'total':12}{totals['bart'] / 1e3:10.1f}{totals['lsrmwf'] / 1e3:10.1f}{extra_total / 1e3:10.1f}"
          f"{totals['lsrmwf'] / totals['bart']:8.3f}{flop_ratio['total']:12.3f}")
    print()
    top = sorted(ops, key=lambda op: -(tl.get(op, 0.0) - tb.get(op, 0.0)))
    print("top ops by extra self CPU time (LSR-MWF - BART), per step")
    print(f"{'op':58}{'kind':>10}{'BART ms':>9}{'LSR ms':>9}{'extra':>8}{'calls B/L':>12}")
    for op in top[: int(os.environ.get("TOP", 25))]:
        print(f"{op[:58]:58}{kind(op):>10}{tb.get(op, 0) / 1e3:9.1f}{tl.get(op, 0) / 1e3:9.1f}"
              f"{(tl.get(op, 0) - tb.get(op, 0)) / 1e3:8.1f}{cb.get(op, 0):6.0f}/{cl.get(op, 0):<5.0f}")
    print()
    for n, (t, c) in (("BART", results["bart"]), ("LSR-MWF", results["lsrmwf"])):
        print(f"{n}: top ops by self CPU time, per step")
        for op in sorted(t, key=lambda op: -t[op])[:12]:
            print(f"  {op[:58]:58}{kind(op):>10}{t[op] / 1e3:9.1f} ms{c[op]:7.0f} calls")


if __name__ == "__main__":
    main()
