"""The base every method's trainer stands on: :class:`DistillTrainer` and its :class:`DistillTrainingArguments`.

Named for what it is: the part of a distillation run that does not depend on the method. Each recipe's
trainer (LSR-MWF in :mod:`.lsr_mwf`, logit KD in :mod:`.logit_kd`, the causal BRD stage in
:mod:`.basic_reading`) subclasses it directly; none subclasses another method's. It carries

* checkpoint completion markers (:mod:`.checkpoints`), written once every process saved its part;
* throughput logging (samples/s, tokens/s, a CNN/DM-sized ETA; :mod:`.throughput`);
* global token normalisation: :meth:`DistillTrainer._token_share` turns a micro-batch's token-mean loss
  into its share of the optimizer step's global token mean;
* per-term loss logging: a subclass names its terms (``term_names``) and records them with
  :meth:`DistillTrainer._record`; :meth:`DistillTrainer.log` writes each term's mean since the last log;
* the LR schedule choice (HF's, or the LSR-MWF paper's Noam schedule, which the summarization presets fill
  for every summarization recipe) and one prediction row per example in multi-process prediction.
"""

import os
import signal
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
from torch.optim.lr_scheduler import LambdaLR
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

from ..io import InputError
from ..io.disk import writing
from ..io.interrupts import SignalFlag, parse_signals
from .checkpoints import write_complete_marker
from .throughput import Throughput

LR_SCHEDULES = ("hf", "noam")


