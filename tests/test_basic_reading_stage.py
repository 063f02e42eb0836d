"""Basic Reading Distillation: the pre-education data and the two-stage run (BRD, then summarization)."""

import json

import pytest
from test_train_script import TINY, read_jsonl, write_rationales

from lsrmwf.commands.train import main
from lsrmwf.distill.basic_reading import build_basic_reading_dataset, linearize_reading, mask_spans
from lsrmwf.io import InputError


def reading_rows(ds, n_docs=3, n_sents=4):
    """One basic-reading row per sentence (the shared contract), built from real aclsum text."""
    rows = []
    for d in range(n_docs):
        words = ds[d]["document"].split()
        for s in range(n_sents):
            sent = " ".join(words[s * 12 : (s + 1) * 12])
            rows.append({
                "id": f"{ds[d]['id']}:{s}", "doc_id": ds[d]["id"], "sentence": sent,
                "entities": [{"name": words[s * 12], "type": "concept", "detail": f"mentioned in sentence {s}"}],
                "qa": [{"question": f"What does sentence {s} start with?", "answer": words[s * 12]}],
                "model": "hand-made", "endpoint": None, "prompt_version": "test", "params": {}, "usage": {},
                "latency_s": 0.0, "cache_key": f"{d}:{s}", "error": None,
            })
    return rows


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_linearized_reading():
    text = linearize_reading(
        [{"name": "Apple", "type": "organization", "detail": "maker of the MacBook Pro"}, {"name": "MacBook Pro", "type": "product"},
         {"name": " ", "type": "x"}],
        [{"question": "What did I buy?", "answer": "A new MacBook Pro."}, {"question": "Q without answer", "answer": ""}],
    )
    assert text == ("Entities: Apple (organization: maker of the MacBook Pro) ; MacBook Pro (product) "
                    "Questions: What did I buy? Answer: A new MacBook Pro.")
    assert linearize_reading([], [{"question": "Why?", "answer": "Because."}]) == "Questions: Why? Answer: Because."
    assert linearize_reading([], []) == ""


def test_masking_is_deterministic_and_covers_the_ratio():
    import random

    text = " ".join(f"w{i}" for i in range(40))
    a = mask_spans(text, 0.3, random.Random("s"), "<mask>")
    assert a == mask_spans(text, 0.3, random.Random("s"), "<mask>")
    kept = [w for w in a.split() if w != "<mask>"]
    assert len(kept) == 40 - 12 and "<mask>" in a and "<mask> <mask>" not in a
    assert mask_spans(text, 0.0, random.Random("s"), "<mask>") == text


def test_dataset_mixes_readings_with_original_passages(aclsum_train, tmp_path):
    rows = reading_rows(aclsum_train, n_docs=2, n_sents=4)
    rows[1]["error"] = "server error"
    rows[2]["entities"], rows[2]["qa"] = [], []
    rows = rows[::-1]  # file order must not matter for the passages: the sentence index does
    ds, stats = build_basic_reading_dataset(write(tmp_path / "br.jsonl", rows), passage_sentences=3, mask_ratio=0.3)
    assert stats["failed_rows"] == 1 and stats["empty_readings"] == 1
    assert stats["reading_examples"] == 8 - 2 and stats["passage_examples"] == 4  # per doc: sentences 0-2 and 3
    reading = [r for r in ds if r["id"].startswith("reading:")]
    assert reading[0]["summary"].startswith("Entities: ") and " Questions: " in reading[0]["summary"]
    passages = {r["id"]: r for r in ds if r["id"].startswith("passage:")}
    doc0 = aclsum_train[0]
    p = passages[f"passage:{doc0['id']}:0"]
    words = doc0["document"].split()
    # in sentence order; sentence 1 failed at the LLM (no reading) but is still part of the original text
    assert p["summary"] == " ".join(words[0:36])
    assert "<mask>" in p["document"] and p["document"] != p["summary"]
    only_readings, _ = build_basic_reading_dataset(write(tmp_path / "br.jsonl", rows), mix_original=False)
    assert all(i.startswith("reading:") for i in only_readings["id"])


def test_malformed_rows_name_file_line_and_field(aclsum_train, tmp_path):
    rows = reading_rows(aclsum_train, n_docs=1, n_sents=3)
    rows[1]["qa"] = [{"question": "no answer"}]
    with pytest.raises(InputError, match=r"bad.jsonl:2: qa\[0\] must be an object with \['question', 'answer'\]"):
        build_basic_reading_dataset(write(tmp_path / "bad.jsonl", rows))
    rows = reading_rows(aclsum_train, n_docs=1, n_sents=2)
    del rows[1]["sentence"]
    with pytest.raises(InputError, match=r"bad2.jsonl:2: field 'sentence' is missing"):
        build_basic_reading_dataset(write(tmp_path / "bad2.jsonl", rows))
    rows = [dict(r, error="timeout") for r in reading_rows(aclsum_train, n_docs=1, n_sents=2)]
    with pytest.raises(InputError, match="no usable basic-reading row"):
        build_basic_reading_dataset(write(tmp_path / "failed.jsonl", rows))


