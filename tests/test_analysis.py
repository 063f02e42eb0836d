"""The paper's analyses as commands (lsrmwf.analysis): the grids, and a γ sweep run end to end at tiny scale."""

import json
import os

import pytest
import tiny
from test_train_script import write_rationales

from lsrmwf.analysis.ablations import GATE_GRID, VIEW_GRID, main, reference_setting, results_table, settings, summarize

TINY_BASE = [
    "--dataset_name", "aclsum", "--max_train_samples", "6", "--max_predict_samples", "2", "--do_train", "--do_predict",
    "--config_overrides", tiny.overrides(),
    "--tokenizer_vocab_size", "400", "--max_source_length", "128", "--max_target_length", "32", "--max_rationale_length", "32",
    "--num_beams", "1", "--min_length", "2", "--max_length", "8", "--per_device_train_batch_size", "2",
    "--per_device_eval_batch_size", "2", "--max_steps", "2", "--warmup_steps", "2", "--save_strategy", "no",
    "--report_to", "none", "--use_cpu", "--disable_tqdm", "true", "--logging_steps", "1",
]


def test_the_grids_are_the_papers():
    assert [n for n, _ in settings("views")] == ["ea", "as", "ter", "ea+as", "ea+ter", "as+ter", "ea+as+ter"]
    assert len(VIEW_GRID) == 7
    gate = dict(settings("gate_init"))
    assert GATE_GRID == ["0.001", "0.015", "0.02", "0.02*", "0.025", "0.1"]
    assert gate["0.02*"] == ["--gate_init", "0.02", "--freeze_gates"] and gate["0.02"] == ["--gate_init", "0.02"]
    gamma = dict(settings("gamma", ["6:4", "7:3"]))
    assert gamma["6:4"] == ["--gamma_ce", "0.6", "--gamma_views", "0.4"]
    assert dict(settings("views", ["ea+ter"]))["ea+ter"] == ["--views", "ea", "ter"]


def test_gamma_sweep_writes_a_table_and_a_plot(aclsum_train, tmp_path):
    rationales = write_rationales(tmp_path / "r.jsonl", aclsum_train, 6)
    out = tmp_path / "gamma"
    argv = ["gamma", "--grid", "6:4", "9:1", "--rationale_file", rationales, "--output_dir", str(out),
            "--evaluate_args", "--bootstrap_resamples 50", "--", *TINY_BASE]
    assert main(argv) == 0
    table = (out / "results.md").read_text().splitlines()
    assert table[0] == "| γ1:γ2 | R-1 | R-2 | R-Lsum (paper's R-L) | BS-F1 |"
    assert [line.split("|")[1].strip() for line in table[2:4]] == ["6:4 (reference)", "9:1"]  # cnndm's γ is the reference
    # evaluate.py scored the runs' predictions: R-1 as train.py reports it, with its interval; BERTScore (the local
    # MiniLM model); the paired test of 9:1 against 6:4 in every metric
    r1 = json.loads((out / "6-4" / "all_results.json").read_text())["predict_rouge1"]
    ev = {s["name"]: s for s in json.loads((out / "evaluate" / "results.json").read_text())["systems"]}
    assert ev["6:4"]["metrics"]["rouge1"] == pytest.approx(r1, abs=0.01)
    ci = ev["6:4"]["ci"]["rouge1"]
    assert table[2].split("|")[2].strip() == f"{r1:.2f} [{ci['low']:.2f}, {ci['high']:.2f}]"
    bs = ev["9:1"]["metrics"]["bertscore_f1"]
    p = ev["9:1"]["vs_baseline"]["bertscore_f1"]["p_value"]
    assert table[3].split("|")[5].strip().startswith(f"{bs:.4f} [") and table[3].split("|")[5].strip().endswith(f"(p={p:.3f})")
    assert "(p=" not in table[2] and "paired bootstrap test against the reference" in "\n".join(table)
    res = json.loads((out / "results.json").read_text())
    assert [r["setting"] for r in res["results"]] == ["6:4", "9:1"] and res["reference"] == "6:4"
    assert all("predict_rouge1" in r["runs"][0] for r in res["train_results"])
    assert (out / "gamma.png").read_bytes()[:4] == b"\x89PNG"
    # each setting trained with its own weights: the logged loss is γ1·CE + γ2·Σ view losses
    for name, g1 in (("6-4", 0.6), ("9-1", 0.9)):
        state = json.loads((out / name / "trainer_state.json").read_text())
        h = next(x for x in state["log_history"] if "loss" in x and "ce" in x)
        views = sum(h[k] for k in ("loss_ea", "loss_as", "loss_ter"))
        assert abs(h["loss"] - (g1 * h["ce"] + (1 - g1) * views)) < 1e-3 * h["loss"]
    # a finished setting is not trained again
    stamp = os.path.getmtime(out / "6-4" / "all_results.json")
    main(argv)
    assert os.path.getmtime(out / "6-4" / "all_results.json") == stamp


