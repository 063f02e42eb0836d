"""What ``train.py`` does: parse arguments, build data, model and trainer, train, evaluate, predict.

    accelerate launch train.py                         # small built-in demo run on aclsum (2 CPU cores, minutes)
    accelerate launch train.py --rationale_file r.jsonl   # the same with LSR-MWF's alignment losses
    accelerate launch train.py --preset cnndm --dataset_name cnn_dailymail --dataset_config_name 3.0.0 \\
        --model_name_or_path facebook/bart-large --rationale_file r.jsonl --output_dir out --do_train --do_predict
    python train.py config.json                        # one JSON file holding all arguments

A run writes to ``--output_dir``: checkpoints, ``gates.jsonl``, the final model and tokenizer,
``predictions.jsonl`` (id, prediction, reference) and ``*_results.json`` / ``all_results.json``.
"""

import hashlib
import json
import logging
import os
import sys
from typing import List, Optional

import numpy as np

from .arguments import DataArguments, ModelArguments
from .collator import LsrMwfCollator
from .data import join_rationales, load_documents, load_rationales
from .distill import build_basic_reading_dataset, check_bart_checkpoint, load_teacher
from .io import InputError, write_jsonl_atomic
from .presets import HUB_DATASETS, fill_from_preset
from .trainer import LsrMwfTrainer, LsrMwfTrainingArguments, _gathered, model_views

logger = logging.getLogger("lsrmwf.train")

# `train.py` with no data source runs this: real ACL papers (aclsum, offline), a BART built from a
# small config with a BPE vocabulary trained on the training text, short lengths, a few steps.
# Anything given on the command line is appended and wins (argparse keeps the last value).
DEFAULT_RUN_ARGS = [
    "--dataset_name", "aclsum",
    "--output_dir", "outputs/default_run",
    "--do_train", "--do_eval", "--do_predict",
    "--preset", "cnndm",
    "--config_overrides",
    "d_model=128,encoder_layers=2,decoder_layers=2,encoder_attention_heads=4,decoder_attention_heads=4,"
    "encoder_ffn_dim=256,decoder_ffn_dim=256,max_position_embeddings=512",
    "--tokenizer_vocab_size", "4000",
    "--max_source_length", "384", "--max_target_length", "96", "--max_rationale_length", "128",
    "--num_beams", "2", "--min_length", "10", "--max_length", "96",
    "--max_steps", "80", "--learning_rate", "1e-3", "--warmup_steps", "10",
    "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
    "--max_eval_samples", "16", "--max_predict_samples", "16",
    "--logging_steps", "10", "--save_steps", "40", "--save_total_limit", "2",
    "--eval_strategy", "no", "--report_to", "none", "--seed", "42",
]
DATA_SOURCE_FLAGS = ("--dataset_name", "--train_file", "--validation_file", "--test_file", "--basic_reading_file")


# ----------------------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------------------


