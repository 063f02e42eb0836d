"""The LSR-MWF recipe (BART student with views and gates, or plain BART with ``--baseline``) as named steps;
:func:`run` calls them in order.

    load_raw_data        the train/validation/test splits (or BRD's denoising examples for --stage basic_reading)
    attach_rationales    the rationale file, read once: views' texts joined, --target summaries applied
    build_model_and_tokenizer, configure_generation, build_teacher (a seq2seq logit-KD teacher)
    tokenize             documents, summaries and rationale texts
    encode_rationale_targets   each view's target encoded once with the initial encoder (cached)
    build_trainer        collator, metrics, LsrMwfTrainer
    train / evaluate / predict, then write_run_summary   (lsrmwf.training.core)
"""

import hashlib
import json
import logging
import os
from typing import Dict, Optional

from ...data.preprocessing import apply_target, tokenize_dataset
from ...data.rationales import join_rationales, rationale_table
from ...data.tokenization import fit_model_max_length
from ...distill.basic_reading import build_basic_reading_dataset
from ...distill.logit_kd import check_bart_checkpoint, load_teacher
from ...io import InputError
from ..collators import LsrMwfCollator, pad_sequences
from ..core import (
    RawData,
    decode_predictions,
    is_causal_run,
    load_raw_data,
    model_views,
    rouge_means,
    rouge_summary,
    train_evaluate_predict,
    write_run_summary,
)
from ..freezing import freeze_parameters
from ..lsr_mwf import LsrMwfArguments, LsrMwfTrainer, gathered_parameters

logger = logging.getLogger("lsrmwf.train")

ARGUMENTS = LsrMwfArguments


def applies(args) -> bool:
    """A BART or LSR-MWF student (a checkpoint of that kind, or one built from --config_overrides)."""
    return not is_causal_run(args.model)


def check(args) -> None:
    """Refuse the flags of the causal recipes before any work starts."""
    if args.basic_reading.brd_passages_dir:
        raise InputError("--brd_passages_dir trains a causal (decoder-only) student with the LM loss; a BART/LSR-MWF "
                         "student's --stage basic_reading denoises --basic_reading_file")
    if args.logit_kd.teacher_logprobs_file:
        raise InputError("--teacher_logprobs_file trains a causal (decoder-only) student; give one as "
                         "--model_name_or_path")
    kd = args.logit_kd
    if kd.kd_loss != "forward_kl" or kd.kd_beta is not None or kd.kd_on_policy_lambda:
        raise InputError("--kd_loss/--kd_beta/--kd_on_policy_lambda apply to causal (decoder-only) students; a BART "
                         "student's KD is forward KL on the references")
    args.basic_reading.check_training_only(args.training)


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------


def denoising_examples(brd, training_args):
    """``--stage basic_reading``: the denoising examples of ``--basic_reading_file`` as the training split."""
    def load():
        ds, _ = build_basic_reading_dataset(brd.basic_reading_file, mix_original=brd.brd_mix_original,
                                            passage_sentences=brd.brd_passage_sentences,
                                            mask_ratio=brd.brd_mask_ratio, seed=training_args.seed)
        return ds

    return load


def attach_rationales(train, lsr: LsrMwfArguments, model_args, training_args) -> tuple:
    """Join the views' texts from ``--rationale_file`` and apply ``--target``. Returns ``(train, stats)``.

    The main process builds the file's Arrow table and the joined split (both cached by datasets);
    the other ranks then read them."""
    if train is None or not lsr.rationale_file:
        return train, None
    with training_args.main_process_first(desc="joining rationales"):
        table = rationale_table(lsr.rationale_file, model_args.cache_dir)
        train, stats = join_rationales(train, lsr.rationale_file, policy=lsr.rationale_policy,
                                       logger=logger if training_args.should_log else None, table=table,
                                       on_duplicate=lsr.on_duplicate, cache_dir=model_args.cache_dir)
        if len(train) == 0:
            raise InputError(f"{lsr.rationale_file}: no training document has a kept, finished rationale row "
                             f"({stats['line']}); --rationale_policy ce_only trains them with the token loss only")
        return apply_target(train, lsr, table), stats


# ----------------------------------------------------------------------------------------------
# Model and tokenizer
# ----------------------------------------------------------------------------------------------


