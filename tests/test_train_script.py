"""train.py end to end on a few real aclsum papers: LSR-MWF with a hand-made rationale file,
--baseline, resume, a JSON config, presets, and the error messages users see."""

import json
import os
import subprocess
import sys

import pytest
import tiny

from lsrmwf.commands.train import DEFAULT_RUN_ARGS, main, parse_args
from lsrmwf.io import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = [
    "--config_overrides", tiny.overrides(),
    "--tokenizer_vocab_size", "400", "--max_source_length", "128", "--max_target_length", "32",
    "--max_rationale_length", "32", "--num_beams", "2", "--min_length", "2", "--max_length", "16",
    "--per_device_train_batch_size", "2", "--per_device_eval_batch_size", "2", "--learning_rate", "1e-3",
    "--logging_steps", "1", "--report_to", "none", "--use_cpu", "--disable_tqdm", "true",
]


def write_rationales(path, ds, n, keep_false=(), error=()):
    """A rationale file in generate_rationales.py's format for the first ``n`` examples of ``ds``."""
    with open(path, "w") as f:
        for k in range(n):
            words = ds[k]["document"].split()
            row = {
                "id": ds[k]["id"],
                "rationales": [
                    {"aspect": "research challenge", "sentence": " ".join(words[:25]), "triples": [[words[0], "addresses", words[5]]]},
                    {"aspect": "method", "sentence": " ".join(words[25:50]), "triples": [[words[30], "uses", words[33]]]},
                ],
                "sub_summaries": [" ".join(words[:15]), " ".join(words[25:40])],
                "summary": " ".join(words[:30]),
                "rouge": {"rouge1": 0.4, "rouge2": 0.1, "rougeL": 0.3},
                "score": 0.8,
                "keep": k not in keep_false,
                "model": "hand-made", "endpoint": None, "prompt_version": "test", "params": {}, "usage": {},
                "latency_s": 0.0, "cache_key": str(k),
                "error": "timeout" if k in error else None,
            }
            f.write(json.dumps(row) + "\n")
    return str(path)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_end_to_end_lsrmwf_with_rationales(aclsum_train, tmp_path):
    from transformers import AutoModelForSeq2SeqLM

    rationales = write_rationales(tmp_path / "r.jsonl", aclsum_train, 10, keep_false=(1,), error=(2,))
    out = tmp_path / "run"
    results = main(["--dataset_name", "aclsum", "--max_train_samples", "10", "--max_eval_samples", "3",
                    "--max_predict_samples", "3", "--rationale_file", rationales, "--output_dir", str(out),
                    "--do_train", "--do_eval", "--do_predict", "--max_steps", "3", "--save_steps", "3", *TINY])
    assert results["train_samples"] == 8  # --rationale_policy drop (the preset's): the keep=false and the failed row
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["documents"] == ("10 documents: 8 with rationales, 1 rejected by selection, 1 failed, 0 missing "
                                    "→ 8 trained (--rationale_policy drop)")
    assert summary["rationale_join"]["failed"] == 1
    assert "eval_rouge1" in results and "predict_rouge1" in results

    preds = read_jsonl(out / "predictions.jsonl")
    from lsrmwf.data.loading import load_documents

    test = load_documents("aclsum", split="test", max_examples=3)
    assert [p["id"] for p in preds] == test["id"]
    assert [p["reference"] for p in preds] == test["summary"]
    assert all(isinstance(p["prediction"], str) for p in preds)

    gates = read_jsonl(out / "gates.jsonl")
    assert [g["step"] for g in gates] == [0, 1, 2, 3]
    assert all(len(g["gates"]) == 2 and len(g["gates"][0]) == 3 for g in gates)

    state = json.loads((out / "trainer_state.json").read_text())
    logged = [h for h in state["log_history"] if "loss" in h]
    assert all("loss_ea" in h and "loss_as" in h and "loss_ter" in h and "ce" in h for h in logged)
    preset = {"gamma_ce": 0.6, "gamma_views": 0.4}  # cnndm preset, no explicit value given
    h = logged[0]
    assert h["loss"] == pytest.approx(preset["gamma_ce"] * h["ce"] + preset["gamma_views"] * (h["loss_ea"] + h["loss_as"] + h["loss_ter"]), rel=1e-3)
    all_results = json.loads((out / "all_results.json").read_text())
    assert {"train_loss", "eval_rouge1", "predict_rouge2"} <= set(all_results)

    model = AutoModelForSeq2SeqLM.from_pretrained(out)
    assert type(model).__name__ == "LsrMwfForConditionalGeneration"
    assert model.config.gate_init == 0.02 and list(model.config.views) == ["ea", "as", "ter"]
    assert model.generation_config.num_beams == 2 and model.generation_config.no_repeat_ngram_size == 3
    assert (out / "tokenizer.json").exists()