def test_brd_stage_then_summarization_stage(aclsum_train, tmp_path):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    br = write(tmp_path / "br.jsonl", reading_rows(aclsum_train, n_docs=4, n_sents=6))
    brd_out = tmp_path / "brd"
    results = main(["--stage", "basic_reading", "--basic_reading_file", br, "--output_dir", str(brd_out), "--do_train",
                    "--max_steps", "3", "--save_strategy", "no", *TINY])
    assert results["train_samples"] == 4 * 6 + 4 * 2  # 24 readings + 8 passages of 3 sentences
    brd_model = AutoModelForSeq2SeqLM.from_pretrained(brd_out)
    assert type(brd_model).__name__ == "LsrMwfForConditionalGeneration"

    rationales = write_rationales(tmp_path / "r.jsonl", aclsum_train, 6)
    summ_out = tmp_path / "summ"
    tiny = [a for a in TINY]
    cut = tiny.index("--config_overrides")
    del tiny[cut : cut + 2]  # the architecture comes from the BRD checkpoint
    main(["--dataset_name", "aclsum", "--model_name_or_path", str(brd_out), "--rationale_file", rationales,
          "--max_train_samples", "6", "--max_predict_samples", "2", "--output_dir", str(summ_out), "--do_train",
          "--do_predict", "--max_steps", "2", "--save_strategy", "no", *tiny, "--learning_rate", "0"])
    assert AutoTokenizer.from_pretrained(summ_out).get_vocab() == AutoTokenizer.from_pretrained(brd_out).get_vocab()
    assert len(read_jsonl(summ_out / "predictions.jsonl")) == 2
    # the summarization stage started from the BRD weights (learning rate 0: they are unchanged)
    import torch

    summ_model = AutoModelForSeq2SeqLM.from_pretrained(summ_out)
    a, b = brd_model.state_dict(), summ_model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert "loss_ea" in json.loads((summ_out / "trainer_state.json").read_text())["log_history"][0]


def test_brd_stage_only_trains(aclsum_train, tmp_path):
    br = write(tmp_path / "br.jsonl", reading_rows(aclsum_train, n_docs=1, n_sents=2))
    with pytest.raises(InputError, match="--stage basic_reading only trains"):
        main(["--stage", "basic_reading", "--basic_reading_file", br, "--output_dir", str(tmp_path / "o"), "--do_train",
              "--do_predict", *TINY])


def test_fewshot_rows_are_merged_per_sentence(tmp_path):
    """The default few-shot form (one row per sentence and behaviour) feeds the seq2seq stage too."""
    def row(doc, k, b, **kw):
        base = {"id": f"{doc}:{k}:{b}", "doc_id": doc, "sentence_index": k, "n_sentences": 2, "sentence": f"Sentence {k} of {doc}.",
                "behaviour": b, "error": None}
        return dict(base, **kw)

    rows = [
        row("d", 1, "qra", answer="Question: Which? Answer: One.", qa=[{"question": "Which?", "answer": "One."}]),
        row("d", 0, "ner", answer='In this sentence, "Paris" is a location entity.', entities=[{"name": "Paris", "type": "location"}]),
        row("d", 0, "qra", answer="Question: What? Answer: Zero.", qa=[{"question": "What?", "answer": "Zero."}]),
        row("d", 1, "ner", error="server error", answer=None),
        row("e", 0, "ner", error="server error", answer=None),
    ]
    ds, stats = build_basic_reading_dataset(write(tmp_path / "fs.jsonl", rows), passage_sentences=3, mask_ratio=0.0)
    by_id = {r["id"]: r for r in ds}
    assert by_id["reading:d:0"]["summary"] == "Entities: Paris (location) Questions: What? Answer: Zero."
    assert by_id["reading:d:1"]["summary"] == "Questions: Which? Answer: One."
    assert "reading:e:0" not in by_id and stats["failed_rows"] == 1
    assert by_id["passage:d:0"]["summary"] == "Sentence 0 of d. Sentence 1 of d."
    with pytest.raises(InputError, match="mixes few-shot rows"):
        build_basic_reading_dataset(write(tmp_path / "mixed.jsonl", rows + reading_rows_plain()))


def reading_rows_plain():
    return [{"id": "x:0", "doc_id": "x", "sentence": "A b.", "entities": [], "qa": [{"question": "Q?", "answer": "A."}], "error": None}]
