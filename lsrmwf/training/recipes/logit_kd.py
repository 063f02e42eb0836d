"""The logit-KD recipe for a decoder-only student (prompt -> summary): white-box KD from a causal teacher,
sparse top-K KD from a served teacher's log-probs, or CE only; see :mod:`lsrmwf.training.logit_kd`.

Evaluation and prediction generate the continuation of the prompt and decode only the new tokens.
Checkpoints, resume, ``predictions.jsonl`` and the summaries are the same as for BART runs.
"""

import logging
from typing import Dict, Optional

from ...data.causal import CausalCollator, encode_prompt, prompt_text, summary_text, tokenize_causal
from ...distill.logit_kd import load_causal_teacher
from ...distill.sparse_kd import map_teacher_tokens, special_token_bytes, token_bytes_table
from ...distill.text_alignment import TextAligner, WhiteBoxTextRows, shared_id_map
from ...io import InputError
from ...io.logprobs import TARGETS, read_teacher_logprobs
from ...llm.teacher_logprobs import document_sha
from ..core import (
    RawData,
    is_causal_run,
    load_raw_data,
    rouge_means,
    rouge_summary,
    train_evaluate_predict,
    write_run_summary,
)
from ..logit_kd import LogitKDArguments, LogitKDTrainer
from .causal import load_causal_student, refuse_bart_flags

logger = logging.getLogger("lsrmwf.train")

ARGUMENTS = LogitKDArguments


def applies(args) -> bool:
    """A decoder-only student in the summarization stage."""
    return args.basic_reading.stage != "basic_reading" and not args.task_tuning.active and is_causal_run(args.model)


def check(args) -> None:
    refuse_bart_flags(args)


def configure_causal_generation(model, tokenizer, data_args) -> None:
    """The preset's (or given) settings as a continuation: --max_length/--min_length count new tokens."""
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and data_args.max_source_length + data_args.max_length > limit:
        raise InputError(f"--max_source_length {data_args.max_source_length} + --max_length {data_args.max_length} "
                         f"(new tokens) exceed the model's max_position_embeddings {limit}")
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


