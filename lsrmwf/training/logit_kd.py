"""Logit KD's arguments and its trainer for decoder-only students (task-specific KD as the study does it).

The student learns ``prompt -> summary`` (:mod:`lsrmwf.data.causal`) with

    loss = kd_alpha * CE + (1 - kd_alpha) * T^2 * D(teacher_T, student_T)   over the summary tokens

``D`` is ``--kd_loss``: forward KL (the study's, default), reverse KL, generalised JSD or skew KL (``--kd_beta``;
:mod:`lsrmwf.distill.logit_kd`). A teacher whose embedding is padded beyond the shared tokenizer (or a student's)
is compared over the tokenizer's ids.

On-policy samples (GKD's lambda): with probability ``--kd_on_policy_lambda`` a training micro-batch's targets are
the student's own samples of its prompts (``--kd_on_policy_temperature``, ``--kd_on_policy_max_new_tokens``),
scored by the teacher; such a step's loss is the KD term alone, ``(1 - kd_alpha) * T^2 * D`` (CE on the student's
own samples would teach it nothing it does not already say). A white-box teacher scores the sampled ids. A served
teacher (``--teacher_logprobs_file`` with ``--teacher_endpoint_config``) scores each sample's text after the
file's prompt through ``/v1/completions`` with ``echo=true`` (:class:`lsrmwf.llm.teacher_logprobs.ServedTeacher`):
the targets are the teacher's tokens of that text mapped to student ids as the stored file's are, with its top-K
log-probs at each, and the loss is sparse top-K KD there. The end of a sample (its eos) is no text, so the served
teacher's echo answer (the distributions at the text's own tokens) has no row for it: a sample's eos gets no KD
term (counted: ``eos_without_kd``); a sample whose text the server's tokens do not spell is left out of the step
(counted).

* white-box teacher (``--teacher_model_name_or_path``): a causal LM sharing the student's tokenizer,
  frozen, optionally in bf16/fp16 (``--teacher_dtype``) and split over devices (``--teacher_device_map auto``);
* served teacher (``--teacher_logprobs_file``, from ``generate_rationales.py --task teacher_logprobs``):
  sparse top-K KD (:mod:`lsrmwf.distill.sparse_kd`) on the teacher's own summaries (sequence-level KD),
  or on the dataset's reference summaries where the file's rows scored them (``--logprobs_target reference``);
  with ``--kd_alignment text`` the served teacher may use another tokenizer: its rows are aligned with the
  student's tokens of the same text (:mod:`lsrmwf.distill.text_alignment`) and the KD term is ULD, plus an
  optional KL over the tokens both vocabularies share (:mod:`lsrmwf.distill.uld`); a white-box teacher of another
  tokenizer works the same way, its top-K (``--kd_text_top_k``) computed on the fly at the aligned positions;
* neither: plain fine-tuning on the references (CE only).

A BART student takes ``--teacher_model_name_or_path``, ``--kd_alpha`` and ``--kd_temperature`` too: its KD
term composes with LSR-MWF's view losses in :class:`lsrmwf.training.lsr_mwf.LsrMwfTrainer`. The causal run is
:mod:`lsrmwf.training.recipes.logit_kd`.
"""

import copy
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Optional

import torch

from ..distill.logit_kd import KD_LOSSES, check_kd_loss, kd_loss
from ..distill.sparse_kd import map_teacher_tokens, sparse_kd_loss, special_token_bytes, token_bytes_table
from ..distill.uld import teacher_top_k_rows, uld_kd_loss
from ..io import InputError
from .base import DistillTrainer, causal_lm_loss