def test_llm_rows_score_stol_as_a_system_on_the_documents_the_llm_finished(tmp_path, capsys):
    """Table 2's LLM row: S^tol from a test-split rationale file scored beside a trained system, both
    on the documents the LLM finished; failed, missing and empty rows are counted, not scored."""
    docs = tmp_path / "test.jsonl"
    refs = {f"t{k}": f"the model reads document {k} and writes a short summary of it" for k in range(5)}
    docs.write_text("".join(json.dumps({"id": i, "document": f"Document {i}. " * 5, "summary": r}) + "\n" for i, r in refs.items()))
    rationales = tmp_path / "test_rationales.jsonl"
    rows = [{"id": "t0", "rationales": [], "summary": refs["t0"], "keep": True},             # perfect
            {"id": "t1", "rationales": [], "summary": "an unrelated sentence", "keep": False},  # rejected still scores
            {"id": "t2", "rationales": None, "summary": "", "error": "HTTP 500"},
            {"id": "t3", "rationales": [], "summary": "  ", "keep": True}]
    rationales.write_text("".join(json.dumps(r) + "\n" for r in rows))
    system = tmp_path / "bart.jsonl"
    system.write_text("".join(json.dumps({"id": i, "prediction": "the model writes"}) + "\n" for i in refs))
    out = tmp_path / "llm"
    rc = main(["llm", "--rationale_file", str(rationales), "--output_dir", str(out), "--predictions", str(system),
               "--system_names", "BART", "--", "--data_file", str(docs), "--no_bertscore", "--bootstrap_resamples", "50"])
    assert rc == 0
    line = "LLM S^tol scored on 2 of 5 test documents (1 failed, 1 with no row, 1 with an empty summary)"
    assert line in capsys.readouterr().out and (out / "llm_rows.txt").read_text().startswith(line)
    scored = [json.loads(x)["id"] for x in (out / "llm_stol.jsonl").read_text().splitlines()]
    assert scored == ["t0", "t1"]
    systems = {s["name"]: s for s in json.loads((out / "results.json").read_text())["systems"]}
    assert set(systems) == {"LLM S^tol", "BART"} and systems["BART"]["n"] == systems["LLM S^tol"]["n"] == 2
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    expected = 100 * (1.0 + scorer.score(refs["t1"], "an unrelated sentence")["rouge1"].fmeasure) / 2
    assert systems["LLM S^tol"]["metrics"]["rouge1"] == pytest.approx(expected)
    assert "BART (baseline)" in (out / "results.md").read_text()


def test_seeds_give_mean_sd_and_how_often_the_difference_was_significant():
    def table(r1_ref, r1_other, p):
        ci = {"low": 0.0, "high": 1.0}
        return {"significance_level": 0.05, "confidence": 0.95, "systems": [
            {"name": "ea+as+ter", "metrics": {"rouge1": r1_ref}, "ci": {"rouge1": ci}},
            {"name": "ea", "metrics": {"rouge1": r1_other}, "ci": {"rouge1": ci},
             "vs_baseline": {"rouge1": {"delta": r1_other - r1_ref, "p_value": p}}}]}

    per_seed = {42: table(40.0, 36.0, 0.01), 43: table(42.0, 41.0, 0.2), 44: table(44.0, 37.0, 0.001)}
    rows = summarize(["ea+as+ter", "ea"], per_seed, "ea+as+ter")
    assert rows[0]["metrics"]["rouge1"]["mean"] == pytest.approx(42.0) and rows[0]["metrics"]["rouge1"]["sd"] == pytest.approx(2.0)
    md = results_table("views", rows, [42, 43, 44]).splitlines()
    assert md[0] == "| views | R-1 |"
    assert md[2] == "| ea+as+ter (reference) | 42.00 ± 2.00 |"
    assert md[3] == "| ea | 38.00 ± 2.65 (p<α in 2/3) |"
    assert "Mean ± sd over seeds 42, 43, 44" in md[-1]
    assert reference_setting("views", []) == "ea+as+ter"
    assert reference_setting("gate_init", ["--preset", "xsum"]) == "0.01" and reference_setting("gamma", []) == "6:4"
