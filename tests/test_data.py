"""Loading documents: ids, columns and the errors a user sees."""

import json

import pytest

from lsrmwf.data.loading import load_documents
from lsrmwf.data.rationales import join_rationales
from lsrmwf.io import InputError
from lsrmwf.io.schema import Rationale, view_texts


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_local_file_uses_its_own_id_column_else_row_index(tmp_path):
    with_ids = write_jsonl(tmp_path / "a.jsonl", [{"id": "x7", "document": "d1", "summary": "s1"}, {"id": "x9", "document": "d2", "summary": "s2"}])
    assert load_documents(data_file=with_ids)["id"] == ["x7", "x9"]
    no_ids = write_jsonl(tmp_path / "b.jsonl", [{"document": "d1", "summary": "s1"}, {"document": "d2", "summary": "s2"}])
    assert load_documents(data_file=no_ids)["id"] == ["0", "1"]
    custom = write_jsonl(tmp_path / "c.jsonl", [{"key": 5, "article": "d1", "highlights": "s1"}])
    ds = load_documents(data_file=custom, text_column="article", summary_column="highlights", id_column="key")
    assert ds[0] == {"id": "5", "document": "d1", "summary": "s1"}


def test_errors_name_file_row_and_field(tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "a", "document": "ok", "summary": "s"}, {"id": "b", "document": "  ", "summary": "s"}])
    with pytest.raises(InputError, match=r"bad\.jsonl: row 2 \(id 'b'\): field 'document' is empty"):
        load_documents(data_file=bad)
    missing = write_jsonl(tmp_path / "cols.jsonl", [{"id": "a", "text": "t", "summary": "s"}])
    with pytest.raises(InputError, match=r"cols\.jsonl: missing column\(s\) \['document'\]"):
        load_documents(data_file=missing)
    dup = write_jsonl(tmp_path / "dup.jsonl", [{"id": "a", "document": "t", "summary": "s"}] * 2)
    with pytest.raises(InputError, match="row 2 .*duplicate id"):
        load_documents(data_file=dup)


def test_rationale_texts_and_join(tmp_path):
    r = [{"aspect": "gates", "sentence": "Gates fuse views.", "triples": [["gates", "fuse", "views"], ["bad"]]},
         {"aspect": "loss", "sentence": "", "triples": []}]
    t = view_texts([Rationale.from_json(x) for x in r])
    assert (t["ea"], t["as"], t["ter"]) == ("gates | loss", "Gates fuse views.", "gates # fuse # views")
    docs = load_documents(data_file=write_jsonl(tmp_path / "d.jsonl", [
        {"id": i, "document": f"doc {i}", "summary": "s"} for i in ("a", "b", "c")]))
    rat = write_jsonl(tmp_path / "r.jsonl", [
        {"id": "a", "rationales": r, "keep": True},
        {"id": "b", "rationales": r, "keep": False},
        {"id": "c", "rationales": None, "keep": False, "error": "timeout"},
    ])
    # a failed row is not kept (keep=false): its example is dropped like any unselected one
    ds, stats = join_rationales(docs, rat)
    assert ds["id"] == ["a"] and ds["ea_text"] == ["gates | loss"]
    assert (stats["rejected"], stats["failed"], stats["trained"]) == (1, 1, 1)
    assert stats["table1"] == {"train": 1, "doc_words": 2.0, "summary_words": 1.0}  # Table 1's columns after selection
    with pytest.raises(InputError, match=r"r2\.jsonl:1: rationale id 'zz' .* match no example id"):
        join_rationales(docs, write_jsonl(tmp_path / "r2.jsonl", [{"id": "zz", "rationales": []}]))


def test_an_id_column_that_is_not_there_is_an_error_not_row_numbers(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"document": "d", "summary": "s"}])
    with pytest.raises(InputError, match=r"a\.jsonl: id column 'doc_id' not found"):
        load_documents(data_file=path, id_column="doc_id")


def _policy_fixture(tmp_path):
    r = [{"aspect": "gates", "sentence": "Gates fuse views.", "triples": [["gates", "fuse", "views"]]}]
    docs = load_documents(data_file=write_jsonl(tmp_path / "d.jsonl", [
        {"id": i, "document": f"doc {i}", "summary": "s"} for i in ("ok", "rej", "fail", "none", "ok2")]))
    rat = write_jsonl(tmp_path / "r.jsonl", [
        {"id": "ok", "rationales": r, "keep": True},
        {"id": "rej", "rationales": r, "keep": False, "score": 0.99},
        {"id": "fail", "rationales": [], "keep": True, "error": "HTTP 500"},  # keep alone does not make it usable
        {"id": "ok2", "rationales": r},  # no selection verdict: kept
    ])
    return docs, rat


def test_rationale_policy_drop_counts_every_group_and_warns(tmp_path, caplog):
    import logging

    docs, rat = _policy_fixture(tmp_path)
    log = logging.getLogger("test.policy")
    with caplog.at_level(logging.WARNING, logger="test.policy"):
        ds, stats = join_rationales(docs, rat, policy="drop", logger=log)
    assert ds["id"] == ["ok", "ok2"]
    line = "5 documents: 2 with rationales, 1 rejected by selection, 1 failed, 1 missing → 2 trained (--rationale_policy drop)"
    assert stats["line"] == line
    ours = [r for r in caplog.records if r.name == "test.policy"]  # datasets may log at INFO too
    assert [r.levelno for r in ours] == [logging.WARNING] and line in ours[0].getMessage()


