"""What ``train.py`` does, as named steps; :func:`run` calls them in order.

    load_raw_data        the train/validation/test splits (or the BRD passages for --stage basic_reading)
    attach_rationales    the rationale file, read once: views' texts joined, --target summaries applied
    build_model_and_tokenizer, configure_generation, build_teacher
    tokenize             documents, summaries and rationale texts
    encode_rationale_targets   each view's target encoded once with the initial encoder (cached)
    build_trainer        collator, metrics, LsrMwfTrainer
    train / evaluate / predict, then write_run_summary

A run writes to ``--output_dir``: checkpoints, ``gates.jsonl``, the final model and tokenizer,
``predictions.jsonl`` (id, prediction, reference), ``*_results.json`` / ``all_results.json`` and
``run_summary.json`` (what was trained on, and the metrics).
"""

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from ..data.preprocessing import apply_target, tokenize_dataset
from ..data.rationales import join_rationales, rationale_table
from ..data.tokenization import fit_model_max_length
from ..distill.basic_reading import build_basic_reading_dataset
from ..distill.logit_kd import check_bart_checkpoint, load_teacher
from ..io import InputError, write_json_atomic, write_jsonl_atomic
from .checkpoints import resolve_checkpoint
from .collators import LsrMwfCollator, pad_sequences
from .freezing import freeze_parameters
from .trainer import LsrMwfTrainer, gathered_parameters, model_views

logger = logging.getLogger("lsrmwf.train")


@dataclass
class RawData:
    """The untokenized splits of one run (``None`` where the run does not use a split)."""

    train: Optional[object] = None
    eval: Optional[object] = None
    predict: Optional[object] = None
    # per split, the examples left out for an empty document or summary ({"row", "id", "field"} each)
    empty: Optional[Dict[str, list]] = None

    SPLITS = ("train", "eval", "predict")


# ----------------------------------------------------------------------------------------------
# Setup
# ----------------------------------------------------------------------------------------------


def setup_logging(training_args) -> None:
    import datasets
    import transformers

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        level=logging.INFO if training_args.should_log else logging.WARNING)
    log_level = training_args.get_process_log_level()
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    for name in ("lsrmwf.train", "lsrmwf.data", "lsrmwf.distill", "lsrmwf.trainer"):
        logging.getLogger(name).setLevel(log_level)


