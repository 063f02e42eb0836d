"""Logit KD from a served teacher with another tokenizer (--kd_alignment text): the byte alignment of the two
tokenizations, ULD with a top-K teacher, training a student from a differently tokenized teacher, bad input."""

import json
import os
import sys

import numpy as np
import pytest
import tiny
import torch

from lsrmwf.data.causal import CausalCollator, encode_prompt, summary_text
from lsrmwf.distill.sparse_kd import token_bytes_table
from lsrmwf.distill.text_alignment import align_spans, text_aligned_targets
from lsrmwf.distill.uld import uld_distance, uld_kd_loss
from lsrmwf.io import InputError
from lsrmwf.io.logprobs import TeacherTokens, pack_teacher_tokens
from lsrmwf.io.store import ResultStore, cache_key
from lsrmwf.llm.teacher_logprobs import document_sha
from lsrmwf.training.base import DistillTrainingArguments
from lsrmwf.training.logit_kd import LogitKDArguments, LogitKDTrainer
from lsrmwf.training.recipes.logit_kd import sparse_kd_dataset

TEMPLATE = "Summarize:\n{document}\n\nSummary:"
SENTENCE = " We propose a new method for parsing."


class Args:
    prompt_template = TEMPLATE
    use_chat_template = False
    max_source_length = 48
    max_target_length = 24
    kd_alignment = "text"
    kd_shared_vocab_weight = 0.0
    kd_teacher_tokenizer = None


@pytest.fixture(scope="module")
def two_bpes(aclsum_train):
    """Two byte-level BPE vocabularies trained on the same text: 400 and 1000 tokens."""
    from lsrmwf.data.tokenization import train_bpe_tokenizer

    texts = list(aclsum_train["document"][:20]) + list(aclsum_train["summary"])
    return train_bpe_tokenizer(texts, vocab_size=400), train_bpe_tokenizer(texts, vocab_size=1000)


def pieces(tok, text):
    table = token_bytes_table(tok)
    return [table[i] for i in tok(text, add_special_tokens=False)["input_ids"]]


def record_for(tok, text, K=3):
    """A served record of ``text`` in ``tok``'s tokens, ids given, made-up top-K (the token itself first)."""
    ids = tok(text, add_special_tokens=False)["input_ids"]
    table = token_bytes_table(tok)
    top = np.array([[i, (i + 1) % len(tok), (i + 2) % len(tok)][:K] for i in ids], np.int32)
    lp = np.tile(np.log(np.array([0.6, 0.25, 0.1][:K], np.float32)), (len(ids), 1)).astype(np.float16)
    return TeacherTokens(np.array(ids, np.int32), lp[:, 0].copy(), top, lp, [table[i] for i in ids])


def test_align_spans_groups_by_hand():
    # "unhappiness is": teacher "un" "happiness" " is", student "unhapp" "iness" " is"
    assert align_spans([2, 9, 3], [6, 5, 3]) == [(0, 2, 0, 2), (2, 3, 2, 3)]
    assert align_spans([1, 1, 1], [3]) == [(0, 3, 0, 1)]
    with pytest.raises(ValueError):
        align_spans([2], [3])


def test_hand_aligned_sentence_under_two_bpe_vocabularies(two_bpes):
    small, large = two_bpes
    # the two tokenizations, as these vocabularies cut the sentence
    assert pieces(large, SENTENCE) == [b" We", b" propose", b" a", b" new", b" method", b" for", b" par", b"sing", b"."]
    assert pieces(small, SENTENCE) == [b" W", b"e", b" propo", b"se", b" a", b" n", b"e", b"w", b" method", b" for",
                                       b" par", b"s", b"ing", b"."]
    # teacher = large, student = small. Groups: " We"|" W" "e" (merged + 1 skipped), " propose"|" propo" "se"
    # (merged + 1), " a" (aligned), " new"|" n" "e" "w" (merged + 2), " method", " for", " par" (aligned),
    # "sing"|"s" "ing" (merged + 1), "." (aligned)
    rec = record_for(large, SENTENCE)
    labels, rows, lp, shared, counts = text_aligned_targets(rec, small, token_bytes_table(small), "row", "summary")
    assert counts == {"aligned": 5, "merged": 4, "skipped": 5, "teacher_rows_unused": 0}
    assert labels == small(SENTENCE, add_special_tokens=False)["input_ids"]
    assert rows.tolist() == [0, -1, 1, -1, 2, 3, -1, -1, 4, 5, 6, 7, -1, 8]
    np.testing.assert_allclose(lp[0], rec.top_logprobs[0].astype(np.float32))
    assert (lp[1] == 0).all() and (shared == -1).all()  # no row; no shared ids asked for
    # the other way round: each student token has a row; the teacher's extra tokens are unused
    rec = record_for(small, SENTENCE)
    _, rows, _, _, counts = text_aligned_targets(rec, large, token_bytes_table(large), "row", "summary")
    assert counts == {"aligned": 5, "merged": 4, "skipped": 0, "teacher_rows_unused": 5}
    assert rows.tolist() == [0, 2, 4, 5, 8, 9, 10, 11, 13]
    # truncated to 3 student tokens: only those count
    _, rows, _, _, counts = text_aligned_targets(rec, large, token_bytes_table(large), "row", "summary", max_tokens=3)
    assert counts == {"aligned": 1, "merged": 2, "skipped": 0, "teacher_rows_unused": 11}


