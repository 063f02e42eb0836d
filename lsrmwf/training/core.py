"""The steps every ``train.py`` recipe shares, importing no method: the splits, the run checks, train /
evaluate / predict and ``run_summary.json``. A recipe (:mod:`lsrmwf.training.recipes`) adds its model, its
data and its trainer in between.

A run writes to ``--output_dir``: checkpoints, the final model and tokenizer, ``predictions.jsonl`` (id,
prediction, reference), ``*_results.json`` / ``all_results.json`` and ``run_summary.json`` (what was trained
on, and the metrics); an LSR-MWF run also ``gates.jsonl``.
"""

import logging
import os
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from ..io import InputError, write_json_atomic, write_jsonl_atomic
from ..io.disk import writing
from ..io.provenance import PROVENANCE_KEY, provenance
from .checkpoints import resolve_checkpoint

logger = logging.getLogger("lsrmwf.train")


def model_views(model) -> tuple:
    """The LSR-MWF views a model was built with (``()`` for any other model)."""
    return tuple(getattr(getattr(model, "config", None), "views", None) or ())


def is_causal_config(config) -> bool:
    """A decoder-only LM (what ``AutoModelForCausalLM`` loads and is not an encoder-decoder)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return not getattr(config, "is_encoder_decoder", False) \
        and config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES \
        and config.model_type not in ("bart", "lsrmwf")


def is_causal_run(model_args) -> bool:
    if not model_args.model_name_or_path:
        return False
    return is_causal_config(model_args.load_config())


@dataclass
class RawData:
    """The untokenized splits of one run (``None`` where the run does not use a split)."""

    train: Optional[object] = None
    eval: Optional[object] = None
    predict: Optional[object] = None
    # per split, the examples left out for an empty document or summary ({"row", "id", "field"} each)
    empty: Optional[Dict[str, list]] = None

    SPLITS = ("train", "eval", "predict")


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


def check_run(training_args) -> None:
    """Refuse runs that cannot do what was asked, before any work starts."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and training_args.world_size != launched:
        raise InputError(
            f"launched as {launched} processes, but the Trainer sees "
            f"{training_args.world_size}: each process would train "
            "alone and write the same --output_dir. Without a GPU, add --use_cpu so the "
            "processes train together over gloo"
        )
    if training_args.n_gpu > 1:
        raise InputError(f"this process sees {training_args.n_gpu} GPUs and would train them with torch "
                         "DataParallel, which the loss normalisation does not support; launch one process per GPU: "
                         f"accelerate launch --num_processes {training_args.n_gpu} train.py … (or torchrun "
                         f"--nproc_per_node {training_args.n_gpu})")
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


def load_split(data_args, model_args, which: str, dropped: Optional[list] = None):
    """One raw split (id/document/summary) for train/eval/predict, or None if no source names it.

    Examples with an empty document or summary are left out and listed in ``dropped``
    (``--strict_data``: an error naming them)."""
    file = {"train": data_args.train_file, "eval": data_args.validation_file, "predict": data_args.test_file}[which]
    split = {"train": data_args.train_split, "eval": data_args.validation_split,
             "predict": data_args.test_split}[which]
    limit = {"train": data_args.max_train_samples, "eval": data_args.max_eval_samples,
             "predict": data_args.max_predict_samples}[which]
    if file is None and data_args.dataset_name is None:
        return None
    return data_args.load(split, file, limit, model_args.cache_dir,
                          on_empty="error" if data_args.strict_data else "drop", dropped=dropped)


def load_raw_data(data_args, model_args, training_args, load_train=None) -> RawData:
    """The splits the run needs; a missing source is an error naming the flag to give. ``load_train``, when
    given, builds the training split instead (a recipe's own training data, e.g. BRD's denoising examples)."""
    raw = RawData(empty={"train": [], "eval": [], "predict": []})
    with training_args.main_process_first(desc="loading data"):
        if training_args.do_train:
            if load_train is not None:
                raw.train = load_train()
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