def check_run(data_args, training_args) -> None:
    """Refuse runs that cannot do what was asked, before any work starts."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and training_args.world_size != launched:
        raise InputError(
            f"launched as {launched} processes, but the Trainer sees {training_args.world_size}: each process would train "
            f"alone and write the same --output_dir. Without a GPU, add --use_cpu so the processes train together over gloo"
        )
    if training_args.n_gpu > 1:
        raise InputError(f"this process sees {training_args.n_gpu} GPUs and would train them with torch DataParallel, which "
                         f"the loss normalisation does not support; launch one process per GPU: accelerate launch "
                         f"--num_processes {training_args.n_gpu} train.py … (or torchrun --nproc_per_node {training_args.n_gpu})")
    if data_args.stage == "basic_reading" and (training_args.do_eval or training_args.do_predict):
        raise InputError("--stage basic_reading only trains (pre-education); evaluate the summarization stage that starts "
                         "from its output (--model_name_or_path <this --output_dir>)")
    if not (training_args.do_train or training_args.do_eval or training_args.do_predict):
        raise InputError("nothing to do: give --do_train, --do_eval and/or --do_predict")
    out = training_args.output_dir
    try:  # before any work: a run that cannot write its results should not start
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, f".write_test.{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise InputError(f"--output_dir {out}: cannot be written ({e.strerror or e})") from None


def find_checkpoint(training_args) -> Optional[str]:
    """``--resume_from_checkpoint``, else the last *complete* checkpoint in ``--output_dir`` (unless overwriting);
    see :mod:`lsrmwf.training.checkpoints`."""
    return resolve_checkpoint(training_args, is_main=training_args.should_save)


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------


def load_split(data_args, model_args, which: str, dropped: Optional[list] = None):
    """One raw split (id/document/summary) for train/eval/predict, or None if no source names it.

    Examples with an empty document or summary are left out and listed in ``dropped``
    (``--strict_data``: an error naming them)."""
    file = {"train": data_args.train_file, "eval": data_args.validation_file, "predict": data_args.test_file}[which]
    split = {"train": data_args.train_split, "eval": data_args.validation_split, "predict": data_args.test_split}[which]
    limit = {"train": data_args.max_train_samples, "eval": data_args.max_eval_samples, "predict": data_args.max_predict_samples}[which]
    if file is None and data_args.dataset_name is None:
        return None
    return data_args.load(split, file, limit, model_args.cache_dir,
                          on_empty="error" if data_args.strict_data else "drop", dropped=dropped)


def load_raw_data(data_args, model_args, training_args) -> RawData:
    """The splits the run needs; a missing source is an error naming the flag to give."""
    raw = RawData(empty={"train": [], "eval": [], "predict": []})
    with training_args.main_process_first(desc="loading data"):
        if training_args.do_train:
            if data_args.stage == "basic_reading":
                raw.train, _ = build_basic_reading_dataset(
                    data_args.basic_reading_file, mix_original=data_args.brd_mix_original,
                    passage_sentences=data_args.brd_passage_sentences, mask_ratio=data_args.brd_mask_ratio,
                    seed=training_args.seed)
            else:
                raw.train = load_split(data_args, model_args, "train", raw.empty["train"])
                if raw.train is None:
                    raise InputError("--do_train needs --dataset_name or --train_file")
        if training_args.do_eval:
            raw.eval = load_split(data_args, model_args, "eval", raw.empty["eval"])
            if raw.eval is None:
                raise InputError("--do_eval needs --validation_file (or --dataset_name with a validation split)")
        if training_args.do_predict:
            raw.predict = load_split(data_args, model_args, "predict", raw.empty["predict"])
            if raw.predict is None:
                raise InputError("--do_predict needs --test_file (or --dataset_name with a test split)")
    for split, rows in raw.empty.items():
        if rows:
            from ..data.loading import describe_empty

            logger.warning("left out %d %s example(s) with an empty document or summary (--strict_data makes this an "
                           "error): %s", len(rows), split, describe_empty(rows, split, limit=5))
    return raw


def attach_rationales(train, data_args, model_args, training_args) -> tuple:
    """Join the views' texts from ``--rationale_file`` and apply ``--target``. Returns ``(train, stats)``.

    The main process builds the file's Arrow table and the joined split (both cached by datasets);
    the other ranks then read them."""
    if train is None or data_args.stage == "basic_reading" or not data_args.rationale_file:
        return train, None
    with training_args.main_process_first(desc="joining rationales"):
        table = rationale_table(data_args.rationale_file, model_args.cache_dir)
        train, stats = join_rationales(train, data_args.rationale_file, policy=data_args.rationale_policy,
                                       logger=logger if training_args.should_log else None, table=table,
                                       on_duplicate=data_args.on_duplicate, cache_dir=model_args.cache_dir)
        if len(train) == 0:
            raise InputError(f"{data_args.rationale_file}: no training document has a kept, finished rationale row "
                             f"({stats['line']}); --rationale_policy ce_only trains them with the token loss only")
        return apply_target(train, data_args, table), stats


# ----------------------------------------------------------------------------------------------
# Model and tokenizer
# ----------------------------------------------------------------------------------------------


def _has_tokenizer(path: Optional[str]) -> bool:
    return bool(path) and any(os.path.exists(os.path.join(path, f)) for f in ("tokenizer.json", "vocab.json", "tokenizer_config.json"))


def _train_tokenizer_once(texts, vocab_size):
    """Train the BPE on the main process only and hand the same tokenizer to every other process."""
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    from ..data.tokenization import train_bpe_tokenizer

    state = PartialState()
    box = [None]
    if state.is_main_process:
        box[0] = train_bpe_tokenizer(texts, vocab_size=vocab_size)
        logger.info("trained a BPE tokenizer with %d tokens on %d training texts", len(box[0]), len(texts))
    if state.num_processes > 1:
        broadcast_object_list(box, from_process=0)
    return box[0]


def build_model_and_tokenizer(model_args, data_args, train_texts=None, checkpoint: Optional[str] = None):
    """The student (LSR-MWF, or plain BART with ``--baseline``) and its tokenizer.

    From a checkpoint: refuse non-BART model types. From scratch: a BartConfig with
    ``--config_overrides`` and a BPE tokenizer trained on ``train_texts`` (or, when resuming, the one
    saved in ``checkpoint``).
    """
    from transformers import AutoTokenizer, BartConfig, BartForConditionalGeneration

    from ..models.configuration_lsrmwf import LsrMwfConfig
    from ..models.modeling_lsrmwf import LsrMwfForConditionalGeneration

    hub = dict(cache_dir=model_args.cache_dir, revision=model_args.model_revision)
    lsr_kwargs = {"gate_init": model_args.gate_init, "freeze_gates": model_args.freeze_gates}
    if model_args.views is not None:
        lsr_kwargs["views"] = list(model_args.views)
    if model_args.view_ffn_dim is not None:
        lsr_kwargs["view_ffn_dim"] = model_args.view_ffn_dim
    path = model_args.model_name_or_path
    if path:
        config = model_args.load_config()
        check_bart_checkpoint(path, config)
        tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or path, **hub)
        if model_args.baseline:
            if config.model_type != "bart":
                raise InputError(f"--baseline trains plain BART; {path} is an {config.model_type!r} checkpoint (its views "
                                 f"and gates would be dropped). Use a BART checkpoint or leave out --baseline")
            model = BartForConditionalGeneration.from_pretrained(path, **hub)
        else:
            trained_width = getattr(config, "view_ffn_dim", None) if config.model_type == "lsrmwf" else None
            if trained_width is not None and model_args.view_ffn_dim not in (None, trained_width):
                raise InputError(f"--view_ffn_dim {model_args.view_ffn_dim}: {path} has view layers of width {trained_width}; "
                                 f"leave the flag out to continue that model")
            model = LsrMwfForConditionalGeneration.from_pretrained(path, **hub, **lsr_kwargs)
    else:
        if model_args.tokenizer_name:
            tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name, **hub)
        elif _has_tokenizer(checkpoint):
            tokenizer = AutoTokenizer.from_pretrained(checkpoint)
            logger.info("resuming: tokenizer from %s", checkpoint)
        else:
            if not train_texts:
                raise InputError("a model built from scratch trains its tokenizer on the training text; give training data "
                                 "(--do_train) or --tokenizer_name / --model_name_or_path")
            tokenizer = _train_tokenizer_once(train_texts, model_args.tokenizer_vocab_size)
        config = BartConfig(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.eos_token_id,
            forced_eos_token_id=tokenizer.eos_token_id,
            max_position_embeddings=max(1024, data_args.max_source_length, data_args.max_target_length),
        )
        if model_args.config_overrides:
            try:
                config.update_from_string(model_args.config_overrides)
            except ValueError as e:
                raise InputError(f"--config_overrides {model_args.config_overrides!r}: {e}") from None
        if model_args.baseline:
            model = BartForConditionalGeneration(config)
        else:
            cfg = config.to_dict()
            for key in ("model_type", "architectures", "transformers_version"):
                cfg.pop(key, None)
            model = LsrMwfForConditionalGeneration(LsrMwfConfig(**cfg, **lsr_kwargs))
    longest = max(data_args.max_source_length, data_args.max_target_length)
    if model.config.max_position_embeddings < longest:
        raise InputError(f"--max_source_length/--max_target_length {longest} exceed the model's "
                         f"max_position_embeddings {model.config.max_position_embeddings}")
    if len(tokenizer) > model.config.vocab_size:
        raise InputError(f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary only {model.config.vocab_size}")
    # a BPE trained here has no limit (~1e30): the saved tokenizer would not truncate to the model's positions
    fit_model_max_length(tokenizer, model.config.max_position_embeddings)
    return model, tokenizer


def configure_generation(model, data_args) -> None:
    """The preset's (or given) beam search settings become the model's generation config."""
    beams = data_args.num_beams
    if data_args.max_length > model.config.max_position_embeddings:
        raise InputError(f"--max_length {data_args.max_length} exceeds the model's max_position_embeddings "
                         f"{model.config.max_position_embeddings}")
    settings = dict(num_beams=beams, max_length=data_args.max_length, min_length=data_args.min_length,
                    no_repeat_ngram_size=data_args.no_repeat_ngram_size)
    if beams > 1:
        settings.update(length_penalty=data_args.length_penalty, early_stopping=True)
    else:  # greedy: beam-only settings (e.g. from a hub generation config) would fail validation
        settings.update(length_penalty=1.0, early_stopping=False)
    gen = model.generation_config
    gen.update(**settings)
    for key in ("decoder_start_token_id", "pad_token_id", "eos_token_id", "bos_token_id", "forced_eos_token_id"):
        if getattr(gen, key, None) is None and getattr(model.config, key, None) is not None:
            setattr(gen, key, getattr(model.config, key))
    try:
        gen.validate(strict=True)
    except ValueError as e:
        raise InputError(f"generation settings {settings}: {e}") from None


def build_teacher(model_args, data_args, training_args, model, tokenizer):
    """The frozen logit-KD teacher, or ``None``."""
    if not (model_args.teacher_model_name_or_path and training_args.do_train):
        return None
    teacher = load_teacher(model_args.teacher_model_name_or_path, model, tokenizer, device=training_args.device,
                           cache_dir=model_args.cache_dir)
    longest = max(data_args.max_source_length, data_args.max_target_length)
    if teacher.config.max_position_embeddings < longest:
        raise InputError(f"--teacher_model_name_or_path: max_position_embeddings {teacher.config.max_position_embeddings} "
                         f"< {longest} (--max_source_length/--max_target_length)")
    return teacher


# ----------------------------------------------------------------------------------------------
# Tokenized data and rationale targets
# ----------------------------------------------------------------------------------------------


def tokenize(raw: RawData, tokenizer, data_args, training_args, views) -> RawData:
    """Tokenized splits; only the training split carries rationale texts."""
    num_proc = data_args.preprocessing_num_workers
    out = RawData()
    with training_args.main_process_first(desc="tokenizing"):
        if raw.train is not None:
            out.train = tokenize_dataset(raw.train, tokenizer, data_args, views, "tokenizing train", num_proc)
        if raw.eval is not None:
            out.eval = tokenize_dataset(raw.eval, tokenizer, data_args, (), "tokenizing validation", num_proc)
        if raw.predict is not None:
            out.predict = tokenize_dataset(raw.predict, tokenizer, data_args, (), "tokenizing test", num_proc)
    return out


def _model_identity(model_args, training_args) -> str:
    """What the initial weights depend on, for the cache key of the encoded rationale targets: a
    checkpoint's files by content (:func:`lsrmwf.io.fingerprint.checkpoint_fingerprint`, as evaluate.py
    keys its predictions), a hub name by name and revision, a model from scratch by its config and seed."""
    from ..io.fingerprint import checkpoint_fingerprint

    path = model_args.model_name_or_path
    if path:
        return json.dumps(checkpoint_fingerprint(path, model_args.model_revision), sort_keys=True)
    return json.dumps({"scratch": model_args.config_overrides, "seed": training_args.seed})


def add_rationale_targets(ds, model, views, device, identity: str, batch_size: int = 32):
    """Replace each view's rationale ids by its encoding with the initial model (``{v}_target``).

    Runs once and is cached by datasets under a key made of the data, the model identity and the views.
    """
    pad = model.config.pad_token_id
    key = hashlib.sha256(json.dumps([ds._fingerprint, identity, list(views), "targets-v1"]).encode()).hexdigest()[:16]

    def encode(batch):
        out = {}
        for v in views:
            ids = pad_sequences(batch[f"{v}_input_ids"], pad, None).to(device)
            mask = pad_sequences(batch[f"{v}_attention_mask"], 0, None).to(device)
            out[f"{v}_target"] = model.encode_rationale(ids, mask).float().cpu().numpy()
        return out

    drop = [c for v in views for c in (f"{v}_input_ids", f"{v}_attention_mask")]
    was_training = model.training
    model.to(device).eval()
    try:
        return ds.map(encode, batched=True, batch_size=batch_size, remove_columns=drop, new_fingerprint=key,
                      desc="encoding rationale targets")
    finally:
        model.train(was_training)


def encode_rationale_targets(train_ds, model, views, model_args, training_args):
    """``--cache_rationale_targets``: replace the views' rationale ids by their encodings, once."""
    target_views = [v for v in views if train_ds is not None and f"{v}_input_ids" in train_ds.column_names]
    if not (target_views and model_args.cache_rationale_targets):
        return train_ds
    # gathering ZeRO-3-partitioned weights is a collective, so every rank enters it before the barrier
    with gathered_parameters(list(model.parameters())), training_args.main_process_first(desc="encoding rationales"):
        return add_rationale_targets(train_ds, model, target_views, training_args.device,
                                     _model_identity(model_args, training_args),
                                     batch_size=max(8, training_args.per_device_eval_batch_size))


