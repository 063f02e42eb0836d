"""Issue 27 item 4: causal evaluation of large models: --dtype auto, --device_map auto, and teacher-student CE
with one model resident at a time and a per-text cache a killed run resumes from."""

import gc
import json
import weakref

import pytest
import torch
from test_evaluate_causal import save_tiny, student_dir, teacher_dir, write_tasks  # noqa: F401  (fixtures)

from lsrmwf.commands.evaluate import main as evaluate
from lsrmwf.evaluation import causal_lm
from lsrmwf.io.interrupts import EXIT_INTERRUPTED


def test_dtype_auto_keeps_the_checkpoints_dtype_and_device_map_auto_loads(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    path = tmp_path / "bf16"
    save_tiny(path, 280, seed=3)
    model, _ = causal_lm.load_causal_lm(str(path), device="cpu")
    model.to(torch.bfloat16).save_pretrained(path)
    assert next(causal_lm.load_causal_lm(str(path), device="cpu")[0].parameters()).dtype == torch.float32  # default
    assert next(causal_lm.load_causal_lm(str(path), device="cpu", dtype="auto")[0].parameters()).dtype == torch.bfloat16
    seen, real = [], AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", lambda *a, **kw: seen.append(kw) or real(*a, **kw))
    placed, _ = causal_lm.load_causal_lm(str(path), dtype="auto", device_map="auto")
    assert seen[0]["device_map"] == "auto" and seen[0]["dtype"] == "auto"  # accelerate places the weights
    assert next(placed.parameters()).device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_ce_loads_one_model_at_a_time_and_a_killed_run_resumes(tmp_path, monkeypatch, teacher_dir, student_dir):  # noqa: F811
    plain, bbdir = write_tasks(tmp_path)
    base = ["--task", "teacher_student_ce", "--teacher_model_name_or_path", teacher_dir, "--model_name_or_path",
            student_dir, "--mc_tasks", plain, "bigbench:toy_bb", "--bigbench_dir", bbdir, "--device", "cpu",
            "--batch_size", "1", "--no_progress"]
    assert evaluate([*base, "--output_dir", str(tmp_path / "whole")]) == 0
    whole = json.load(open(tmp_path / "whole" / "ce_results.json"))

    events, alive = [], []
    real_load, real_score = causal_lm.load_causal_lm, causal_lm.average_token_probabilities

    def load(path, *args, **kwargs):
        gc.collect()
        events.append(("load", path, [ref() is not None for ref in alive]))
        model, tok = real_load(path, *args, **kwargs)
        alive.append(weakref.ref(model))
        return model, tok

    calls = {"n": 0, "kill_at": 6}

    def score(model, tokenizer, texts, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == calls["kill_at"]:
            raise KeyboardInterrupt("SIGTERM")  # killed in the student's second text (4 teacher texts first)
        return real_score(model, tokenizer, texts, *args, **kwargs)

    monkeypatch.setattr(causal_lm, "load_causal_lm", load)
    monkeypatch.setattr(causal_lm, "average_token_probabilities", score)
    out = tmp_path / "killed"
    assert evaluate([*base, "--output_dir", str(out)]) == EXIT_INTERRUPTED
    # the teacher first; when the student loads, no earlier model is still alive
    assert [(e[0], e[1]) for e in events] == [("load", teacher_dir), ("load", student_dir)]
    assert events[1][2] == [False]
    gc.collect()
    assert all(ref() is None for ref in alive)  # and the student is released after the kill too
    assert len(open(out / "ce_teacher.jsonl").readlines()) == 4 and len(open(out / "ce_student.jsonl").readlines()) == 1

    events.clear()
    calls.update(n=0, kill_at=-1)
    assert evaluate([*base, "--output_dir", str(out)]) == 0
    assert [(e[0], e[1]) for e in events] == [("load", student_dir)]  # the teacher is not even loaded again
    assert calls["n"] == 3  # only the student's three unfinished texts are scored
    resumed = json.load(open(out / "ce_results.json"))
    for name in ("toy", "toy_bb"):
        assert resumed["tasks"][name]["ce"] == pytest.approx(whole["tasks"][name]["ce"], rel=1e-6)


def test_a_changed_student_is_refused_by_its_cache_naming_the_file(tmp_path, teacher_dir, student_dir, capsys):  # noqa: F811
    plain, _ = write_tasks(tmp_path)
    other = tmp_path / "other"
    save_tiny(other, 280, seed=9)
    argv = ["--task", "teacher_student_ce", "--teacher_model_name_or_path", teacher_dir, "--mc_tasks", plain,
            "--output_dir", str(tmp_path / "o"), "--device", "cpu", "--no_progress", "--model_name_or_path"]
    assert evaluate([*argv, student_dir]) == 0
    capsys.readouterr()
    assert evaluate([*argv, str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert "ce_student.jsonl" in err and "written with different settings" in err and len(err.splitlines()) == 1
