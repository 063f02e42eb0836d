"""evaluate.py's table says which column is the paper's R-L and whether BERTScore ran in the paper's setting."""

from lsrmwf.evaluation.report import bertscore_comparable, markdown_table

METRICS = {"rouge1": 40.0, "rouge2": 20.0, "rougeL": 30.0, "rougeLsum": 37.0, "bertscore_f1": 0.88}


def table(bertscore_info):
    ci = {k: {"low": v, "high": v} for k, v in METRICS.items()}
    return {"scoring": {"bertscore": bertscore_info, "rouge": {"lsum_sentence_splitter": "nltk punkt"}}, "baseline": None,
            "confidence": 0.95, "bootstrap_resamples": 1000, "significance_level": 0.05, "seed": 0,
            "systems": [{"name": "S", "n": 3, "metrics": METRICS, "ci": ci, "sources": {}}]}


def info(model, layers, rescale=False, idf=False):
    out = {"model": model, "num_layers": layers, "source": f"hub model {model}", "layer_choice": "x", "idf": idf,
           "rescale_with_baseline": rescale}
    out["comparable_with_paper"] = bertscore_comparable(out)
    return out


def test_the_header_names_the_papers_rouge_l_column():
    md = markdown_table(table(info("roberta-large", 17)))
    header = md.splitlines()[0]
    assert header == "| System | n | R-1 | R-2 | R-L | R-Lsum (paper's R-L) | BS-F1 |"
    assert "R-Lsum is the paper's R-L: summary-level ROUGE-L" in md
    assert "37.00" in md.splitlines()[2].split("|")[6]  # the labelled column holds rougeLsum


def test_bertscore_says_whether_it_is_the_papers_setting():
    assert bertscore_comparable(info("roberta-large", 17))
    assert not bertscore_comparable(info("roberta-large", 17, rescale=True))
    assert not bertscore_comparable(info("roberta-large", 17, idf=True))
    assert not bertscore_comparable(info("/x/all-MiniLM-L6-v2", 6))
    md = markdown_table(table(info("roberta-large", 17)))
    assert "BERTScore: hub model roberta-large, layer 17; the paper's inferred setting" in md
    md = markdown_table(table(info("/x/all-MiniLM-L6-v2", 6)))
    assert "layer 6; NOT the paper's inferred setting" in md and "--bertscore_model roberta-large" in md
    md = markdown_table(table(info("roberta-large", 17, rescale=True)))
    assert "rescaled with baseline; NOT the paper's inferred setting" in md