def parse_args(argv: Optional[List[str]] = None):
    """``(model_args, data_args, training_args)`` from the command line, a JSON file, or the default run."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser((ModelArguments, DataArguments, LsrMwfTrainingArguments))
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        model_args, data_args, training_args = parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    else:
        flags = {"--" + a.lstrip("-").split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}
        if not flags & set(DATA_SOURCE_FLAGS):
            logger.warning("no data source given: running the built-in default (aclsum, small BART from config); "
                           "see lsrmwf/training.py DEFAULT_RUN_ARGS")
            argv = DEFAULT_RUN_ARGS + argv
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    resolve_preset(model_args, data_args, training_args)
    return model_args, data_args, training_args


def resolve_preset(model_args, data_args, training_args) -> str:
    """Fill every unset (None) value from the preset: explicit, else implied by the hub dataset, else cnndm."""
    preset = data_args.preset
    if preset is None:
        preset = HUB_DATASETS.get(data_args.dataset_name or "", {}).get("preset", "cnndm")
        logger.info("no --preset given: using %r for unset values", preset)
        data_args.preset = preset
    fill_from_preset(data_args, preset)
    fill_from_preset(model_args, preset, fields=("gate_init",))
    fill_from_preset(training_args, preset, fields=("gamma_ce", "gamma_views"))
    return preset


# ----------------------------------------------------------------------------------------------
# Model and tokenizer
# ----------------------------------------------------------------------------------------------


def _has_tokenizer(path: Optional[str]) -> bool:
    return bool(path) and any(os.path.exists(os.path.join(path, f)) for f in ("tokenizer.json", "vocab.json", "tokenizer_config.json"))


def _train_tokenizer_once(texts, vocab_size):
    """Train the BPE on the main process only and hand the same tokenizer to every other process."""
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    from .tokenization import train_bpe_tokenizer

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
    import lsrmwf  # noqa: F401  (registers "lsrmwf" with the Auto classes)
    from transformers import AutoConfig, AutoTokenizer, BartConfig, BartForConditionalGeneration

    from .configuration import LsrMwfConfig
    from .modeling import LsrMwfForConditionalGeneration

    hub = dict(cache_dir=model_args.cache_dir, revision=model_args.model_revision)
    lsr_kwargs = {"gate_init": model_args.gate_init, "freeze_gates": model_args.freeze_gates}
    if model_args.views is not None:
        lsr_kwargs["views"] = list(model_args.views)
    if model_args.view_ffn_dim is not None:
        lsr_kwargs["view_ffn_dim"] = model_args.view_ffn_dim
    path = model_args.model_name_or_path
    if path:
        config = AutoConfig.from_pretrained(path, **hub)
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


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------


def load_split(data_args, model_args, which: str):
    """One raw split (id/document/summary) for train/eval/predict, or None if no source names it."""
    file = {"train": data_args.train_file, "eval": data_args.validation_file, "predict": data_args.test_file}[which]
    split = {"train": data_args.train_split, "eval": data_args.validation_split, "predict": data_args.test_split}[which]
    limit = {"train": data_args.max_train_samples, "eval": data_args.max_eval_samples, "predict": data_args.max_predict_samples}[which]
    common = dict(text_column=data_args.text_column, summary_column=data_args.summary_column, id_column=data_args.id_column,
                  max_examples=limit, cache_dir=model_args.cache_dir)
    if file is not None:
        return load_documents(data_file=file, **common)
    if data_args.dataset_name is not None:
        return load_documents(dataset_name=data_args.dataset_name, dataset_config_name=data_args.dataset_config_name,
                              split=split, **common)
    return None


def apply_target(train, data_args):
    """``--target``: gold summaries, the LLM's total summaries (sequence-level KD), or both."""
    if data_args.target == "gold":
        return train
    import datasets

    rows = load_rationales(data_args.rationale_file)

    def llm_summary(i):
        r = rows.get(i)
        if r is None or r.get("error") or r.get("keep") is False:
            return None
        s = r.get("summary")
        return s.strip() if isinstance(s, str) and s.strip() else None

    llm = train.map(lambda b: {"summary": [llm_summary(i) for i in b["id"]]}, batched=True, desc="LLM summaries as targets")
    llm = llm.filter(lambda b: [s is not None for s in b["summary"]], batched=True)
    if len(llm) == 0:
        raise InputError(f"{data_args.rationale_file}: no kept, error-free row with a non-empty 'summary' matches a training "
                         f"example; --target {data_args.target} has nothing to train on")
    logger.info("--target %s: %d of %d training documents have an LLM summary", data_args.target, len(llm), len(train))
    return llm if data_args.target == "llm_summary" else datasets.concatenate_datasets([train, llm])


def tokenize_dataset(ds, tokenizer, data_args, views=(), desc="tokenizing", num_proc=None):
    """input_ids/attention_mask/labels, plus ``{v}_input_ids``/``{v}_attention_mask`` per view with text."""
    views = [v for v in views if f"{v}_text" in ds.column_names]

    def encode(batch):
        enc = tokenizer(batch["document"], max_length=data_args.max_source_length, truncation=True)
        out = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
               "labels": tokenizer(batch["summary"], max_length=data_args.max_target_length, truncation=True)["input_ids"]}
        for v in views:
            texts = batch[f"{v}_text"]
            have = [k for k, t in enumerate(texts) if t]
            ids, masks = [[] for _ in texts], [[] for _ in texts]
            if have:
                r = tokenizer([texts[k] for k in have], max_length=data_args.max_rationale_length, truncation=True)
                for j, k in enumerate(have):
                    ids[k], masks[k] = r["input_ids"][j], r["attention_mask"][j]
            out[f"{v}_input_ids"], out[f"{v}_attention_mask"] = ids, masks
        return out

    return ds.map(encode, batched=True, remove_columns=ds.column_names, num_proc=num_proc, desc=desc)


def _model_identity(model_args, training_args) -> str:
    """What the initial weights depend on, for the cache key of the encoded rationale targets."""
    path = model_args.model_name_or_path
    if path and os.path.isdir(path):
        stamps = sorted((f, os.path.getsize(os.path.join(path, f)), os.path.getmtime(os.path.join(path, f)))
                        for f in os.listdir(path) if f.endswith((".safetensors", ".bin")))
        return json.dumps({"dir": os.path.abspath(path), "weights": stamps})
    if path:
        return json.dumps({"hub": path, "revision": model_args.model_revision})
    return json.dumps({"scratch": model_args.config_overrides, "seed": training_args.seed})