def test_rationale_policy_ce_only_trains_every_document(aclsum_train, tmp_path):
    rationales = write_rationales(tmp_path / "r.jsonl", aclsum_train, 5, keep_false=(1,), error=(2,))
    out = tmp_path / "ce_only"
    results = main(["--dataset_name", "aclsum", "--max_train_samples", "6", "--rationale_file", rationales,
                    "--rationale_policy", "ce_only", "--output_dir", str(out), "--do_train", "--max_steps", "3",
                    "--save_strategy", "no", *TINY])
    assert results["train_samples"] == 6  # 3 with rationales, 1 rejected, 1 failed, 1 missing: all train
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["documents"].endswith("3 with rationales, 1 rejected by selection, 1 failed, 1 missing → 6 trained "
                                         "(--rationale_policy ce_only)")


def test_baseline_and_json_config(aclsum_train, tmp_path):
    out = tmp_path / "base"
    argv = ["--dataset_name", "aclsum", "--max_train_samples", "6", "--max_predict_samples", "3", "--output_dir", str(out),
            "--do_train", "--do_predict", "--max_steps", "2", "--save_strategy", "no", "--baseline",
            "--rouge_tokenizer", "whitespace", *TINY]
    parsed = parse_args(argv)
    config = {k: v for a in (parsed.model, parsed.data, parsed.lsr_mwf, parsed.logit_kd, parsed.basic_reading)
              for k, v in vars(a).items()}
    config.update(output_dir=str(out), do_train=True, do_predict=True, max_steps=2, save_strategy="no", report_to="none",
                  use_cpu=True, per_device_train_batch_size=2, per_device_eval_batch_size=2, learning_rate=1e-3)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    main([str(path)])
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "bart"
    assert not (out / "gates.jsonl").exists()
    assert len(read_jsonl(out / "predictions.jsonl")) == 3
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["rouge"]["tokenizer"] == "whitespace" and "predict_rouge1" in summary["metrics"]


def test_resume_from_last_checkpoint(aclsum_train, tmp_path):
    out = tmp_path / "resume"
    common = ["--dataset_name", "aclsum", "--max_train_samples", "8", "--output_dir", str(out), "--do_train",
              "--save_steps", "2", *TINY]
    main(common + ["--max_steps", "2"])
    assert (out / "checkpoint-2").is_dir()
    main(common + ["--max_steps", "4"])  # finds checkpoint-2 and continues
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    steps = [h["step"] for h in state["log_history"] if "loss" in h]
    assert steps == [1, 2, 3, 4]  # the first run's steps are kept, none repeated
    assert [g["step"] for g in read_jsonl(out / "gates.jsonl")] == [0, 1, 2, 3, 4]


def test_preset_fills_only_unset_values():
    a = parse_args(["--dataset_name", "EdinburghNLP/xsum", "--output_dir", "x", "--num_beams", "3", "--gamma_ce", "0.5"])
    d, lsr = a.data, a.lsr_mwf
    assert d.preset == "xsum"  # implied by the dataset
    assert (d.max_source_length, d.max_target_length, d.length_penalty, d.min_length, d.max_length) == (512, 80, 0.6, 11, 62)
    assert d.num_beams == 3 and lsr.gamma_ce == 0.5  # explicit values win
    assert lsr.gamma_views == 0.3 and lsr.gate_init == 0.01
    a = parse_args(["--dataset_name", "EdinburghNLP/xsum", "--output_dir", "x", "--preset", "cnndm"])
    assert (a.data.num_beams, a.lsr_mwf.gate_init, a.lsr_mwf.gamma_ce) == (4, 0.02, 0.6)