def sparse_kd_dataset(train_raw, path: str, tokenizer, data_args, prompt, stats: Optional[dict] = None):
    """The training examples of sparse top-K KD: prompt + the tokens of the row's target as the teacher's record
    has them (mapped to student ids), with the teacher's top-K ids/log-probs at each of them. The target is the
    teacher's own summary (sequence-level KD), or the training example's reference summary for a row that scored
    it (``target: "reference"``; its ``reference_sha`` must match). ``data_args`` gives the lengths, ``prompt`` the
    template (:class:`LogitKDArguments`); ``stats`` gets the rows per target. ``document_index``: the example's row
    in ``train_raw`` (for on-policy scoring). ``kd_alignment == "text"``: :mod:`lsrmwf.distill.text_alignment`."""
    import datasets

    records = read_teacher_logprobs(path)
    if not records:
        raise InputError(f"{path}: no finished teacher-logprobs rows")
    docs = dict(zip(train_raw["id"], train_raw["document"]))
    row_of = {rid: i for i, rid in enumerate(train_raw["id"])}
    summaries = dict(zip(train_raw["id"], train_raw["summary"]))
    matched = [i for i in train_raw["id"] if i in records]
    if not matched:
        raise InputError(f"--teacher_logprobs_file {path}: none of its {len(records)} ids matches a training "
                         f"document (file ids e.g. {sorted(records)[:3]}, training ids e.g. {list(docs)[:3]}); "
                         "collect it on the same dataset and split")
    extra = len(records) - len(matched)
    if len(matched) < len(docs):
        logger.warning("%s: %d of %d training documents have a teacher summary; the others are left out",
                       path, len(matched), len(docs))
    if extra:
        logger.warning("%s: %d rows belong to no training document and are ignored", path, extra)
    table, specials = token_bytes_table(tokenizer), special_token_bytes(tokenizer)
    template, chat = prompt.prompt_template, prompt.use_chat_template
    cols = {"input_ids": [], "labels": [], "teacher_top_ids": [], "teacher_top_logprobs": [], "document_index": []}
    aligner = None
    if getattr(prompt, "kd_alignment", "tokens") == "text":
        cols["teacher_aligned"] = []
        aligner = TextAligner(tokenizer, table, bool(prompt.kd_shared_vocab_weight), prompt.kd_teacher_tokenizer)
    counts = {t: 0 for t in TARGETS}
    for rid in matched:
        row, tokens = records[rid]
        if row.get("document_sha") not in (None, document_sha(docs[rid])):
            raise InputError(f"--teacher_logprobs_file {path}: row {rid!r} was generated for a different document "
                             "than the training document with that id (its document hash differs); collect it again "
                             "on this data")
        target = row.get("target") or "teacher_summary"
        counts[target] += 1
        what = "the teacher's summary"
        if target == "reference":
            what = "the reference summary"
            if row.get("reference_sha") != document_sha((summaries[rid] or "").strip()):
                raise InputError(f"--teacher_logprobs_file {path}: row {rid!r} scored another reference summary than "
                                 "the training example with that id has (its reference hash differs; the row scored "
                                 f"{(row.get('reference') or '')[:60]!r}); score the references of this data again")
        where = f"{path}, row {rid!r}"
        if aligner is not None:
            expected = summary_text(summaries[rid] or "", False) if target == "reference" else None
            cut = max(0, data_args.max_target_length - 1)
            labels, top, lp, flags = aligner(tokens, row, expected, where, what, cut)
        else:
            labels, top, lp = map_teacher_tokens(tokens, table, where, what, specials)
            n = min(len(labels), max(0, data_args.max_target_length - 1))
            labels, top, lp, flags = labels[:n], top[:n].tolist(), lp[:n].tolist(), []
        k = len(top[0]) if top else 1
        if target == "reference" or row.get("finish_reason") != "length":  # it ended: eos, with CE only
            labels, top, lp, flags = labels + [tokenizer.eos_token_id], top + [[-1] * k], lp + [[0.0] * k], flags + [0]
        ids = encode_prompt(docs[rid], tokenizer, template, chat, data_args.max_source_length)
        cols["input_ids"].append(ids + labels)
        cols["labels"].append([-100] * len(ids) + labels)
        cols["teacher_top_ids"].append([[-1] * k] * len(ids) + top)
        cols["teacher_top_logprobs"].append([[0.0] * k] * len(ids) + lp)
        cols["document_index"].append(row_of[rid])
        if aligner is not None:
            cols["teacher_aligned"].append([0] * len(ids) + flags)
    if counts["reference"]:
        logger.info("sparse top-K KD on %d reference summaries from %s: the targets are the dataset's references, "
                    "with the teacher's top-K log-probs at each of their tokens", counts["reference"], path)
    if counts["teacher_summary"]:
        logger.info("sparse top-K KD on %d teacher summaries from %s: the targets are the teacher's own summaries "
                    "(sequence-level KD)", counts["teacher_summary"], path)
    if aligner is not None:
        logger.info(aligner.describe())
    if stats is not None:
        stats.update(file=path, rows_per_target=counts, **({"kd_alignment": aligner.counts} if aligner else {}))
    return datasets.Dataset.from_dict(cols)


def served_teacher(kd: LogitKDArguments, train_raw, tokenizer):
    """The endpoint of ``--teacher_endpoint_config`` as a :class:`~lsrmwf.llm.teacher_logprobs.ServedTeacher` that
    scores on-policy samples after the prompt ``--teacher_logprobs_file`` was written with (its template,
    ``max_document_words`` and K), checked with one probe request: the first training reference scored as given
    text, its tokens mapped to student ids. A server that cannot is refused here, in one line."""
    from ...llm.arguments import build_client
    from ...llm.tasks import read_endpoint_config
    from ...llm.teacher_logprobs import ServedTeacher, TeacherLogprobsTask, file_settings

    flag = f"--teacher_endpoint_config {kd.teacher_endpoint_config}"
    endpoint = read_endpoint_config(kd.teacher_endpoint_config)
    settings = file_settings(kd.teacher_logprobs_file)
    if settings.get("api") == "chat":
        logger.warning("%s was written through the chat API; on-policy samples are scored after its prompt as raw "
                       "text on /v1/completions (no chat template)", kd.teacher_logprobs_file)
    if settings.get("model") != endpoint.model:
        logger.warning("%s names the model %r, %s the model %r: the served teacher should be the one that wrote the "
                       "file", kd.teacher_logprobs_file, settings.get("model"), flag, endpoint.model)
    task = TeacherLogprobsTask(top_logprobs=int(settings["top_logprobs"]), api="completions", target="reference",
                               prompt_template=settings.get("prompt_template") or kd.prompt_template,
                               max_document_words=settings.get("max_document_words"))
    teacher = ServedTeacher(build_client(endpoint), task, endpoint.concurrency)
    # the first training example with a reference (any short text would do: it only has to be scored)
    pairs = zip(train_raw["document"], train_raw["summary"])
    fallback = (train_raw["document"][0], "The summary.")
    document, summary = next(((d, r) for d, r in pairs if (r or "").strip()), fallback)
    reference = summary_text(summary, use_chat_template=False)
    try:
        tokens = teacher.probe(document, reference)
        map_teacher_tokens(tokens, token_bytes_table(tokenizer), f"{teacher.where}, probe", "the probe's text",
                           special_token_bytes(tokenizer))
    except InputError as e:
        teacher.close()
        raise InputError(f"{flag}: the served teacher cannot score the student's samples: {e}") from None
    logger.info("on-policy samples are scored by the served teacher %s (model %r, top-%d log-probs, the prompt %s "
                "was written with; echo=true on /v1/completions, max_tokens=%d): the probe scored %d tokens",
                teacher.where, endpoint.model, task.top_logprobs, kd.teacher_logprobs_file, task.echo_max_tokens,
                len(tokens))
    return teacher


