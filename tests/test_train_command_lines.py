"""Every ``train.py`` command line the README, the demos and the analysis command use parses to the same
values (the flags users type are an interface: a refactor of the argument dataclasses must not change them).

The expectations were recorded from the parser before the per-method argument split."""

import dataclasses
import json
import os

import pytest

from lsrmwf.analysis.ablations import DEMO_SCALE, settings
from lsrmwf.commands.train import DEFAULT_RUN_ARGS, parse_args

SMALL_BART = ("d_model=128,encoder_layers=2,decoder_layers=2,encoder_attention_heads=4,decoder_attention_heads=4,"
              "encoder_ffn_dim=256,decoder_ffn_dim=256,max_position_embeddings=512")

# (where it is written, argv); "<...>" placeholders of the docs are left out, paths stand as written, and --bf16 is
# left out (TrainingArguments refuses it at parse time on a machine without a bf16 GPU)
COMMAND_LINES = {
    "README: LSR-MWF on CNN/DM, 2 GPUs": [
        "--preset", "cnndm", "--dataset_name", "cnn_dailymail", "--dataset_config_name", "3.0.0",
        "--model_name_or_path", "facebook/bart-large", "--rationale_file", "rationales/cnndm_train.jsonl",
        "--output_dir", "runs/lsrmwf-cnndm", "--do_train", "--do_predict", "--per_device_train_batch_size", "8",
        "--gradient_accumulation_steps", "4", "--max_steps", "100000", "--save_steps", "5000", "--logging_steps", "100"],
    "README: BART baseline on CNN/DM": [
        "--preset", "cnndm", "--baseline", "--dataset_name", "cnn_dailymail", "--dataset_config_name", "3.0.0",
        "--model_name_or_path", "facebook/bart-large", "--output_dir", "runs/bart-cnndm", "--do_train", "--do_predict",
        "--per_device_train_batch_size", "8", "--gradient_accumulation_steps", "4", "--max_steps", "100000",
        "--save_steps", "5000", "--logging_steps", "100"],
    "README: ablation flags": [
        "--dataset_name", "aclsum", "--output_dir", "o", "--views", "ea", "as", "--freeze_gates", "--gate_init", "0.015",
        "--view_ffn_dim", "64", "--gate_learning_rate", "1e-3", "--freeze_encoder", "--freeze_embeddings"],
    "README: seq2seq logit KD": [
        "--teacher_model_name_or_path", "runs/bart-large-cnndm", "--model_name_or_path", "facebook/bart-base",
        "--kd_alpha", "0.5", "--kd_temperature", "2.0", "--dataset_name", "cnn_dailymail", "--output_dir", "o",
        "--do_train"],
    "README: sequence-level KD from LLM summaries": [
        "--rationale_file", "rationales/cnndm_train.jsonl", "--target", "llm_summary", "--dataset_name",
        "cnn_dailymail", "--output_dir", "o", "--do_train"],
    "README: BART basic reading stage": [
        "--stage", "basic_reading", "--basic_reading_file", "reading.jsonl", "--model_name_or_path",
        "facebook/bart-large", "--output_dir", "runs/brd", "--do_train"],
    "README: summarization from the BRD checkpoint": [
        "--model_name_or_path", "runs/brd", "--rationale_file", "r.jsonl", "--dataset_name", "cnn_dailymail",
        "--output_dir", "o", "--do_train"],
    "README: causal white-box KD": [
        "--model_name_or_path", "meta-llama/Llama-3.1-8B-Instruct", "--teacher_model_name_or_path",
        "meta-llama/Llama-3.1-70B-Instruct", "--teacher_dtype", "bfloat16", "--teacher_device_map", "auto",
        "--use_chat_template", "--kd_alpha", "0.5", "--kd_temperature", "2.0", "--dataset_name",
        "cnn_dailymail", "--dataset_config_name", "3.0.0", "--output_dir", "o", "--do_train"],
    "README: causal sparse top-K KD": [
        "--model_name_or_path", "meta-llama/Llama-3.1-8B-Instruct", "--teacher_logprobs_file", "teacher.jsonl",
        "--use_chat_template", "--kd_alpha", "0.5", "--kd_temperature", "1.0", "--dataset_name", "cnn_dailymail",
        "--dataset_config_name", "3.0.0", "--output_dir", "o", "--do_train"],
    "README: causal KD across tokenizers": [
        "--model_name_or_path", "Qwen/Qwen2.5-0.5B-Instruct", "--teacher_logprobs_file", "teacher.jsonl",
        "--kd_alignment", "text", "--kd_shared_vocab_weight", "0.5", "--kd_alpha", "0.5", "--kd_temperature", "1.0",
        "--dataset_name", "cnn_dailymail", "--output_dir", "o", "--do_train"],
    "README: causal BRD": [
        "--stage", "basic_reading", "--model_name_or_path", "facebook/xglm-564M", "--brd_passages_dir",
        "brd/passages", "--brd_mix", "ori=1,ner=1,qra=1", "--output_dir", "runs/xglm-brd", "--do_train"],
    "README: the built-in default run": [],
    "demo.lsr_mwf: LSR-MWF": [
        "--dataset_name", "aclsum", "--preset", "cnndm", "--config_overrides", SMALL_BART, "--tokenizer_vocab_size",
        "8000", "--max_source_length", "384", "--max_target_length", "96", "--max_rationale_length", "128",
        "--max_steps", "300", "--learning_rate", "5e-4", "--lr_schedule", "hf", "--warmup_steps", "15",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8", "--num_beams", "2",
        "--min_length", "20", "--max_length", "96", "--do_train", "--do_predict", "--max_predict_samples", "40",
        "--logging_steps", "10", "--save_steps", "100000", "--report_to", "none", "--seed", "42",
        "--rationale_file", "r.jsonl", "--rationale_policy", "ce_only", "--overwrite_output_dir", "--output_dir", "d"],
    "demo.causal: sparse KD student": [
        "--model_name_or_path", "student", "--output_dir", "out/student_sparse_kd", "--train_file", "train.jsonl",
        "--do_train", "--max_steps", "30", "--per_device_train_batch_size", "2", "--learning_rate", "5e-5",
        "--warmup_steps", "2", "--max_source_length", "256", "--max_target_length", "96", "--max_length", "64",
        "--min_length", "8", "--num_beams", "1", "--logging_steps", "5", "--save_strategy", "no", "--report_to",
        "none", "--seed", "0", "--kd_alpha", "0.5", "--kd_temperature", "1.0", "--overwrite_output_dir",
        "--teacher_logprobs_file", "teacher.jsonl"],
    "demo.causal: other-tokenizer student": [
        "--model_name_or_path", "student", "--output_dir", "out/student_other_tokenizer", "--train_file", "train.jsonl",
        "--do_train", "--max_steps", "30", "--per_device_train_batch_size", "2", "--learning_rate", "5e-5",
        "--warmup_steps", "2", "--max_source_length", "256", "--max_target_length", "96", "--max_length", "64",
        "--min_length", "8", "--num_beams", "1", "--logging_steps", "5", "--save_strategy", "no", "--report_to",
        "none", "--seed", "0", "--kd_alpha", "0.5", "--kd_temperature", "1.0", "--overwrite_output_dir",
        "--teacher_logprobs_file", "teacher.jsonl", "--kd_alignment", "text", "--model_name_or_path", "other",
        "--learning_rate", "0.001"],
    "demo.brd: causal BRD": [
        "--stage", "basic_reading", "--model_name_or_path", "student", "--brd_passages_dir", "passages",
        "--brd_mix", "ori=1,ner=1,qra=1", "--block_size", "128", "--max_steps", "40", "--per_device_train_batch_size",
        "2", "--learning_rate", "3e-5", "--warmup_steps", "2", "--logging_steps", "5", "--save_strategy", "no",
        "--report_to", "none", "--seed", "0", "--do_train", "--use_cpu", "--output_dir", "student_brd",
        "--overwrite_output_dir"],
}
for _kind in ("views", "gate_init", "gamma"):
    for _name, _extra in settings(_kind):
        COMMAND_LINES[f"analysis {_kind} {_name}"] = [*DEMO_SCALE, "--rationale_file", "r.jsonl", *_extra,
                                                       "--output_dir", "o", "--overwrite_output_dir"]