# ----------------------------------------------------------------------------------------------
# Train, evaluate, predict
# ----------------------------------------------------------------------------------------------


def _check_alignment(label_ids, tokenized, what: str) -> None:
    """Row i of the gathered labels must be example i's labels: guards the one-prediction-per-example order."""
    if label_ids is None:
        return
    if len(label_ids) != len(tokenized):
        raise RuntimeError(f"{what}: {len(label_ids)} predictions for {len(tokenized)} examples")
    for i, lab in enumerate(tokenized["labels"]):
        if list(label_ids[i, : len(lab)]) != list(lab):
            raise RuntimeError(f"{what}: prediction row {i} does not belong to example {i}; predictions are misaligned")


def _decode(tokenizer, ids):
    ids = np.where(ids != -100, ids, tokenizer.pad_token_id)
    return [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)]


def rouge_means(predictions, references, tokenizer: str = "default") -> dict:
    """Corpus ROUGE (``--rouge_tokenizer``: see :mod:`lsrmwf.evaluation.rouge`)."""
    from ..evaluation.rouge import rouge_scores

    scores = rouge_scores(predictions, references, progress=False, tokenizer=tokenizer)
    return {k: round(float(v.mean()), 4) for k, v in scores.items()}


def build_trainer(model, tokenizer, teacher, data: RawData, raw: RawData, training_args,
                  rouge_tokenizer: str = "default") -> LsrMwfTrainer:
    collator = LsrMwfCollator(pad_token_id=tokenizer.pad_token_id,
                              pad_to_multiple_of=8 if (training_args.fp16 or training_args.bf16) else None)
    eval_refs = list(raw.eval["summary"]) if raw.eval is not None else None

    def compute_metrics(p):
        # Seq2SeqTrainer gathers the padding duplicates of multi-process evaluation too; they come last.
        preds = _decode(tokenizer, p.predictions[: len(eval_refs)])
        return rouge_means(preds, eval_refs, rouge_tokenizer)

    return LsrMwfTrainer(
        model=model, args=training_args, data_collator=collator, train_dataset=data.train, eval_dataset=data.eval,
        processing_class=tokenizer, teacher_model=teacher,
        compute_metrics=compute_metrics if (data.eval is not None and training_args.predict_with_generate) else None,
    )


