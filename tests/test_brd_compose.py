"""BRD passage composition: D_ORI / D_NER / D_QRA from a hand-written answer set, exact interleaving."""

import json

import pytest

from lsrmwf.commands.compose_brd import main
from lsrmwf.distill.brd_compose import compose, read_answers
from lsrmwf.io import InputError

S = {("p1", 0): "Ada wrote the first program.", ("p1", 1): "She worked with Babbage.", ("p1", 2): "They lived in London.",
     ("p2", 0): "Rome is old."}
NER = {("p1", 0): 'In this sentence, "Ada" is a person name entity.', ("p1", 1): '"Babbage" is a person name entity.',
       ("p1", 2): '"London" is a geopolitical entity.', ("p2", 0): '"Rome" is a geopolitical entity.'}
QRA = {("p1", 0): "Question: What did Ada write? Answer: The first program.",
       ("p1", 1): "Question: Who did she work with? Answer: Babbage.",
       ("p1", 2): "Question: Where did they live? Answer: In London.",
       ("p2", 0): "Question: What is old? Answer: Rome."}
N = {"p1": 3, "p2": 1}


def answer_rows(drop=(), fail=()):
    rows = []
    for (doc, k), sentence in S.items():
        for b, answers in (("qra", QRA), ("ner", NER)):
            if (doc, k, b) in drop:
                continue
            failed = (doc, k, b) in fail
            rows.append({"id": f"{doc}:{k}:{b}", "doc_id": doc, "sentence_index": k, "n_sentences": N[doc],
                         "sentence": sentence, "behaviour": b, "answer": None if failed else answers[(doc, k)],
                         "error": "HTTP 500" if failed else None})
    return rows[::-1]  # completion order, not sentence order


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def read(path):
    return [json.loads(line) for line in open(path)]


def test_passage_level_interleaving_is_exact(tmp_path, capsys):
    answers = write(tmp_path / "a.jsonl", answer_rows())
    assert main(["--answers", answers, "--output_dir", str(tmp_path / "out")]) == 0
    ori, ner, qra = (read(tmp_path / "out" / f"{n}.jsonl") for n in ("ori", "ner", "qra"))
    assert [r["id"] for r in ori] == ["p1", "p2"]
    assert ori[0]["text"] == "Ada wrote the first program. <sep> She worked with Babbage. <sep> They lived in London."
    assert ner[0]["text"] == ('Ada wrote the first program. <sep> In this sentence, "Ada" is a person name entity. <sep> '
                              'She worked with Babbage. <sep> "Babbage" is a person name entity. <sep> '
                              'They lived in London. <sep> "London" is a geopolitical entity.')
    assert qra[0]["text"] == ("Ada wrote the first program. <sep> Question: What did Ada write? Answer: The first program. <sep> "
                              "She worked with Babbage. <sep> Question: Who did she work with? Answer: Babbage. <sep> "
                              "They lived in London. <sep> Question: Where did they live? Answer: In London.")
    assert qra[1] == {"id": "p2", "text": "Rome is old. <sep> Question: What is old? Answer: Rome.", "n_sentences": 1,
                      "partial": False}
    err = capsys.readouterr().err
    assert "2 passages read (4 sentences; answers: NER 4, QRA 4)" in err and "ORI 2, NER 2, QRA 2" in err
    summary = json.load(open(tmp_path / "out" / "compose_summary.json"))
    assert summary["rows"] == {"ori": 2, "ner": 2, "qra": 2} and summary["sep"] == " <sep> "


def test_custom_sep_and_sentence_level(tmp_path):
    passages = read_answers([write(tmp_path / "a.jsonl", answer_rows())])
    out, counts = compose(passages, ["ner"], sep="\n", composition="sentence", seed=1)
    assert set(out) == {"ori", "ner"} and counts["rows"] == {"ori": 4, "ner": 4}
    by_id = {r["id"]: r["text"] for r in out["ner"]}
    assert by_id["p1:1"] == 'She worked with Babbage.\n"Babbage" is a person name entity.'
    assert sorted(r["text"] for r in out["ori"]) == sorted(S.values())
    again, _ = compose(passages, ["ner"], sep="\n", composition="sentence", seed=1)
    assert again == out  # the shuffle is seeded


def test_missing_answers_are_refused_unless_partial(tmp_path):
    answers = write(tmp_path / "a.jsonl", answer_rows(drop={("p1", 1, "qra")}, fail={("p1", 2, "ner")}))
    with pytest.raises(InputError, match=r"1 of 2 passages have sentences without answers \(passage 'p1' lacks 1:qra, 2:ner\)"):
        compose(read_answers([answers]))
    assert main(["--answers", answers, "--output_dir", str(tmp_path / "o")]) == 2
    out, counts = compose(read_answers([answers]), allow_partial=True)
    p1 = {b: next(r for r in out[b] if r["id"] == "p1") for b in ("ner", "qra")}
    assert p1["qra"]["partial"] and p1["qra"]["text"] == (
        "Ada wrote the first program. <sep> Question: What did Ada write? Answer: The first program. <sep> "
        "She worked with Babbage. <sep> They lived in London. <sep> Question: Where did they live? Answer: In London.")
    assert p1["ner"]["text"].endswith("<sep> They lived in London.")
    skipped, counts = compose(read_answers([answers]), skip_incomplete=True)
    assert [r["id"] for r in skipped["ori"]] == ["p2"] and counts["skipped_incomplete"] == 1


def test_bad_answer_rows_name_file_and_line(tmp_path):
    rows = answer_rows()
    rows[2] = dict(rows[2], sentence_index=5)
    path = write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(InputError, match=rf"{path}:3: 'sentence_index' 5 is not within 'n_sentences' 3"):
        read_answers([path])
    old = write(tmp_path / "old.jsonl", [{"id": "0:0", "doc_id": "0", "sentence": "A.", "entities": [], "qa": []}])
    with pytest.raises(InputError, match="--brd_format json"):
        read_answers([old])