def has_tokenizer(path: Optional[str]) -> bool:
    return bool(path) and any(os.path.exists(os.path.join(path, f))
                              for f in ("tokenizer.json", "vocab.json", "tokenizer_config.json"))


def train_tokenizer_once(texts, vocab_size):
    """Train the BPE on the main process only and hand the same tokenizer to every other process."""
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    from ...data.tokenization import train_bpe_tokenizer

    state = PartialState()
    box = [None]
    if state.is_main_process:
        box[0] = train_bpe_tokenizer(texts, vocab_size=vocab_size)
        logger.info("trained a BPE tokenizer with %d tokens on %d training texts", len(box[0]), len(texts))
    if state.num_processes > 1:
        broadcast_object_list(box, from_process=0)
    return box[0]


def lsr_mwf_kwargs(lsr: LsrMwfArguments) -> dict:
    """The LSR-MWF config values the arguments set (gates, views, view width)."""
    kwargs = {"gate_init": lsr.gate_init, "freeze_gates": lsr.freeze_gates}
    if lsr.views is not None:
        kwargs["views"] = list(lsr.views)
    if lsr.view_ffn_dim is not None:
        kwargs["view_ffn_dim"] = lsr.view_ffn_dim
    return kwargs


def load_student(model_args, lsr: LsrMwfArguments):
    """The student and tokenizer from ``--model_name_or_path``; non-BART model types are refused."""
    from transformers import AutoTokenizer, BartForConditionalGeneration

    from ...models.modeling_lsrmwf import LsrMwfForConditionalGeneration

    hub = dict(cache_dir=model_args.cache_dir, revision=model_args.model_revision)
    path = model_args.model_name_or_path
    config = model_args.load_config()
    check_bart_checkpoint(path, config)
    tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or path, **hub)
    if lsr.baseline:
        if config.model_type != "bart":
            raise InputError(f"--baseline trains plain BART; {path} is an {config.model_type!r} checkpoint (its views "
                             f"and gates would be dropped). Use a BART checkpoint or leave out --baseline")
        return BartForConditionalGeneration.from_pretrained(path, **hub), tokenizer
    trained_width = getattr(config, "view_ffn_dim", None) if config.model_type == "lsrmwf" else None
    if trained_width is not None and lsr.view_ffn_dim not in (None, trained_width):
        raise InputError(f"--view_ffn_dim {lsr.view_ffn_dim}: {path} has view layers of width {trained_width}; "
                         f"leave the flag out to continue that model")
    model = LsrMwfForConditionalGeneration.from_pretrained(path, **hub, **lsr_mwf_kwargs(lsr))
    return model, tokenizer


def scratch_tokenizer(model_args, train_texts, checkpoint: Optional[str]):
    """``--tokenizer_name``, the one saved in the checkpoint being resumed, or a BPE trained on ``train_texts``."""
    from transformers import AutoTokenizer

    if model_args.tokenizer_name:
        return AutoTokenizer.from_pretrained(model_args.tokenizer_name, cache_dir=model_args.cache_dir,
                                             revision=model_args.model_revision)
    if has_tokenizer(checkpoint):
        logger.info("resuming: tokenizer from %s", checkpoint)
        return AutoTokenizer.from_pretrained(checkpoint)
    if not train_texts:
        raise InputError("a model built from scratch trains its tokenizer on the training text; give training data "
                         "(--do_train) or --tokenizer_name / --model_name_or_path")
    return train_tokenizer_once(train_texts, model_args.tokenizer_vocab_size)


def scratch_student(model_args, data_args, lsr: LsrMwfArguments, tokenizer):
    """A BartConfig with ``--config_overrides``: plain BART (``--baseline``) or LSR-MWF on it."""
    from transformers import BartConfig, BartForConditionalGeneration

    from ...models.configuration_lsrmwf import LsrMwfConfig
    from ...models.modeling_lsrmwf import LsrMwfForConditionalGeneration

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
    if lsr.baseline:
        return BartForConditionalGeneration(config)
    cfg = config.to_dict()
    for key in ("model_type", "architectures", "transformers_version"):
        cfg.pop(key, None)
    return LsrMwfForConditionalGeneration(LsrMwfConfig(**cfg, **lsr_mwf_kwargs(lsr)))