def test_shared_vocabulary_ids_come_from_the_alternatives_strings(two_bpes):
    small, large = two_bpes
    rec = record_for(large, SENTENCE)
    t_table, s_table = token_bytes_table(large), token_bytes_table(small)
    lookup = {b: i for i, b in reversed(list(enumerate(s_table))) if b is not None}
    _, rows, _, shared, _ = text_aligned_targets(rec, small, s_table, "row", "summary", shared_lookup=lookup,
                                                 teacher_table=t_table)
    for s, r in enumerate(rows.tolist()):
        for k in range(3):
            b = t_table[int(rec.top_ids[r, k])] if r >= 0 else None
            want = lookup.get(b, -1) if r >= 0 else -1
            assert shared[s, k] == want
    # the token itself (alternative 0) is shared exactly at the 5 positions aligned 1:1; a merged group's first
    # teacher token (" We", " propose", " new", "sing") is no token of the small vocabulary
    assert ((shared[:, 0] >= 0) == np.isin(np.arange(len(rows)), [4, 8, 9, 10, 13])).all()
    # the same from the alternatives' bytes alone (a server without ids)
    no_ids = TeacherTokens(np.full(len(rec), -1, np.int32), rec.token_logprobs, np.full(rec.top_ids.shape, -1, np.int32),
                           rec.top_logprobs, rec.token_bytes, [[t_table[int(i)] for i in row] for row in rec.top_ids])
    _, _, lp2, shared2, _ = text_aligned_targets(no_ids, small, s_table, "row", "summary", shared_lookup=lookup)
    np.testing.assert_array_equal(shared2, shared)


def test_uld_with_top_k_and_its_tail():
    # student over 4 tokens, teacher top-2 of its own vocabulary
    q = torch.tensor([[0.1, 0.5, 0.3, 0.1]])
    t = torch.log(torch.tensor([[0.2, 0.7]]))
    # sorted: q (0.5, 0.3 | tail 0.2), p (0.7, 0.2 | tail 0.1): |0.5-0.7| + |0.3-0.2| + |0.2-0.1| = 0.4
    torch.testing.assert_close(uld_distance(q.log(), t), torch.tensor([0.4]))
    # a teacher covering its whole (smaller) vocabulary: the zero-padded ULD exactly
    t_full = torch.log(torch.tensor([[0.6, 0.4]]))
    exact = (torch.tensor([0.5, 0.3, 0.1, 0.1]) - torch.tensor([0.6, 0.4, 0.0, 0.0])).abs().sum()
    torch.testing.assert_close(uld_distance(q.log(), t_full), exact.unsqueeze(0))
    # ragged K: a missing alternative (-inf) leaves the comparison at the alternatives given
    t_rag = torch.tensor([[float(np.log(0.7)), float("-inf")]])
    torch.testing.assert_close(uld_distance(q.log(), t_rag), torch.tensor([abs(0.5 - 0.7) + abs(0.5 - 0.3)]))
    # the whole loss: positions without a row take CE only; ULD's gradient reaches only the aligned position
    logits = torch.randn(1, 3, 5, requires_grad=True)
    labels = torch.tensor([[1, 2, -100]])
    aligned = torch.tensor([[1, 0, 1]])
    top = torch.log(torch.tensor([[[0.5, 0.3]] * 3]))
    loss, ce, uld, shared = uld_kd_loss(logits, labels, aligned, top, alpha=0.0)
    torch.testing.assert_close(uld, uld_distance(torch.log_softmax(logits[0, :1].detach(), -1), top[0, :1])[0])
    loss.backward()
    assert logits.grad[0, 0].abs().sum() > 0 and logits.grad[0, 1:].abs().sum() == 0
    assert shared == 0 and torch.isfinite(ce)


