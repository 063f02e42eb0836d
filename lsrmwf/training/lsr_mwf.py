"""LSR-MWF's arguments and trainer: Eq. (11)'s γ-weighted loss over the views, the gates and their trajectory.

``loss = gamma_ce * token_loss + gamma_views * (L_EA + L_AS + L_TER)`` where ``token_loss`` is the
cross-entropy, or with a seq2seq teacher ``kd_alpha * CE + (1 - kd_alpha) * T^2 * KL``. A plain BART
(``--baseline``: no views) is trained on ``token_loss`` alone. In evaluation the loss is the token
cross-entropy, comparable across all of these. The run is :mod:`lsrmwf.training.recipes.lsr_mwf`.
"""

import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
from transformers import TrainerCallback

from ..distill.logit_kd import kd_loss
from ..io import InputError
from ..io.schema import VIEWS
from .base import DistillTrainer
from .collators import view_present
from .core import model_views

GATES_FILE = "gates.jsonl"
GATE_PARAMETER = "gate_logits"  # LsrMwfDecoderLayer.gate_logits
TARGETS = ("gold", "llm_summary", "both")


@dataclass
class LsrMwfArguments:
    """The LSR-MWF student (BART with views and gates, or plain BART), its rationale data and Eq. (11)'s weights."""

    _argument_group_name = "LSR-MWF (BART student: views, gates, rationales, γ weights)"

    baseline: bool = field(
        default=False,
        metadata={"help": "Train plain BartForConditionalGeneration (no views, no gates, loss = token loss)."},
    )
    views: Optional[List[str]] = field(
        default=None,
        metadata={"help": "LSR-MWF views to build (ablations): any of ea as ter. Default: all three, or the "
                          "checkpoint's own views for an LSR-MWF checkpoint."},
    )
    gate_init: Optional[float] = field(
        default=None, metadata={"help": "Initial gate value (preset: 0.02 cnndm, 0.01 xsum)."})
    freeze_gates: bool = field(
        default=False, metadata={"help": "Keep the gates fixed at --gate_init (Table 4 ablation)."})
    freeze_encoder: bool = field(
        default=False,
        metadata={"help": "Do not train BART's encoder (layers, positions, LayerNorms); the view modules, gates and "
                          "decoder still train. For small GPUs: no optimizer state and no gradients for the encoder."},
    )
    freeze_embeddings: bool = field(
        default=False,
        metadata={"help": "Do not train the shared token embeddings (tied with the LM head) and BART's learned "
                          "positions."},
    )
    view_ffn_dim: Optional[int] = field(
        default=None,
        metadata={"help": "Feed-forward width of the view layers. Default: 2 * d_model (half of bart-large's), or the "
                          "checkpoint's own width for an LSR-MWF checkpoint; the encoder's width gives full BART "
                          "layers."},
    )
    cache_rationale_targets: bool = field(
        default=True,
        metadata={"help": "Encode the rationale texts once with the initial model before training (the paper's "
                          "'previously encoded' targets, cached by datasets) instead of in every step."},
    )
    rationale_file: Optional[str] = field(
        default=None,
        metadata={"help": "Rationale JSONL from generate_rationales.py for the training split (see "
                          "--rationale_policy for documents without a kept row). Without it the alignment losses "
                          "are off."},
    )
    rationale_policy: str = field(
        default="drop",
        metadata={"help": "Documents whose rationale row was rejected by selection, failed or is missing: drop (the "
                          "paper's filtering and every preset's default: they do not train) or ce_only (they train "
                          "with the token loss only, view losses masked). The run prints and records the counts.",
                  "choices": ["drop", "ce_only"]},
    )
    on_duplicate: str = field(
        default="error",
        metadata={"help": "An id written twice in --rationale_file: error (naming the ids), or last (its last row "
                          "wins).", "choices": ["error", "last"]},
    )
    target: str = field(
        default="gold",
        metadata={"help": "Training targets: gold summaries, the LLM's total summaries from --rationale_file "
                          "(sequence-level distillation), or both (each document once with each).",
                  "choices": list(TARGETS)},
    )
    max_rationale_length: int = field(default=256, metadata={"help": "Tokens per rationale view text."})
    gamma_ce: Optional[float] = field(
        default=None, metadata={"help": "γ1, weight of the token loss (preset: 0.6 cnndm, 0.7 xsum)."}
    )
    gamma_views: Optional[float] = field(
        default=None, metadata={"help": "γ2, weight of L_EA + L_AS + L_TER (preset: 0.4 cnndm, 0.3 xsum)."}
    )
    gate_learning_rate: Optional[float] = field(
        default=None,
        metadata={"help": "Learning rate of the gate parameters (default: --learning_rate; with --lr_schedule noam "
                          "its Noam factor). Not needed for gates to learn: a gate is sigmoid(k*p) with k = "
                          "1/(g0(1-g0)), so near its initial value g0 it moves like a directly learned weight, about "
                          "one learning rate per Adam step."},
    )

    def __post_init__(self):
        if self.views is not None:
            bad = [v for v in self.views if v not in VIEWS]
            if bad or not self.views:
                raise InputError(f"--views must be a non-empty subset of {list(VIEWS)}, got {self.views}")
            if len(set(self.views)) != len(self.views):
                raise InputError(f"--views lists a view twice: {self.views}")
            self.views = [v for v in VIEWS if v in self.views]  # the hierarchy's order
        if self.baseline and self.views is not None:
            raise InputError(f"--baseline trains plain BART without views; --views {' '.join(self.views)} would be "
                             f"ignored. Leave out one of them")
        if self.view_ffn_dim is not None and self.view_ffn_dim < 1:
            raise InputError(f"--view_ffn_dim must be a positive width, got {self.view_ffn_dim}")
        if self.gate_init is not None and not 0.0 < self.gate_init < 1.0:
            raise InputError(f"--gate_init must lie strictly between 0 and 1, got {self.gate_init}")
        if self.target != "gold" and not self.rationale_file:
            raise InputError(f"--target {self.target} trains on the LLM summaries of --rationale_file; give that file")
        if self.gate_learning_rate is not None and self.gate_learning_rate < 0:
            raise InputError(f"--gate_learning_rate must be >= 0, got {self.gate_learning_rate}")
        for name in ("gamma_ce", "gamma_views"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InputError(f"--{name} must be >= 0, got {value}")


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


def current_gates(model) -> Optional[torch.Tensor]:
    """The model's gates ``[decoder_layers, views]`` as a float CPU tensor (``None`` for plain BART).

    Safe under ZeRO-3, where it must be called on every rank. (:func:`lsrmwf.evaluation.gates.read_gates`
    reads a run's ``gates.jsonl`` instead.)
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
        gates = current_gates(model) if model is not None else None  # every rank (ZeRO-3 gather)
        if not state.is_world_process_zero:
            return
        path = self._path(args)
        if os.path.exists(path):
            from ..io import iter_jsonl, write_jsonl_atomic

            kept = [row for _, row in iter_jsonl(path, tolerate_torn_tail=True)
                    if row.get("step", 0) <= state.global_step]
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


class LsrMwfTrainer(DistillTrainer):
    """:class:`DistillTrainer` with Eq. (11)'s loss, optional seq2seq logit KD, the gates' optimizer group
    and per-term / per-gate logging.

    ``lsr_mwf`` holds γ1/γ2 (required for a model with views; ``--preset`` fills them) and
    ``--gate_learning_rate``. Pass ``teacher_model`` (with ``kd_alpha``, ``kd_temperature``) for KD: it is
    frozen, moved to the student's device and never wrapped by DDP or DeepSpeed (it is not an attribute of
    the trained model).
    """

    def __init__(self, *args, lsr_mwf: Optional[LsrMwfArguments] = None, teacher_model=None, kd_alpha: float = 0.5,
                 kd_temperature: float = 2.0, **kwargs):
        self.lsr_mwf = lsr_mwf if lsr_mwf is not None else LsrMwfArguments()
        self.teacher = teacher_model
        self.kd_alpha, self.kd_temperature = kd_alpha, kd_temperature
        model = kwargs.get("model", args[0] if args else None)
        self.views = model_views(model)
        self.term_names = (["ce"] + (["kd_kl"] if teacher_model is not None else [])
                           + [f"loss_{v}" for v in self.views])
        super().__init__(*args, **kwargs)
        if self.views and (self.lsr_mwf.gamma_ce is None or self.lsr_mwf.gamma_views is None):
            raise ValueError(
                "gamma_ce and gamma_views are unset; pass them (--gamma_ce/--gamma_views) or fill them from a preset "
                "(--preset cnndm|xsum, or lsrmwf.presets.fill_from_preset(lsr_mwf_args, 'cnndm'))"
            )
        if self.teacher is not None:
            self.teacher.eval()
            self.teacher.requires_grad_(False)
            if getattr(self.teacher, "hf_device_map", None) is None:  # a teacher split by device_map stays put
                self.teacher.to(self.args.device)
        if self.views and hasattr(self.model, "gates"):
            n_layers = self.model.config.decoder_layers
            self._gate_keys = gate_log_keys(self.views, n_layers)
            self.add_callback(GateTrajectoryCallback(self.views, n_layers))
        else:
            self._gate_keys = None

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
            model_inputs["decoder_input_ids"] = shift_tokens_right(labels, cfg.pad_token_id,
                                                                   cfg.decoder_start_token_id)
        outputs = model(**model_inputs)
        ce = self.label_smoother(outputs, labels) if self.label_smoother is not None else outputs.loss
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
            token_loss, _, kl = kd_loss(outputs.logits, t_logits, labels, self.kd_alpha, self.kd_temperature, ce=ce)
            terms["kd_kl"] = kl
        loss = self.weighted_loss(token_loss, outputs, inputs, labels, num_items_in_batch, terms)
        self._record(terms, loss.device)
        return (loss, outputs) if return_outputs else loss

    def weighted_loss(self, token_loss, outputs, inputs, labels, num_items_in_batch, terms):
        """Eq. (11): γ1 · this micro-batch's share of the token loss + γ2 · its view losses (``terms`` gets them)."""
        # Each term is a mean over this micro-batch; the step's loss weighs tokens globally (_token_share)
        # and the view losses (means over documents) equally per micro-batch.
        token_term = token_loss * self._token_share(labels.ne(-100).sum(), num_items_in_batch)
        if not self.views:
            return token_term
        view_losses = getattr(outputs, "view_losses", None) or {}
        loss = self.lsr_mwf.gamma_ce * token_term
        if view_losses:
            # a view without any rationale in this batch contributes the model's exact (attached) zero
            per_batch = 1.0 / max(1, getattr(self, "current_gradient_accumulation_steps", 1))
            loss = loss + self.lsr_mwf.gamma_views * per_batch * torch.stack(
                [view_losses[v] for v in self.views if v in view_losses]).sum()
        for v in self.views:
            if v in view_losses:  # logged as the mean over the batches that had this view (no host sync here)
                terms[f"loss_{v}"] = (view_losses[v], view_present(inputs, v).any())
        return loss

    def training_logs(self, logs: Dict[str, float]) -> None:
        super().training_logs(logs)
        if self._gate_keys is not None:
            gates = current_gates(self.model)
            for row_keys, row in zip(self._gate_keys, gates.tolist()):
                for key, g in zip(row_keys, row):
                    logs[key] = g

    # -- optimizer -------------------------------------------------------------------------------

    def get_decay_parameter_names(self, model) -> List[str]:
        # Weight decay would pull every gate logit toward 0, i.e. every gate toward 0.5.
        return [n for n in super().get_decay_parameter_names(model) if not n.endswith(GATE_PARAMETER)]

    def create_optimizer(self, model=None):
        """The Trainer's optimizer; with ``--gate_learning_rate`` the gate logits get their own group."""
        ours = self.optimizer is None
        optimizer = super().create_optimizer(model)
        rate = self.lsr_mwf.gate_learning_rate
        if ours and rate is not None:
            gates = [p for n, p in (model or self.model).named_parameters()
                     if n.endswith(GATE_PARAMETER) and p.requires_grad]
            if gates:
                moved = {id(p) for p in gates}
                for group in optimizer.param_groups:
                    group["params"] = [p for p in group["params"] if id(p) not in moved]
                optimizer.add_param_group({"params": gates, "lr": rate, "weight_decay": 0.0})
        return optimizer
