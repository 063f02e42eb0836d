"""Empty or whitespace-only documents and summaries: left out and counted by default (the paper removes
"empty items"), an error naming every such row with --strict_data."""

import json

import pytest
from test_presets import TINY_MODEL

from lsrmwf.commands.train import main
from lsrmwf.data.loading import load_documents
from lsrmwf.io import InputError

ROWS = [
    {"id": "a", "document": "The first paper studies parsing with graphs.", "summary": "Parsing with graphs."},
    {"id": "b", "document": " \n\t ", "summary": "A summary of nothing."},
    {"id": "c", "document": "The third paper studies tagging.", "summary": "Tagging."},
    {"id": "d", "document": "The fourth paper has no summary.", "summary": "   "},
    {"id": "e", "document": "The fifth paper studies translation.", "summary": "Translation."},
]


def write(tmp_path, rows=ROWS, name="train.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_load_documents_drops_and_lists_or_names_every_empty_row(tmp_path):
    path = write(tmp_path)
    dropped = []
    ds = load_documents(data_file=path, on_empty="drop", dropped=dropped)
    assert ds["id"] == ["a", "c", "e"]
    assert dropped == [{"row": 2, "id": "b", "field": "document"}, {"row": 4, "id": "d", "field": "summary"}]
    with pytest.raises(InputError, match=r"row 2 \(id 'b'\): field 'document' is empty; row 4 \(id 'd'\): field 'summary' is empty"):
        load_documents(data_file=path)  # the default for evaluation and rationale generation: an error
    # a summary is not required where none is needed (basic reading)
    assert load_documents(data_file=path, require_summary=False, on_empty="drop")["id"] == ["a", "c", "d", "e"]


def test_train_py_leaves_empty_examples_out_and_counts_them(tmp_path, caplog):
    out = tmp_path / "run"
    train, test = write(tmp_path), write(tmp_path, ROWS[:2], name="test.jsonl")
    results = main(["--train_file", train, "--test_file", test, "--output_dir", str(out), "--do_train", "--do_predict",
                    "--max_steps", "1", "--max_predict_samples", "2", *TINY_MODEL])
    assert results["train_samples"] == 3
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["examples"] == {"train": 3, "eval": None, "predict": 1}
    assert summary["empty_examples_left_out"] == {"train": 2, "eval": 0, "predict": 1}
    assert "left out 2 train example(s)" in caplog.text and "row 4 (id 'd'): field 'summary' is empty" in caplog.text
    assert [json.loads(x)["id"] for x in (out / "predictions.jsonl").read_text().splitlines()] == ["a"]


def test_strict_data_makes_them_an_error_naming_the_rows(tmp_path):
    with pytest.raises(InputError, match=r"train.jsonl: row 2 \(id 'b'\): field 'document' is empty; row 4 \(id 'd'\)"):
        main(["--train_file", write(tmp_path), "--output_dir", str(tmp_path / "o"), "--do_train", "--max_steps", "1",
              "--strict_data", *TINY_MODEL])
