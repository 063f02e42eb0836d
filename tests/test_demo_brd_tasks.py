"""The BRD demo's task helpers (issue 23 item 8): BIG-bench NLI pairs as a CB-style local task."""

import json

import pytest

from lsrmwf.demo import brd_tasks
from lsrmwf.evaluation.mc_tasks import load_glue_style_task


def write_source(root, examples):
    d = root / brd_tasks.NLI_SOURCE
    d.mkdir(parents=True)
    (d / "task.json").write_text(json.dumps({"examples": examples}))
    return root


def pair(i, label):
    scores = {"entailment": 0, "neutral": 0, "contradiction": 0, label: 1}
    return {"input": f"Sentence 1: Premise {i}. It rained.\nSentence 2: Hypothesis {i}.\n\nThe answer is: ",
            "target_scores": scores}


def test_nli_pairs_become_cb_rows_in_disjoint_seeded_files(tmp_path):
    labels = ["entailment", "neutral", "contradiction"]
    root = write_source(tmp_path / "bb", [pair(i, labels[i % 3]) for i in range(20)])
    paths = brd_tasks.write_nli_files(str(root), str(tmp_path / "a"), eval_fraction=0.25, seed=1)
    again = brd_tasks.write_nli_files(str(root), str(tmp_path / "b"), eval_fraction=0.25, seed=1)
    ev, tr = (open(paths[k]).read().splitlines() for k in ("eval", "train"))
    assert len(ev) == 5 and len(tr) == 15 and not set(ev) & set(tr)
    assert open(again["eval"]).read().splitlines() == ev
    task = load_glue_style_task("cb", path=paths["eval"])  # the CB template and Yes / No / Maybe
    first = json.loads(ev[0])
    i = int(first["premise"].split()[1].rstrip("."))
    assert first == {"premise": f"Premise {i}. It rained.", "hypothesis": f"Hypothesis {i}.", "label": labels[i % 3]}
    assert task.examples[0].prompt == f'Question: Can we infer that "Hypothesis {i}." ? Premise {i}. It rained. Answer:'
    assert task.examples[0].choices[task.examples[0].correct[0]] == {"entailment": "Yes", "contradiction": "No",
                                                                     "neutral": "Maybe"}[labels[i % 3]]


def test_an_example_that_is_not_a_pair_is_named(tmp_path):
    root = write_source(tmp_path / "bb", [pair(0, "neutral"), {"input": "no pair", "target_scores": {"neutral": 1}}])
    with pytest.raises(SystemExit, match=r"task\.json: example 1: not a 'Sentence 1: \.\.\. Sentence 2: \.\.\.' pair"):
        brd_tasks.nli_rows(str(root / brd_tasks.NLI_SOURCE / "task.json"))