def reference_records(teacher_tok, teacher, ds, K=4):
    """The teacher's top-K at each of its tokens of every reference (as --logprobs_target reference stores)."""
    table = token_bytes_table(teacher_tok)
    out = {}
    for rid, doc, summ in zip(ds["id"], ds["document"], ds["summary"]):
        prompt = encode_prompt(doc, teacher_tok, TEMPLATE, False, 48)
        target = teacher_tok(summary_text(summ, False), add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(teacher(torch.tensor([prompt + target])).logits[0].float(), -1)
        rows = logp[len(prompt) - 1: len(prompt) - 1 + len(target)]
        top = rows.topk(K)
        out[rid] = (TeacherTokens(np.array(target, np.int32), rows.gather(-1, torch.tensor(target)[:, None])[:, 0].numpy().astype(np.float16),
                                  top.indices.numpy().astype(np.int32), top.values.numpy().astype(np.float16),
                                  [table[t] for t in target]), doc, summ)
    return out


def write_reference_store(path, records):
    settings = {"task": "teacher_logprobs", "model": "other-teacher", "params": {"top_logprobs": 4}}
    with ResultStore(path, cache_key(settings), settings, payload=True) as store:
        for rid, (tokens, doc, summ) in records.items():
            store.append({"id": rid, "summary": "", "target": "reference", "reference": summ.strip(),
                          "reference_sha": document_sha(summ.strip()), "document_sha": document_sha(doc),
                          "finish_reason": "length", "error": None}, payload=pack_teacher_tokens(tokens))


def small_ds(aclsum_train, n=4):
    import datasets

    rows = aclsum_train.select(range(n))
    return datasets.Dataset.from_dict({"id": list(rows["id"]), "document": [" ".join(d.split()[:30]) for d in rows["document"]],
                                       "summary": [" ".join(s.split()[:12]) for s in rows["summary"]]})


def test_student_learns_from_a_differently_tokenized_teacher(two_bpes, tiny_tokenizer, aclsum_train, tmp_path):
    _, teacher_tok = two_bpes
    teacher = tiny.llama_lm(teacher_tok, layers=1, hidden=32, seed=1).eval()
    with torch.no_grad():
        teacher.lm_head.weight.mul_(30.0)  # a peaked teacher: its top-K holds most of the mass
    ds = small_ds(aclsum_train)
    store = str(tmp_path / "other.jsonl")
    write_reference_store(store, reference_records(teacher_tok, teacher, ds))
    stats = {}
    train = sparse_kd_dataset(ds, store, tiny_tokenizer, Args, Args, stats)
    c = stats["kd_alignment"]
    labels = sum(sum(x != -100 for x in ex["labels"]) for ex in train)
    assert c["aligned"] + c["merged"] + c["skipped"] + len(train) == labels  # + each row's closing eos (CE only)
    assert c["aligned"] > 0 and c["merged"] + c["skipped"] > 0
    for ex, summ in zip(train, ds["summary"]):  # the labels are the student's own tokens of the reference
        lab = [x for x in ex["labels"] if x != -100]
        ids = tiny_tokenizer(summary_text(summ, False), add_special_tokens=False)["input_ids"]
        assert lab[:-1] == ids[: Args.max_target_length - 1]
    student = tiny.llama_lm(tiny_tokenizer, seed=0)
    args = DistillTrainingArguments(output_dir=str(tmp_path / "run"), report_to="none", use_cpu=True, max_steps=20,
                                    learning_rate=1e-2, per_device_train_batch_size=4, logging_steps=1, save_strategy="no",
                                    lr_scheduler_type="constant", seed=0)
    trainer = LogitKDTrainer(model=student, args=args, processing_class=tiny_tokenizer, train_dataset=train,
                             data_collator=CausalCollator(tiny_tokenizer.pad_token_id), kd_alpha=0.5, kd_temperature=1.0,
                             kd_alignment="text")
    trainer.train()
    log = [e for e in trainer.state.log_history if "kd_uld" in e]
    assert len(log) == 20 and all(np.isfinite(e["ce"]) for e in log)
    first, last = np.mean([e["kd_uld"] for e in log[:3]]), np.mean([e["kd_uld"] for e in log[-3:]])
    assert last < 0.8 * first, (first, last)


def test_served_file_from_the_fault_server_trains_end_to_end(tiny_tokenizer, aclsum_train, tmp_path):
    """The fault server's tokens are whole words (a vocabulary of its own), unlike the student's BPE."""
    from lsrmwf.commands.generate_rationales import main as collect
    from lsrmwf.commands.train import main

    sys.path.insert(0, os.path.dirname(__file__))
    from llm_fault_server import FaultServer

    root = tmp_path / "student"
    tiny.llama_lm(tiny_tokenizer, seed=0).save_pretrained(root)
    tiny_tokenizer.save_pretrained(root)
    ds = small_ds(aclsum_train)
    data = str(tmp_path / "data.jsonl")
    with open(data, "w") as f:
        for r in ds:
            f.write(json.dumps(r) + "\n")
    store = str(tmp_path / "served.jsonl")
    with FaultServer(with_ids=False) as srv:  # strings and bytes only, as the OpenAI API answers
        assert collect(["--base_url", srv.base_url, "--model", "m", "--data_file", data, "--id_column", "id",
                        "--output", store, "--task", "teacher_logprobs", "--top_logprobs", "4", "--no_progress"]) == 0
    argv = ["--model_name_or_path", str(root), "--train_file", data, "--output_dir", str(tmp_path / "run"), "--do_train",
            "--max_steps", "3", "--per_device_train_batch_size", "2", "--learning_rate", "1e-3", "--max_source_length",
            "48", "--max_target_length", "24", "--max_length", "8", "--report_to", "none", "--use_cpu",
            "--logging_steps", "1", "--seed", "0", "--save_strategy", "no", "--teacher_logprobs_file", store]
    with pytest.raises(InputError, match="the served teacher's tokenizer differs"):
        main(argv)  # the same-tokenizer path refuses it
    main(argv + ["--kd_alignment", "text", "--kd_shared_vocab_weight", "0.5"])
    summary = json.load(open(tmp_path / "run" / "run_summary.json"))
    counts = summary["kd_alignment"]
    assert counts["rule"] == "text" and counts["aligned"] + counts["merged"] > 0
    assert summary["kd_loss"]["alignment"] == "text" and summary["kd_loss"]["shared_vocab_weight"] == 0.5
    log = [e for e in json.load(open(tmp_path / "run" / "trainer_state.json"))["log_history"] if "kd_uld" in e]
    assert log and all(np.isfinite(e["kd_uld"]) and np.isfinite(e["ce"]) and "kd_shared" in e for e in log)


def test_bad_input_is_one_line(two_bpes, tiny_tokenizer, aclsum_train, tmp_path):
    small, large = two_bpes
    table = token_bytes_table(small)
    rec = record_for(large, SENTENCE)
    blank = TeacherTokens(rec.token_ids, rec.token_logprobs, rec.top_ids, rec.top_logprobs, [b""] * len(rec))
    with pytest.raises(InputError, match="r.jsonl, row 'a': the summary has 9 teacher tokens but no token text"):
        text_aligned_targets(blank, small, table, "r.jsonl, row 'a'", "the summary")
    with pytest.raises(InputError, match="spell ' We propose a new method for parsing.' where the reference"):
        text_aligned_targets(rec, small, table, "r.jsonl, row 'a'", "the reference", expected=" We propose a new way.")
    # a stored reference row whose tokens spell another text than the training example's reference
    ds = small_ds(aclsum_train, 1)
    teacher = tiny.llama_lm(large, layers=1, hidden=32, seed=1)
    records = reference_records(large, teacher, ds)
    rid = ds["id"][0]
    tokens, doc, summ = records[rid]
    wrong = TeacherTokens(tokens.token_ids, tokens.token_logprobs, tokens.top_ids, tokens.top_logprobs,
                          [b" X"] + tokens.token_bytes[1:])
    write_reference_store(str(tmp_path / "w.jsonl"), {rid: (wrong, doc, summ)})
    with pytest.raises(InputError, match=r"w.jsonl, row .*: the teacher's tokens spell .* where the reference summary"):
        sparse_kd_dataset(ds, str(tmp_path / "w.jsonl"), tiny_tokenizer, Args, Args)
    # shared vocabulary from a file with ids only, and no teacher tokenizer to name them
    write_reference_store(str(tmp_path / "ok.jsonl"), records)

    class Shared(Args):
        kd_shared_vocab_weight = 0.5

    with pytest.raises(InputError, match="ids only: give the served teacher's tokenizer"):
        sparse_kd_dataset(ds, str(tmp_path / "ok.jsonl"), tiny_tokenizer, Shared, Shared)
    # flags
    for kwargs, msg in ((dict(kd_alignment="text"), "give --teacher_logprobs_file"),
                        (dict(kd_alignment="text", teacher_model_name_or_path="t", kd_on_policy_lambda=0.5),
                         "on-policy samples are scored by a teacher of the student's tokenizer only"),
                        (dict(kd_alignment="text", teacher_model_name_or_path="t", kd_teacher_tokenizer="x"),
                         "comes with it"),
                        (dict(kd_shared_vocab_weight=0.5, teacher_logprobs_file="f"), "applies to --kd_alignment text"),
                        (dict(kd_alignment="text", teacher_logprobs_file="f", kd_shared_vocab_weight=-1), ">= 0")):
        with pytest.raises(InputError, match=msg):
            LogitKDArguments(**kwargs)


def test_white_box_teacher_of_another_tokenizer_gives_the_served_rows(two_bpes, tiny_tokenizer, aclsum_train, tmp_path):
    """The white-box path computes at each aligned position the top-K that the served path stores."""
    from lsrmwf.distill.text_alignment import WhiteBoxTextRows
    from lsrmwf.distill.uld import teacher_top_k_rows

    _, teacher_tok = two_bpes
    teacher = tiny.llama_lm(teacher_tok, layers=1, hidden=32, seed=1).eval()
    ds = small_ds(aclsum_train)
    store = str(tmp_path / "other.jsonl")
    write_reference_store(store, reference_records(teacher_tok, teacher, ds, K=4))
    stats = {}
    served = sparse_kd_dataset(ds, store, tiny_tokenizer, Args, Args, stats)
    rows = WhiteBoxTextRows(tiny_tokenizer, teacher_tok, TEMPLATE, False, Args.max_source_length, Args.max_target_length)
    white = rows.dataset(ds)
    assert rows.counts == stats["kd_alignment"]
    collate = CausalCollator(tiny_tokenizer.pad_token_id)
    a, b = collate([served[i] for i in range(len(ds))]), collate([white[i] for i in range(len(ds))])
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["labels"], b["labels"])
    with torch.no_grad():
        t_logits = teacher(input_ids=b["teacher_input_ids"], attention_mask=b["teacher_attention_mask"]).logits
    got = teacher_top_k_rows(t_logits, b["teacher_rows"], 4, len(teacher_tok))
    assert torch.equal(got["teacher_aligned"], a["teacher_aligned"])
    on = a["teacher_aligned"].bool()
    # the store holds fp16 values
    torch.testing.assert_close(got["teacher_top_logprobs"][on], a["teacher_top_logprobs"][on], atol=1e-2, rtol=1e-3)