def test_no_arguments_runs_the_builtin_default():
    a = parse_args([])
    m, d, t = a.model, a.data, a.training
    assert d.dataset_name == "aclsum" and t.do_train and t.do_predict and m.model_name_or_path is None
    assert t.max_steps == int(DEFAULT_RUN_ARGS[DEFAULT_RUN_ARGS.index("--max_steps") + 1])
    a = parse_args(["--max_steps", "5", "--rationale_file", "r.jsonl"])  # defaults plus the user's values
    assert a.training.max_steps == 5 and a.lsr_mwf.rationale_file == "r.jsonl" and a.data.dataset_name == "aclsum"
    a = parse_args(["--train-file=x.jsonl", "--output_dir", "o"])  # a data source: no defaults mixed in
    m, d, t = a.model, a.data, a.training
    assert d.train_file == "x.jsonl" and d.dataset_name is None and m.config_overrides is None and not t.do_train


# -- errors -----------------------------------------------------------------------------------------


def _local(tmp_path, rows, name="train.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _run_local(tmp_path, train_file, *extra):
    return main(["--train_file", train_file, "--id_column", "id", "--output_dir", str(tmp_path / "out"), "--do_train", "--max_steps", "1",
                 "--save_strategy", "no", *TINY, *extra])


def test_missing_column_and_empty_document(tmp_path):
    f = _local(tmp_path, [{"id": "a", "article": "some text here", "highlights": "text"}])
    with pytest.raises(InputError, match=r"train.jsonl: missing column\(s\) \['document', 'summary'\]; available columns are"):
        _run_local(tmp_path, f)
    f = _local(tmp_path, [{"id": "a", "document": "one two", "summary": "s"}, {"id": "b", "document": "  ", "summary": "s"}],
               name="empty.jsonl")
    with pytest.raises(InputError, match=r"empty.jsonl: row 2 \(id 'b'\): field 'document' is empty"):
        _run_local(tmp_path, f, "--strict_data")  # without it the example is left out (tests/test_empty_examples.py)


def test_unmatched_rationale_ids(aclsum_train, tmp_path):
    f = _local(tmp_path, [{"id": f"doc{k}", "document": aclsum_train[k]["document"], "summary": "s"} for k in range(3)])
    r = write_rationales(tmp_path / "r.jsonl", aclsum_train, 3)  # aclsum ids, not doc0..doc2
    with pytest.raises(InputError, match=r"r.jsonl:1: rationale id '.+' \(and all 3 others\) match no example id"):
        _run_local(tmp_path, f, "--rationale_file", r)


def test_non_bart_checkpoint_is_refused(tmp_path):
    ckpt = tmp_path / "t5"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model_type": "t5", "d_model": 32}))
    with pytest.raises(InputError, match=r"t5: model_type 't5' is not BART"):
        main(["--dataset_name", "aclsum", "--model_name_or_path", str(ckpt), "--output_dir", str(tmp_path / "o"),
              "--do_train", "--max_train_samples", "2", "--report_to", "none", "--use_cpu"])


def test_cli_prints_a_clear_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "train.py"), "--train_file", str(tmp_path / "nope.jsonl"), "--output_dir",
         str(tmp_path / "o"), "--do_train", "--use_cpu"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(f"train.py: error: {tmp_path / 'nope.jsonl'}: file not found")
    assert "Traceback" not in proc.stderr


