"""Training throughput in the log, and what a CNN/DM-sized run would take at the measured rate.

Every training log gets ``samples_per_second`` and ``tokens_per_second`` (all processes together,
since the previous training log; tokens are the non-padding source tokens plus the target tokens
that carry a loss). Once at least one optimizer step after the first has been timed (the first
pays for warm-up), the main process prints one line with the seconds per step and the estimated
time of a run over CNN/DM's 287,113 training documents with this run's batch (per device ×
processes × gradient accumulation) and its ``--num_train_epochs`` (or ``--max_steps``); the same
estimate goes into that log entry as ``eta_cnndm_hours``.
"""

import math
import time
from typing import Optional

import torch
from transformers import TrainerCallback

CNNDM_TRAIN_DOCUMENTS = 287_113


def planned_steps(num_documents: int, global_batch: int, num_train_epochs: float, max_steps: int) -> int:
    """Optimizer steps of a run: ``--max_steps`` if set, else epochs × ceil(documents / global batch)."""
    if max_steps and max_steps > 0:
        return int(max_steps)
    return math.ceil(math.ceil(num_documents / global_batch) * num_train_epochs)


def format_duration(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h" if hours >= 1 else f"{seconds / 60:.1f} min"


class StepClock(TrainerCallback):
    """Times optimizer steps: the end of step 1 (warm-up excluded from then on) and the latest one."""

    def __init__(self):
        self.first: Optional[tuple] = None  # (step, time) at the end of the first step this run did
        self.last: Optional[tuple] = None

    def on_step_end(self, args, state, control, **kwargs):
        now = (state.global_step, time.perf_counter())
        if self.first is None:
            self.first = now
        self.last = now

    def seconds_per_step(self) -> Optional[float]:
        if self.first is None or self.last is None or self.last[0] <= self.first[0]:
            return None
        return (self.last[1] - self.first[1]) / (self.last[0] - self.first[0])


class Throughput:
    """Counts samples and tokens per micro-batch (on the device, no host sync) and turns them into rates."""

    def __init__(self):
        self.counts: Optional[torch.Tensor] = None  # [samples, tokens] since the last training log
        self.since: Optional[float] = None
        self.clock = StepClock()
        self.eta_printed = False

    def count(self, inputs) -> None:
        ids = inputs.get("input_ids")
        if ids is None:
            return
        if self.since is None:
            self.since = time.perf_counter()
        mask = inputs.get("attention_mask")
        source = mask.sum() if mask is not None else torch.tensor(ids.numel(), device=ids.device)
        labels = inputs.get("labels")
        target = (labels.ne(-100).sum() if labels is not None
                  else torch.zeros((), device=ids.device, dtype=source.dtype))
        if self.counts is None:
            self.counts = torch.zeros(2, dtype=torch.float64 if ids.device.type == "cpu" else torch.float32,
                                      device=ids.device)
        self.counts[0] += ids.shape[0]
        self.counts[1] += (source + target).to(self.counts.dtype)

    def rates(self, reduce) -> dict:
        """``samples_per_second`` / ``tokens_per_second`` since the last call; ``reduce`` sums over processes
        (a collective: every rank calls this at every training log)."""
        if self.counts is None or self.since is None:
            return {}
        samples, tokens = reduce(self.counts).tolist()
        now = time.perf_counter()
        elapsed = max(now - self.since, 1e-9)
        self.counts.zero_()
        self.since = now
        return {"samples_per_second": samples / elapsed, "tokens_per_second": tokens / elapsed}

    def eta(self, args, logs: dict, is_main: bool) -> None:
        """Once a step rate is known: print the CNN/DM-sized estimate (main process) and log ``eta_cnndm_hours``."""
        if self.eta_printed:
            return
        per_step = self.clock.seconds_per_step()
        if per_step is None:
            return
        self.eta_printed = True
        global_batch = args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps
        steps = planned_steps(CNNDM_TRAIN_DOCUMENTS, global_batch, args.num_train_epochs, args.max_steps)
        seconds = steps * per_step
        logs["eta_cnndm_hours"] = seconds / 3600
        if is_main:
            plan = (f"--max_steps {args.max_steps}" if args.max_steps and args.max_steps > 0
                    else f"{args.num_train_epochs:g} epoch(s)")
            print(f"throughput: {per_step:.3f} s per optimizer step (after the first); a CNN/DM-sized run "
                  f"({CNNDM_TRAIN_DOCUMENTS:,} documents, global batch {global_batch} = "
                  f"{args.per_device_train_batch_size} per device × {args.world_size} process(es) × "
                  f"{args.gradient_accumulation_steps} accumulation, "
                  f"{plan}: {steps:,} steps) would take about {format_duration(seconds)} at this rate", flush=True)