def train(trainer, checkpoint: Optional[str], train_ds) -> Dict[str, float]:
    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model()
    metrics = dict(result.metrics, train_samples=len(train_ds))
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    return metrics


def evaluate(trainer, eval_ds) -> Dict[str, float]:
    metrics = trainer.evaluate(metric_key_prefix="eval")
    metrics["eval_samples"] = len(eval_ds)
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)
    return metrics


def predict(trainer, tokenizer, predict_ds, predict_raw, training_args, rouge_tokenizer: str = "default") -> Dict[str, float]:
    """Generate for the test split; write ``predictions.jsonl`` (one row per example) and score it."""
    trainer.compute_metrics = None  # scored below against the untruncated references
    out = trainer.predict(predict_ds, metric_key_prefix="predict")
    metrics = dict(out.metrics, predict_samples=len(predict_ds))
    if not training_args.predict_with_generate:
        logger.warning("--predict_with_generate false: predict computed the loss only; no predictions.jsonl written")
    else:
        _check_alignment(out.label_ids, predict_ds, "predict")
        preds = _decode(tokenizer, out.predictions)
        refs = list(predict_raw["summary"])
        metrics.update({f"predict_{k}": v for k, v in rouge_means(preds, refs, rouge_tokenizer).items()})
        if trainer.is_world_process_zero():
            rows = [{"id": i, "prediction": p, "reference": r} for i, p, r in zip(predict_raw["id"], preds, refs)]
            write_jsonl_atomic(os.path.join(training_args.output_dir, "predictions.jsonl"), rows)
    trainer.log_metrics("predict", metrics)
    trainer.save_metrics("predict", metrics)
    return metrics


