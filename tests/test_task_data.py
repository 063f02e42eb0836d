"""BRD's task data (issue 23): seeded disjoint train/tuning/test splits, the reduced BIG-bench set, the
BIG-bench prompt flag, the BIG-bench-only sample of Table 5."""

import json
import os

import pytest

from lsrmwf.commands import task_data as command
from lsrmwf.evaluation import task_data as td
from lsrmwf.evaluation.mc_tasks import bigbench_task_names, load_bigbench_task, load_tasks
from lsrmwf.io import InputError


def write_bigbench(root, name, n, append=True):
    d = root / name
    d.mkdir(parents=True)
    examples = [{"input": f"Is {i} even?", "target_scores": {"yes": int(i % 2 == 0), "no": int(i % 2 == 1)}}
                for i in range(n)]
    data = {"name": name, "task_prefix": "Answer the question.\n", "append_choices_to_input": append,
            "preferred_score": "multiple_choice_grade", "metrics": ["multiple_choice_grade"], "examples": examples}
    (d / "task.json").write_text(json.dumps(data))
    return d / "task.json"


def write_rte(path, n, offset=0):
    rows = [{"premise": f"Premise {i}.", "hypothesis": f"Hypothesis {i}", "label": i % 2} for i in range(offset, offset + n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def read_dir(out):
    return {s: {f: (out / s / f).read_text() for f in sorted(os.listdir(out / s))} for s in td.SPLITS}


def test_reduced_list_names_the_papers_five_tasks_inside_the_full_list():
    names = td.reduced_bigbench_names()
    assert names == ["movie_dialog_same_or_different", "formal_fallacies_syllogisms_negation",
                     "play_dialog_same_or_different", "vitaminc_fact_verification", "winowhy"]
    assert set(names) <= set(bigbench_task_names())
    # the stated rule on sizes (here: made-up ones) picks the largest tasks above 2K, not the named five
    assert td.rule_top_tasks({"a": 5000, "b": 2001, "c": 2000, "d": 9000}, top=2) == ["d", "a"]


def test_splits_are_seeded_disjoint_and_reproducible(tmp_path):
    write_bigbench(tmp_path / "bb", "toy", 60)
    dev = write_rte(tmp_path / "rte_dev.jsonl", 8)
    train = write_rte(tmp_path / "rte_train.jsonl", 40, offset=100)
    outs = []
    for run, seed in (("a", 1), ("b", 1), ("c", 2)):
        out = tmp_path / run
        rc = command.main(["--output_dir", str(out), "--bigbench", "toy", "--bigbench_dir", str(tmp_path / "bb"),
                           "--glue", f"rte={dev}", "--glue_train", f"rte={train}", "--seed", str(seed)])
        assert rc == 0
        outs.append(read_dir(out))
    assert outs[0] == outs[1] and outs[0] != outs[2]
    counts = json.loads((tmp_path / "a" / "counts.json").read_text())["counts"]
    assert counts["toy"] == {"train": 48, "tuning": 6, "test": 6}
    assert counts["rte"] == {"train": 36, "tuning": 4, "test": 8}  # test = the evaluation file, whole
    for task in ("toy", "rte"):
        prompts = {s: [json.loads(line)["prompt"] for line in outs[0][s][f"{task}.jsonl"].splitlines()]
                   for s in td.SPLITS}
        assert not set(prompts["train"]) & set(prompts["test"]) and not set(prompts["tuning"]) & set(prompts["test"])
        assert not set(prompts["train"]) & set(prompts["tuning"])
    # the prompt is the evaluation's; the split file is what evaluate.py --mc_tasks jsonl:... reads
    toy = load_bigbench_task(str(tmp_path / "bb" / "toy"))
    test = load_tasks([f"jsonl:{tmp_path / 'a' / 'test' / 'toy.jsonl'}"])[0]
    assert test.name == "toy" and {e.prompt for e in test.examples} <= {e.prompt for e in toy.examples}
    gold = (tmp_path / "a" / "brd2_sft" / "rte.txt").read_text().splitlines()
    assert len(gold) == 36 and all(line.endswith((" Yes", " No")) for line in gold)



def test_max_per_split_keeps_a_seeded_subset_of_each_split(tmp_path):
    write_bigbench(tmp_path / "bb", "toy", 100)
    dev = write_rte(tmp_path / "rte_dev.jsonl", 30)
    train = write_rte(tmp_path / "rte_train.jsonl", 60, offset=100)
    args = ["--bigbench", "toy", "--bigbench_dir", str(tmp_path / "bb"), "--glue", f"rte={dev}",
            "--glue_train", f"rte={train}", "--seed", "3"]
    assert command.main(["--output_dir", str(tmp_path / "all"), *args]) == 0
    assert command.main(["--output_dir", str(tmp_path / "cap"), *args, "--max_per_split", "5"]) == 0
    counts = json.loads((tmp_path / "cap" / "counts.json").read_text())
    assert counts["counts"]["toy"] == {"train": 5, "tuning": 5, "test": 5}
    assert counts["counts"]["rte"] == {"train": 5, "tuning": 5, "test": 5}
    assert counts["settings"]["max_per_split"] == 5
    full, cap = read_dir(tmp_path / "all"), read_dir(tmp_path / "cap")
    for s in td.SPLITS:
        for f in cap[s]:
            kept = set(cap[s][f].splitlines())
            # a subset of the same split of the uncapped run: capping never moves an example across splits
            assert kept <= set(full[s][f].splitlines())
    # a random subset, not the file's first rows
    ids = [json.loads(line)["id"] for line in cap["test"]["rte.jsonl"].splitlines()]
    assert ids != [f"rte:{i}" for i in range(5)]

def test_too_small_task_and_bad_label_are_one_line_errors(tmp_path, capsys):
    write_bigbench(tmp_path / "bb", "tiny", 20)
    rc = command.main(["--output_dir", str(tmp_path / "o"), "--bigbench", "tiny", "--bigbench_dir", str(tmp_path / "bb")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "task 'tiny' has 2 tuning example(s); every split needs at least 3" in err and "tiny/task.json" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "choices": ["a", "b"], "label": [5]}) + "\n")
    with pytest.raises(InputError, match=r"bad\.jsonl:1: label 5 is outside the choices"):
        td.read_split_rows(str(bad))


def test_prompt_flag_and_bigbench_only_sample(tmp_path):
    path = write_bigbench(tmp_path / "bb", "toy", 30)
    ours = load_bigbench_task(str(path)).examples[0].prompt
    paper = load_bigbench_task(str(path), prompt_style="paper").examples[0].prompt
    assert "choice:" in ours and paper == "Answer the question.\n\nQ: Is 0 even?\nA: "
    rte = write_rte(tmp_path / "rte.jsonl", 20)
    tasks = load_tasks([f"rte={rte}", f"bigbench:{path}"], bigbench_max_examples=7)
    assert [len(t.examples) for t in tasks] == [20, 7]
    again = load_tasks([f"bigbench:{path}"], bigbench_max_examples=7)
    assert [e.prompt for e in again[0].examples] == [e.prompt for e in tasks[1].examples]
