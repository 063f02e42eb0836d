"""METEOR with a real WordNet (Debian's wordnet-base, which scripts/install.sh installs as root), and the
study tables' footnotes for every column they cannot fill."""


import pytest

from lsrmwf.evaluation import study_metrics as sm
from lsrmwf.io import InputError


@pytest.fixture
def wordnet(monkeypatch):
    monkeypatch.delenv(sm.WORDNET_ENV, raising=False)
    reader, where = sm.find_wordnet()
    if reader is None:
        pytest.skip(where)
    return reader, where


def test_meteor_of_a_hand_checked_pair(wordnet):
    """hypothesis "the car runs fast" (4 words), reference "the auto was running fast" (5 words): exact
    the-the and fast-fast, Porter stem runs-running, WordNet synonym car-auto (car.n.01): 4 matches, P = 1,
    R = 4/5, Fmean = PR / (0.9 P + 0.1 R) = 0.8 / 0.98. In hypothesis order the matches are (0,0) (1,1)
    (2,3) (3,4): 2 chunks, penalty 0.5 * (2/4)^3 = 0.0625. Without the synonym: 3 matches, 2 chunks,
    0.75 * 0.6 / 0.735 * (1 - 0.5 * (2/3)^3) = 0.5215. (NLTK looks synonyms up for the Porter stems left
    after the stem stage, so "automobile", stem "automobil", would not match "car".)"""
    from nltk.translate.meteor_score import meteor_score

    reader, _ = wordnet
    hyp, ref = "the car runs fast", "the auto was running fast"
    expected = 0.8 / 0.98 * (1 - 0.5 * 0.5 ** 3)
    assert sm.meteor([hyp], [ref]) == pytest.approx(expected, abs=1e-9)
    assert meteor_score([ref.split()], hyp.split(), wordnet=reader) == pytest.approx(expected, abs=1e-9)
    # mean over summaries; an unrelated pair scores 0
    assert sm.meteor([hyp, "bananas"], [ref, "a parser"]) == pytest.approx(expected / 2, abs=1e-9)


def test_lexicographer_files_are_wordnet_30s(wordnet):
    """Debian's database has no lexnames file: the reader's list must number the 45 files as WordNet 3.0 does."""
    reader, _ = wordnet
    assert reader.synset("car.n.01").lexname() == "noun.artifact"  # file 06
    assert reader.synset("run.v.01").lexname() == "verb.motion"  # file 38
    assert reader.synset("good.a.01").lexname() == "adj.all"  # file 00
    assert reader.synsets("quickly")[0].lexname() == "adv.all"  # file 02
    assert reader.get_version() == "3.0"


def test_wordnet_from_the_environment_variable(wordnet, monkeypatch, tmp_path):
    _, where = wordnet
    if not sm.is_wordnet_dir(where):
        pytest.skip(f"WordNet found as {where}, not a database directory")
    monkeypatch.setenv(sm.WORDNET_ENV, where)
    assert sm.find_wordnet()[1] == f"{sm.WORDNET_ENV}={where}"
    (tmp_path / "data.noun").write_text("")
    monkeypatch.setenv(sm.WORDNET_ENV, str(tmp_path))
    with pytest.raises(InputError, match=rf"^{sm.WORDNET_ENV}={tmp_path}: not a WordNet database directory "
                                         r"\(missing data.verb, .*index.noun"):
        sm.find_wordnet()


def test_without_wordnet_the_tables_say_why(monkeypatch, tmp_path):
    import nltk

    monkeypatch.delenv(sm.WORDNET_ENV, raising=False)
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    monkeypatch.setattr(sm, "SYSTEM_WORDNET_DIRS", (str(tmp_path / "wordnet"),))
    m = sm.system_metrics(["the parser works"], ["the parser works well"], use_bleu=False, use_semantic=False)
    assert m["meteor"] is None and m["skipped"]["meteor"].startswith("no WordNet found")
    assert "apt-get install wordnet-base" in m["skipped"]["meteor"]
    table = sm.markdown_study_table({"teacher": m, "student": m})
    assert "| METEOR |" in table and "| n/a |" in table
    notes = [line for line in table.splitlines() if line.startswith("* ")]
    assert [n.split(" n/a")[0] for n in notes] == ["* BLEU", "* METEOR", "* SemSim", "* NLI-cons", "* s/summary",
                                                   "* words/s"]
    assert "no WordNet found" in notes[1] and "no --nli_model given" in notes[3] and "latency_s" in notes[4]


def test_retention_table_footnotes_every_empty_column():
    metrics = {"teacher": {"rouge1": 40.0, "nli_consistency": 0.0, "latency_s": 2.0},
               "student": {"rouge1": 20.0, "nli_consistency": 0.5, "latency_s": 1.0,
                           "skipped": {"meteor": "no WordNet found (…)"}}}
    table = sm.markdown_retention_table(sm.retention(metrics, "teacher"), "teacher")
    header = next(line for line in table.splitlines() if line.startswith("| Student"))
    assert [c.strip() for c in header.strip("|").split("|")][1:] == list(sm.RETENTION_COLUMNS.values()) + ["speed-up"]
    assert "| 50.0% |" in table and "| 2.00x |" in table
    notes = {line.split(" n/a: ")[0][2:]: line.split(" n/a: ")[1] for line in table.splitlines() if line.startswith("* ")}
    assert notes == {"R-2": "not scored in this run", "R-L": "not scored in this run", "BS-F1": "not scored in this run",
                     "BLEU": "not scored in this run", "METEOR": "no WordNet found (…)",
                     "SemSim": "not scored in this run", "NLI-cons": "teacher scored 0"}


@pytest.mark.parametrize("id2label, expected", [
    ({0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}, 2),  # roberta-large-mnli's order
    ({0: "contradiction", 1: "entailment", 2: "neutral"}, 1),  # cross-encoder/nli-deberta-v3-base's order
    ({0: "entailment", 1: "neutral", 2: "contradiction"}, 0),
])
def test_the_entailment_label_is_read_from_the_config(id2label, expected):
    from types import SimpleNamespace

    assert sm.entailment_index(SimpleNamespace(id2label=id2label), "nli") == expected