def test_rationale_targets_are_encoded_once_and_cached(tiny_tokenizer, aclsum_train, tmp_path):
    import torch

    from lsrmwf import LsrMwfConfig, LsrMwfForConditionalGeneration
    from lsrmwf.data.loading import load_documents
    from lsrmwf.data.preprocessing import tokenize_dataset
    from lsrmwf.training.arguments import SummarizationDataArguments
    from lsrmwf.training.recipes.lsr_mwf import add_rationale_targets

    tok = tiny_tokenizer
    f = _local(tmp_path, [{"id": aclsum_train[k]["id"], "document": aclsum_train[k]["document"], "summary": "s"} for k in range(4)])
    ds = load_documents(data_file=f, id_column="id", cache_dir=str(tmp_path / "cache"))  # file-backed: map results are cached
    ds = ds.map(lambda b: {"ea_text": [d[:80] if i % 2 == 0 else None for i, d in enumerate(b["document"])]}, batched=True)
    ds = tokenize_dataset(ds, tok, SummarizationDataArguments(max_source_length=64, max_target_length=16), ("ea",),
                          max_rationale_length=24)
    model = LsrMwfForConditionalGeneration(LsrMwfConfig(
        **tiny.bart(vocab_size=len(tok), d_model=16, decoder_layers=1, encoder_ffn_dim=32, decoder_ffn_dim=32,
                    max_position_embeddings=128), pad_token_id=tok.pad_token_id, views=["ea"]))
    calls = []
    encode = model.encode_rationale
    model.encode_rationale = lambda ids, mask: calls.append(len(ids)) or encode(ids, mask)

    first = add_rationale_targets(ds, model, ["ea"], "cpu", identity="initial weights A")
    assert calls and "ea_input_ids" not in first.column_names
    targets = torch.tensor(first["ea_target"])
    assert targets.shape == (4, 16)
    assert bool((targets[1] == 0).all()) and bool((targets[3] == 0).all())  # no rationale: zero target (masked)
    ids = torch.tensor([ds[0]["ea_input_ids"]])
    torch.testing.assert_close(targets[0], encode(ids, torch.ones_like(ids))[0])

    calls.clear()
    again = add_rationale_targets(ds, model, ["ea"], "cpu", identity="initial weights A")
    assert calls == [] and again["ea_target"] == first["ea_target"]  # loaded from datasets' cache
    add_rationale_targets(ds, model, ["ea"], "cpu", identity="initial weights B")
    assert calls  # other initial weights: encoded anew


def test_ablation_view_on_the_fly_targets_and_noam(aclsum_train, tmp_path):
    rationales = write_rationales(tmp_path / "r.jsonl", aclsum_train, 6)
    out = tmp_path / "ter"
    main(["--dataset_name", "aclsum", "--max_train_samples", "6", "--rationale_file", rationales, "--output_dir", str(out),
          "--do_train", "--max_steps", "3", "--save_strategy", "no", *TINY, "--views", "ter", "--cache_rationale_targets", "false",
          "--lr_schedule", "noam", "--learning_rate", "2e-3", "--warmup_steps", "2", "--gate_init", "0.05",
          "--view_ffn_dim", "16"])
    state = json.loads((out / "trainer_state.json").read_text())
    logged = [h for h in state["log_history"] if "loss" in h]
    assert all("loss_ter" in h and "loss_ea" not in h and "gate/ter/layer01" in h for h in logged)
    # the paper's schedule: update s runs with 2e-3 * min(s^-0.5, s * 2^-1.5) (the Trainer logs that rate)
    assert [h["learning_rate"] for h in logged] == pytest.approx([2e-3 * min(s**-0.5, s * 2**-1.5) for s in (1, 2, 3)])
    gates = read_jsonl(out / "gates.jsonl")
    assert gates[0]["views"] == ["ter"] and gates[0]["gates"] == [[pytest.approx(0.05)], [pytest.approx(0.05)]]
    assert json.loads((out / "config.json").read_text())["view_ffn_dim"] == 16
    with pytest.raises(InputError, match=r"--view_ffn_dim 32: .* has view layers of width 16"):
        main(["--dataset_name", "aclsum", "--max_train_samples", "2", "--model_name_or_path", str(out), "--output_dir",
              str(tmp_path / "again"), "--do_train", "--max_steps", "1", "--report_to", "none", "--use_cpu", "--view_ffn_dim", "32"])