def test_train_py_white_box_teacher_of_another_tokenizer(two_bpes, tiny_tokenizer, aclsum_train, tmp_path):
    from lsrmwf.commands.train import main

    _, teacher_tok = two_bpes
    root = tmp_path / "models"
    tiny.llama_lm(tiny_tokenizer, seed=0).save_pretrained(root / "student")
    tiny_tokenizer.save_pretrained(root / "student")
    tiny.llama_lm(teacher_tok, layers=2, hidden=48, seed=1).save_pretrained(root / "teacher")
    teacher_tok.save_pretrained(root / "teacher")
    data = str(tmp_path / "data.jsonl")
    with open(data, "w") as f:
        for r in small_ds(aclsum_train):
            f.write(json.dumps(r) + "\n")
    argv = ["--model_name_or_path", str(root / "student"), "--train_file", data, "--output_dir", str(tmp_path / "run"),
            "--do_train", "--max_steps", "3", "--per_device_train_batch_size", "2", "--learning_rate", "1e-3",
            "--max_source_length", "48", "--max_target_length", "24", "--max_length", "8", "--report_to", "none",
            "--use_cpu", "--logging_steps", "1", "--seed", "0", "--save_strategy", "no",
            "--teacher_model_name_or_path", str(root / "teacher")]
    with pytest.raises(InputError, match="tokeniz"):
        main(argv)  # one tokenizer expected without the flag
    main(argv + ["--kd_alignment", "text", "--kd_text_top_k", "8", "--kd_shared_vocab_weight", "0.5"])
    summary = json.load(open(tmp_path / "run" / "run_summary.json"))
    assert summary["kd_alignment"]["teacher"] == "white-box" and summary["kd_alignment"]["aligned"] > 0
    assert summary["kd_loss"]["text_top_k"] == 8
    log = [e for e in json.load(open(tmp_path / "run" / "trainer_state.json"))["log_history"] if "kd_uld" in e]
    assert len(log) == 3 and all(np.isfinite(e["kd_uld"]) and e["kd_uld"] > 0 and "kd_shared" in e for e in log)
    # a white-box checkpoint without its tokenizer cannot be aligned
    from lsrmwf.distill.logit_kd import load_causal_teacher

    tiny.llama_lm(teacher_tok, seed=1).save_pretrained(root / "bare")
    with pytest.raises(InputError, match="bare: --kd_alignment text needs the teacher's tokenizer"):
        load_causal_teacher(str(root / "bare"), tiny.llama_lm(tiny_tokenizer), tiny_tokenizer, same_tokenizer=False)