def train_evaluate_predict(trainer, tokenizer, data: RawData, raw: RawData, training_args, checkpoint,
                           rouge_tokenizer: str = "default") -> Dict[str, float]:
    """Whichever of --do_train, --do_eval, --do_predict was asked for, in that order; their metrics."""
    results = {}
    if training_args.do_train:
        results.update(train(trainer, checkpoint, data.train))
    if training_args.do_eval:
        results.update(evaluate(trainer, data.eval))
    if training_args.do_predict:
        results.update(predict(trainer, tokenizer, data.predict, raw.predict, training_args, rouge_tokenizer))
    return results


def rouge_summary(data_args, training_args) -> dict:
    """How the run's ROUGE was computed (``run_summary.json``'s ``rouge``), when it computed any."""
    if not (training_args.predict_with_generate and (training_args.do_eval or training_args.do_predict)):
        return {}
    from ..evaluation.rouge import rouge_settings

    return {"rouge": rouge_settings(tokenizer=data_args.rouge_tokenizer)}


def write_run_summary(training_args, model, raw: RawData, join_stats, checkpoint, results, parameters=None,
                      extra: Optional[dict] = None) -> dict:
    """``run_summary.json``: what the run trained on and what it measured (main process only)."""
    summary = {
        "model": type(model).__name__, "views": list(model_views(model)), "resumed_from": checkpoint,
        "examples": {k: (len(getattr(raw, k)) if getattr(raw, k) is not None else None) for k in RawData.SPLITS},
        "empty_examples_left_out": {k: len(v) for k, v in (raw.empty or {}).items()},
        "rationale_join": join_stats, "parameters": parameters, "metrics": results,
    }
    summary.update(extra or {})
    if join_stats:
        summary["documents"] = join_stats["line"]  # "N documents: a with rationales, ... → e trained"
    if training_args.should_save:
        os.makedirs(training_args.output_dir, exist_ok=True)
        write_json_atomic(os.path.join(training_args.output_dir, "run_summary.json"), summary)
    return summary


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------