def build_model_and_tokenizer(model_args, data_args, lsr: LsrMwfArguments, train_texts=None,
                              checkpoint: Optional[str] = None):
    """The student (LSR-MWF, or plain BART with ``--baseline``) and its tokenizer.

    From a checkpoint: refuse non-BART model types. From scratch: a BartConfig with
    ``--config_overrides`` and a BPE tokenizer trained on ``train_texts`` (or, when resuming, the one
    saved in ``checkpoint``).
    """
    if model_args.model_name_or_path:
        model, tokenizer = load_student(model_args, lsr)
    else:
        tokenizer = scratch_tokenizer(model_args, train_texts, checkpoint)
        model = scratch_student(model_args, data_args, lsr, tokenizer)
    longest = max(data_args.max_source_length, data_args.max_target_length)
    if model.config.max_position_embeddings < longest:
        raise InputError(f"--max_source_length/--max_target_length {longest} exceed the model's "
                         f"max_position_embeddings {model.config.max_position_embeddings}")
    if len(tokenizer) > model.config.vocab_size:
        raise InputError(f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary only "
                         f"{model.config.vocab_size}")
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


def build_teacher(args, model, tokenizer):
    """The frozen seq2seq logit-KD teacher, or ``None``."""
    kd, data_args, training_args = args.logit_kd, args.data, args.training
    if not (kd.teacher_model_name_or_path and training_args.do_train):
        return None
    teacher = load_teacher(kd.teacher_model_name_or_path, model, tokenizer, device=training_args.device,
                           cache_dir=args.model.cache_dir)
    longest = max(data_args.max_source_length, data_args.max_target_length)
    if teacher.config.max_position_embeddings < longest:
        raise InputError(f"--teacher_model_name_or_path: max_position_embeddings "
                         f"{teacher.config.max_position_embeddings} < {longest} "
                         f"(--max_source_length/--max_target_length)")
    return teacher


# ----------------------------------------------------------------------------------------------
# Tokenized data and rationale targets
# ----------------------------------------------------------------------------------------------


def tokenize(raw: RawData, tokenizer, data_args, lsr: LsrMwfArguments, training_args, views) -> RawData:
    """Tokenized splits; only the training split carries rationale texts."""
    num_proc = data_args.preprocessing_num_workers
    out = RawData()
    rationale = dict(max_rationale_length=lsr.max_rationale_length)
    with training_args.main_process_first(desc="tokenizing"):
        if raw.train is not None:
            out.train = tokenize_dataset(raw.train, tokenizer, data_args, views, "tokenizing train", num_proc,
                                         **rationale)
        if raw.eval is not None:
            out.eval = tokenize_dataset(raw.eval, tokenizer, data_args, (), "tokenizing validation", num_proc,
                                        **rationale)
        if raw.predict is not None:
            out.predict = tokenize_dataset(raw.predict, tokenizer, data_args, (), "tokenizing test", num_proc,
                                           **rationale)
    return out


def model_identity(model_args, training_args) -> str:
    """What the initial weights depend on, for the cache key of the encoded rationale targets: a
    checkpoint's files by content (:func:`lsrmwf.io.fingerprint.checkpoint_fingerprint`, as evaluate.py
    keys its predictions), a hub name by name and revision, a model from scratch by its config and seed."""
    from ...io.fingerprint import checkpoint_fingerprint

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


def encode_rationale_targets(train_ds, model, views, args):
    """``--cache_rationale_targets``: replace the views' rationale ids by their encodings, once."""
    training_args = args.training
    target_views = [v for v in views if train_ds is not None and f"{v}_input_ids" in train_ds.column_names]
    if not (target_views and args.lsr_mwf.cache_rationale_targets):
        return train_ds
    # gathering ZeRO-3-partitioned weights is a collective, so every rank enters it before the barrier
    with gathered_parameters(list(model.parameters())), training_args.main_process_first(desc="encoding rationales"):
        return add_rationale_targets(train_ds, model, target_views, training_args.device,
                                     model_identity(args.model, training_args),
                                     batch_size=max(8, training_args.per_device_eval_batch_size))


# ----------------------------------------------------------------------------------------------
# Trainer and the run
# ----------------------------------------------------------------------------------------------


