"""Causal (decoder-only) students in ``train.py``: task-specific logit KD as the study does it.

A checkpoint whose config is a decoder-only LM (Llama, Qwen2, Gemma, GPT-2, ...) takes this path
instead of LSR-MWF/BART. The student learns ``prompt -> summary`` (:mod:`lsrmwf.data.causal`) with

    loss = kd_alpha * CE + (1 - kd_alpha) * T^2 * KL(teacher_T || student_T)   over the summary tokens

* white-box teacher (``--teacher_model_name_or_path``): a causal LM sharing the student's tokenizer,
  frozen, optionally in bf16/fp16 (``--teacher_dtype``) and split over devices (``--teacher_device_map auto``);
* served teacher (``--teacher_logprobs_file``, from ``generate_rationales.py --task teacher_logprobs``):
  sparse top-K KD (:mod:`lsrmwf.distill.sparse_kd`) on the teacher's own summaries (sequence-level KD),
  or on the dataset's reference summaries where the file's rows scored them (``--logprobs_target reference``);
* neither: plain fine-tuning on the references (CE only).

Evaluation and prediction generate the continuation of the prompt and decode only the new tokens.
Checkpoints, resume, ``predictions.jsonl`` and the summaries are the same as for BART runs.
"""

import hashlib
import logging
from typing import Dict, Optional

import torch

from ..data.causal import CausalCollator, check_template, encode_prompt, prompt_text, tokenize_causal
from ..distill.brd_mix import load_brd_mix, packed_dataset
from ..distill.logit_kd import kd_loss, load_causal_teacher
from ..distill.sparse_kd import map_teacher_tokens, sparse_kd_loss, token_bytes_table
from ..io import InputError
from ..io.logprobs import TARGETS, read_teacher_logprobs
from .run import RawData, load_raw_data, rouge_summary, train, train_evaluate_predict, write_run_summary
from .trainer import LsrMwfTrainer

logger = logging.getLogger("lsrmwf.train")


def is_causal_config(config) -> bool:
    """A decoder-only LM (what ``AutoModelForCausalLM`` loads and is not an encoder-decoder)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return not getattr(config, "is_encoder_decoder", False) and config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES \
        and config.model_type not in ("bart", "lsrmwf")


def is_causal_run(model_args) -> bool:
    if not model_args.model_name_or_path:
        return False
    return is_causal_config(model_args.load_config())


def document_hash(document: str) -> str:
    """What a teacher-logprobs row records of its document (``generate_rationales.py`` uses the same)."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()[:16]