def test_white_box_rows_count_a_student_id_once_when_two_teacher_tokens_share_its_bytes():
    """A byte-fallback teacher has 'T' and '<0x54>' (same bytes): both map to one student id, which must appear once
    per position (sparse KD assumes distinct ids), as the served path's rows do."""
    from lsrmwf.distill.uld import teacher_top_k_rows

    logits = torch.tensor([[[4.0, 3.0, 2.0, 1.0]]])  # teacher ids 0 and 2 are the same string, student id 7
    shared = torch.tensor([7, 5, 7, -1])
    out = teacher_top_k_rows(logits, torch.tensor([[0]]), k=4, shared_map=shared)
    assert out["teacher_top_ids"][0, 0].tolist() == [7, 5, -1, -1]
    assert out["teacher_aligned"].tolist() == [[1]]


def test_text_aligned_step_gives_each_label_its_own_teacher_row(tiny_tokenizer, tmp_path):
    """compute_loss shifts the teacher's rows with the labels: the logits at position i meet label i+1's row. ULD
    ignores which token is which, so the rows differ in shape (peaked / flat, by position), and the shared-vocabulary
    KL names the ids; both terms are checked against the rows taken by hand."""
    from lsrmwf.distill.sparse_kd import sparse_kd_loss

    tok = tiny_tokenizer
    student = tiny.llama_lm(tok, seed=0)
    with torch.no_grad():
        student.lm_head.weight.mul_(40.0)  # a peaked student: its top-K differs from position to position
    g = torch.Generator().manual_seed(0)
    n, k, prompt = 9, 3, 3
    ids = torch.randint(5, len(tok), (1, n), generator=g)
    labels = ids.clone()
    labels[0, :prompt] = -100
    aligned = torch.tensor([[0, 0, 0, 1, 1, 0, 1, 1, 1]])
    shapes = [[0.9, 0.06, 0.02], [0.34, 0.33, 0.32], [0.6, 0.3, 0.05], [0.98, 0.01, 0.005]]
    top_lp = torch.zeros(1, n, k)  # 0 at the prompt and where there is no row, as the dataset has it
    top_ids = torch.full((1, n, k), -1, dtype=torch.long)
    for j in range(prompt, n):
        if aligned[0, j]:
            top_lp[0, j] = torch.tensor(shapes[j % len(shapes)]).log()
            top_ids[0, j] = torch.randperm(len(tok), generator=g)[:k]
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels, "teacher_aligned": aligned,
             "teacher_top_logprobs": top_lp, "teacher_top_ids": top_ids}
    args = DistillTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = LogitKDTrainer(model=student, args=args, processing_class=tok, kd_alpha=0.0, kd_temperature=1.0,
                             kd_alignment="text", kd_shared_vocab_weight=1.0,
                             data_collator=CausalCollator(tok.pad_token_id))
    student.train()
    trainer.compute_loss(student, batch)
    got = dict(zip(trainer._term_names, trainer._term_sum.tolist()))
    with torch.no_grad():
        logits = student(input_ids=ids).logits[0]

    def by_hand(shift):  # label j's row taken at logits j - 1 (shift 0), or label j's row one position off
        pos = [j for j in range(prompt, n) if aligned[0, j - shift]]
        rows = [j - shift for j in pos]
        log_q = torch.log_softmax(logits[[j - 1 for j in pos]], -1)
        uld = uld_distance(log_q, top_lp[0, rows]).mean()
        _, _, shared = sparse_kd_loss(logits[[j - 1 for j in pos]], labels[0, pos], top_ids[0, rows], top_lp[0, rows],
                                      0.0, 1.0)
        return uld.item(), shared.item()

    uld, shared = by_hand(0)
    assert got["kd_uld"] == pytest.approx(uld, rel=1e-5) and got["kd_shared"] == pytest.approx(shared, rel=1e-5)
    off_uld, off_shared = by_hand(1)  # what a teacher row one position off would give: far from it
    assert abs(off_uld - uld) > 0.05 and abs(off_shared - shared) > 0.05