def add_rationale_targets(ds, model, views, device, identity: str, batch_size: int = 32):
    """Replace each view's rationale ids by its encoding with the initial model (``{v}_target``).

    Runs once and is cached by datasets under a key made of the data, the model identity and the views.
    """
    from .collator import _pad

    pad = model.config.pad_token_id
    key = hashlib.sha256(json.dumps([ds._fingerprint, identity, list(views), "targets-v1"]).encode()).hexdigest()[:16]

    def encode(batch):
        out = {}
        for v in views:
            ids = _pad(batch[f"{v}_input_ids"], pad, None).to(device)
            mask = _pad(batch[f"{v}_attention_mask"], 0, None).to(device)
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


# ----------------------------------------------------------------------------------------------
# Run
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


def rouge_means(predictions, references) -> dict:
    from .evaluation.rouge import rouge_scores

    scores = rouge_scores(predictions, references, progress=False)
    return {k: round(float(v.mean()), 4) for k, v in scores.items()}


def main(argv: Optional[List[str]] = None):
    model_args, data_args, training_args = parse_args(argv)
    return run(model_args, data_args, training_args)


def run(model_args, data_args, training_args):
    import datasets
    import transformers
    from transformers import set_seed
    from transformers.trainer_utils import get_last_checkpoint

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO if training_args.should_log else logging.WARNING)
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    for name in ("lsrmwf.data", "lsrmwf.distill", "lsrmwf.trainer"):
        logging.getLogger(name).setLevel(log_level)

    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and training_args.world_size != launched:
        raise InputError(
            f"launched as {launched} processes, but the Trainer sees {training_args.world_size}: each process would train "
            f"alone and write the same --output_dir. Without a GPU, add --use_cpu so the processes train together over gloo"
        )
    brd = data_args.stage == "basic_reading"
    if brd and (training_args.do_eval or training_args.do_predict):
        raise InputError("--stage basic_reading only trains (pre-education); evaluate the summarization stage that starts "
                         "from its output (--model_name_or_path <this --output_dir>)")
    if not (training_args.do_train or training_args.do_eval or training_args.do_predict):
        raise InputError("nothing to do: give --do_train, --do_eval and/or --do_predict")

    checkpoint = training_args.resume_from_checkpoint
    if (checkpoint is None and training_args.do_train and not training_args.overwrite_output_dir
            and os.path.isdir(training_args.output_dir)):
        checkpoint = get_last_checkpoint(training_args.output_dir)
        if checkpoint:
            logger.info("resuming from %s (found in --output_dir; --overwrite_output_dir starts afresh)", checkpoint)
    if checkpoint is not None and not os.path.isdir(checkpoint):
        raise InputError(f"--resume_from_checkpoint {checkpoint}: no such directory")

    # -- raw data -------------------------------------------------------------------------------
    with training_args.main_process_first(desc="loading data"):
        train_raw = eval_raw = predict_raw = None
        if training_args.do_train:
            if brd:
                train_raw, _ = build_basic_reading_dataset(
                    data_args.basic_reading_file, mix_original=data_args.brd_mix_original,
                    passage_sentences=data_args.brd_passage_sentences, mask_ratio=data_args.brd_mask_ratio,
                    seed=training_args.seed)
            else:
                train_raw = load_split(data_args, model_args, "train")
                if train_raw is None:
                    raise InputError("--do_train needs --dataset_name or --train_file")
        if training_args.do_eval:
            eval_raw = load_split(data_args, model_args, "eval")
            if eval_raw is None:
                raise InputError("--do_eval needs --validation_file (or --dataset_name with a validation split)")
        if training_args.do_predict:
            predict_raw = load_split(data_args, model_args, "predict")
            if predict_raw is None:
                raise InputError("--do_predict needs --test_file (or --dataset_name with a test split)")

    if train_raw is not None and not brd:
        if data_args.rationale_file:
            train_raw, _ = join_rationales(train_raw, data_args.rationale_file, logger=logger)
            if len(train_raw) == 0:
                raise InputError(f"{data_args.rationale_file}: every training example is marked keep=false")
        train_raw = apply_target(train_raw, data_args)

    # -- model ----------------------------------------------------------------------------------
    set_seed(training_args.seed)
    texts = None
    if train_raw is not None and not model_args.model_name_or_path and not model_args.tokenizer_name:
        texts = list(train_raw["document"]) + list(train_raw["summary"])
    model, tokenizer = build_model_and_tokenizer(model_args, data_args, texts, checkpoint)
    configure_generation(model, data_args)
    if brd and data_args.brd_mix_original and tokenizer.mask_token != "<mask>":
        raise InputError(f"--brd_mix_original masks passages with '<mask>', but the tokenizer's mask token is "
                         f"{tokenizer.mask_token!r}; use a BART tokenizer or --brd_mix_original false")
    views = model_views(model)
    logger.info("model: %s, %.1fM parameters, views %s", type(model).__name__, model.num_parameters() / 1e6, list(views) or "none")
    if not views and data_args.rationale_file and data_args.target == "gold":
        logger.warning("--baseline has no views: the rationales in %s are not used (only --target llm_summary|both "
                       "reads its summaries)", data_args.rationale_file)
    if views and training_args.do_train and not brd and not data_args.rationale_file:
        logger.warning("no --rationale_file: the LSR-MWF alignment losses are off; views and gates still train through "
                       "the token loss. Generate rationales with generate_rationales.py to train the paper's method.")
    teacher = None
    if model_args.teacher_model_name_or_path and training_args.do_train:
        teacher = load_teacher(model_args.teacher_model_name_or_path, model, tokenizer, device=training_args.device,
                               cache_dir=model_args.cache_dir)
        longest = max(data_args.max_source_length, data_args.max_target_length)
        if teacher.config.max_position_embeddings < longest:
            raise InputError(f"--teacher_model_name_or_path: max_position_embeddings {teacher.config.max_position_embeddings} "
                             f"< {longest} (--max_source_length/--max_target_length)")

    # -- tokenized data -------------------------------------------------------------------------
    num_proc = data_args.preprocessing_num_workers
    train_ds = eval_ds = predict_ds = None
    with training_args.main_process_first(desc="tokenizing"):
        if train_raw is not None:
            train_ds = tokenize_dataset(train_raw, tokenizer, data_args, views, "tokenizing train", num_proc)
        if eval_raw is not None:
            eval_ds = tokenize_dataset(eval_raw, tokenizer, data_args, (), "tokenizing validation", num_proc)
        if predict_raw is not None:
            predict_ds = tokenize_dataset(predict_raw, tokenizer, data_args, (), "tokenizing test", num_proc)
    target_views = [v for v in views if train_ds is not None and f"{v}_input_ids" in train_ds.column_names]
    if target_views and model_args.cache_rationale_targets:
        # gathering ZeRO-3-partitioned weights is a collective, so every rank enters it before the barrier
        with _gathered(list(model.parameters())), training_args.main_process_first(desc="encoding rationales"):
            train_ds = add_rationale_targets(train_ds, model, target_views, training_args.device,
                                             _model_identity(model_args, training_args),
                                             batch_size=max(8, training_args.per_device_eval_batch_size))

    # -- train / evaluate / predict -------------------------------------------------------------
    collator = LsrMwfCollator(pad_token_id=tokenizer.pad_token_id,
                              pad_to_multiple_of=8 if (training_args.fp16 or training_args.bf16) else None)
    eval_refs = list(eval_raw["summary"]) if eval_raw is not None else None

    def compute_metrics(p):
        # Seq2SeqTrainer gathers the padding duplicates of multi-process evaluation too; they come last.
        preds = _decode(tokenizer, p.predictions[: len(eval_refs)])
        return rouge_means(preds, eval_refs)

    trainer = LsrMwfTrainer(
        model=model, args=training_args, data_collator=collator, train_dataset=train_ds, eval_dataset=eval_ds,
        processing_class=tokenizer, teacher_model=teacher,
        compute_metrics=compute_metrics if (eval_ds is not None and training_args.predict_with_generate) else None,
    )
    results = {}
    if training_args.do_train:
        train_result = trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_model()
        metrics = dict(train_result.metrics, train_samples=len(train_ds))
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
        results.update(metrics)
    if training_args.do_eval:
        metrics = trainer.evaluate(metric_key_prefix="eval")
        metrics["eval_samples"] = len(eval_ds)
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        results.update(metrics)
    if training_args.do_predict:
        trainer.compute_metrics = None  # scored below against the untruncated references
        out = trainer.predict(predict_ds, metric_key_prefix="predict")
        metrics = dict(out.metrics, predict_samples=len(predict_ds))
        if not training_args.predict_with_generate:
            logger.warning("--predict_with_generate false: predict computed the loss only; no predictions.jsonl written")
        else:
            _check_alignment(out.label_ids, predict_ds, "predict")
            preds = _decode(tokenizer, out.predictions)
            refs = list(predict_raw["summary"])
            metrics.update({f"predict_{k}": v for k, v in rouge_means(preds, refs).items()})
            if trainer.is_world_process_zero():
                rows = [{"id": i, "prediction": p, "reference": r} for i, p, r in zip(predict_raw["id"], preds, refs)]
                write_jsonl_atomic(os.path.join(training_args.output_dir, "predictions.jsonl"), rows)
        trainer.log_metrics("predict", metrics)
        trainer.save_metrics("predict", metrics)
        results.update(metrics)
    return results


__all__ = ["main", "run", "parse_args", "resolve_preset", "build_model_and_tokenizer", "DEFAULT_RUN_ARGS"]