def tokenize(raw: RawData, tokenizer, args, served: dict, teacher_tok=None) -> RawData:
    """Prompt -> summary examples; the training split from the teacher's log-probs file when one is given, or
    aligned with a white-box teacher's own tokens (``teacher_tok``: its tokenizer, ``--kd_alignment text``)."""
    data_args, kd = args.data, args.logit_kd
    common = dict(template=kd.prompt_template, use_chat_template=kd.use_chat_template,
                  max_source_length=data_args.max_source_length, max_target_length=data_args.max_target_length,
                  num_proc=data_args.preprocessing_num_workers)
    data = RawData()
    with args.training.main_process_first(desc="tokenizing"):
        if raw.train is not None:
            if kd.teacher_logprobs_file:
                data.train = sparse_kd_dataset(raw.train, kd.teacher_logprobs_file, tokenizer, data_args, kd, served)
            elif teacher_tok is not None:
                rows = WhiteBoxTextRows(tokenizer, teacher_tok, kd.prompt_template, kd.use_chat_template,
                                        data_args.max_source_length, data_args.max_target_length)
                data.train = rows.dataset(raw.train, data_args.train_file
                                          or f"{data_args.dataset_name}[{data_args.train_split}]")
                logger.info(rows.describe())
                served["kd_alignment"] = rows.counts
            else:
                data.train = tokenize_causal(raw.train, tokenizer, with_prompt=False, desc="tokenizing train",
                                             **common)
        if raw.eval is not None:
            data.eval = tokenize_causal(raw.eval, tokenizer, with_prompt=True, desc="tokenizing validation", **common)
        if raw.predict is not None:
            data.predict = tokenize_causal(raw.predict, tokenizer, with_prompt=True, desc="tokenizing test", **common)
    return data


