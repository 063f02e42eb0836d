"""evaluate.py --task multiple_choice and --task teacher_student_ce with tiny causal LMs saved to disk."""

import json
import math

import pytest
import tiny
import torch

from lsrmwf.commands.evaluate import main
from lsrmwf.evaluation.causal_lm import average_token_probabilities, load_causal_lm, teacher_student_ce
from lsrmwf.evaluation.multiple_choice import load_tasks, run_multiple_choice

CORPUS = ["Question: Is the sky blue? Answer: Yes", "The movie was great. Sentiment: positive",
          "Berlin is a large city in Germany.", "Q: what colour is grass?\nA: green"] * 4
TEXTS = ["Is the sky blue?", "The movie was great, the plot was poor.", "Berlin is large."]


def save_tiny(path, vocab_size, seed, bos_template=False):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    if bos_template:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<|endoftext|>")
    else:
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    model = tiny.gpt2_lm(fast, seed=seed, sharpen=4.0)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("teacher"), 320, 1, bos_template=True)


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("student"), 280, 2)


def hand_average_probability(path, text):
    """Mean of P(token_t | tokens_<t) over the text's tokens, one unbatched forward, from the first token's context."""
    model, tok = load_causal_lm(path, device="cpu")
    ids = tok(text, add_special_tokens=True)["input_ids"]
    plain = tok(text, add_special_tokens=False)["input_ids"]
    start = len(ids) - len(plain)
    if start == 0:  # no special token in front: condition on bos
        ids, start = [tok.bos_token_id] + ids, 1
    with torch.no_grad():
        probs = torch.softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
    return sum(float(probs[t - 1, ids[t]]) for t in range(start, len(ids))) / (len(ids) - start)


def test_ce_matches_hand_computation(teacher_dir, student_dir):
    p = [hand_average_probability(teacher_dir, t) for t in TEXTS]
    q = [hand_average_probability(student_dir, t) for t in TEXTS]
    expected = -sum(pi * math.log(qi) for pi, qi in zip(p, q))
    teacher, student = load_causal_lm(teacher_dir, device="cpu"), load_causal_lm(student_dir, device="cpu")
    assert teacher[1]("Berlin")["input_ids"] != student[1]("Berlin")["input_ids"]  # each model's own tokenizer
    got = teacher_student_ce(*teacher, *student, TEXTS, batch_size=2)
    assert got["n"] == 3 and got["ce"] == pytest.approx(expected, rel=1e-5)
    assert average_token_probabilities(*teacher, TEXTS, batch_size=1) == pytest.approx(p, rel=1e-5)
    geo = average_token_probabilities(*student, TEXTS, average="geometric")
    assert all(g <= a + 1e-9 for g, a in zip(geo, q))  # geometric mean <= arithmetic mean


def write_tasks(tmp_path):
    rows = [{"prompt": "Question: Is the sky blue? Answer:", "choices": ["Yes", "No"], "label": 0},
            {"prompt": "The movie was great. Sentiment:", "choices": ["positive", "negative", "so-so"], "label": 1}]
    plain = tmp_path / "toy.jsonl"
    plain.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bb = tmp_path / "bb" / "toy_bb"
    bb.mkdir(parents=True)
    (bb / "task.json").write_text(json.dumps({
        "name": "toy_bb", "description": "toy", "keywords": ["multiple choice"], "metrics": ["multiple_choice_grade"],
        "preferred_score": "multiple_choice_grade",
        "examples": [{"input": "what colour is grass?", "target_scores": {"green": 1, "red": 0, "green-ish": 1}},
                     {"input": "Berlin is in", "target_scores": {"Germany": 1, "France": 0}}]}))
    return str(plain), str(tmp_path / "bb")


def test_multiple_choice_cli_writes_results_and_resumes(tmp_path, student_dir, capsys):
    plain, bbdir = write_tasks(tmp_path)
    out = tmp_path / "mc"
    argv = ["--task", "multiple_choice", "--model_name_or_path", student_dir, "--mc_tasks", plain, "bigbench:toy_bb",
            "--bigbench_dir", bbdir, "--output_dir", str(out), "--device", "cpu", "--batch_size", "3", "--no_progress"]
    assert main(argv) == 0
    results = json.load(open(out / "mc_results.json"))
    model, tok = load_causal_lm(student_dir, device="cpu")
    direct = run_multiple_choice(model, tok, load_tasks([plain, "bigbench:toy_bb"], bigbench_dir=bbdir), progress=False)
    assert results["accuracy"] == direct["accuracy"] and results["average"] == pytest.approx(direct["average"])
    assert results["scored"] == 4 and results["cached"] == 0
    table = (out / "mc_results.md").read_text()
    assert "| toy | 2 |" in table and "| toy_bb | 2 |" in table and "| **Average** |" in table
    assert table in capsys.readouterr().out
    assert main(argv) == 0  # a rerun reads every example from the cache in the output directory
    again = json.load(open(out / "mc_results.json"))
    assert again["cached"] == 4 and again["scored"] == 0 and again["accuracy"] == results["accuracy"]


def test_teacher_student_ce_cli(tmp_path, teacher_dir, student_dir):
    plain, bbdir = write_tasks(tmp_path)
    out = tmp_path / "ce"
    assert main(["--task", "teacher_student_ce", "--teacher_model_name_or_path", teacher_dir, "--model_name_or_path", student_dir,
                 "--mc_tasks", plain, "bigbench:toy_bb", "--bigbench_dir", bbdir, "--output_dir", str(out), "--device", "cpu",
                 "--no_progress"]) == 0
    results = json.load(open(out / "ce_results.json"))
    prompts = [json.loads(line)["prompt"] for line in open(plain)]
    p = [hand_average_probability(teacher_dir, t) for t in prompts]
    q = [hand_average_probability(student_dir, t) for t in prompts]
    assert results["tasks"]["toy"]["ce"] == pytest.approx(-sum(a * math.log(b) for a, b in zip(p, q)), rel=1e-5)
    assert results["bigbench_average"] == pytest.approx(results["tasks"]["toy_bb"]["ce"])
    assert "| toy | 2 |" in (out / "ce_results.md").read_text()


def test_task_arguments_are_checked(tmp_path, student_dir, capsys):
    assert main(["--task", "multiple_choice", "--model_name_or_path", student_dir, "--output_dir", str(tmp_path)]) == 2
    assert "needs --mc_tasks" in capsys.readouterr().err
    assert main(["--task", "teacher_student_ce", "--model_name_or_path", student_dir, "--mc_tasks", "x.jsonl",
                 "--output_dir", str(tmp_path)]) == 2
    assert "--teacher_model_name_or_path" in capsys.readouterr().err
    assert main(["--predictions", "p.jsonl", "--mc_tasks", "rte", "--output_dir", str(tmp_path)]) == 2
    assert "belong to --task multiple_choice" in capsys.readouterr().err
    empty = tmp_path / "empty_model"
    empty.mkdir()
    assert main(["--task", "multiple_choice", "--model_name_or_path", str(empty), "--mc_tasks", write_tasks(tmp_path)[0],
                 "--output_dir", str(tmp_path / "o")]) == 2
    assert "has no config.json" in capsys.readouterr().err