# what a run reads, whichever dataclass holds it
CHECKED = (
    "model_name_or_path", "config_overrides", "tokenizer_vocab_size", "baseline", "views", "gate_init", "freeze_gates",
    "freeze_encoder", "freeze_embeddings", "view_ffn_dim", "cache_rationale_targets", "teacher_model_name_or_path",
    "teacher_dtype", "teacher_device_map", "preset", "stage", "dataset_name", "dataset_config_name", "train_file",
    "rationale_file", "rationale_policy", "target", "basic_reading_file", "brd_mix_original", "brd_passages_dir",
    "brd_mix", "max_passages", "block_size", "max_source_length", "max_target_length", "max_rationale_length",
    "num_beams", "length_penalty", "min_length", "max_length", "no_repeat_ngram_size", "max_predict_samples",
    "prompt_template", "use_chat_template", "teacher_logprobs_file", "kd_alignment", "kd_shared_vocab_weight", "gamma_ce", "gamma_views", "lr_schedule",
    "gate_learning_rate", "kd_alpha", "kd_temperature", "learning_rate", "warmup_steps", "max_steps",
    "per_device_train_batch_size", "gradient_accumulation_steps", "save_steps", "logging_steps", "bf16", "seed",
    "do_train", "do_eval", "do_predict", "output_dir", "overwrite_output_dir", "save_strategy",
)


def flat(parsed) -> dict:
    """The parsed values by field name, across the dataclasses ``parse_args`` returns."""
    out = {}
    for obj in parsed:
        for f in dataclasses.fields(obj):
            if f.init and f.name in CHECKED:
                value = getattr(obj, f.name)
                out[f.name] = value.value if hasattr(value, "value") else value  # HF's enums by value
    return out


with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_command_lines.json"), encoding="utf-8") as _f:
    EXPECTED = json.load(_f)


def test_every_command_line_is_recorded():
    assert sorted(EXPECTED) == sorted(COMMAND_LINES)


@pytest.mark.parametrize("name", sorted(COMMAND_LINES))
def test_command_line_parses_to_the_recorded_values(name):
    assert flat(parse_args(COMMAND_LINES[name])) == EXPECTED[name]


def test_default_run_is_the_documented_one():
    assert flat(parse_args([])) == flat(parse_args(DEFAULT_RUN_ARGS))
