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
    assert all(r["selection"] == {"score": "score2", "threshold": 0.65, "score_on": "both", "rouge_measure": "fmeasure",
                                  "score2_terms": "rougeL"} for r in on_disk[:5])
    assert on_disk[5] == rows_with(SCORES)[5] and all(r["cache_key"] == "k" for r in on_disk[:5])  # untouched otherwise
    # these rows hold F1 of ROUGE-1/2/L only (files written before P/R/F of ROUGE-1/2/3/L were stored)
    with pytest.raises(Exception, match="stores only the fmeasure of ROUGE-1/2/L.*give --rescore the dataset"):
        rescore_file(str(path), Selection("score2", 0.65, "both", "recall"))
    with pytest.raises(Exception, match="row 1 .*--score2_terms rouge3"):
        rescore_file(str(path), Selection("score2", 0.65, "both", "fmeasure", "rouge3"))


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
    # Table 1: rows store their document's and gold summary's words (16 and 5 words; summaries 11 words)
    assert "document" in err and "(all finished rows 10.5)" in err and "gold summary 11.0 (all 11.0)" in err
    assert (tmp_path / "out.scores.png").exists()
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(r["score"] == max(r["score_by_summary"].values()) and r["selection"]["score_on"] == "both" for r in rows)


def test_rouge3_recall_and_f1_by_hand_and_score2_under_both_terms():
    # reference trigrams: the cat sat / cat sat on / sat on the / on the mat (4)
    # prediction trigrams: the cat sat / cat sat on / sat on a / on a mat / a mat today (5); 2 match
    from lsrmwf.llm.selection import rouge_prf, score2, score_value

    ref, pred = "the cat sat on the mat", "the cat sat on a mat today"
    prf = rouge_prf(pred, ref)
    assert prf["rouge3"]["recall"] == pytest.approx(2 / 4, abs=1e-6)
    assert prf["rouge3"]["precision"] == pytest.approx(2 / 5, abs=1e-6)
    assert prf["rouge3"]["fmeasure"] == pytest.approx(2 * 0.5 * 0.4 / 0.9, abs=1e-6)
    # unigrams: 5 of 6 reference words (the, cat, sat, on, mat; one of the two "the"); bigrams: 3 of 5
    assert prf["rouge1"]["recall"] == pytest.approx(5 / 6, abs=1e-6)
    assert prf["rouge2"]["recall"] == pytest.approx(3 / 5, abs=1e-6)
    # LCS: the cat sat on mat = 5 words
    assert prf["rougeL"]["recall"] == pytest.approx(5 / 6, abs=1e-6)
    recall = {k: v["recall"] for k, v in prf.items()}
    assert score2(recall, "rouge3") == pytest.approx(1 - (5 / 6 + 3 / 5 + 2 / 4) / 3, abs=1e-6)  # Eq. (8) as printed
    assert score2(recall, "rougeL") == pytest.approx(1 - (5 / 6 + 3 / 5 + 5 / 6) / 3, abs=1e-6)
    assert score_value("score2", recall, "rouge3") > score_value("score2", recall, "rougeL")
    out = select([pred], pred, ref, "score2", 0.65, "total", "recall", "rouge3")
    assert out["score"] == pytest.approx(1 - (5 / 6 + 3 / 5 + 2 / 4) / 3, abs=1e-6)
    assert out["rouge_prf_by_summary"]["total"] == prf and out["rouge_by_summary"]["total"] == recall
    with pytest.raises(ValueError, match="score2_terms"):
        score2(recall, "rouge4")


def prf_rows():
    """Rows as new runs write them (P/R/F of ROUGE-1/2/3/L of both summaries), built from real ROUGE."""
    from lsrmwf.llm.selection import rouge_prf

    ref = "the cat sat on the mat and the dog barked at night"
    preds = ["the cat sat on the mat and the dog barked at night today",  # near copy: kept by every reading
             "the cat sat on a mat while a dog was barking loudly in the night",
             "cat sat mat dog barked night",  # kept by ROUGE-L readings only: no trigram matches
             "stocks fell sharply in tokyo"]
    rows = []
    for k, p in enumerate(preds):
        prf = {"total": rouge_prf(p, ref), "sub_summaries": rouge_prf(p + " " + preds[0], ref)}
        rows.append({"id": f"d{k}", "error": None, "rationales": [{"aspect": "a", "sentence": "s", "triples": [["x", "y", "z"]]}],
                     "summary": p, "sub_summaries": [p, preds[0]], "rouge_prf_by_summary": prf,
                     "rouge_by_summary": {s: {t: v["fmeasure"] for t, v in x.items()} for s, x in prf.items()},
                     "document_words": 40 + k, "summary_words": 12, "score": None, "keep": None,
                     "selection": {"score": "score2", "threshold": 0.65, "score_on": "total", "rouge_measure": "fmeasure",
                                   "score2_terms": "rougeL"}})
    rows.append({"id": "failed", "error": "timeout", "score": None, "keep": False})
    return ref, rows


