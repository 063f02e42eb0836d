"""TaskDistillation's teacher answers (issue 23): generated through the LLM pipeline and store, mapped to a
choice by the stated rule, unmappable answers counted, nothing sent twice after a kill -9."""

import json
import os
import sys

import pytest

from lsrmwf.commands.generate_rationales import main as cli_main
from lsrmwf.io import InputError
from lsrmwf.llm.task_answers import map_answer, read_task_rows
from lsrmwf.training.task_tuning import teacher_pairs

sys.path.insert(0, os.path.dirname(__file__))
from llm_fault_server import FaultServer, kill_after_rows  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_mapping_rule():
    assert map_answer(" Yes.", ["Yes", "No"]) == 0
    assert map_answer("no, it does not\nYes", ["Yes", "No"]) == 1  # the first line decides
    assert map_answer('"Maybe"', ["Yes", "No", "Maybe"]) == 2
    assert map_answer("Not sure", ["no", "not sure"]) == 1  # the longest matching choice
    assert map_answer("Nobody knows", ["Yes", "No"]) is None  # "No" must end at a non-letter
    assert map_answer("", ["Yes", "No"]) is None
    assert map_answer("<strong>incorrect</strong>.\nThe above", ["correct", "incorrect"]) == 1  # a real model's
    assert map_answer("**Yes**, because", ["Yes", "No"]) == 0


def test_answers_resume_after_kill_without_resending_and_count_unmappable(tmp_path, capsys):
    data = tmp_path / "train.jsonl"
    said = ["Yes", "No", "Perhaps"]
    rows = [{"id": f"rte:{i}", "prompt": f"{said[i % 3]}. Does claim {i} follow? Answer:", "choices": ["Yes", "No"],
             "label": [i % 2]} for i in range(12)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "answers.jsonl"
    args = ["--data_file", str(data), "--model", "m", "--output", str(out), "--task", "task_answers",
            "--concurrency", "2", "--no_progress"]
    with FaultServer(delay_s=0.3) as srv:
        kill_after_rows([sys.executable, os.path.join(REPO, "generate_rationales.py"), "--base_url", srv.base_url,
                         *args], out, cwd=REPO)
        before = {json.loads(line)["id"] for line in out.read_text().splitlines() if line.strip().endswith("}")}
        assert 3 <= len(before) < 12
        n = len(srv.requests)
        assert cli_main(["--base_url", srv.base_url, *args]) == 0
        resent = [r["body"]["prompt"] for r in srv.requests[n:]]
    assert not any(rows[int(i.split(":")[1])]["prompt"] == p for i in before for p in resent)
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in got) == sorted(r["id"] for r in rows)
    by_id = {r["id"]: r for r in got}
    assert [by_id[f"rte:{i}"]["choice"] for i in range(3)] == [0, 1, None]
    assert "8 answers mapped to a choice (first-line-prefix-v2), 4 unmappable" in capsys.readouterr().err
    pairs, counts = teacher_pairs(str(out))
    assert counts == {"rows": 12, "used": 8, "unmappable": 4, "failed": 0} and pairs[0][1] in ("Yes", "No")


def test_bad_split_rows_name_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "prompt": "p", "choices": ["x"]}) + "\n")
    with pytest.raises(InputError, match=r"bad\.jsonl:1: field 'choices' must be a list of at least 2 strings"):
        read_task_rows(str(bad))


def test_local_teacher_choices_by_scoring_feed_task_distillation(tiny_tokenizer, tmp_path):
    from test_causal_kd import llama

    from lsrmwf.commands.evaluate import main

    teacher = tmp_path / "teacher"
    llama(tiny_tokenizer).save_pretrained(teacher)
    tiny_tokenizer.save_pretrained(teacher)
    split = tmp_path / "rte.jsonl"
    split.write_text("".join(json.dumps({"id": f"rte:{i}", "prompt": f"Claim {i}. Answer:", "choices": ["Yes", "No"],
                                         "label": [i % 2]}) + "\n" for i in range(6)))
    out = tmp_path / "tc"
    assert main(["--task", "teacher_choices", "--model_name_or_path", str(teacher), "--task_split_file", str(split),
                 "--output_dir", str(out), "--device", "cpu", "--no_progress"]) == 0
    pairs, counts = teacher_pairs(str(out / "answers.jsonl"))
    assert counts == {"rows": 6, "used": 6, "unmappable": 0, "failed": 0}
    assert [p for p, _ in pairs] == [f"Claim {i}. Answer:" for i in range(6)]