class CausalKDTrainer(LsrMwfTrainer):
    """The trainer for decoder-only students: CE on summary tokens, white-box or sparse top-K KD, and
    generation of the continuation only in evaluate/predict."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._term_names = ["ce", "kd_kl"]
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
            loss, ce, kl = kd_loss(logits, t_logits, targets, self.args.kd_alpha, self.args.kd_temperature)
            self._record({"ce": ce, "kd_kl": kl}, loss.device)
        elif training and "teacher_top_ids" in inputs:
            loss, ce, kl = sparse_kd_loss(logits, targets, inputs["teacher_top_ids"][:, 1:], inputs["teacher_top_logprobs"][:, 1:],
                                          self.args.kd_alpha, self.args.kd_temperature)
            self._record({"ce": ce, "kd_kl": kl}, loss.device)
        else:
            mask = targets.ne(-100)
            loss = torch.nn.functional.cross_entropy(logits[mask].float(), targets[mask]) if mask.any() else logits.sum() * 0.0
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


# ----------------------------------------------------------------------------------------------
# Model, generation, data
# ----------------------------------------------------------------------------------------------


def load_causal_student(model_args):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hub = dict(cache_dir=model_args.cache_dir, revision=model_args.model_revision)
    path = model_args.model_name_or_path
    tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or path, **hub)
    model = AutoModelForCausalLM.from_pretrained(path, **hub)
    if tokenizer.pad_token_id is None:  # padding is masked everywhere; eos is a safe stand-in
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if len(tokenizer) > model.config.vocab_size:
        raise InputError(f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary only {model.config.vocab_size}")
    return model, tokenizer


def configure_causal_generation(model, tokenizer, data_args) -> None:
    """The preset's (or given) settings as a continuation: --max_length/--min_length count new tokens."""
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and data_args.max_source_length + data_args.max_length > limit:
        raise InputError(f"--max_source_length {data_args.max_source_length} + --max_length {data_args.max_length} (new "
                         f"tokens) exceed the model's max_position_embeddings {limit}")
    beams = data_args.num_beams
    settings = dict(max_new_tokens=data_args.max_length, min_new_tokens=data_args.min_length or 0, num_beams=beams,
                    no_repeat_ngram_size=data_args.no_repeat_ngram_size or 0, do_sample=False,
                    pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    if beams > 1:
        settings.update(length_penalty=data_args.length_penalty, early_stopping=True)
    else:  # greedy: beam-only settings unset, or transformers warns at every call that they are ignored
        settings.update(length_penalty=None, early_stopping=None)
    gen = model.generation_config
    gen.update(**settings)
    for key in ("temperature", "top_p", "top_k"):  # a hub config's sampling values would fail greedy validation
        setattr(gen, key, None)
    try:
        gen.validate(strict=True)
    except ValueError as e:
        raise InputError(f"generation settings {settings}: {e}") from None


def sparse_kd_dataset(train_raw, path: str, tokenizer, data_args, stats: Optional[dict] = None):
    """The training examples of sparse top-K KD: prompt + the tokens of the row's target as the teacher's record
    has them (mapped to student ids), with the teacher's top-K ids/log-probs at each of them. The target is the
    teacher's own summary (sequence-level KD), or the training example's reference summary for a row that scored
    it (``target: "reference"``; its ``reference_sha`` must match). ``stats`` gets the rows per target."""
    import datasets

    records = read_teacher_logprobs(path)
    if not records:
        raise InputError(f"{path}: no finished teacher-logprobs rows")
    docs = dict(zip(train_raw["id"], train_raw["document"]))
    summaries = dict(zip(train_raw["id"], train_raw["summary"]))
    matched = [i for i in train_raw["id"] if i in records]
    if not matched:
        raise InputError(f"--teacher_logprobs_file {path}: none of its {len(records)} ids matches a training document "
                         f"(file ids e.g. {sorted(records)[:3]}, training ids e.g. {list(docs)[:3]}); collect it on the "
                         f"same dataset and split")
    extra = len(records) - len(matched)
    if len(matched) < len(docs):
        logger.warning("%s: %d of %d training documents have a teacher summary; the others are left out",
                       path, len(matched), len(docs))
    if extra:
        logger.warning("%s: %d rows belong to no training document and are ignored", path, extra)
    table = token_bytes_table(tokenizer)
    template, chat = data_args.prompt_template, data_args.use_chat_template
    cols = {"input_ids": [], "labels": [], "teacher_top_ids": [], "teacher_top_logprobs": []}
    counts = {t: 0 for t in TARGETS}
    for rid in matched:
        row, tokens = records[rid]
        if row.get("document_sha") not in (None, document_hash(docs[rid])):
            raise InputError(f"--teacher_logprobs_file {path}: row {rid!r} was generated for a different document than "
                             f"the training document with that id (its document hash differs); collect it again on "
                             f"this data")
        target = row.get("target") or "teacher_summary"
        counts[target] += 1
        what = "the teacher's summary"
        if target == "reference":
            what = "the reference summary"
            if row.get("reference_sha") != document_hash((summaries[rid] or "").strip()):
                raise InputError(f"--teacher_logprobs_file {path}: row {rid!r} scored another reference summary than the "
                                 f"training example with that id has (its reference hash differs; the row scored "
                                 f"{(row.get('reference') or '')[:60]!r}); score the references of this data again")
        labels, top, lp = map_teacher_tokens(tokens, table, f"{path}, row {rid!r}", what)
        n = min(len(labels), max(0, data_args.max_target_length - 1))
        labels, top, lp = labels[:n], top[:n].tolist(), lp[:n].tolist()
        k = len(top[0]) if top else 1
        if target == "reference" or row.get("finish_reason") != "length":  # it ended: eos, with CE only
            labels, top, lp = labels + [tokenizer.eos_token_id], top + [[-1] * k], lp + [[0.0] * k]
        prompt = encode_prompt(docs[rid], tokenizer, template, chat, data_args.max_source_length)
        cols["input_ids"].append(prompt + labels)
        cols["labels"].append([-100] * len(prompt) + labels)
        cols["teacher_top_ids"].append([[-1] * k] * len(prompt) + top)
        cols["teacher_top_logprobs"].append([[0.0] * k] * len(prompt) + lp)
    if counts["reference"]:
        logger.info("sparse top-K KD on %d reference summaries from %s: the targets are the dataset's references, "
                    "with the teacher's top-K log-probs at each of their tokens", counts["reference"], path)
    if counts["teacher_summary"]:
        logger.info("sparse top-K KD on %d teacher summaries from %s: the targets are the teacher's own summaries "
                    "(sequence-level KD)", counts["teacher_summary"], path)
    if stats is not None:
        stats.update(file=path, rows_per_target=counts)
    return datasets.Dataset.from_dict(cols)


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------


def check_causal_args(model_args, data_args, training_args) -> None:
    check_template(data_args.prompt_template)
    if data_args.stage == "basic_reading":
        if not data_args.brd_passages_dir:
            raise InputError("--basic_reading_file is the BART denoising stage's; a causal student's --stage basic_reading "
                             "reads the passages of compose_brd.py: give --brd_passages_dir")
        if model_args.teacher_model_name_or_path or data_args.teacher_logprobs_file:
            raise InputError("--stage basic_reading trains with the plain LM loss; leave out the KD teacher")
    if data_args.rationale_file:
        raise InputError("--rationale_file: LSR-MWF's views need a BART student; a causal student trains on documents and "
                         "summaries (for LLM summaries as targets use --teacher_logprobs_file)")
    if model_args.views is not None or model_args.baseline:
        raise InputError("--views/--baseline describe BART students; leave them out for a causal student")
    if model_args.teacher_model_name_or_path and data_args.teacher_logprobs_file:
        raise InputError("give one teacher: --teacher_model_name_or_path (white-box) or --teacher_logprobs_file (served)")


def run_causal_brd(model_args, data_args, training_args, checkpoint: Optional[str]) -> Dict[str, float]:
    """BRD with a causal student: the plain LM loss on packed blocks of the D_ORI/D_NER/D_QRA mix
    (:mod:`lsrmwf.distill.brd_mix`). Training only; the same Trainer, checkpoints and resume as other runs."""
    from transformers import set_seed

    set_seed(training_args.seed)
    model, tokenizer = load_causal_student(model_args)
    block = data_args.block_size or data_args.max_source_length
    if not block:
        raise InputError("give --block_size (or --max_source_length, or --preset brd)")
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and block > limit:
        raise InputError(f"--block_size {block} exceeds the model's max_position_embeddings {limit}")
    with training_args.main_process_first(desc="BRD passages"):
        texts, stats = load_brd_mix(data_args.brd_passages_dir, data_args.brd_mix, data_args.max_passages,
                                    data_args.brd_drop_qra_pattern, data_args.brd_sep, seed=training_args.seed)
        train_ds, packing = packed_dataset(texts, tokenizer, block, data_args.preprocessing_num_workers)
    stats["packing"] = packing
    logger.info("causal BRD student %s, %.1fM parameters: %d blocks of %d tokens", type(model).__name__,
                model.num_parameters() / 1e6, len(train_ds), block)
    trainer = CausalKDTrainer(model=model, args=training_args, data_collator=CausalCollator(pad_token_id=tokenizer.pad_token_id),
                              train_dataset=train_ds, processing_class=tokenizer)
    results = train(trainer, checkpoint, train_ds)
    write_run_summary(training_args, model, RawData(train=train_ds), None, checkpoint, results, extra={"brd": stats})
    return results


def run_causal(model_args, data_args, training_args, checkpoint: Optional[str]) -> Dict[str, float]:
    from transformers import set_seed

    check_causal_args(model_args, data_args, training_args)
    if data_args.stage == "basic_reading":
        return run_causal_brd(model_args, data_args, training_args, checkpoint)
    raw = load_raw_data(data_args, model_args, training_args)
    set_seed(training_args.seed)
    model, tokenizer = load_causal_student(model_args)
    configure_causal_generation(model, tokenizer, data_args)
    logger.info("causal student %s, %.1fM parameters; prompt: %r", type(model).__name__, model.num_parameters() / 1e6,
                prompt_text("{document}", tokenizer, data_args.prompt_template, data_args.use_chat_template))
    teacher = None
    if training_args.do_train and model_args.teacher_model_name_or_path:
        samples = list(raw.train["document"][:4]) + list(raw.train["summary"][:4])
        teacher = load_causal_teacher(model_args.teacher_model_name_or_path, model, tokenizer, samples,
                                      dtype=model_args.teacher_dtype, device_map=model_args.teacher_device_map,
                                      device=training_args.device, cache_dir=model_args.cache_dir)

    common = dict(template=data_args.prompt_template, use_chat_template=data_args.use_chat_template,
                  max_source_length=data_args.max_source_length, max_target_length=data_args.max_target_length,
                  num_proc=data_args.preprocessing_num_workers)
    data = RawData()
    served = {}
    with training_args.main_process_first(desc="tokenizing"):
        if raw.train is not None:
            if data_args.teacher_logprobs_file:
                data.train = sparse_kd_dataset(raw.train, data_args.teacher_logprobs_file, tokenizer, data_args, served)
            else:
                data.train = tokenize_causal(raw.train, tokenizer, with_prompt=False, desc="tokenizing train", **common)
        if raw.eval is not None:
            data.eval = tokenize_causal(raw.eval, tokenizer, with_prompt=True, desc="tokenizing validation", **common)
        if raw.predict is not None:
            data.predict = tokenize_causal(raw.predict, tokenizer, with_prompt=True, desc="tokenizing test", **common)

    eval_refs = list(raw.eval["summary"]) if raw.eval is not None else None

    def compute_metrics(p):
        import numpy as np

        from .run import rouge_means

        ids = np.where(p.predictions != -100, p.predictions, tokenizer.pad_token_id)[: len(eval_refs)]
        preds = [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return rouge_means(preds, eval_refs, data_args.rouge_tokenizer)

    trainer = CausalKDTrainer(
        model=model, args=training_args, data_collator=CausalCollator(pad_token_id=tokenizer.pad_token_id),
        train_dataset=data.train, eval_dataset=data.eval, processing_class=tokenizer, teacher_model=teacher,
        compute_metrics=compute_metrics if (data.eval is not None and training_args.predict_with_generate) else None,
    )
    results = train_evaluate_predict(trainer, tokenizer, data, raw, training_args, checkpoint, data_args.rouge_tokenizer)
    write_run_summary(training_args, model, raw, None, checkpoint, results,
                      extra={**rouge_summary(data_args, training_args), **({"teacher_logprobs": served} if served else {})})
    return results
