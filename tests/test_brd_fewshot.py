"""BRD data the paper's way: few-shot NER and QRA requests per sentence, plain-text answers, one row per request."""

import json
import os
import sys

import pytest

from lsrmwf.commands.generate_rationales import main as cli_main
from lsrmwf.io import InputError
from lsrmwf.llm.brd_prompts import DEFAULT_FEWSHOT_FILE, load_fewshot, select_behaviours
from lsrmwf.llm.parsing import AnswerError, parse_ner_answer, parse_qra_answer

sys.path.insert(0, os.path.dirname(__file__))
from llm_fault_server import FaultServer  # noqa: E402

CORPUS = "Apple sold a new phone in Paris. Critics liked it.\n\nBerlin is large.\n"


def rows_of(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def test_default_file_gives_the_papers_prompt_shape():
    fs = load_fewshot()
    assert set(fs) == {"ner", "qra"}
    ner = fs["ner"].prompt("Tesla builds cars in Austin.")
    parts = ner.split("\n\n")
    assert parts[0] == fs["ner"].description  # task description, then the examples, then the sentence
    assert parts[1].startswith("Enter a sentence: ") and "\nOutput: In this sentence, " in parts[1]
    assert len(parts) == 2 + len(fs["ner"].examples)
    assert parts[-1] == "Enter a sentence: Tesla builds cars in Austin.\nOutput:"
    qra = fs["qra"].prompt("Tesla builds cars in Austin.")
    assert qra.endswith("\n\nThe sentence: Tesla builds cars in Austin.")
    assert "Question: " in qra and "Answer: " in qra
    assert fs["ner"].version.startswith("brd-ner-") and fs["ner"].version != fs["qra"].version
    assert fs["ner"].input_label == "Enter a sentence:" and fs["ner"].output_label == "Output:"


def test_bad_fewshot_files_name_file_and_entry(tmp_path):
    spec = json.load(open(DEFAULT_FEWSHOT_FILE))
    cases = [
        ({"ner": dict(spec["ner"], template="Sentence: {sentence}\nOutput:")}, "must contain {output} exactly once"),
        ({"ner": dict(spec["ner"], template="{output} {sentence}")}, "before {output}"),
        ({"ner": dict(spec["ner"], examples=[])}, "non-empty list"),
        ({"ner": dict(spec["ner"], examples=[{"sentence": "x"}])}, "examples[0]"),
        ({"pos": spec["ner"]}, "unknown behaviour"),
        ({"qra": dict(spec["qra"], description=" ")}, "'description' is missing or empty"),
    ]
    for i, (bad, message) in enumerate(cases):
        path = tmp_path / f"bad{i}.json"
        path.write_text(json.dumps(bad))
        with pytest.raises(InputError) as e:
            load_fewshot(str(path))
        assert str(path) in str(e.value) and message in str(e.value)
    with pytest.raises(InputError, match="has no 'qra' entry"):
        select_behaviours({"ner": load_fewshot()["ner"]}, "ner,qra", "f.json")
    with pytest.raises(InputError, match="unknown behaviour 'pos'"):
        select_behaviours(load_fewshot(), "ner,pos", "f.json")


def test_plain_text_answers_are_parsed_tolerantly():
    ner = parse_ner_answer('**Output:** In this sentence, "Apple" is an organization name entity, and "Paris" and “France” '
                           'are geopolitical entities.\n\nEnter a sentence: Something else.\nOutput: more', "Enter a sentence:", "Output:")
    assert ner["answer"] == ('In this sentence, "Apple" is an organization name entity, and "Paris" and “France” are '
                             'geopolitical entities.')
    assert ner["entities"] == [{"name": "Apple", "type": "organization name"}, {"name": "Paris", "type": "geopolitical"},
                               {"name": "France", "type": "geopolitical"}]
    assert parse_ner_answer("There is no named entity here.")["entities"] == []
    with pytest.raises(AnswerError):
        parse_ner_answer("Output:  ", "Enter a sentence:", "Output:")
    qra = parse_qra_answer("**Question:** What did he buy?\n**Answer:** A phone.\nq: Where? a: In Paris.\n\nThe sentence: x\nQuestion: no",
                           "The sentence:")
    assert qra["qa"] == [{"question": "What did he buy?", "answer": "A phone."}, {"question": "Where?", "answer": "In Paris."}]
    assert qra["answer"] == "Question: What did he buy? Answer: A phone. Question: Where? Answer: In Paris."
    with pytest.raises(AnswerError, match="Question: ... Answer:"):
        parse_qra_answer("What did he buy? A phone.")


def test_generation_sends_separate_fewshot_requests_and_resumes(tmp_path):
    txt = tmp_path / "corpus.txt"
    txt.write_text(CORPUS)
    out = tmp_path / "brd.jsonl"
    base = ["--task", "basic_reading", "--data_file", str(txt), "--txt_passages", "paragraph", "--model", "m",
            "--output", str(out), "--no_progress"]
    with FaultServer() as srv:
        assert cli_main(base + ["--base_url", srv.base_url, "--brd_behaviours", "ner"]) == 0
        assert len(srv.requests) == 3
        assert cli_main(base + ["--base_url", srv.base_url]) == 0  # adding qra resumes: only the 3 QRA requests
        bodies = [r["body"] for r in srv.requests]
    assert len(bodies) == 6
    assert all("response_format" not in b and len(b["messages"]) == 1 and b["messages"][0]["role"] == "user" for b in bodies)
    assert all("stop" not in b for b in bodies)  # a chat answer may span paragraphs; the parser cuts a run-on example
    # concurrent requests arrive in any order: the first run sent the 3 NER requests, the second the 3 QRA ones
    assert any(b["messages"][0]["content"].endswith("\n\nEnter a sentence: Apple sold a new phone in Paris.\nOutput:")
               for b in bodies[:3])
    assert any(b["messages"][0]["content"].endswith("\n\nThe sentence: Apple sold a new phone in Paris.") for b in bodies[3:])
    rows = {r["id"]: r for r in rows_of(out)}
    assert sorted(rows) == ["0:0:ner", "0:0:qra", "0:1:ner", "0:1:qra", "1:0:ner", "1:0:qra"]
    ner, qra = rows["0:0:ner"], rows["0:0:qra"]
    assert ner["answer"] == 'In this sentence, "Apple" is a name entity, and "Paris" is a name entity.'  # run-on example cut
    assert [e["name"] for e in ner["entities"]] == ["Apple", "Paris"]
    assert qra["answer"] == "Question: What does the sentence say? Answer: Apple sold a new phone in Paris."
    assert (ner["doc_id"], ner["sentence_index"], ner["n_sentences"], ner["behaviour"]) == ("0", 0, 2, "ner")
    fs = load_fewshot()
    assert ner["brd_prompt_version"] == fs["ner"].version and qra["brd_prompt_version"] == fs["qra"].version
    assert ner["prompt_version"].startswith("brd-fewshot-") and ner["params"]["brd_format"] == "fewshot"
    with FaultServer() as srv:  # a finished file: nothing is sent again
        assert cli_main(base + ["--base_url", srv.base_url]) == 0
        assert srv.requests == []


def test_edited_examples_are_a_new_cache_key(tmp_path):
    txt = tmp_path / "corpus.txt"
    txt.write_text("Berlin is large.\n")
    out = tmp_path / "brd.jsonl"
    edited = json.load(open(DEFAULT_FEWSHOT_FILE))
    edited["qra"]["examples"].append({"sentence": "Rome is old.", "output": "Question: What is old? Answer: Rome."})
    fewshot = tmp_path / "fewshot.json"
    fewshot.write_text(json.dumps(edited))
    base = ["--task", "basic_reading", "--data_file", str(txt), "--model", "m", "--output", str(out), "--no_progress"]
    with FaultServer() as srv:
        assert cli_main(base + ["--base_url", srv.base_url]) == 0
        assert cli_main(base + ["--base_url", srv.base_url, "--brd_fewshot_file", str(fewshot)]) == 2
    assert len(rows_of(out)) == 2


def test_failed_sentences_are_retried_alone(tmp_path):
    txt = tmp_path / "corpus.txt"
    txt.write_text("Apple sold a phone. FAULT_500_ALWAYS Berlin is large. Rome is old.\n")
    out = tmp_path / "brd.jsonl"
    base = ["--task", "basic_reading", "--data_file", str(txt), "--model", "m", "--output", str(out), "--no_progress",
            "--max_retries", "0", "--fail_fast_rows", "0", "--max_failed_fraction", "1.0"]
    with FaultServer() as srv:
        assert cli_main(base + ["--base_url", srv.base_url]) == 0
    failed = {r["id"] for r in rows_of(out) if r["error"]}
    assert failed == {"0:1:ner", "0:1:qra"}
    with FaultServer() as srv:
        cli_main(base + ["--base_url", srv.base_url])
        assert sorted(r["body"]["messages"][0]["content"].rsplit("\n\n", 1)[-1].split("\n")[0] for r in srv.requests) == [
            "Enter a sentence: FAULT_500_ALWAYS Berlin is large.", "The sentence: FAULT_500_ALWAYS Berlin is large."]


def test_a_base_model_gets_the_fewshot_prompt_as_raw_text_and_stops_at_the_blank_line(tmp_path):
    """--brd_api completions: the same few-shot prompt goes to /v1/completions as raw text, with the
    layout's blank line as stop sequence, so the answer ends where the next example would begin."""
    txt = tmp_path / "corpus.txt"
    txt.write_text("Apple sold a new phone in Paris.\n")
    out = tmp_path / "brd.jsonl"
    base = ["--task", "basic_reading", "--data_file", str(txt), "--model", "m", "--output", str(out), "--no_progress"]
    with FaultServer() as srv:
        assert cli_main(base + ["--base_url", srv.base_url, "--brd_api", "completions"]) == 0
        bodies = [r["body"] for r in srv.requests]
    fs = load_fewshot()
    assert sorted(b["prompt"] for b in bodies) == sorted(fs[b].prompt("Apple sold a new phone in Paris.") for b in ("ner", "qra"))
    assert all("messages" not in b and b["stop"] == ["\n\n"] for b in bodies)
    rows = {r["id"]: r for r in rows_of(out)}
    assert rows["0:0:ner"]["answer"] == 'In this sentence, "Apple" is a name entity, and "Paris" is a name entity.'
    assert rows["0:0:qra"]["answer"] == "Question: What does the sentence say? Answer: Apple sold a new phone in Paris."
    assert rows["0:0:ner"]["params"]["brd_api"] == "completions"
    with FaultServer() as srv:  # a chat run is another cache key: never mixed into the completions file
        assert cli_main(base + ["--base_url", srv.base_url]) == 2
        assert srv.requests == []
