"""BRD's relaxed and supervised stages (issue 23): SFT / TaskDistillation examples tokenized as the
multiple-choice scorer tokenizes (prompt, candidate), train.py's task_tuning recipe end to end, and BRD²
starting from the given BRD student's weights."""

import json

import pytest
import torch
from test_brd_causal import brd_argv, write_passages
from test_causal_kd import llama

from lsrmwf.evaluation.multiple_choice import encode_pair
from lsrmwf.io import InputError
from lsrmwf.training.task_tuning import encode_task_example, teacher_pairs


@pytest.fixture(scope="module")
def tiny_student(tiny_tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("task_student")
    llama(tiny_tokenizer).save_pretrained(root)
    tiny_tokenizer.save_pretrained(root)
    return root


def test_training_example_is_the_scorers_tokenization(tiny_tokenizer):
    tok = tiny_tokenizer
    cases = [("Question: Can we infer that the model works ? It does. Answer:", "Yes"),  # Table 8: " Yes"
             ("Answer the question.\n\nQ: Is the sky blue?\nA: ", "yes"),  # BIG-bench: the space moves to the answer
             ("The summary of the paper is", " a method")]  # the answer brings its own space
    for prompt, answer in cases:
        ids, n_ctx = encode_pair(tok, prompt, answer)
        ex = encode_task_example(tok, prompt, answer)
        assert ex["input_ids"] == ids + [tok.eos_token_id]
        assert ex["labels"][:n_ctx] == [-100] * n_ctx and ex["labels"][n_ctx:] == ids[n_ctx:] + [tok.eos_token_id]
        assert tok.decode(ids[n_ctx:]).strip() == answer.strip()
    cut = encode_task_example(tok, cases[0][0] * 20, "Yes", max_length=40)
    assert len(cut["input_ids"]) == 40 and cut["input_ids"][-1] == tok.eos_token_id and cut["labels"][-1] != -100


def write_split(path, n=8):
    rows = [{"id": f"rte:{i}", "prompt": f'Question: Can we infer that "claim {i}" ? Premise {i}. Answer:',
             "choices": ["Yes", "No"], "label": [i % 2]} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def task_argv(student, out, *extra):
    return ["--model_name_or_path", str(student), "--output_dir", str(out), "--do_train", "--max_steps", "2",
            "--save_steps", "1", "--per_device_train_batch_size", "2", "--learning_rate", "1e-3", "--report_to", "none",
            "--use_cpu", "--logging_steps", "1", "--seed", "0", *extra]


def test_sft_and_task_distillation_train_and_resume(tiny_student, tmp_path):
    from lsrmwf.commands.train import main, parse_args

    split = write_split(tmp_path / "rte.jsonl")
    out = tmp_path / "sft"
    results = main(task_argv(tiny_student, out, "--task_train_file", str(split)))
    assert results["train_samples"] == 8 and (out / "checkpoint-2").is_dir()
    summary = json.load(open(out / "run_summary.json"))
    assert summary["task_tuning"]["kind"] == "sft" and summary["task_tuning"]["examples"] == 8
    main(task_argv(tiny_student, out, "--task_train_file", str(split), "--max_steps", "3"))
    assert json.load(open(out / "run_summary.json"))["resumed_from"].endswith("checkpoint-2")
    parsed = parse_args(["--model_name_or_path", str(tiny_student), "--output_dir", str(tmp_path / "p"), "--do_train",
                         "--task_train_file", str(split), "--per_device_train_batch_size", "2"])
    assert parsed.data.preset == "task" and parsed.training.per_device_train_batch_size == 2
    assert parsed.training.learning_rate == 3e-4
    assert parsed.data.max_source_length == 2048 and parsed.training.num_train_epochs == 3
    # TaskDistillation: the teacher's mapped answers; unmappable and failed rows are counted and left out
    answers = tmp_path / "answers.jsonl"
    rows = [{"id": f"rte:{i}", "prompt": f"P {i}. Answer:", "choices": ["Yes", "No"], "answer": "Yes",
             "choice": 0, "error": None} for i in range(4)]
    rows += [{"id": "rte:4", "prompt": "P 4. Answer:", "choices": ["Yes", "No"], "answer": "Perhaps", "choice": None,
              "error": None},
             {"id": "rte:5", "prompt": "P 5. Answer:", "choices": ["Yes", "No"], "choice": None, "error": "HTTP 500"}]
    answers.write_text("".join(json.dumps(r) + "\n" for r in rows))
    main(task_argv(tiny_student, tmp_path / "td", "--task_answers_file", str(answers)))
    stats = json.load(open(tmp_path / "td" / "run_summary.json"))["task_tuning"]
    assert stats["kind"] == "task_distillation" and stats["examples"] == 4
    assert stats["files"][str(answers)] == {"rows": 6, "used": 4, "unmappable": 1, "failed": 1}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "prompt": "p", "choices": ["a", "b"], "choice": 7, "error": None}) + "\n")
    with pytest.raises(InputError, match=r"bad\.jsonl:1: field 'choice' 7 is outside the 2 choices"):
        teacher_pairs(str(bad))
    with pytest.raises(InputError, match="give one of --task_train_file"):
        parse_args(task_argv(tiny_student, tmp_path / "x", "--task_train_file", str(split), "--task_answers_file",
                             str(answers)))


def test_brd2_starts_from_the_given_checkpoint(tiny_tokenizer, tiny_student, aclsum_train, tmp_path):
    """BRD² continues from the BRD student: with a zero learning rate its output is that student's weights."""
    from transformers import AutoModelForCausalLM

    from lsrmwf.commands.train import main

    brd_student = tmp_path / "brd_student"
    llama(tiny_tokenizer, seed=7).save_pretrained(brd_student)
    tiny_tokenizer.save_pretrained(brd_student)
    folder = write_passages(tmp_path, aclsum_train, n_docs=4)  # stands for the task inputs' composed passages
    out = tmp_path / "brd2"
    main(brd_argv(brd_student, folder, out, "--learning_rate", "0", "--brd_mix", "ori=1,ner=1,qra=0"))
    after = AutoModelForCausalLM.from_pretrained(out).state_dict()
    given = AutoModelForCausalLM.from_pretrained(brd_student).state_dict()
    base = AutoModelForCausalLM.from_pretrained(tiny_student).state_dict()
    name = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(after[name], given[name]) and not torch.equal(after[name], base[name])


def test_task_preset_says_where_every_value_comes_from():
    from lsrmwf.presets import OWN, TASK_PRESET, TASK_SOURCES

    assert set(TASK_PRESET) == set(TASK_SOURCES)
    assert TASK_SOURCES["num_train_epochs"] == OWN and "reused" in TASK_SOURCES["learning_rate"]
