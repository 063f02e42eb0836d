"""python -m lsrmwf.analysis table3 (issue 23): given per-model results go into the BRD paper's Table 3 layout."""

import json
import subprocess
import sys

import pytest

from lsrmwf.analysis.table3 import main


def write(path, accuracy):
    path.mkdir(parents=True)
    (path / "mc_results.json").write_text(json.dumps({"accuracy": accuracy}))
    return str(path)


def test_rows_in_table3_layout(tmp_path):
    glue = {"xnli": 0.4, "rte": 0.5, "cb": 0.6, "paws-x": 0.5, "boolq": 0.6, "sst-2": 0.8}
    blind = write(tmp_path / "blind", {**glue, "anachronisms": 0.5, "winowhy": 0.3})  # full-list BIG-bench tasks
    reduced = write(tmp_path / "sft", {**glue, "movie_dialog_same_or_different": 0.6, "winowhy": 0.8})
    out = tmp_path / "t"
    assert main(["--rows", f"blind:XGLM-BRD={blind}", f"supervised:SFT={reduced}", "--output_dir", str(out)]) == 0
    lines = (out / "table3.md").read_text().splitlines()
    assert lines[0] == "| setting | model | XNLI | RTE | CB | PAWS-X | BoolQ | SST-2 | BIG-bench-Avg | Average |"
    assert lines[2] == "| blind | XGLM-BRD | 40.0 | 50.0 | 60.0 | 50.0 | 60.0 | 80.0 | 40.0 | 54.3 |"
    assert lines[3] == "| supervised | SFT | 40.0 | 50.0 | 60.0 | 50.0 | 60.0 | 80.0 | 70.0† | 58.6 |"
    rows = json.loads((out / "table3.json").read_text())
    assert [r["reduced"] for r in rows] == [False, True] and rows[1]["bigbench_tasks"] == 2
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "mc_results.json").write_text("{}")
    assert main(["--rows", f"x={tmp_path / 'bad'}", "--output_dir", str(out)]) == 2


def test_columns_no_row_has_are_left_out_and_named(tmp_path):
    a = write(tmp_path / "a", {"cb": 0.5, "winowhy": 0.6})
    b = write(tmp_path / "b", {"cb": 0.25, "rte": 0.75, "winowhy": 0.5})
    out = tmp_path / "t"
    assert main(["--rows", f"blind:A={a}", f"relaxed:B={b}", "--output_dir", str(out)]) == 0
    lines = (out / "table3.md").read_text().splitlines()
    assert lines[0] == "| setting | model | RTE | CB | BIG-bench-Avg | Average |"
    assert lines[2] == "| blind | A | – | 50.0 | 60.0† | 55.0 |"
    assert lines[3] == "| relaxed | B | 75.0 | 25.0 | 50.0† | 50.0 |"
    assert lines[-1] == "Not run, so left out: XNLI, PAWS-X, BoolQ, SST-2."


@pytest.mark.parametrize("argv", [["table3", "--help"]])
def test_module_entry_point_dispatches(argv):
    res = subprocess.run([sys.executable, "-m", "lsrmwf.analysis", *argv], capture_output=True, text=True)
    assert res.returncode == 0 and "Table 3 layout" in res.stdout
