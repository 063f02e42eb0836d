"""train.py under `accelerate launch`: two processes on CPU (gloo), and a one-process ZeRO-3 run with a KD teacher.

Two-process DeepSpeed runs (ZeRO-2 through accelerate, ZeRO-3 through torchrun, with kill and resume)
are in test_multiprocess_zero.py.
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys

import pytest
import tiny
from test_train_script import read_jsonl, write_rationales

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACCELERATE = os.path.join(os.path.dirname(sys.executable), "accelerate")

TINY = [
    "--dataset_name", "aclsum", "--max_train_samples", "8", "--max_predict_samples", "5", "--do_train", "--do_predict",
    "--config_overrides", tiny.overrides(),
    "--tokenizer_vocab_size", "400", "--max_source_length", "128", "--max_target_length", "32", "--max_rationale_length", "32",
    "--num_beams", "2", "--min_length", "2", "--max_length", "16", "--per_device_train_batch_size", "2",
    "--per_device_eval_batch_size", "2", "--logging_steps", "1", "--report_to", "none", "--disable_tqdm", "true",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def launch(launcher_args, train_args, extra_env=None):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONPATH=ROOT, **(extra_env or {}))
    cmd = [ACCELERATE, "launch", "--main_process_port", free_port(), *launcher_args, os.path.join(ROOT, "train.py"), *train_args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=570)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def expected_test_ids():
    from lsrmwf.data.loading import load_documents

    return load_documents("aclsum", split="test", max_examples=5)["id"]


@pytest.mark.multiprocess
@pytest.mark.slow
def test_two_processes_one_prediction_per_example(aclsum_train, tmp_path):
    rationales = write_rationales(tmp_path / "r.jsonl", aclsum_train, 8)
    out = tmp_path / "ddp"
    # 5 test examples, 2 per process and batch: the last round is padded with repeated examples
    launch(["--multi_gpu", "--num_processes", "2"],
           [*TINY, "--use_cpu", "--rationale_file", rationales, "--max_steps", "2", "--save_strategy", "no",
            "--output_dir", str(out), "--do_eval", "--max_eval_samples", "3"])
    preds = read_jsonl(out / "predictions.jsonl")
    assert [p["id"] for p in preds] == expected_test_ids()  # exactly one each, in order
    state = json.loads((out / "trainer_state.json").read_text())
    # 8 examples, 2 per process and step: 2 steps are one epoch only if both processes trained together
    assert state["train_batch_size"] == 2 and state["global_step"] == 2 and state["epoch"] == 1.0
    logged = [h for h in state["log_history"] if "loss" in h]
    assert logged and all("loss_ea" in h and "gate/ter/layer01" in h for h in logged)
    assert [g["step"] for g in read_jsonl(out / "gates.jsonl")] == [0, 1, 2]  # written by the main process only
    results = json.loads((out / "all_results.json").read_text())
    assert results["eval_samples"] == 3 and "eval_rouge1" in results and results["predict_samples"] == 5


@pytest.mark.multiprocess
def test_processes_that_would_train_alone_are_refused(tmp_path):
    """Without a GPU and without --use_cpu, accelerate's processes each see a world of one."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    cmd = [ACCELERATE, "launch", "--main_process_port", free_port(), "--multi_gpu", "--num_processes", "2",
           os.path.join(ROOT, "train.py"), *TINY, "--max_steps", "1", "--output_dir", str(tmp_path / "o")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "train.py: error: launched as 2 processes, but the Trainer sees 1" in proc.stderr
    assert "add --use_cpu" in proc.stderr
    assert not (tmp_path / "o").exists()


needs_deepspeed = pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="DeepSpeed is not installed")


@needs_deepspeed
@pytest.mark.deepspeed
@pytest.mark.slow
def test_deepspeed_zero3_on_cpu_with_teacher_generates_and_reads_gates(aclsum_train, tiny_tokenizer, tmp_path):
    """ZeRO-3 partitions the student at load time; the KD teacher must stay whole and frozen."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, BartConfig, BartForConditionalGeneration

    import lsrmwf  # noqa: F401

    tok = tiny_tokenizer
    for name, d_model, layers in (("teacher", 48, 2), ("bart", 32, 1)):
        torch.manual_seed(len(name))
        BartForConditionalGeneration(BartConfig(
            **tiny.bart(vocab_size=len(tok), d_model=d_model, encoder_layers=layers), **tiny.special_ids(tok),
            forced_eos_token_id=tok.eos_token_id)).save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    rationales = write_rationales(tmp_path / "r.jsonl", aclsum_train, 8)
    out = tmp_path / "zero3"
    args = [a for a in TINY]
    cut = args.index("--config_overrides")
    del args[cut : cut + 2]
    # the student is an LSR-MWF built on a BART checkpoint, partitioned while it loads (zero3_init_flag)
    launch(["--use_deepspeed", "--deepspeed_config_file", os.path.join(ROOT, "ds_configs", "zero3.json"), "--zero3_init_flag",
            "true", "--num_processes", "1"],
           [*args, "--model_name_or_path", str(tmp_path / "bart"), "--rationale_file", rationales, "--max_steps", "2",
            "--save_strategy", "no", "--output_dir", str(out), "--teacher_model_name_or_path", str(tmp_path / "teacher")],
           {"DS_ACCELERATOR": "cpu"})
    assert [p["id"] for p in read_jsonl(out / "predictions.jsonl")] == expected_test_ids()
    logged = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    assert logged and all(h["kd_kl"] > 0 and "loss_ea" in h for h in logged)
    trajectory = read_jsonl(out / "gates.jsonl")
    model = AutoModelForSeq2SeqLM.from_pretrained(out)  # full (gathered) weights were saved
    torch.testing.assert_close(model.gates(), torch.tensor(trajectory[-1]["gates"]))