@dataclass
class DistillTrainingArguments(Seq2SeqTrainingArguments):
    """``Seq2SeqTrainingArguments`` plus the LR schedule choice and the resume and column settings every run shares."""

    _argument_group_name = "Training (every recipe: transformers' Seq2SeqTrainingArguments, LR schedule, resume)"

    lr_schedule: str = field(
        default="hf",
        metadata={
            "help": "hf: --lr_scheduler_type. noam: the paper's lr = learning_rate * min(step^-0.5, "
                    "step * warmup^-1.5) with warmup = --warmup_steps (paper: --learning_rate 2e-3 "
                    "--warmup_steps 10000).",
            "choices": list(LR_SCHEDULES),
        },
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Start afresh even if --output_dir holds checkpoints (default: resume)."}
    )
    allow_fresh_optimizer: bool = field(
        default=False,
        metadata={"help": "Resume from a checkpoint that has no optimizer/scheduler state (optimizer.pt, "
                          "scheduler.pt or DeepSpeed's global_stepN/) with a fresh optimizer and schedule; without "
                          "it that is an error."},
    )
    save_on_signals: str = field(
        default="SIGTERM,SIGUSR1",
        metadata={"help": "Signals that make training finish its optimizer step, save a complete checkpoint, "
                          "skip evaluation and prediction and exit 130 (rerun the same command to resume); "
                          "comma-separated, or none. Every process of a multi-process run stops at the same step."},
    )
    # Our datasets hold exactly the model inputs; the collator refuses anything else.
    remove_unused_columns: bool = field(default=False, metadata={"help": "Kept False: the collator selects fields."})
    predict_with_generate: bool = field(default=True, metadata={"help": "Generate summaries in evaluate/predict."})

    def __post_init__(self):
        super().__post_init__()
        if self.dataloader_pin_memory and (self.use_cpu or not torch.cuda.is_available()):
            self.dataloader_pin_memory = False  # nothing to pin for: torch would warn on every dataloader
        try:
            self.stop_signals = parse_signals(self.save_on_signals, "--save_on_signals")
        except ValueError as e:
            raise InputError(str(e)) from None
        if self.stop_signals and self.enable_jit_checkpoint:
            raise InputError("--enable_jit_checkpoint: transformers' SIGTERM handler would race train.py's own, which "
                             "already saves on --save_on_signals (default SIGTERM,SIGUSR1); leave the flag out")
        if self.lr_schedule not in LR_SCHEDULES:
            raise InputError(f"--lr_schedule must be one of {list(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.lr_schedule == "noam" and self.warmup_steps < 1:
            raise InputError("--lr_schedule noam needs --warmup_steps >= 1 (a step count; the paper uses 10000)")


class NoamLambda:
    """LambdaLR factor ``min(step^-0.5, step * warmup^-1.5)`` where ``step`` is the 1-based number of the
    update about to happen (LambdaLR passes the count of updates done, so ``step = done + 1``).
    A class rather than a closure so the scheduler's state can be saved in checkpoints."""

    def __init__(self, warmup_steps: int):
        self.warmup_steps = warmup_steps

    def __call__(self, done: int) -> float:
        step = done + 1
        return min(step**-0.5, step * self.warmup_steps**-1.5)


def noam_lr(step: int, learning_rate: float, warmup_steps: int) -> float:
    """The paper's learning rate for update number ``step`` (1-based)."""
    return learning_rate * NoamLambda(warmup_steps)(step - 1)


def causal_lm_loss(logits, targets):
    """Token-mean cross-entropy of ``logits`` against ``targets`` (-100 ignored); an attached zero without targets."""
    mask = targets.ne(-100)
    return torch.nn.functional.cross_entropy(logits[mask].float(), targets[mask]) if mask.any() else logits.sum() * 0.0


class StopOnSignal(TrainerCallback):
    """Save and stop on ``--save_on_signals``: the handler only records the signal; at the end of the optimizer
    step every process learns whether any process got one (a max over the ranks, so all save the same step
    collectively), then the Trainer saves through its own checkpoint path (completion marker included) and
    leaves its loop. Later signals are ignored until the save is done. :attr:`stopped` says where it stopped."""

    def __init__(self, accelerator, signals):
        self.accelerator = accelerator
        self.flag = SignalFlag(signals)
        self.stopped: Optional[dict] = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.flag.install()

    def _agreed_signal(self) -> int:
        local = int(signal.Signals[self.flag.received]) if self.flag.received else 0
        if self.accelerator.num_processes == 1:
            return local
        t = torch.tensor([local], device=self.accelerator.device)
        return int(self.accelerator.reduce(t, reduction="max").item())

    def on_step_end(self, args, state, control, **kwargs):
        received = self._agreed_signal()
        if received:
            control.should_save, control.should_training_stop, control.should_evaluate = True, True, False
            self.stopped = {"signal": signal.Signals(received).name, "step": state.global_step,
                            "checkpoint": f"checkpoint-{state.global_step}"}

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.stopped:  # already saved at this step
            control.should_save = control.should_evaluate = False

    def on_train_end(self, args, state, control, **kwargs):
        self.flag.restore()


class DistillTrainer(Seq2SeqTrainer):
    """``Seq2SeqTrainer`` with the behaviour every method shares (see the module docstring).

    A subclass sets ``term_names`` (the loss terms it logs, in order) and implements ``compute_loss``,
    scaling its training loss by :meth:`_token_share` and recording its terms with :meth:`_record`.
    """

    term_names: List[str] = ["ce"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # compute_loss normalises the token loss by the global token count itself (see _token_share), so
        # the Trainer must count label tokens over the accumulated micro-batches and every rank, and must
        # not divide the loss by the accumulation steps again.
        self.model_accepts_loss_kwargs = True
        self._term_names = list(self.term_names)
        self._term_sum = None
        self._term_count = None
        self._throughput = Throughput()
        self.add_callback(self._throughput.clock)
        self.stop_on_signal = StopOnSignal(self.accelerator, getattr(self.args, "stop_signals", ()))
        self.add_callback(self.stop_on_signal)

    # -- checkpoints -----------------------------------------------------------------------------

    def _save_checkpoint(self, model, trial):
        """The Trainer's save, then the completion marker once every process finished its part."""
        path = os.path.join(self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}")
        with writing(path, f"the checkpoint of step {self.state.global_step}"):
            super()._save_checkpoint(model, trial)
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            if os.path.isdir(path):
                write_complete_marker(path, self.state.global_step)

    # -- loss ------------------------------------------------------------------------------------

    loss_is_scaled_for_ga = True

    def _token_share(self, local_tokens, num_items_in_batch):
        """The factor that turns this micro-batch's token-mean loss into its share of the optimizer
        step's global token mean: ``n_local / N`` (``N`` = label tokens over all accumulated
        micro-batches and, with ``--average_tokens_across_devices``, every rank), times the number of
        processes because DDP/DeepSpeed average the ranks' gradients. Summed over the micro-batches and
        ranks, each token weighs the same however the step's tokens fall into micro-batches; a
        per-batch mean would weigh a token of a short batch more. Without a count (no labels counted)
        the micro-batches weigh equally: ``1 / accumulation steps``."""
        if num_items_in_batch is None:
            return 1.0 / max(1, getattr(self, "current_gradient_accumulation_steps", 1))
        processes = self.accelerator.num_processes if self.args.average_tokens_across_devices else 1
        total = torch.as_tensor(num_items_in_batch, device=local_tokens.device).float().clamp(min=1)
        return local_tokens.float() * processes / total

    def training_step(self, model, inputs, num_items_in_batch=None):
        self._throughput.count(inputs)
        return super().training_step(model, inputs, num_items_in_batch)

    def _record(self, terms: Dict[str, object], device):
        """Accumulate each term (a tensor, or ``(tensor, counts_or_not)``) on the device until the next log."""
        if self._term_sum is None:
            self._term_sum = torch.zeros(len(self._term_names), device=device)
            self._term_count = torch.zeros(len(self._term_names), device=device)
        for k, name in enumerate(self._term_names):
            if name in terms:
                value, weight = terms[name] if isinstance(terms[name], tuple) else (terms[name], 1.0)
                weight = torch.as_tensor(weight, dtype=torch.float32, device=device)
                self._term_sum[k] += value.detach().float() * weight
                self._term_count[k] += weight

    # -- logging ---------------------------------------------------------------------------------

    def training_logs(self, logs: Dict[str, float]) -> None:
        """Add each term's mean since the last log and the throughput to a training log (every rank)."""
        if self._term_sum is not None:
            sums = self.accelerator.reduce(self._term_sum, reduction="sum")
            counts = self.accelerator.reduce(self._term_count, reduction="sum")
            for name, s, c in zip(self._term_names, sums.tolist(), counts.tolist()):
                if c > 0:
                    logs[name] = s / c
            self._term_sum.zero_()
            self._term_count.zero_()
        logs.update(self._throughput.rates(lambda t: self.accelerator.reduce(t, reduction="sum")))
        self._throughput.eta(self.args, logs, self.is_world_process_zero())

    def log(self, logs: Dict[str, float], start_time: Optional[float] = None) -> None:
        # Trainer.log runs on every rank; the reductions are collectives in the same order everywhere.
        if "loss" in logs and self.model.training:
            self.training_logs(logs)
        super().log(logs, start_time)

    # -- schedule --------------------------------------------------------------------------------

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.args.lr_schedule == "noam" and self.lr_scheduler is None:
            warmup = self.args.get_warmup_steps(num_training_steps)
            self.lr_scheduler = LambdaLR(optimizer if optimizer is not None else self.optimizer, NoamLambda(warmup))
            self._created_lr_scheduler = True
            return self.lr_scheduler
        return super().create_scheduler(num_training_steps, optimizer)

    # -- prediction ------------------------------------------------------------------------------

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix="test", **gen_kwargs):
        """``Seq2SeqTrainer.predict`` with exactly one row per example, in dataset order.

        Multi-process prediction pads the last batches with repeated examples so every process gets
        the same number; Seq2SeqTrainer gathers them all. Batches are handed out round-robin and
        gathered in rank order, so the first ``len(test_dataset)`` rows are the examples in order.
        """
        out = super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix, **gen_kwargs)
        n = len(test_dataset)
        preds = out.predictions[:n] if out.predictions is not None else None
        label_ids = out.label_ids[:n] if out.label_ids is not None else None
        return type(out)(predictions=preds, label_ids=label_ids, metrics=out.metrics)