def build_trainer(model, tokenizer, teacher, data: RawData, raw: RawData, args) -> LsrMwfTrainer:
    training_args, rouge_tokenizer = args.training, args.data.rouge_tokenizer
    collator = LsrMwfCollator(pad_token_id=tokenizer.pad_token_id,
                              pad_to_multiple_of=8 if (training_args.fp16 or training_args.bf16) else None)
    eval_refs = list(raw.eval["summary"]) if raw.eval is not None else None

    def compute_metrics(p):
        # Seq2SeqTrainer gathers the padding duplicates of multi-process evaluation too; they come last.
        preds = decode_predictions(tokenizer, p.predictions[: len(eval_refs)])
        return rouge_means(preds, eval_refs, rouge_tokenizer)

    return LsrMwfTrainer(
        model=model, args=training_args, data_collator=collator, train_dataset=data.train, eval_dataset=data.eval,
        processing_class=tokenizer, lsr_mwf=args.lsr_mwf, teacher_model=teacher, kd_alpha=args.logit_kd.kd_alpha,
        kd_temperature=args.logit_kd.kd_temperature,
        compute_metrics=compute_metrics if (data.eval is not None and training_args.predict_with_generate) else None,
    )


def warn_about_unused_inputs(model, tokenizer, args, views) -> None:
    """What the student will not read of what was given, and BRD's mask token."""
    lsr, brd, training_args = args.lsr_mwf, args.basic_reading, args.training
    stage_brd = brd.stage == "basic_reading"
    if stage_brd and brd.brd_mix_original and tokenizer.mask_token != "<mask>":
        raise InputError(f"--brd_mix_original masks passages with '<mask>', but the tokenizer's mask token is "
                         f"{tokenizer.mask_token!r}; use a BART tokenizer or --brd_mix_original false")
    logger.info("model: %s, %.1fM parameters, views %s", type(model).__name__, model.num_parameters() / 1e6,
                list(views) or "none")
    if not views and lsr.rationale_file and lsr.target == "gold":
        logger.warning("--baseline has no views: the rationales in %s are not used (only --target llm_summary|both "
                       "reads its summaries)", lsr.rationale_file)
    if views and training_args.do_train and not stage_brd and not lsr.rationale_file:
        logger.warning("no --rationale_file: the LSR-MWF alignment losses are off; views and gates still train "
                       "through the token loss. Generate rationales with generate_rationales.py to train the "
                       "paper's method.")


def run(args, checkpoint: Optional[str]) -> Dict[str, float]:
    from transformers import set_seed

    model_args, data_args, training_args, lsr = args.model, args.data, args.training, args.lsr_mwf
    stage_brd = args.basic_reading.stage == "basic_reading"
    load_train = denoising_examples(args.basic_reading, training_args) if stage_brd else None
    raw = load_raw_data(data_args, model_args, training_args, load_train)
    join_stats = None
    if not stage_brd:
        raw.train, join_stats = attach_rationales(raw.train, lsr, model_args, training_args)

    set_seed(training_args.seed)
    texts = None
    if raw.train is not None and not model_args.model_name_or_path and not model_args.tokenizer_name:
        texts = list(raw.train["document"]) + list(raw.train["summary"])
    model, tokenizer = build_model_and_tokenizer(model_args, data_args, lsr, texts, checkpoint)
    configure_generation(model, data_args)
    views = model_views(model)
    warn_about_unused_inputs(model, tokenizer, args, views)
    parameters = freeze_parameters(model, lsr.freeze_encoder, lsr.freeze_embeddings)
    message = parameters.pop("message")
    if training_args.should_log:
        print(message, flush=True)  # printed, not logged: visible at the default log level
    teacher = build_teacher(args, model, tokenizer)

    data = tokenize(raw, tokenizer, data_args, lsr, training_args, views)
    data.train = encode_rationale_targets(data.train, model, views, args)

    trainer = build_trainer(model, tokenizer, teacher, data, raw, args)
    results = train_evaluate_predict(trainer, tokenizer, data, raw, training_args, checkpoint,
                                     data_args.rouge_tokenizer)
    write_run_summary(training_args, model, raw, join_stats, checkpoint, results, parameters,
                      extra=rouge_summary(data_args, training_args))
    return results
