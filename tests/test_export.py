"""Issue 27 item 3: rationales, teacher top-K log-probs and BRD passages as Parquet + dataset card, round-tripped
through datasets.load_dataset("parquet", ...) exactly."""

import json

import datasets
import numpy as np
from test_brd_compose import answer_rows
from test_brd_compose import write as write_answers

from lsrmwf.commands.compose_brd import main as compose
from lsrmwf.commands.export import main as export
from lsrmwf.data.export import RATIONALE_FEATURES
from lsrmwf.io.logprobs import TeacherTokens, pack_teacher_tokens
from lsrmwf.io.store import ResultStore, cache_key


def load(out, split="train"):
    return datasets.load_dataset("parquet", data_files=str(out / "data" / f"{split}.parquet"), split="train")


def card_header(out):
    text = (out / "README.md").read_text()
    assert text.startswith("---\nconfigs:\n")
    return text


def test_rationales_round_trip(tmp_path):
    settings = {"task": "rationales", "model": "gemma", "prompt_version": "v3", "params": {"temperature": 0.0},
                "endpoint": "http://127.0.0.1:8080/v1"}
    rows = [{"id": "a", "rationales": [{"aspect": "parser", "sentence": "We build a parser.",
                                        "triples": [["we", "build", "parser"], ["parser", "is", "fast"]]}],
             "sub_summaries": ["A parser."], "summary": "A parser.", "rouge": {"rouge1": 0.5}, "score": 0.25,
             "keep": True, "error": None},
            {"id": "b", "rationales": [], "sub_summaries": [], "summary": "", "rouge": None, "score": None,
             "keep": False, "error": None},
            {"id": "c", "error": "HTTP 500"}]
    path = tmp_path / "r.jsonl"
    with ResultStore(str(path), cache_key(settings), settings) as store:
        for r in rows:
            store.append(r)
    out = tmp_path / "out"
    assert export(["--kind", "rationales", "--input", str(path), "--output_dir", str(out)]) == 0
    ds = load(out)
    assert ds["id"] == ["a", "b"]  # the failed row is not data
    assert ds[0]["rationales"] == rows[0]["rationales"] and ds[0]["sub_summaries"] == ["A parser."]
    assert ds[0]["score"] == 0.25 and ds[0]["keep"] is True and json.loads(ds[0]["rouge"]) == {"rouge1": 0.5}
    assert ds[1]["score"] is None and ds[1]["rationales"] == [] and ds[1]["rouge"] is None
    assert ds.features == RATIONALE_FEATURES  # typed as written, not inferred
    card = card_header(out)
    assert "- model: gemma" in card and "- prompt_version: v3" in card and "- endpoint: http://127.0.0.1:8080/v1" in card
    assert datasets.load_dataset(str(out), split="train")["id"] == ["a", "b"]  # the card's configs find the files


def test_teacher_logprobs_round_trip_fp16_exactly(tmp_path):
    rng = np.random.default_rng(0)
    settings = {"task": "teacher_logprobs", "model": "vicuna", "params": {"top_logprobs": 3}}
    path = tmp_path / "t.jsonl"
    stored = {}
    with ResultStore(str(path), cache_key(settings), settings, payload=True) as store:
        for rid, n in (("d0", 4), ("d1", 1)):
            top = np.sort(-rng.exponential(3, (n, 3)).astype(np.float16), axis=1)[:, ::-1]
            t = TeacherTokens(rng.integers(0, 1000, n).astype(np.int32), top[:, 0].copy(),
                              rng.integers(0, 1000, (n, 3)).astype(np.int32), top, [b"x"] * n)
            stored[rid] = t
            store.append({"id": rid, "summary": "x" * n, "error": None}, payload=pack_teacher_tokens(t))
    out = tmp_path / "out"
    assert export(["--kind", "teacher_logprobs", "--input", str(path), "--output_dir", str(out)]) == 0
    ds = load(out)
    assert ds.features["top_ids"].feature.feature.dtype == "int32"
    assert ds.features["top_logprobs"].feature.feature.dtype == "float32"
    for row in ds:
        t = stored[row["id"]]
        assert row["token_ids"] == t.token_ids.tolist() and row["top_ids"] == t.top_ids.tolist()
        back = np.asarray(row["top_logprobs"], np.float32).astype(np.float16)
        assert back.view(np.uint16).tolist() == t.top_logprobs.view(np.uint16).tolist()  # the same fp16 bits
        assert np.asarray(row["token_logprobs"], np.float32).astype(np.float16).tolist() == t.token_logprobs.tolist()
        assert row["token_bytes"] == t.token_bytes and row["target"] == "teacher_summary"
    assert "- model: vicuna" in card_header(out)


def test_brd_passages_round_trip(tmp_path):
    passages = tmp_path / "brd"
    assert compose(["--answers", write_answers(tmp_path / "a.jsonl", answer_rows()), "--output_dir",
                    str(passages)]) == 0
    out = tmp_path / "out"
    assert export(["--kind", "brd_passages", "--input", str(passages), "--output_dir", str(out)]) == 0
    for split in ("ori", "ner", "qra"):
        rows = [json.loads(line) for line in open(passages / f"{split}.jsonl")]
        ds = load(out, split)
        assert [dict(r) for r in ds] == [{k: r[k] for k in ("id", "text", "n_sentences", "partial")} for r in rows]
    card = card_header(out)
    assert "- split: qra" in card and "provenance" in card


def test_missing_input_is_one_line(tmp_path, capsys):
    assert export(["--kind", "teacher_logprobs", "--input", str(tmp_path / "nope.jsonl"), "--output_dir",
                   str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"export: error: --input {tmp_path / 'nope.jsonl'}: no such file"
