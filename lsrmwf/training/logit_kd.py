"""Logit KD's arguments and its trainer for decoder-only students (task-specific KD as the study does it).

The student learns ``prompt -> summary`` (:mod:`lsrmwf.data.causal`) with

    loss = kd_alpha * CE + (1 - kd_alpha) * T^2 * KL(teacher_T || student_T)   over the summary tokens

* white-box teacher (``--teacher_model_name_or_path``): a causal LM sharing the student's tokenizer,
  frozen, optionally in bf16/fp16 (``--teacher_dtype``) and split over devices (``--teacher_device_map auto``);
* served teacher (``--teacher_logprobs_file``, from ``generate_rationales.py --task teacher_logprobs``):
  sparse top-K KD (:mod:`lsrmwf.distill.sparse_kd`) on the teacher's own summaries (sequence-level KD),
  or on the dataset's reference summaries where the file's rows scored them (``--logprobs_target reference``);
* neither: plain fine-tuning on the references (CE only).

A BART student takes ``--teacher_model_name_or_path``, ``--kd_alpha`` and ``--kd_temperature`` too: its KD
term composes with LSR-MWF's view losses in :class:`lsrmwf.training.lsr_mwf.LsrMwfTrainer`. The causal run is
:mod:`lsrmwf.training.recipes.logit_kd`.
"""

from dataclasses import dataclass, field
from typing import Optional

import torch

from ..distill.logit_kd import kd_loss
from ..distill.sparse_kd import sparse_kd_loss
from ..io import InputError
from .base import DistillTrainer, causal_lm_loss


@dataclass
class LogitKDArguments:
    """The teacher (white-box or served top-K log-probs), the KD weights and a causal student's prompt."""

    _argument_group_name = "Logit KD (white-box or served sparse top-K teacher; causal students' prompt)"

    teacher_model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "Logit KD: a frozen teacher sharing the student's tokenizer, seq2seq for a BART student, "
                          "a causal LM for a causal student (loss = kd_alpha*CE + (1-kd_alpha)*T^2*KL)."},
    )
    teacher_dtype: str = field(
        default="auto",
        metadata={"help": "Causal teacher: load it in this dtype (auto = the checkpoint's).",
                  "choices": ["auto", "float32", "bfloat16", "float16"]},
    )
    teacher_device_map: Optional[str] = field(
        default=None,
        metadata={"help": "Causal teacher: split it over the visible devices (e.g. 'auto'; accelerate's device_map) "
                          "when it does not fit one; default: whole on the student's device."},
    )
    kd_alpha: float = field(default=0.5, metadata={"help": "KD: weight of CE against the T^2-scaled KL term."})
    kd_temperature: float = field(default=2.0, metadata={"help": "KD: softmax temperature T."})
    prompt_template: str = field(
        default="Summarize:\n{document}\n\nSummary:",
        metadata={"help": "Causal student: the prompt the summary continues; {document} is replaced by the "
                          "document."},
    )
    use_chat_template: bool = field(
        default=False,
        metadata={"help": "Causal student: put --prompt_template in a user turn of the tokenizer's chat template."},
    )
    teacher_logprobs_file: Optional[str] = field(
        default=None,
        metadata={"help": "Causal student: sparse top-K KD from a served teacher's top-K log-probs "
                          "(generate_rationales.py --task teacher_logprobs on the training split). The targets are "
                          "the teacher's own summaries, or the dataset's references where the file scored them "
                          "(--logprobs_target reference); the log says which."},
    )

    def __post_init__(self):
        if not 0.0 <= self.kd_alpha <= 1.0:
            raise InputError(f"--kd_alpha must lie in [0, 1], got {self.kd_alpha}")
        if self.kd_temperature <= 0:
            raise InputError(f"--kd_temperature must be > 0, got {self.kd_temperature}")
        if self.teacher_model_name_or_path and self.teacher_logprobs_file:
            raise InputError("give one teacher: --teacher_model_name_or_path (white-box) or --teacher_logprobs_file "
                             "(served)")


class LogitKDTrainer(DistillTrainer):
    """The trainer for decoder-only students: CE on summary tokens, white-box or sparse top-K KD, and
    generation of the continuation only in evaluate/predict."""

    term_names = ["ce", "kd_kl"]

    def __init__(self, *args, teacher_model=None, kd_alpha: float = 0.5, kd_temperature: float = 2.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher_model
        self.kd_alpha, self.kd_temperature = kd_alpha, kd_temperature
        if self.teacher is not None:
            self.teacher.eval()
            self.teacher.requires_grad_(False)
            if getattr(self.teacher, "hf_device_map", None) is None:  # a teacher split by device_map stays put
                self.teacher.to(self.args.device)
        # compute_loss always predicts token i+1 at position i: the Trainer must count labels[..., 1:] as
        # the global token count, whatever the model class says (GPT-2's loss_type is None, for one)
        self._loss_shifts_labels = True

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        logits, targets = outputs.logits[:, :-1], labels[:, 1:]  # position i predicts token i+1
        training = model.training
        if training and self.teacher is not None:
            with torch.no_grad():
                t_logits = self.teacher(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
            t_logits = t_logits[:, :-1].to(logits.device)
            loss, ce, kl = kd_loss(logits, t_logits, targets, self.kd_alpha, self.kd_temperature)
            self._record({"ce": ce, "kd_kl": kl}, loss.device)
        elif training and "teacher_top_ids" in inputs:
            loss, ce, kl = sparse_kd_loss(logits, targets, inputs["teacher_top_ids"][:, 1:],
                                          inputs["teacher_top_logprobs"][:, 1:], self.kd_alpha, self.kd_temperature)
            self._record({"ce": ce, "kd_kl": kl}, loss.device)
        else:
            loss = causal_lm_loss(logits, targets)
            if training:
                self._record({"ce": loss}, loss.device)
        if training:  # this micro-batch's share of the step's global token mean
            loss = loss * self._token_share(targets.ne(-100).sum(), num_items_in_batch)
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs).detach()
        if prediction_loss_only or not self.args.predict_with_generate:
            return loss, None, None
        if "prompt_input_ids" not in inputs:
            raise ValueError("generation needs 'prompt_input_ids' in the batch (tokenize with with_prompt=True)")
        prompt = inputs["prompt_input_ids"]
        from transformers.integrations import is_deepspeed_zero3_enabled

        with torch.no_grad():
            out = self.model.generate(input_ids=prompt, attention_mask=inputs["prompt_attention_mask"],
                                      synced_gpus=is_deepspeed_zero3_enabled())
        return loss, out[:, prompt.shape[1]:], inputs["labels"]