def test_rationale_policy_ce_only_keeps_every_document_with_views_masked(tmp_path):
    docs, rat = _policy_fixture(tmp_path)
    ds, stats = join_rationales(docs, rat, policy="ce_only")
    assert ds["id"] == ["ok", "rej", "fail", "none", "ok2"] and stats["trained"] == 5
    views = {i: (e, a, t) for i, e, a, t in zip(ds["id"], ds["ea_text"], ds["as_text"], ds["ter_text"])}
    assert views["ok"] == views["ok2"] == ("gates", "Gates fuse views.", "gates # fuse # views")
    # a rejected row's rationales exist but selection refused them: no view loss, like failed and missing
    assert views["rej"] == views["fail"] == views["none"] == (None, None, None)
    with pytest.raises(InputError, match="--rationale_policy must be one of"):
        join_rationales(docs, rat, policy="keep")


def test_duplicate_rationale_ids_are_an_error_naming_them_unless_last(tmp_path):
    from lsrmwf.data.rationales import load_rationales

    r1 = {"id": "a", "rationales": [{"aspect": "first"}]}
    r2 = {"id": "a", "rationales": [{"aspect": "second"}]}
    path = write_jsonl(tmp_path / "dup.jsonl", [r1, {"id": "b", "rationales": []}, r2])
    with pytest.raises(InputError, match=r"dup\.jsonl: 1 id\(s\) written more than once: id 'a' at lines 1, 3.*--on_duplicate last"):
        load_rationales(path)
    assert load_rationales(path, on_duplicate="last")["a"].rationales[0].aspect == "second"
    docs = load_documents(data_file=write_jsonl(tmp_path / "d.jsonl", [
        {"id": i, "document": f"doc {i}", "summary": "s"} for i in ("a", "b")]))
    with pytest.raises(InputError, match=r"dup\.jsonl: 1 id\(s\) written more than once: id 'a' at lines 1, 3"):
        join_rationales(docs, path)
    ds, _ = join_rationales(docs, path, on_duplicate="last")
    assert ds["id"] == ["a", "b"] and ds["ea_text"] == ["second", None]


def test_the_join_is_cached_and_a_changed_rationale_file_is_read_again(tmp_path, monkeypatch):
    """The file's Arrow table and the joined split come from datasets' cache on a rerun (no JSON
    parsed, no row joined again); rewriting the file invalidates both."""
    import lsrmwf.data.rationales as R

    docs = load_documents(data_file=write_jsonl(tmp_path / "d.jsonl", [
        {"id": i, "document": f"doc {i}", "summary": "s"} for i in ("a", "b", "c")]))
    rat = tmp_path / "r.jsonl"
    write_jsonl(rat, [{"id": "a", "rationales": [{"aspect": "one"}]}, {"id": "b", "rationales": [{"aspect": "two"}]}])
    cache = str(tmp_path / "hf")
    parsed = []
    original = R.RationaleRow.from_json
    monkeypatch.setattr(R.RationaleRow, "from_json", lambda *a, **k: parsed.append(1) or original(*a, **k))
    first, stats = join_rationales(docs, str(rat), cache_dir=cache)
    assert len(parsed) == 2 and first["ea_text"] == ["one", "two"] and stats["missing"] == 1
    again, stats_again = join_rationales(docs, str(rat), cache_dir=cache)
    assert len(parsed) == 2, "the cached table was parsed again"
    assert again.cache_files == first.cache_files and again["ea_text"] == ["one", "two"]
    assert stats_again["line"] == stats["line"]
    write_jsonl(rat, [{"id": "c", "rationales": [{"aspect": "three"}]}])
    changed, stats = join_rationales(docs, str(rat), cache_dir=cache)
    assert len(parsed) == 3 and changed["id"] == ["c"] and changed["ea_text"] == ["three"]


def test_a_bad_row_deep_in_the_rationale_file_names_its_line(tmp_path):
    docs = load_documents(data_file=write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "document": "d", "summary": "s"}]))
    rat = write_jsonl(tmp_path / "r.jsonl", [{"id": "a", "rationales": []}, {"id": "b", "rationales": "oops"}])
    with pytest.raises(InputError, match=r"r\.jsonl:2: field 'rationales' must be a list"):
        join_rationales(docs, rat, cache_dir=str(tmp_path / "hf"))


@pytest.mark.parametrize("content", ["", "\n\n", '{"id": "a", "rationa'])
def test_an_empty_or_torn_only_rationale_file_leaves_every_document_missing(tmp_path, content):
    """A store creates its file before the first row and drops failed rows on resume, so an empty
    rationale file is a normal state: ce_only trains every document with the token loss only."""
    docs = load_documents(data_file=write_jsonl(tmp_path / "d.jsonl", [
        {"id": i, "document": f"doc {i}", "summary": "s"} for i in ("a", "b")]))
    rat = tmp_path / "r.jsonl"
    rat.write_text(content)
    ds, stats = join_rationales(docs, str(rat), policy="ce_only", cache_dir=str(tmp_path / "hf"))
    assert ds["id"] == ["a", "b"] and ds["ea_text"] == [None, None] and stats["missing"] == 2
    ds, stats = join_rationales(docs, str(rat), policy="drop", cache_dir=str(tmp_path / "hf"))
    assert len(ds) == 0 and stats["trained"] == 0