def test_cli_rescore_compare_prints_the_four_readings(tmp_path, capsys):
    from lsrmwf.llm.selection import compare_readings, score_value

    _, rows = prf_rows()
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = cli_main(["--rescore", "--compare", "--output", str(path), "--preset", "xsum",
                     "--rouge_measure", "recall", "--score2_terms", "rouge3"])
    assert code == 0
    err = capsys.readouterr().err
    assert "readings of score2 <= 0.65 on 4 finished rows (the paper kept 71% of CNN/DM, 62% of XSum" in err
    table = [line for line in err.splitlines() if line.startswith("| ") and "reading" not in line]
    names = [line.split("|")[1].strip() for line in table]
    assert names == ["F1, R3 = ROUGE-L", "F1, R3 = ROUGE-3 (Eq. 8)", "recall (Eq. 6), R3 = ROUGE-L",
                     "recall (Eq. 6), R3 = ROUGE-3 (Eq. 8) *"]
    # every cell is what that reading keeps, counted here from the stored P/R/F
    for line, (measure, terms) in zip(table, [("fmeasure", "rougeL"), ("fmeasure", "rouge3"), ("recall", "rougeL"),
                                              ("recall", "rouge3")]):
        for cell, on in zip(line.split("|")[2:5], ("total", "sub_summaries", "both")):
            per = [{s: score_value("score2", {t: v[measure] for t, v in r["rouge_prf_by_summary"][s].items()}, terms)
                    for s in ("total", "sub_summaries")} for r in rows[:4]]
            kept = sum((max(p.values()) if on == "both" else p[on]) <= 0.65 for p in per)
            assert cell.strip() == f"{kept} ({100 * kept / 4:.1f}%)"
    kept = {(r["rouge_measure"], r["score2_terms"]): r["kept"]["total"]
            for r in compare_readings(rows, "score2", 0.65)["readings"]}
    assert len(set(kept.values())) > 1  # the readings really differ on this file
    on_disk = [json.loads(x) for x in path.read_text().splitlines()]
    assert on_disk[0]["selection"]["score2_terms"] == "rouge3" and on_disk[0]["selection"]["rouge_measure"] == "recall"
    assert "Table 1 (this split after selection)" in err and "per kept row: EA 1.0, AS 1.0, TER 1.0" in err


def test_rescore_of_an_old_file_recomputes_from_the_dataset(tmp_path, capsys):
    ref, rows = prf_rows()
    for r in rows[:4]:  # as files written before P/R/F of ROUGE-1/2/3/L were stored
        del r["rouge_prf_by_summary"], r["document_words"], r["summary_words"]
        r["rouge_by_summary"] = {s: {t: v for t, v in x.items() if t != "rouge3"} for s, x in r["rouge_by_summary"].items()}
    path = tmp_path / "old.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["--rescore", "--compare", "--output", str(path), "--preset", "xsum"]
    assert cli_main(argv) == 2
    assert "row 1 (id 'd0') stores no precision/recall/F1" in capsys.readouterr().err
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": f"d{k}", "document": "word " * (30 + k), "summary": ref}) + "\n"
                            for k in range(4)))
    assert cli_main(argv + ["--data_file", str(data), "--id_column", "id"]) == 0
    err = capsys.readouterr().err
    assert "recall (Eq. 6), R3 = ROUGE-3 (Eq. 8)" in err and "F1, R3 = ROUGE-L *" in err
    on_disk = [json.loads(x) for x in path.read_text().splitlines()]
    assert set(on_disk[0]["rouge_prf_by_summary"]["total"]) == {"rouge1", "rouge2", "rouge3", "rougeL"}
    assert [r["document_words"] for r in on_disk[:4]] == [30, 31, 32, 33]
    assert "avg words: document" in err