def check_alignment(label_ids, tokenized, what: str) -> None:
    """Row i of the gathered labels must be example i's labels: guards the one-prediction-per-example order."""
    if label_ids is None:
        return
    if len(label_ids) != len(tokenized):
        raise RuntimeError(f"{what}: {len(label_ids)} predictions for {len(tokenized)} examples")
    for i, lab in enumerate(tokenized["labels"]):
        if list(label_ids[i, : len(lab)]) != list(lab):
            raise RuntimeError(f"{what}: prediction row {i} does not belong to example "
                               f"{i}; predictions are misaligned")


def decode_predictions(tokenizer, ids):
    ids = np.where(ids != -100, ids, tokenizer.pad_token_id)
    return [t.strip()
            for t in tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)]


def rouge_means(predictions, references, tokenizer: str = "default") -> dict:
    """Corpus ROUGE (``--rouge_tokenizer``: see :mod:`lsrmwf.evaluation.rouge`)."""
    from ..evaluation.rouge import rouge_scores

    scores = rouge_scores(predictions, references, progress=False, tokenizer=tokenizer)
    return {k: round(float(v.mean()), 4) for k, v in scores.items()}


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving a complete checkpoint (``stopped``: signal, step, checkpoint)."""

    def __init__(self, stopped: dict, output_dir: str):
        self.stopped = stopped
        super().__init__(f"stopped by {stopped['signal']} at step {stopped['step']} after saving "
                         f"{os.path.join(output_dir, stopped['checkpoint'])}; rerun the same command to resume")


def train(trainer, checkpoint: Optional[str], train_ds) -> Dict[str, float]:
    """Train (resuming from ``checkpoint``) and save the model; :class:`TrainingInterrupted` once a signal made
    the trainer save and stop (no final model, evaluation or prediction then)."""
    result = trainer.train(resume_from_checkpoint=checkpoint)
    stopped = getattr(getattr(trainer, "stop_on_signal", None), "stopped", None)
    if stopped:
        raise TrainingInterrupted(stopped, trainer.args.output_dir)
    with writing(trainer.args.output_dir, "the final model"):
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


def predict(trainer, tokenizer, predict_ds, predict_raw, training_args,
            rouge_tokenizer: str = "default") -> Dict[str, float]:
    """Generate for the test split; write ``predictions.jsonl`` (one row per example) and score it."""
    trainer.compute_metrics = None  # scored below against the untruncated references
    out = trainer.predict(predict_ds, metric_key_prefix="predict")
    metrics = dict(out.metrics, predict_samples=len(predict_ds))
    if not training_args.predict_with_generate:
        logger.warning("--predict_with_generate false: predict computed the loss only; no predictions.jsonl written")
    else:
        check_alignment(out.label_ids, predict_ds, "predict")
        preds = decode_predictions(tokenizer, out.predictions)
        refs = list(predict_raw["summary"])
        metrics.update({f"predict_{k}": v for k, v in rouge_means(preds, refs, rouge_tokenizer).items()})
        if trainer.is_world_process_zero():
            rows = [{"id": i, "prediction": p, "reference": r} for i, p, r in zip(predict_raw["id"], preds, refs)]
            write_jsonl_atomic(os.path.join(training_args.output_dir, "predictions.jsonl"), rows, "the predictions")
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
    if training_args.should_save:  # the main process only (git and the versions are read once)
        summary[PROVENANCE_KEY] = provenance(seed=training_args.seed, device=training_args.device)
        os.makedirs(training_args.output_dir, exist_ok=True)
        write_json_atomic(os.path.join(training_args.output_dir, "run_summary.json"), summary, "the run summary")
    return summary


def write_interrupted_summary(training_args, checkpoint, stop: TrainingInterrupted, recipe: str) -> None:
    """``run_summary.json`` of a run a signal stopped: where it stopped, under ``interrupted`` (main process)."""
    if training_args.should_save:
        summary = {"interrupted": stop.stopped, "resumed_from": checkpoint, "recipe": recipe,
                   PROVENANCE_KEY: provenance(seed=training_args.seed, device=training_args.device)}
        write_json_atomic(os.path.join(training_args.output_dir, "run_summary.json"), summary, "the run summary")