def test_a_narrower_top_k_is_padded_as_no_alternative():
    """Collated with a row of wider K, a row with fewer alternatives keeps its loss: the padded slots are -inf
    (no alternative), not log-prob 0 (a certain token)."""
    lp = np.log
    narrow = {"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "teacher_aligned": [0, 1, 1],
              "teacher_top_ids": [[-1, -1]] * 3,
              "teacher_top_logprobs": [[0.0, 0.0], [lp(0.6), lp(0.3)], [lp(0.5), lp(0.2)]]}
    wide = {"input_ids": [5, 6, 7, 8, 9], "labels": [-100, 6, 7, 8, 9], "teacher_aligned": [0, 1, 1, 1, 1],
            "teacher_top_ids": [[-1] * 4] * 5, "teacher_top_logprobs": [[lp(0.4), lp(0.3), lp(0.2), lp(0.1)]] * 5}
    collate = CausalCollator(0)
    alone, both = collate([narrow]), collate([narrow, wide])
    assert both["teacher_top_logprobs"].shape[-1] == 4 and both["teacher_top_ids"][0, :3, 2:].eq(-1).all()
    logits = torch.randn(1, 3, 12, generator=torch.Generator().manual_seed(0))

    def loss(batch):
        return uld_kd_loss(logits, batch["labels"][:1, :3], batch["teacher_aligned"][:1, :3],
                           batch["teacher_top_logprobs"][:1, :3], alpha=0.0)[0]

    torch.testing.assert_close(loss(both), loss(alone))


