"""The LSR-MWF trainer: Eq. (11)'s γ-weighted loss, optional logit KD, the paper's LR schedule,
and logging of every loss term, every gate and the throughput (samples/s, tokens/s, a CNN/DM-sized ETA).

``loss = gamma_ce * token_loss + gamma_views * (L_EA + L_AS + L_TER)`` where ``token_loss`` is the
cross-entropy, or with a teacher ``kd_alpha * CE + (1 - kd_alpha) * T^2 * KL``. A plain BART
(``--baseline``: no views) is trained on ``token_loss`` alone. In evaluation the loss is the token
cross-entropy, comparable across all of these.
"""

import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
from torch.optim.lr_scheduler import LambdaLR
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

from ..distill.logit_kd import kd_loss
from ..io import InputError
from .checkpoints import write_complete_marker
from .collators import view_present
from .throughput import Throughput

logger = logging.getLogger(__name__)

GATES_FILE = "gates.jsonl"
GATE_PARAMETER = "gate_logits"  # LsrMwfDecoderLayer.gate_logits
LR_SCHEDULES = ("hf", "noam")


@dataclass
class LsrMwfTrainingArguments(Seq2SeqTrainingArguments):
    """``Seq2SeqTrainingArguments`` plus the LSR-MWF loss weights, the LR schedule choice and KD."""

    gamma_ce: Optional[float] = field(
        default=None, metadata={"help": "γ1, weight of the token loss (preset: 0.6 cnndm, 0.7 xsum)."}
    )
    gamma_views: Optional[float] = field(
        default=None, metadata={"help": "γ2, weight of L_EA + L_AS + L_TER (preset: 0.4 cnndm, 0.3 xsum)."}
    )
    lr_schedule: str = field(
        default="hf",
        metadata={
            "help": "hf: --lr_scheduler_type. noam: the paper's lr = learning_rate * min(step^-0.5, "
                    "step * warmup^-1.5) with warmup = --warmup_steps (paper: --learning_rate 2e-3 "
                    "--warmup_steps 10000).",
            "choices": list(LR_SCHEDULES),
        },
    )
    gate_learning_rate: Optional[float] = field(
        default=None,
        metadata={"help": "Learning rate of the gate parameters (default: --learning_rate; with --lr_schedule noam "
                          "its Noam factor). Not needed for gates to learn: a gate is sigmoid(k*p) with k = 1/(g0(1-g0)), "
                          "so near its initial value g0 it moves like a directly learned weight, about one learning "
                          "rate per Adam step."},
    )
    kd_alpha: float = field(default=0.5, metadata={"help": "KD: weight of CE against the T^2-scaled KL term."})
    kd_temperature: float = field(default=2.0, metadata={"help": "KD: softmax temperature T."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Start afresh even if --output_dir holds checkpoints (default: resume)."}
    )
    allow_fresh_optimizer: bool = field(
        default=False,
        metadata={"help": "Resume from a checkpoint that has no optimizer/scheduler state (optimizer.pt, scheduler.pt or "
                          "DeepSpeed's global_stepN/) with a fresh optimizer and schedule; without it that is an error."},
    )
    # Our datasets hold exactly the model inputs; the collator refuses anything else.
    remove_unused_columns: bool = field(default=False, metadata={"help": "Kept False: the collator selects fields."})
    predict_with_generate: bool = field(default=True, metadata={"help": "Generate summaries in evaluate/predict."})

    def __post_init__(self):
        super().__post_init__()
        if self.dataloader_pin_memory and (self.use_cpu or not torch.cuda.is_available()):
            self.dataloader_pin_memory = False  # nothing to pin for: torch would warn on every dataloader
        if self.lr_schedule not in LR_SCHEDULES:
            raise InputError(f"--lr_schedule must be one of {list(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.lr_schedule == "noam" and self.warmup_steps < 1:
            raise InputError("--lr_schedule noam needs --warmup_steps >= 1 (a step count; the paper uses 10000)")
        if not 0.0 <= self.kd_alpha <= 1.0:
            raise InputError(f"--kd_alpha must lie in [0, 1], got {self.kd_alpha}")
        if self.kd_temperature <= 0:
            raise InputError(f"--kd_temperature must be > 0, got {self.kd_temperature}")
        if self.gate_learning_rate is not None and self.gate_learning_rate < 0:
            raise InputError(f"--gate_learning_rate must be >= 0, got {self.gate_learning_rate}")
        for name in ("gamma_ce", "gamma_views"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InputError(f"--{name} must be >= 0, got {value}")


class NoamLambda:
    """LambdaLR factor ``min(step^-0.5, step * warmup^-1.5)`` where ``step`` is the 1-based number of the
    update about to happen (LambdaLR passes the count of updates done, so ``step = done + 1``).
    A class rather than a closure so the scheduler's state can be saved in checkpoints."""

    def __init__(self, warmup_steps: int):
        self.warmup_steps = warmup_steps

    def __call__(self, done: int) -> float:
        step = done + 1
        return min(step**-0.5, step * self.warmup_steps**-1.5)


def model_views(model) -> tuple:
    return tuple(getattr(getattr(model, "config", None), "views", None) or ())


@contextlib.contextmanager
def gathered_parameters(params: List[torch.nn.Parameter]):
    """Make ZeRO-3-partitioned ``params`` readable (a collective: every rank must enter)."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    if params and is_deepspeed_zero3_enabled():
        import deepspeed

        with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
            yield
    else:
        yield


def read_gates(model) -> Optional[torch.Tensor]:
    """The model's gates ``[decoder_layers, views]`` as a float CPU tensor (``None`` for plain BART).

    Safe under ZeRO-3, where it must be called on every rank.
    """
    if not model_views(model) or not hasattr(model, "gates"):
        return None
    params = [p for n, p in model.named_parameters() if n.endswith(GATE_PARAMETER)]
    with gathered_parameters(params), torch.no_grad():
        return model.gates().detach().float().cpu()


def gate_log_keys(views, n_layers: int) -> List[List[str]]:
    return [[f"gate/{v}/layer{i:02d}" for v in views] for i in range(n_layers)]


class GateTrajectoryCallback(TrainerCallback):
    """Appends each logging step's gates to ``<output_dir>/gates.jsonl`` (main process only).

    Row: ``{"step", "epoch", "views", "gates": [[g per view] per decoder layer]}`` -- the data of the
    paper's Figure 4. The row for step 0 holds the initial gates. On resume, rows after the
    checkpoint's step (written by the interrupted run) are dropped so the file stays one trajectory.
    """

    def __init__(self, views, n_layers: int):
        self.views = list(views)
        self.keys = gate_log_keys(self.views, n_layers)

    def _path(self, args):
        return os.path.join(args.output_dir, GATES_FILE)

    def _append(self, args, row):
        os.makedirs(args.output_dir, exist_ok=True)
        with open(self._path(args), "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        gates = read_gates(model) if model is not None else None  # every rank (ZeRO-3 gather)
        if not state.is_world_process_zero:
            return
        path = self._path(args)
        if os.path.exists(path):
            from ..io import iter_jsonl, write_jsonl_atomic

            kept = [row for _, row in iter_jsonl(path, tolerate_torn_tail=True) if row.get("step", 0) <= state.global_step]
            if state.global_step == 0:
                kept = []
            write_jsonl_atomic(path, kept)
        if state.global_step == 0 and gates is not None:
            self._append(args, {"step": 0, "epoch": 0.0, "views": self.views, "gates": gates.tolist()})

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or self.keys[0][0] not in logs:
            return
        gates = [[float(logs[k]) for k in row] for row in self.keys]
        self._append(args, {"step": state.global_step, "epoch": state.epoch, "views": self.views, "gates": gates})


class LsrMwfTrainer(Seq2SeqTrainer):
    """``Seq2SeqTrainer`` with Eq. (11)'s loss, optional logit KD and per-term / per-gate logging.

    Pass ``teacher_model`` for KD: it is frozen, moved to the student's device and never wrapped by
    DDP or DeepSpeed (it is not an attribute of the trained model). ``args.gamma_ce`` and
    ``args.gamma_views`` must be set for a model with views (``fill_from_preset`` does that).
    """

    def __init__(self, *args, teacher_model=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.views = model_views(self.model)
        if self.views and (self.args.gamma_ce is None or self.args.gamma_views is None):
            raise ValueError(
                "gamma_ce and gamma_views are unset; pass them (--gamma_ce/--gamma_views) or fill them from a preset "
                "(--preset cnndm|xsum, or lsrmwf.presets.fill_from_preset(training_args, 'cnndm'))"
            )
        self.teacher = teacher_model
        if self.teacher is not None:
            self.teacher.eval()
            self.teacher.requires_grad_(False)
            if getattr(self.teacher, "hf_device_map", None) is None:  # a teacher split by device_map stays where it is
                self.teacher.to(self.args.device)
        # compute_loss normalises the token loss by the global token count itself (see _token_share), so
        # the Trainer must count label tokens over the accumulated micro-batches and every rank, and must
        # not divide the loss by the accumulation steps again.
        self.model_accepts_loss_kwargs = True
        self._term_names = ["ce"] + (["kd_kl"] if self.teacher is not None else []) + [f"loss_{v}" for v in self.views]
        self._term_sum = None
        self._term_count = None
        self._throughput = Throughput()
        self.add_callback(self._throughput.clock)
        if self.views and hasattr(self.model, "gates"):
            n_layers = self.model.config.decoder_layers
            self._gate_keys = gate_log_keys(self.views, n_layers)
            self.add_callback(GateTrajectoryCallback(self.views, n_layers))
        else:
            self._gate_keys = None

    # -- checkpoints -----------------------------------------------------------------------------

    def _save_checkpoint(self, model, trial):
        """The Trainer's save, then the completion marker once every process finished its part."""
        super()._save_checkpoint(model, trial)
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            path = os.path.join(self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}")
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

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.get("labels")
        if labels is None:
            raise ValueError("LsrMwfTrainer needs 'labels' in every batch")
        training = model.training
        teacher = self.teacher if training else None
        model_inputs = dict(inputs)
        if teacher is not None:
            from transformers.models.bart.modeling_bart import shift_tokens_right

            cfg = self.model.config
            model_inputs["decoder_input_ids"] = shift_tokens_right(labels, cfg.pad_token_id, cfg.decoder_start_token_id)
        outputs = model(**model_inputs)
        if self.label_smoother is not None:
            ce = self.label_smoother(outputs, labels)
        else:
            ce = outputs.loss
        if not training:
            return (ce, outputs) if return_outputs else ce

        terms: Dict[str, object] = {"ce": ce}
        token_loss = ce
        if teacher is not None:
            with torch.no_grad():
                t_logits = teacher(
                    input_ids=inputs["input_ids"],
                    attention_mask=inputs.get("attention_mask"),
                    decoder_input_ids=model_inputs["decoder_input_ids"],
                ).logits
            token_loss, _, kl = kd_loss(outputs.logits, t_logits, labels, self.args.kd_alpha, self.args.kd_temperature, ce=ce)
            terms["kd_kl"] = kl

        # Each term is a mean over this micro-batch; the step's loss weighs tokens globally (_token_share)
        # and the view losses (means over documents) equally per micro-batch.
        token_term = token_loss * self._token_share(labels.ne(-100).sum(), num_items_in_batch)
        if self.views:
            view_losses = getattr(outputs, "view_losses", None) or {}
            loss = self.args.gamma_ce * token_term
            if view_losses:
                # a view without any rationale in this batch contributes the model's exact (attached) zero
                per_batch = 1.0 / max(1, getattr(self, "current_gradient_accumulation_steps", 1))
                loss = loss + self.args.gamma_views * per_batch * torch.stack(
                    [view_losses[v] for v in self.views if v in view_losses]).sum()
            for v in self.views:
                if v in view_losses:  # logged as the mean over the batches that had this view (no host sync here)
                    terms[f"loss_{v}"] = (view_losses[v], view_present(inputs, v).any())
        else:
            loss = token_term
        self._record(terms, loss.device)
        return (loss, outputs) if return_outputs else loss

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

    def log(self, logs: Dict[str, float], start_time: Optional[float] = None) -> None:
        # Trainer.log runs on every rank; the reductions below are collectives in the same order everywhere.
        if "loss" in logs and self.model.training:
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
            if self._gate_keys is not None:
                gates = read_gates(self.model)
                for row_keys, row in zip(self._gate_keys, gates.tolist()):
                    for key, g in zip(row_keys, row):
                        logs[key] = g
        super().log(logs, start_time)

    # -- optimizer and schedule ------------------------------------------------------------------

    def get_decay_parameter_names(self, model) -> List[str]:
        # Weight decay would pull every gate logit toward 0, i.e. every gate toward 0.5.
        return [n for n in super().get_decay_parameter_names(model) if not n.endswith(GATE_PARAMETER)]

    def create_optimizer(self, model=None):
        """The Trainer's optimizer; with ``--gate_learning_rate`` the gate logits get their own group."""
        ours = self.optimizer is None
        optimizer = super().create_optimizer(model)
        if ours and self.args.gate_learning_rate is not None:
            gates = [p for n, p in (model or self.model).named_parameters() if n.endswith(GATE_PARAMETER) and p.requires_grad]
            if gates:
                moved = {id(p) for p in gates}
                for group in optimizer.param_groups:
                    group["params"] = [p for p in group["params"] if id(p) not in moved]
                optimizer.add_param_group({"params": gates, "lr": self.args.gate_learning_rate, "weight_decay": 0.0})
        return optimizer

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


def noam_lr(step: int, learning_rate: float, warmup_steps: int) -> float:
    """The paper's learning rate for update number ``step`` (1-based)."""
    return learning_rate * NoamLambda(warmup_steps)(step - 1)


__all__ = [
    "LsrMwfTrainingArguments",
    "LsrMwfTrainer",
    "GateTrajectoryCallback",
    "NoamLambda",
    "noam_lr",
    "read_gates",
    "GATES_FILE",
]
