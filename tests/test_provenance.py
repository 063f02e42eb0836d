"""Issue 27: the provenance block of every command's results file; MC standard errors and --log_samples."""

import json
import math
import subprocess
from dataclasses import dataclass

import pytest
from test_evaluate_causal import student_dir, teacher_dir, write_tasks  # noqa: F401  (fixtures)

from lsrmwf.commands.evaluate import main as evaluate
from lsrmwf.io.provenance import LIBRARIES, PROVENANCE_KEY, git_state, provenance


def check_block(block, **expected):
    assert block["lsrmwf"] and set(block["versions"]) == set(LIBRARIES) and block["versions"]["torch"]
    assert block["date"].endswith("+00:00") and block["command_line"] and block["arguments"]
    for key, value in expected.items():
        assert block[key] == value, key
    return block


def test_git_state_inside_and_outside_a_repository(tmp_path):
    assert git_state(str(tmp_path)) is None  # no repository: no failure, no block
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("a")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert git_state(str(tmp_path)) == {"commit": head, "dirty": False}
    (tmp_path / "f").write_text("b")
    assert git_state(str(tmp_path)) == {"commit": head, "dirty": True}


def test_arguments_are_plain_and_secrets_redacted():
    @dataclass
    class Endpoint:
        api_key: str = "sk-secret"
        base_url: tuple = ("http://x/v1",)

    block = provenance([Endpoint()], seed=3, device="cpu")
    assert block["arguments"] == {"Endpoint": {"api_key": "<redacted>", "base_url": ["http://x/v1"]}}
    assert "sk-secret" not in json.dumps(block) and block["seed"] == 3 and block["device"] == "cpu"


def test_multiple_choice_stderr_by_hand_and_log_samples(tmp_path, student_dir):  # noqa: F811
    plain, bbdir = write_tasks(tmp_path)
    rows = [json.loads(line) for line in open(plain)]
    more = tmp_path / "more.jsonl"  # five examples: a stderr with 0 < accuracy < 1 is likely
    more.write_text("".join(json.dumps(r) + "\n" for r in rows + rows[:1] + rows + rows[:1][::-1]))
    out = tmp_path / "mc"
    argv = ["--task", "multiple_choice", "--model_name_or_path", student_dir, "--mc_tasks", str(more), plain,
            "bigbench:toy_bb", "--bigbench_dir", bbdir, "--output_dir", str(out), "--device", "cpu", "--no_progress",
            "--log_samples"]
    assert evaluate(argv) == 0
    results = json.load(open(out / "mc_results.json"))
    check_block(results[PROVENANCE_KEY], device="cpu", seed=None)
    assert results[PROVENANCE_KEY]["command_line"][1:] == argv
    assert results[PROVENANCE_KEY]["arguments"]["MultipleChoiceScoringArguments"]["log_samples"] is True
    samples = [json.loads(line) for line in open(out / "mc_samples.jsonl")]
    assert len(samples) == 6 + 2 + 2
    first = samples[0]
    assert first["task"] == "more" and first["index"] == 0 and first["prompt"] == rows[0]["prompt"]
    assert first["choices"] == rows[0]["choices"] and first["gold"] == [rows[0]["label"]]
    assert set(first["scores"]) == {"token", "word", "sum"} and len(first["scores"]["sum"]) == len(first["choices"])
    token = first["scores"]["token"]
    assert first["prediction"] == max(range(len(token)), key=lambda j: (token[j], -j))
    assert first["correct"] == (first["prediction"] in first["gold"])
    for name in ("more", "toy"):
        ok = [float(s["correct"]) for s in samples if s["task"] == name]
        n, mean = len(ok), sum(ok) / len(ok)
        hand = math.sqrt(sum((x - mean) ** 2 for x in ok) / (n - 1)) / math.sqrt(n)
        assert results["tasks"][name]["accuracy"] == pytest.approx(mean)
        assert results["tasks"][name]["stderr"] == pytest.approx(hand)
    se = {name: results["tasks"][name]["stderr"] for name in ("more", "toy", "toy_bb")}
    assert results["bigbench_average_stderr"] == pytest.approx(se["toy_bb"])
    assert results["average_stderr"] == pytest.approx(math.sqrt(sum(v * v for v in se.values())) / 3)
    assert "independent task means" in results["stderr_note"]
    assert "stderr" in (out / "mc_results.md").read_text()


def test_teacher_student_ce_records_provenance(tmp_path, teacher_dir, student_dir):  # noqa: F811
    plain, _ = write_tasks(tmp_path)
    out = tmp_path / "ce"
    assert evaluate(["--task", "teacher_student_ce", "--teacher_model_name_or_path", teacher_dir,
                     "--model_name_or_path", student_dir, "--mc_tasks", plain, "--output_dir", str(out),
                     "--device", "cpu", "--no_progress"]) == 0
    block = check_block(json.load(open(out / "ce_results.json"))[PROVENANCE_KEY], device="cpu")
    assert block["arguments"]["CrossEntropyArguments"]["teacher_model_name_or_path"] == teacher_dir