def test_white_box_text_rows_name_the_file_row_and_field(two_bpes, tiny_tokenizer):
    import datasets

    from lsrmwf.distill.text_alignment import WhiteBoxTextRows

    _, teacher_tok = two_bpes
    rows = WhiteBoxTextRows(tiny_tokenizer, teacher_tok, TEMPLATE, False, 48, 24)
    ds = datasets.Dataset.from_dict({"id": ["a", "b"], "document": ["One paper.", "Another paper."],
                                     "summary": ["A fine summary.", "It ends here </s> and goes on."]})
    with pytest.raises(InputError, match=r"^data/train\.jsonl, row 'b', field 'summary': the teacher's tokenizer "
                                         r"turns the reference summary into a special token"):
        rows.dataset(ds, "data/train.jsonl")


def test_shared_vocabulary_kl_is_the_mean_over_positions_with_a_shared_alternative():
    """Two aligned positions, one of them with shared alternatives: D_shared is that position's KL alone (as the
    flag's help and the README say), not halved by the position without any."""
    from lsrmwf.distill.sparse_kd import sparse_kd_loss

    logits = torch.randn(1, 2, 6, generator=torch.Generator().manual_seed(0))
    labels, aligned = torch.tensor([[1, 2]]), torch.tensor([[1, 1]])
    top = torch.log(torch.tensor([[[0.5, 0.3], [0.6, 0.2]]]))
    shared = torch.tensor([[[3, 4], [-1, -1]]])
    _, _, _, d = uld_kd_loss(logits, labels, aligned, top, alpha=0.5, shared_ids=shared, shared_weight=1.0)
    _, _, one = sparse_kd_loss(logits[:, :1], labels[:, :1], shared[:, :1], top[:, :1], 0.0, 1.0)
    torch.testing.assert_close(d, one)