def build_trainer(model, tokenizer, teacher, data: RawData, raw: RawData, args, scorer=None,
                  teacher_tok=None) -> LogitKDTrainer:
    training_args, kd = args.training, args.logit_kd
    text_teacher = {}
    if teacher_tok is not None:  # a white-box teacher of another tokenizer: its top-K at the aligned positions
        shared = shared_id_map(token_bytes_table(teacher_tok), token_bytes_table(tokenizer))
        text_teacher = dict(text_teacher_model=teacher, text_teacher_top_k=kd.kd_text_top_k,
                            text_teacher_vocab_size=len(teacher_tok),
                            text_teacher_shared_map=shared if kd.kd_shared_vocab_weight else None)
        teacher = None
    eval_refs = list(raw.eval["summary"]) if raw.eval is not None else None

    def compute_metrics(p):
        import numpy as np

        ids = np.where(p.predictions != -100, p.predictions, tokenizer.pad_token_id)[: len(eval_refs)]
        preds = [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return rouge_means(preds, eval_refs, args.data.rouge_tokenizer)

    return LogitKDTrainer(
        model=model, args=training_args, data_collator=CausalCollator(pad_token_id=tokenizer.pad_token_id),
        train_dataset=data.train, eval_dataset=data.eval, processing_class=tokenizer, teacher_model=teacher,
        kd_alpha=kd.kd_alpha, kd_temperature=kd.kd_temperature, kd_loss=kd.kd_loss, kd_beta=kd.kd_beta,
        kd_vocab_size=len(tokenizer), on_policy_lambda=kd.kd_on_policy_lambda,
        on_policy_temperature=kd.kd_on_policy_temperature, on_policy_max_new_tokens=kd.kd_on_policy_max_new_tokens,
        served_teacher=scorer, documents=list(raw.train["document"]) if scorer is not None else None,
        kd_alignment=kd.kd_alignment, kd_shared_vocab_weight=kd.kd_shared_vocab_weight, **text_teacher,
        compute_metrics=compute_metrics if (data.eval is not None and training_args.predict_with_generate) else None,
    )


def run(args, checkpoint: Optional[str]) -> Dict[str, float]:
    from transformers import set_seed

    model_args, data_args, training_args, kd = args.model, args.data, args.training, args.logit_kd
    raw = load_raw_data(data_args, model_args, training_args)
    set_seed(training_args.seed)
    model, tokenizer = load_causal_student(model_args)
    configure_causal_generation(model, tokenizer, data_args)
    logger.info("causal student %s, %.1fM parameters; prompt: %r", type(model).__name__, model.num_parameters() / 1e6,
                prompt_text("{document}", tokenizer, kd.prompt_template, kd.use_chat_template))
    teacher = teacher_tok = None
    if training_args.do_train and kd.teacher_model_name_or_path:
        samples = list(raw.train["document"][:4]) + list(raw.train["summary"][:4])
        teacher = load_causal_teacher(kd.teacher_model_name_or_path, model, tokenizer, samples,
                                      dtype=kd.teacher_dtype, device_map=kd.teacher_device_map,
                                      device=training_args.device, cache_dir=model_args.cache_dir,
                                      same_tokenizer=kd.kd_alignment != "text")
        if kd.kd_alignment == "text":
            from transformers import AutoTokenizer

            teacher_tok = AutoTokenizer.from_pretrained(kd.teacher_model_name_or_path, cache_dir=model_args.cache_dir)
    served = {}
    data = tokenize(raw, tokenizer, args, served, teacher_tok)
    scorer = None
    if training_args.do_train and kd.kd_on_policy_lambda and kd.teacher_logprobs_file:
        scorer = served_teacher(kd, raw.train, tokenizer)
    try:
        return _train(model, tokenizer, teacher, scorer, data, raw, args, checkpoint, served, teacher_tok)
    finally:
        if scorer is not None:
            scorer.close()


def _train(model, tokenizer, teacher, scorer, data: RawData, raw: RawData, args, checkpoint, served: dict,
           teacher_tok=None):
    data_args, training_args, kd = args.data, args.training, args.logit_kd
    trainer = build_trainer(model, tokenizer, teacher, data, raw, args, scorer, teacher_tok)
    if (teacher is not None or kd.teacher_logprobs_file) and training_args.do_train:
        beta = f" (beta {trainer.kd_beta})" if kd.kd_loss in ("jsd", "skew_kl") else ""
        logger.info("KD loss: %s%s, alpha %s, T %s (T^2-scaled); on-policy lambda %s", kd.kd_loss, beta, kd.kd_alpha,
                    kd.kd_temperature, kd.kd_on_policy_lambda)
        if kd.kd_alignment == "text":
            logger.info("--kd_alignment text: the KD term is ULD on the aligned positions (T=1, not T^2-scaled)%s",
                        f" + {kd.kd_shared_vocab_weight} * T^2 * {kd.kd_loss} over the shared tokens"
                        if kd.kd_shared_vocab_weight else "")
    results = train_evaluate_predict(trainer, tokenizer, data, raw, training_args, checkpoint,
                                     data_args.rouge_tokenizer)
    alignment = served.pop("kd_alignment", None)
    extra = {**rouge_summary(data_args, training_args), **({"teacher_logprobs": served} if served else {})}
    if alignment is not None:  # --kd_alignment text: the rule's counts over the training examples
        extra["kd_alignment"] = {"rule": "text", "teacher": "white-box" if teacher_tok is not None else "served",
                                 **alignment}
    if training_args.do_train and (teacher is not None or kd.teacher_logprobs_file):
        extra["kd_loss"] = {"loss": kd.kd_loss, "beta": trainer.kd_beta if kd.kd_loss in ("jsd", "skew_kl") else None,
                            "alpha": kd.kd_alpha, "temperature": kd.kd_temperature, "compared_ids": len(tokenizer)}
        if kd.kd_alignment == "text":  # another tokenizer: ULD (+ the shared-vocabulary divergence, kd_loss above)
            extra["kd_loss"].update(alignment="text", text_loss="uld", shared_vocab_weight=kd.kd_shared_vocab_weight,
                                    **({"text_top_k": kd.kd_text_top_k} if teacher_tok is not None else {}))
    if training_args.do_train and kd.kd_on_policy_lambda:
        extra["on_policy"] = trainer.on_policy_summary()
        logger.info("on-policy: %s", extra["on_policy"])
    write_run_summary(training_args, model, raw, None, checkpoint, results, extra=extra)
    return results