logger = logging.getLogger("lsrmwf.train")


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
    kd_loss: str = field(
        default="forward_kl",
        metadata={"help": "Causal student's KD divergence D(teacher_T, student_T), scaled by T^2: forward_kl (the "
                          "study's), reverse_kl (MiniLLM), jsd (GKD's generalised JSD, beta = --kd_beta) or skew_kl "
                          "(DistiLLM, alpha = --kd_beta).", "choices": list(KD_LOSSES)},
    )
    kd_beta: Optional[float] = field(
        default=None,
        metadata={"help": "JSD's beta in (0, 1) (default 0.5) or skew KL's alpha in [0, 1) (default 0.1)."},
    )
    kd_on_policy_lambda: float = field(
        default=0.0,
        metadata={"help": "Causal student, white-box teacher: the probability that a training micro-batch's targets "
                          "are the student's own samples, scored by the teacher (GKD's lambda; 0 = off)."},
    )
    kd_on_policy_temperature: float = field(default=1.0, metadata={"help": "On-policy samples: sampling temperature."})
    kd_on_policy_max_new_tokens: int = field(default=64, metadata={"help": "On-policy samples: max new tokens."})
    prompt_template: str = field(
        default="Summarize:\n{document}\n\nSummary:",
        metadata={"help": "Causal student: the prompt the summary continues; {document} is replaced by the "
                          "document."},
    )
    use_chat_template: bool = field(
        default=False,
        metadata={"help": "Causal student: put --prompt_template in a user turn of the tokenizer's chat template."},
    )
    teacher_endpoint_config: Optional[str] = field(
        default=None,
        metadata={"help": "Served teacher with --kd_on_policy_lambda: a YAML/JSON file of generate_rationales.py's "
                          "endpoint arguments (base_url, model, api_key, timeout, max_retries, concurrency), e.g. the "
                          "<teacher file>.config.yaml it saved; that endpoint scores the student's samples (echo=true "
                          "on /v1/completions, K and prompt as the teacher file was written)."},
    )
    teacher_logprobs_file: Optional[str] = field(
        default=None,
        metadata={"help": "Causal student: sparse top-K KD from a served teacher's top-K log-probs "
                          "(generate_rationales.py --task teacher_logprobs on the training split). The targets are "
                          "the teacher's own summaries, or the dataset's references where the file scored them "
                          "(--logprobs_target reference); the log says which."},
    )
    kd_alignment: str = field(
        default="tokens",
        metadata={"help": "Served teacher: 'tokens' (its tokens are the student's: same tokenizer) or 'text' (another "
                          "tokenizer: its rows and the student's tokens are aligned through the bytes of the same "
                          "text; exact spans 1:1, a group of differing spans gives its first student token the "
                          "group's first teacher row; KD term ULD).", "choices": ["tokens", "text"]},
    )
    kd_shared_vocab_weight: float = field(
        default=0.0,
        metadata={"help": "--kd_alignment text: weight of a KL (--kd_loss, T^2-scaled) over the teacher's "
                          "alternatives whose strings are also student tokens, added to ULD (0 = ULD only); the KL is "
                          "averaged over the aligned positions that have such an alternative only."},
    )
    kd_text_top_k: int = field(
        default=20,
        metadata={"help": "--kd_alignment text with a white-box teacher: the K most probable teacher tokens per "
                          "aligned position that ULD (and the shared-vocabulary KL) compare, as a served top-K."},
    )
    kd_teacher_tokenizer: Optional[str] = field(
        default=None,
        metadata={"help": "--kd_alignment text, --kd_shared_vocab_weight > 0, a file with token ids only: the served "
                          "teacher's tokenizer (path or hub name), to name its alternatives' strings."},
    )

    def __post_init__(self):
        if not 0.0 <= self.kd_alpha <= 1.0:
            raise InputError(f"--kd_alpha must lie in [0, 1], got {self.kd_alpha}")
        if self.kd_temperature <= 0:
            raise InputError(f"--kd_temperature must be > 0, got {self.kd_temperature}")
        if self.teacher_model_name_or_path and self.teacher_logprobs_file:
            raise InputError("give one teacher: --teacher_model_name_or_path (white-box) or --teacher_logprobs_file "
                             "(served)")
        check_kd_loss(self.kd_loss, self.kd_beta)
        if not 0.0 <= self.kd_on_policy_lambda <= 1.0:
            raise InputError(f"--kd_on_policy_lambda must lie in [0, 1], got {self.kd_on_policy_lambda}")
        if self.kd_on_policy_temperature <= 0:
            raise InputError(f"--kd_on_policy_temperature must be > 0, got {self.kd_on_policy_temperature}")
        if self.kd_on_policy_max_new_tokens < 1:
            raise InputError(f"--kd_on_policy_max_new_tokens must be >= 1, got {self.kd_on_policy_max_new_tokens}")
        if self.kd_on_policy_lambda and self.teacher_logprobs_file and not self.teacher_endpoint_config:
            raise InputError("--kd_on_policy_lambda with --teacher_logprobs_file: a stored top-K file cannot score "
                             "the student's samples; name the endpoint that serves the teacher with "
                             "--teacher_endpoint_config (e.g. the <teacher file>.config.yaml generate_rationales.py "
                             "saved)")
        if self.kd_on_policy_lambda and not (self.teacher_model_name_or_path or self.teacher_logprobs_file):
            raise InputError("--kd_on_policy_lambda needs a teacher to score the student's samples: a white-box "
                             "--teacher_model_name_or_path, or a served one (--teacher_logprobs_file with "
                             "--teacher_endpoint_config)")
        if self.teacher_endpoint_config and not (self.teacher_logprobs_file and self.kd_on_policy_lambda):
            raise InputError("--teacher_endpoint_config scores on-policy samples of a served teacher: it needs "
                             "--teacher_logprobs_file and --kd_on_policy_lambda > 0")
        if self.kd_alignment not in ("tokens", "text"):
            raise InputError(f"--kd_alignment must be 'tokens' or 'text', got {self.kd_alignment!r}")
        if self.kd_alignment == "text" and not (self.teacher_logprobs_file or self.teacher_model_name_or_path):
            raise InputError("--kd_alignment text aligns a teacher's rows with the student's tokens: give "
                             "--teacher_logprobs_file (served) or --teacher_model_name_or_path (white-box)")
        if self.kd_alignment == "text" and self.kd_on_policy_lambda:
            raise InputError("--kd_on_policy_lambda with --kd_alignment text: on-policy samples are scored by a "
                             "teacher of the student's tokenizer only")
        if self.kd_text_top_k < 1:
            raise InputError(f"--kd_text_top_k must be >= 1, got {self.kd_text_top_k}")
        if self.kd_shared_vocab_weight < 0:
            raise InputError(f"--kd_shared_vocab_weight must be >= 0, got {self.kd_shared_vocab_weight}")
        if self.kd_shared_vocab_weight and self.kd_alignment != "text":
            raise InputError("--kd_shared_vocab_weight applies to --kd_alignment text (with one tokenizer every "
                             "token is shared: the KD term is already over the teacher's top-K)")
        if self.kd_teacher_tokenizer and (self.kd_alignment != "text" or self.teacher_model_name_or_path):
            raise InputError("--kd_teacher_tokenizer applies to --kd_alignment text with --teacher_logprobs_file only "
                             "(a white-box teacher's tokenizer comes with it)")


