"""Multiple choice on a served model (evaluate.py --task multiple_choice --base_url URL --model NAME): the
fault server scores echo requests with a tiny HF model, so the served scores must equal the local path's on
that model; a server that ignores or rejects echo stops the run at its first answer with nothing written."""

import json
import os
import subprocess
import sys

import pytest
import torch

from lsrmwf.evaluation import multiple_choice as mc
from lsrmwf.evaluation.mc_served import run_multiple_choice_served
from lsrmwf.io import InputError

sys.path.insert(0, os.path.dirname(__file__))
from llm_fault_server import FaultServer  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ROWS = [
    {"prompt": "Question: Is the sky blue? Answer:", "choices": ["Yes", "No", "maybe it will rain later"], "label": 0},
    {"prompt": "We propose a new method for summarization.\nA: ", "choices": ["model", "data set", "it is"], "label": 1},
    {"prompt": "The movie was great. Sentiment:", "choices": ["positive", "negative"], "label": 0},
    {"prompt": "Sentence 1: the results improve.\nSentence 2: the results do not improve.\nEntailment?",
     "choices": ["yes", "no", "cannot tell from the text"], "label": 2},
]


@pytest.fixture(scope="module")
def model(tiny_tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    m = LlamaForCausalLM(LlamaConfig(vocab_size=len(tiny_tokenizer) + 8, hidden_size=32, intermediate_size=64,
                                     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                     max_position_embeddings=256)).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(3.0)
    return m


@pytest.fixture
def task_file(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return str(path)


def test_served_scores_equal_local_scores_and_resume(tmp_path, model, tiny_tokenizer, task_file):
    task = mc.load_jsonl_task(task_file, name="t")
    local = mc.run_multiple_choice(model, tiny_tokenizer, [task], batch_size=2, progress=False, return_details=True)
    out = str(tmp_path / "mc_served.jsonl")
    with FaultServer(tokenizer=tiny_tokenizer, scoring_model=model) as srv:
        served = run_multiple_choice_served([task], [srv.base_url], "tiny", out, concurrency=3, progress=False,
                                            return_details=True)
        sent = len(srv.requests)
        assert sent == sum(len(r["choices"]) for r in ROWS)
        assert all(r["body"]["echo"] is True and r["body"]["max_tokens"] == 0 for r in srv.requests)
        again = run_multiple_choice_served([task], [srv.base_url], "tiny", out, progress=False, return_details=True)
        assert len(srv.requests) == sent, "a finished run must not ask the server again"
    assert served["scored"] == len(ROWS) and again["cached"] == len(ROWS) and again["scored"] == 0
    for a, b, c in zip(local["details"]["t"], served["details"]["t"], again["details"]["t"]):
        assert b["scores"] == pytest.approx(a["scores"], abs=1e-4)
        assert a["prediction"] == b["prediction"] and c == b
    assert served["accuracy"] == local["accuracy"]


@pytest.mark.parametrize("echo_mode,why", [("ignore", "only the text it generated"), ("reject", "refuses to score")])
def test_server_without_echo_stops_at_the_first_answer(tmp_path, task_file, tiny_tokenizer, echo_mode, why):
    out = tmp_path / "out"
    with FaultServer(tokenizer=tiny_tokenizer, echo_mode=echo_mode) as srv:
        with pytest.raises(InputError, match=why):
            run_multiple_choice_served([mc.load_jsonl_task(task_file, name="t")], [srv.base_url], "m",
                                       str(out / "mc_served.jsonl"), concurrency=1, progress=False)
        asked = len(srv.requests)
        r = subprocess.run([sys.executable, "evaluate.py", "--task", "multiple_choice", "--mc_tasks", task_file,
                            "--base_url", srv.base_url, "--model", "m", "--output_dir", str(out), "--no_progress",
                            "--concurrency", "1"], cwd=REPO, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, PYTHONPATH=REPO))
    assert asked <= 2  # the first answer (and, rejected, its retry with max_tokens=1)
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("evaluate.py: error:")]
    assert len(errors) == 1 and srv.base_url in errors[0] and why in errors[0], r.stderr
    assert "accuracy" not in r.stdout.lower() and not (out / "mc_results.json").exists()
    rows = (out / "mc_served.jsonl").read_text() if (out / "mc_served.jsonl").exists() else ""
    assert rows.strip() == "", "no row may be written"
