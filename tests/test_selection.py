"""Rationale selection: --score_on both, the score report (line + histogram PNG), --rescore without the LLM."""

import json
import os
import sys

import pytest

from lsrmwf.commands.generate_rationales import main as cli_main
from lsrmwf.llm.pipeline import Selection, rescore_file
from lsrmwf.llm.selection import decide, score1, score_report, select

sys.path.insert(0, os.path.dirname(__file__))
from llm_fault_server import FaultServer  # noqa: E402

REF = "the cat sat on the mat and the dog barked at night"


def test_both_keeps_a_row_only_when_both_summaries_pass():
    good, bad = "the cat sat on the mat and the dog barked", "stocks fell sharply in tokyo"
    for subs, total, keeps in (([good], good, True), ([bad], good, False), ([good], bad, False)):
        out = select(subs, total, REF, "score1", 0.85, score_on="both")
        per = out["score_by_summary"]
        assert per["total"] == pytest.approx(score1(out["rouge_by_summary"]["total"]), abs=1e-6)
        assert out["score"] == max(per.values()) and out["keep"] is keeps
        # each single rule keeps exactly when its own summary passes
        assert select(subs, total, REF, "score1", 0.85, "total")["keep"] is (per["total"] <= 0.85)
        assert select(subs, total, REF, "score1", 0.85, "sub_summaries")["keep"] is (per["sub_summaries"] <= 0.85)
    with pytest.raises(ValueError, match="score_on"):
        decide(out["rouge_by_summary"], "score1", 0.85, "either")


def rows_with(scores):
    """Finished rows whose stored ROUGE gives exactly the (total, sub) score2 values: R1=R2=RL=1-s."""
    rows = []
    for k, (t, m) in enumerate(scores):
        by = {"total": {"rouge1": 1 - t, "rouge2": 1 - t, "rougeL": 1 - t},
              "sub_summaries": {"rouge1": 1 - m, "rouge2": 1 - m, "rougeL": 1 - m}}
        rows.append({"id": f"d{k}", "error": None, "rouge_by_summary": by, "score": None, "keep": None,
                     "selection": {"score": "score2", "threshold": 0.65, "score_on": "total", "rouge_measure": "fmeasure"},
                     "cache_key": "k"})
    rows.append({"id": "failed", "error": "timeout", "score": None, "keep": False})
    return rows


SCORES = [(0.5, 0.5), (0.6, 0.7), (0.7, 0.6), (0.8, 0.9), (0.3, 0.64)]


def test_score_report_counts_what_each_rule_keeps():
    report = score_report(rows_with(SCORES), "score2", 0.65, "total")
    assert report["rows"] == 5  # the failed row has no score
    assert report["kept"] == {"total": 3, "sub_summaries": 3, "both": 2}
    assert report["quantiles"]["total"]["p50"] == pytest.approx(0.6)


def test_rescore_applies_a_new_rule_from_stored_rouge(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows_with(SCORES)))
    rows = rescore_file(str(path), Selection("score2", 0.65, "both"))
    on_disk = [json.loads(x) for x in path.read_text().splitlines()]
    assert on_disk == rows
    assert [r["keep"] for r in on_disk[:5]] == [True, False, False, False, True]
    assert [r["score"] for r in on_disk[:5]] == pytest.approx([0.5, 0.7, 0.7, 0.9, 0.64])
    assert all(r["selection"] == {"score": "score2", "threshold": 0.65, "score_on": "both", "rouge_measure": "fmeasure"}
               for r in on_disk[:5])
    assert on_disk[5] == rows_with(SCORES)[5] and all(r["cache_key"] == "k" for r in on_disk[:5])  # untouched otherwise
    with pytest.raises(Exception, match="rouge_measure fmeasure"):
        rescore_file(str(path), Selection("score2", 0.65, "both", "recall"))


def test_cli_rescore_needs_no_llm_and_writes_the_report(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows_with(SCORES)))
    code = cli_main(["--rescore", "--output", str(path), "--preset", "xsum", "--score_on", "sub_summaries"])
    assert code == 0
    captured = capsys.readouterr()
    assert "keeps total 3 (60.0%), sub_summaries 3 (60.0%), both 2 (40.0%)" in captured.err
    png = tmp_path / "r.scores.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(captured.out.strip().splitlines()[-1])["rescored"] == 5
    assert [json.loads(x)["keep"] for x in path.read_text().splitlines()][:5] == [True, False, True, False, True]


def test_a_generating_run_ends_with_the_score_report(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    summary = "The cat sat on the mat. The dog barked at night."
    docs = ["The cat sat on the mat. It was a sunny day. The dog barked at night.", "Stocks fell. Markets closed early."]
    data.write_text("".join(json.dumps({"id": f"d{i}", "document": d, "summary": summary}) + "\n" for i, d in enumerate(docs)))
    out = tmp_path / "out.jsonl"
    with FaultServer() as srv:
        code = cli_main(["--data_file", str(data), "--id_column", "id", "--base_url", srv.base_url, "--model", "m",
                         "--preset", "cnndm", "--score_on", "both", "--output", str(out), "--no_progress"])
    assert code == 0
    err = capsys.readouterr().err
    assert "selection: score1 <= 0.85 on 2 rows keeps total" in err and "--score_on both" in err
    assert (tmp_path / "out.scores.png").exists()
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(r["score"] == max(r["score_by_summary"].values()) and r["selection"]["score_on"] == "both" for r in rows)