class LogitKDTrainer(DistillTrainer):
    """The trainer for decoder-only students: CE on summary tokens, white-box or sparse top-K KD with one of
    :data:`KD_LOSSES`, on-policy samples scored by a white-box teacher or by a served one (``served_teacher``, a
    :class:`lsrmwf.llm.teacher_logprobs.ServedTeacher`, with ``documents``: the training documents that the
    batches' ``document_index`` points into), and generation of the continuation only in evaluate/predict.
    ``kd_vocab_size`` (default: the tokenizer's length) is how many ids KD compares."""

    term_names = ["ce", "kd_kl"]

    def __init__(self, *args, teacher_model=None, kd_alpha: float = 0.5, kd_temperature: float = 2.0,
                 kd_loss: str = "forward_kl", kd_beta: Optional[float] = None, kd_vocab_size: Optional[int] = None,
                 on_policy_lambda: float = 0.0, on_policy_temperature: float = 1.0, on_policy_max_new_tokens: int = 64,
                 served_teacher=None, documents=None, kd_alignment: str = "tokens",
                 kd_shared_vocab_weight: float = 0.0, text_teacher_model=None, text_teacher_top_k: int = 20,
                 text_teacher_vocab_size: Optional[int] = None, text_teacher_shared_map: Optional[torch.Tensor] = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher_model
        self.kd_alpha, self.kd_temperature = kd_alpha, kd_temperature
        self.kd_loss, self.kd_beta = kd_loss, check_kd_loss(kd_loss, kd_beta)
        self.kd_term = "kd_kl" if kd_loss == "forward_kl" else f"kd_{kd_loss}"
        self._term_names[1] = self.kd_term
        self.kd_alignment, self.kd_shared_vocab_weight = kd_alignment, kd_shared_vocab_weight
        if kd_alignment == "text":  # another tokenizer: the KD term is ULD (+ the shared-vocabulary divergence)
            self.kd_term = self._term_names[1] = "kd_uld"
            if kd_shared_vocab_weight:
                self._term_names.append("kd_shared")
        # a white-box teacher of another tokenizer: its rows become a served teacher's (teacher_top_k_rows)
        self.text_teacher, self.text_teacher_top_k = text_teacher_model, text_teacher_top_k
        self.text_teacher_vocab_size, self.text_teacher_shared_map = text_teacher_vocab_size, text_teacher_shared_map
        if self.text_teacher is not None:
            self.text_teacher.eval()
            self.text_teacher.requires_grad_(False)
            if getattr(self.text_teacher, "hf_device_map", None) is None:
                self.text_teacher.to(self.args.device)
        tok = self.processing_class
        self.kd_vocab_size = kd_vocab_size or (len(tok) if tok is not None and hasattr(tok, "__len__") else None)
        self.served_teacher, self.documents = served_teacher, documents
        if on_policy_lambda and self.teacher is None and served_teacher is None:
            raise InputError("on-policy samples need a teacher to score them (white-box, or a served one)")
        if served_teacher is not None and documents is None:
            raise ValueError("a served teacher scores samples after the training documents: pass documents")
        self._token_table = None
        self.served_stats = {"samples": 0, "scored": 0, "unscored": 0, "eos_without_kd": 0, "first_unscored": None,
                             "seconds": 0.0}
        self.on_policy_lambda = on_policy_lambda
        self.on_policy_temperature, self.on_policy_max_new_tokens = on_policy_temperature, on_policy_max_new_tokens
        self._policy_rng = random.Random(self.args.seed)
        self._policy_kind = "off_policy"
        self.policy_stats = {k: {"steps": 0, "seconds": 0.0, "target_tokens": 0} for k in ("on_policy", "off_policy")}
        if on_policy_lambda:
            self._term_names.append("on_policy_share")
        if self.teacher is not None:
            self.teacher.eval()
            self.teacher.requires_grad_(False)
            if getattr(self.teacher, "hf_device_map", None) is None:  # a teacher split by device_map stays put
                self.teacher.to(self.args.device)
        # compute_loss always predicts token i+1 at position i: the Trainer must count labels[..., 1:] as
        # the global token count, whatever the model class says (GPT-2's loss_type is None, for one)
        self._loss_shifts_labels = True

    def _kd(self):
        return dict(loss_type=self.kd_loss, beta=self.kd_beta, vocab_size=self.kd_vocab_size)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        training = model.training
        local_tokens = labels[:, 1:].ne(-100).sum()
        on_policy = training and self.on_policy_lambda > 0 and self._policy_rng.random() < self.on_policy_lambda
        self._policy_kind = "on_policy" if on_policy else "off_policy"
        if on_policy:
            inputs = self._on_policy_batch(model, inputs)
            labels = inputs["labels"]
        if training and self.text_teacher is not None and "teacher_rows" in inputs:
            inputs = {**inputs, **self._text_teacher_rows(inputs)}
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        logits, targets = outputs.logits[:, :-1], labels[:, 1:]  # position i predicts token i+1
        self._policy_targets = int(targets.ne(-100).sum())
        if on_policy and self.served_teacher is not None:
            loss, _, kl = sparse_kd_loss(logits, targets, inputs["teacher_top_ids"][:, 1:],
                                         inputs["teacher_top_logprobs"][:, 1:], 0.0, self.kd_temperature, **self._kd())
            loss = loss * (1.0 - self.kd_alpha)  # the student's own samples: the KD term alone
            self._record({self.kd_term: kl}, loss.device)
        elif training and self.teacher is not None:
            with torch.no_grad():
                t_logits = self.teacher(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
            t_logits = t_logits[:, :-1].to(logits.device)
            alpha = 0.0 if on_policy else self.kd_alpha  # the student's own samples: the KD term alone
            loss, ce, kl = kd_loss(logits, t_logits, targets, alpha, self.kd_temperature, **self._kd())
            if on_policy:
                loss = loss * (1.0 - self.kd_alpha)
            self._record({self.kd_term: kl, **({} if on_policy else {"ce": ce})}, loss.device)
        elif training and "teacher_aligned" in inputs:
            loss, ce, uld, shared = uld_kd_loss(logits, targets, inputs["teacher_aligned"][:, 1:],
                                                inputs["teacher_top_logprobs"][:, 1:], self.kd_alpha,
                                                self.kd_temperature, inputs["teacher_top_ids"][:, 1:],
                                                self.kd_shared_vocab_weight, **self._kd())
            terms = {"ce": ce, "kd_uld": uld, **({"kd_shared": shared} if self.kd_shared_vocab_weight else {})}
            self._record(terms, loss.device)
        elif training and "teacher_top_ids" in inputs:
            loss, ce, kl = sparse_kd_loss(logits, targets, inputs["teacher_top_ids"][:, 1:],
                                          inputs["teacher_top_logprobs"][:, 1:], self.kd_alpha, self.kd_temperature,
                                          **self._kd())
            self._record({"ce": ce, self.kd_term: kl}, loss.device)
        else:
            loss = causal_lm_loss(logits, targets)
            if training:
                self._record({"ce": loss}, loss.device)
        if training and self.on_policy_lambda:
            self._record({"on_policy_share": torch.tensor(float(on_policy))}, loss.device)
        if training:  # this micro-batch's share of the step's global token mean (counted on the batch as it came)
            loss = loss * self._token_share(local_tokens, num_items_in_batch)
        return (loss, outputs) if return_outputs else loss

    def _text_teacher_rows(self, inputs) -> dict:
        """The white-box teacher of another tokenizer on its own tokens: its top-K at the aligned positions."""
        with torch.no_grad():
            t_logits = self.text_teacher(input_ids=inputs["teacher_input_ids"],
                                         attention_mask=inputs["teacher_attention_mask"]).logits
        return teacher_top_k_rows(t_logits, inputs["teacher_rows"], self.text_teacher_top_k,
                                  self.text_teacher_vocab_size, self.text_teacher_shared_map)

    def _on_policy_batch(self, model, inputs) -> dict:
        """The batch's prompts, each followed by the student's own sample as the targets: up to and with its eos
        (white-box), or as the served teacher's tokens of its text with their top-K log-probs."""
        rows = self._sample(model, inputs)
        if self.served_teacher is not None:
            return self._served_batch(rows, inputs)
        ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
        pad = self.processing_class.pad_token_id if self.processing_class is not None else model.config.pad_token_id
        n = max(len(p) + len(s) for p, s in rows)
        batch = {"input_ids": torch.full((len(rows), n), pad, dtype=ids.dtype),
                 "attention_mask": torch.zeros((len(rows), n), dtype=mask.dtype),
                 "labels": torch.full((len(rows), n), -100, dtype=labels.dtype)}
        for b, (p, sample) in enumerate(rows):
            seq = p + sample
            batch["input_ids"][b, :len(seq)] = torch.tensor(seq)
            batch["attention_mask"][b, :len(seq)] = 1
            batch["labels"][b, len(p):len(seq)] = torch.tensor(sample, dtype=labels.dtype)
        return {k: v.to(ids.device) for k, v in batch.items()}

    def _served_batch(self, rows, inputs) -> dict:
        """Prompt + the served teacher's tokens of each sample's text (student ids), with its top-K at each; a
        sample without text, or whose text the server's tokens do not spell, gets no targets (counted). A sample's
        eos is no text: the teacher's answer has no row for it, so it is no target (counted in ``eos_without_kd``
        for the scored samples that ended)."""
        tok, ids = self.processing_class, inputs["input_ids"]
        if self._token_table is None:
            self._token_table = (token_bytes_table(tok), special_token_bytes(tok))
        index = inputs["document_index"].tolist()
        table = self._token_table[0]
        # the sample's text from its tokens' bytes: decode() drops a SentencePiece sample's leading space
        texts = [b"".join(table[t] for t in s if t < len(table) and table[t] is not None).decode("utf-8", "replace")
                 for _, s in rows]
        asked = [b for b, text in enumerate(texts) if text.strip()]
        t0 = time.perf_counter()
        try:
            answers = self.served_teacher.score([(self.documents[index[b]], texts[b]) for b in asked])
        except InputError as e:
            raise InputError(f"served teacher, on-policy sample at step {self.state.global_step + 1}: {e}; the last "
                             f"complete checkpoint in {self.args.output_dir} is kept: rerun the same command to "
                             f"resume") from None
        stats = self.served_stats
        stats["seconds"] += time.perf_counter() - t0
        stats["samples"] += len(rows)
        targets = {}
        for b, answer in zip(asked, answers):
            if not isinstance(answer, str):
                try:
                    answer = map_teacher_tokens(answer, self._token_table[0], f"{self.served_teacher.where}, "
                                                f"on-policy sample {texts[b][:40]!r}", "the student's sample",
                                                self._token_table[1])
                except InputError as e:
                    answer = str(e)
            if isinstance(answer, str):
                if stats["first_unscored"] is None:
                    stats["first_unscored"] = answer
                    logger.warning("served teacher: an on-policy sample is left out of its step (no teacher scores "
                                   "for it; counted in run_summary.json): %s", answer)
                continue
            targets[b] = answer
        stats["unscored"] += len(rows) - len(targets)
        stats["scored"] += len(targets)
        eos = self.model.generation_config.eos_token_id if self.model is not None else None
        eos = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else []) | {tok.eos_token_id}
        stats["eos_without_kd"] += sum(1 for b in targets if rows[b][1] and rows[b][1][-1] in eos)
        k = max([len(top[0]) for _, top, _ in targets.values() if len(top)] or [1])
        n = max(len(p) + len(targets[b][0]) if b in targets else len(p) for b, (p, _) in enumerate(rows))
        batch = {"input_ids": torch.full((len(rows), n), tok.pad_token_id, dtype=ids.dtype),
                 "attention_mask": torch.zeros((len(rows), n), dtype=inputs["attention_mask"].dtype),
                 "labels": torch.full((len(rows), n), -100, dtype=inputs["labels"].dtype),
                 "teacher_top_ids": torch.full((len(rows), n, k), -1, dtype=torch.long),
                 "teacher_top_logprobs": torch.full((len(rows), n, k), float("-inf"), dtype=torch.float32)}
        for b, (p, _) in enumerate(rows):
            labels, top, lp = targets.get(b, ([], None, None))
            seq = p + labels
            batch["input_ids"][b, :len(seq)] = torch.tensor(seq)
            batch["attention_mask"][b, :len(seq)] = 1
            if labels:
                batch["labels"][b, len(p):len(seq)] = torch.tensor(labels)
                batch["teacher_top_ids"][b, len(p):len(seq), :top.shape[1]] = torch.from_numpy(top)
                batch["teacher_top_logprobs"][b, len(p):len(seq), :lp.shape[1]] = torch.from_numpy(lp)
        return {key: v.to(ids.device) for key, v in batch.items()}

    def _sample(self, model, inputs) -> list:
        """``[(prompt ids, sample ids)]``: each prompt of the batch and the student's sample of it (cut after its
        first eos, which it keeps)."""
        ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
        pad = self.processing_class.pad_token_id if self.processing_class is not None else model.config.pad_token_id
        prompts = [ids[b][mask[b].bool() & labels[b].eq(-100)] for b in range(ids.shape[0])]
        width = max(len(p) for p in prompts)
        left = torch.full((len(prompts), width), pad, dtype=ids.dtype, device=ids.device)
        left_mask = torch.zeros_like(left)
        for b, p in enumerate(prompts):
            left[b, width - len(p):], left_mask[b, width - len(p):] = p, 1
        unwrapped = self.accelerator.unwrap_model(model)
        gen = copy.deepcopy(unwrapped.generation_config)
        gen.update(do_sample=True, temperature=self.on_policy_temperature, top_k=0, top_p=1.0, num_beams=1,
                   max_new_tokens=self.on_policy_max_new_tokens, min_new_tokens=0, pad_token_id=pad)
        vocab = unwrapped.config.get_text_config().vocab_size
        if self.kd_vocab_size and vocab > self.kd_vocab_size:  # a padded embedding's rows are no tokens: never sampled
            gen.suppress_tokens = list(range(self.kd_vocab_size, vocab))
        unwrapped.eval()
        try:
            with torch.no_grad():
                out = unwrapped.generate(input_ids=left, attention_mask=left_mask, generation_config=gen)
        finally:
            unwrapped.train()
        eos = gen.eos_token_id
        eos = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
        rows = []
        for b, p in enumerate(prompts):
            new = out[b, width:].tolist()
            end = next((i + 1 for i, t in enumerate(new) if t in eos), len(new))
            rows.append((p.tolist(), new[:end]))
        return rows

    def training_step(self, model, inputs, num_items_in_batch=None):
        t0 = time.perf_counter()
        out = super().training_step(model, inputs, num_items_in_batch)
        stats = self.policy_stats[self._policy_kind]
        stats["steps"] += 1
        stats["seconds"] += time.perf_counter() - t0
        stats["target_tokens"] += getattr(self, "_policy_targets", 0)
        return out

    def on_policy_summary(self) -> dict:
        """The on-policy share and the throughput of on- and off-policy micro-batches (this process, this run); with
        a served teacher, its endpoint, requests, samples scored and left out, and the seconds spent scoring."""
        total = sum(s["steps"] for s in self.policy_stats.values())
        out = {"lambda": self.on_policy_lambda, "temperature": self.on_policy_temperature,
               "max_new_tokens": self.on_policy_max_new_tokens, "micro_batches": total,
               "on_policy_share": round(self.policy_stats["on_policy"]["steps"] / total, 4) if total else None,
               "teacher": "served" if self.served_teacher is not None else "white_box"}
        if self.served_teacher is not None:
            served = self.served_teacher
            out["served_teacher"] = {"endpoint": served.where, "model": served.client.params.model,
                                     "top_logprobs": served.task.top_logprobs, "requests": served.usage.requests,
                                     **{**self.served_stats, "seconds": round(self.served_stats["seconds"], 3)}}
        for kind, s in self.policy_stats.items():
            out[kind] = {**s, "seconds": round(s["seconds"], 3),
                         "micro_batches_per_s": round(s["steps"] / s["seconds"], 4) if s["seconds"] else None,
                         "target_tokens_per_s": round(s["target_tokens"] / s["seconds"], 2) if s["seconds"] else None}
        return out

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