def test_summarization_results_record_provenance(tmp_path):
    refs, preds = tmp_path / "refs.jsonl", tmp_path / "preds.jsonl"
    refs.write_text("".join(json.dumps({"id": str(i), "reference": f"the cat sat on mat {i}"}) + "\n" for i in range(3)))
    preds.write_text("".join(json.dumps({"id": str(i), "prediction": f"a cat sat {i}"}) + "\n" for i in range(3)))
    out = tmp_path / "sum"
    assert evaluate(["--predictions", str(preds), "--references", str(refs), "--output_dir", str(out),
                     "--bootstrap_resamples", "10", "--no_bertscore", "--no_progress", "--seed", "7"]) == 0
    block = check_block(json.load(open(out / "results.json"))[PROVENANCE_KEY], seed=7)
    assert block["arguments"]["InputArguments"]["predictions"] == [str(preds)]


def test_train_run_summary_records_provenance(tmp_path):
    from test_empty_examples import ROWS, write
    from test_presets import TINY_MODEL

    from lsrmwf.commands.train import main as train

    out = tmp_path / "run"
    train(["--train_file", write(tmp_path, ROWS[:1]), "--output_dir", str(out), "--do_train", "--max_steps", "1",
           "--seed", "5", *TINY_MODEL])
    summary = json.loads((out / "run_summary.json").read_text())
    block = check_block(summary[PROVENANCE_KEY], seed=5, device="cpu")
    assert block["arguments"]["ModelArguments"] and block["arguments"]["DistillTrainingArguments"]["max_steps"] == 1
    assert "metrics" in summary  # the summary's own sections keep their keys


def test_compose_brd_and_llm_summaries_record_provenance(tmp_path, capsys):
    from llm_fault_server import FaultServer
    from test_brd_compose import answer_rows
    from test_brd_compose import write as write_answers

    from lsrmwf.commands.compose_brd import main as compose
    from lsrmwf.commands.generate_rationales import main as generate

    assert compose(["--answers", write_answers(tmp_path / "a.jsonl", answer_rows()), "--output_dir",
                    str(tmp_path / "brd")]) == 0
    check_block(json.load(open(tmp_path / "brd" / "compose_summary.json"))[PROVENANCE_KEY], seed=42)
    capsys.readouterr()
    txt = tmp_path / "corpus.txt"
    txt.write_text("Apple sold a new phone in Paris.\n")
    with FaultServer() as srv:
        assert generate(["--task", "basic_reading", "--brd_format", "json", "--data_file", str(txt), "--base_url",
                         srv.base_url, "--model", "m", "--api_key", "sk-hidden", "--output",
                         str(tmp_path / "o.jsonl"), "--no_progress"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed.strip().splitlines()[-1])
    block = check_block(summary[PROVENANCE_KEY], device=f"served: {srv.base_url}")
    assert "sk-hidden" not in printed and block["arguments"]["EndpointArguments"]["api_key"] == "<redacted>"


@pytest.fixture
def restore_log_levels():
    import logging

    import datasets
    import transformers

    levels = {name: logger.level for name, logger in logging.root.manager.loggerDict.items()
              if name.startswith("lsrmwf") and isinstance(logger, logging.Logger)}
    verbosity = transformers.utils.logging.get_verbosity(), datasets.utils.logging.get_verbosity()
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger("lsrmwf").setLevel(levels.get("lsrmwf", logging.NOTSET))
    transformers.utils.logging.set_verbosity(verbosity[0])
    datasets.utils.logging.set_verbosity(verbosity[1])


def test_every_command_takes_log_level(tmp_path, caplog, capsys, restore_log_levels):
    import logging

    from lsrmwf.commands import compose_brd, generate_rationales, parse_dataclasses, train

    refs = tmp_path / "refs.jsonl"
    refs.write_text("".join(json.dumps({"id": str(i), "reference": f"a cat sat {i}", "prediction": "a cat"}) + "\n"
                            for i in range(2)))
    argv = ["--predictions", str(refs), "--references", str(refs), "--bootstrap_resamples", "5", "--no_progress"]
    caplog.set_level(logging.DEBUG)
    assert evaluate([*argv, "--output_dir", str(tmp_path / "a")]) == 0
    assert any(r.name == "lsrmwf.evaluate" and r.levelno == logging.INFO for r in caplog.records)
    caplog.clear()
    assert evaluate([*argv, "--output_dir", str(tmp_path / "b"), "--log_level", "error"]) == 0
    assert not [r for r in caplog.records if r.name.startswith("lsrmwf") and r.levelno < logging.ERROR]
    assert logging.getLogger("lsrmwf.evaluate").getEffectiveLevel() == logging.ERROR
    assert train.build_parser().parse_args_into_dataclasses(["--log_level", "debug", "--output_dir", "o"])[2].log_level \
        == "debug"  # train.py's is the training arguments' own
    parse_dataclasses(generate_rationales.build_parser(), ["--log_level", "debug"])
    assert logging.getLogger("lsrmwf").level == logging.DEBUG
    with pytest.raises(SystemExit) as e:
        compose_brd.main(["--log_level", "nonsense"])
    assert e.value.code == 2
    assert "--log_level" in capsys.readouterr().err
