"""The demos' step runner and the main demo's choice of the case-view paper."""

import json
import sys
import time

import pytest

from lsrmwf.demo.steps import run_step


def test_a_step_past_its_budget_is_interrupted_and_a_failed_step_stops_the_demo(tmp_path):
    # the step saves on Ctrl-C (SIGINT) like generate_rationales.py does: what it finished stays
    script = ("import signal, sys, time\n"
              "signal.signal(signal.SIGINT, lambda *a: (open('saved', 'w').write('rows'), sys.exit(0)))\n"
              "time.sleep(60)\n")
    start = time.monotonic()
    assert run_step([sys.executable, "-c", script], str(tmp_path), deadline_s=2) == 0
    assert time.monotonic() - start < 30 and (tmp_path / "saved").read_text() == "rows"
    with pytest.raises(SystemExit, match="step failed with exit code 3"):
        run_step([sys.executable, "-c", "import sys; sys.exit(3)"], str(tmp_path))


def test_the_case_view_shows_the_first_predicted_paper_with_a_finished_row(tmp_path, capsys):
    from lsrmwf.demo.lsr_mwf import pick_case

    preds = tmp_path / "predictions.jsonl"
    preds.write_text("".join(json.dumps({"id": i, "prediction": "p"}) + "\n" for i in ("a", "b", "c")))
    rows = tmp_path / "test_rationales.jsonl"
    rows.write_text(json.dumps({"id": "a", "error": "HTTP 500"}) + "\n" + json.dumps({"id": "c", "error": None}) + "\n"
                    + '{"id": "b", "err')  # a torn last line: never finished
    assert pick_case(str(preds), str(rows)) == "c"
    assert pick_case(str(preds), str(tmp_path / "none.jsonl")) == "a"
    assert "no test paper has a finished rationale row" in capsys.readouterr().out