def run(model_args, data_args, training_args) -> Dict[str, float]:
    from transformers import set_seed

    setup_logging(training_args)
    check_run(data_args, training_args)
    checkpoint = find_checkpoint(training_args)
    from .causal import is_causal_run, run_causal

    if is_causal_run(model_args):  # a decoder-only checkpoint: prompt -> summary, white-box or sparse top-K KD
        return run_causal(model_args, data_args, training_args, checkpoint)
    if data_args.brd_passages_dir:
        raise InputError("--brd_passages_dir trains a causal (decoder-only) student with the LM loss; a BART/LSR-MWF "
                         "student's --stage basic_reading denoises --basic_reading_file")
    if data_args.teacher_logprobs_file:
        raise InputError("--teacher_logprobs_file trains a causal (decoder-only) student; give one as --model_name_or_path")

    raw = load_raw_data(data_args, model_args, training_args)
    raw.train, join_stats = attach_rationales(raw.train, data_args, model_args, training_args)

    set_seed(training_args.seed)
    texts = None
    if raw.train is not None and not model_args.model_name_or_path and not model_args.tokenizer_name:
        texts = list(raw.train["document"]) + list(raw.train["summary"])
    model, tokenizer = build_model_and_tokenizer(model_args, data_args, texts, checkpoint)
    configure_generation(model, data_args)
    brd = data_args.stage == "basic_reading"
    if brd and data_args.brd_mix_original and tokenizer.mask_token != "<mask>":
        raise InputError(f"--brd_mix_original masks passages with '<mask>', but the tokenizer's mask token is "
                         f"{tokenizer.mask_token!r}; use a BART tokenizer or --brd_mix_original false")
    views = model_views(model)
    logger.info("model: %s, %.1fM parameters, views %s", type(model).__name__, model.num_parameters() / 1e6, list(views) or "none")
    parameters = freeze_parameters(model, model_args.freeze_encoder, model_args.freeze_embeddings)
    message = parameters.pop("message")
    if training_args.should_log:
        print(message, flush=True)  # printed, not logged: visible at the default log level
    if not views and data_args.rationale_file and data_args.target == "gold":
        logger.warning("--baseline has no views: the rationales in %s are not used (only --target llm_summary|both "
                       "reads its summaries)", data_args.rationale_file)
    if views and training_args.do_train and not brd and not data_args.rationale_file:
        logger.warning("no --rationale_file: the LSR-MWF alignment losses are off; views and gates still train through "
                       "the token loss. Generate rationales with generate_rationales.py to train the paper's method.")
    teacher = build_teacher(model_args, data_args, training_args, model, tokenizer)

    data = tokenize(raw, tokenizer, data_args, training_args, views)
    data.train = encode_rationale_targets(data.train, model, views, model_args, training_args)

    trainer = build_trainer(model, tokenizer, teacher, data, raw, training_args, data_args.rouge_tokenizer)
    results = train_evaluate_predict(trainer, tokenizer, data, raw, training_args, checkpoint, data_args.rouge_tokenizer)
    write_run_summary(training_args, model, raw, join_stats, checkpoint, results, parameters,
                      extra=rouge_summary(data_args, training_args))
    return results
