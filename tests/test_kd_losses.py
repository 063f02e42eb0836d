"""Logit KD's divergences (forward/reverse KL, generalised JSD, skew KL): gradients against autograd of the
dense formulas, top-K = full vocabulary equal to white-box (in memory and through the fp16 store), a teacher
and student with padded embeddings over one tokenizer, on-policy samples, and the flags' one-line errors."""

import json
import logging

import numpy as np
import pytest
import tiny
import torch
from test_causal_kd import Args, small_ds
from transformers import LlamaForCausalLM

from lsrmwf.data.causal import CausalCollator, encode_prompt
from lsrmwf.distill.logit_kd import KD_LOSSES, check_kd_loss, kd_loss, load_causal_teacher
from lsrmwf.distill.sparse_kd import sparse_kd_loss, token_bytes_table
from lsrmwf.io import InputError
from lsrmwf.io.logprobs import TeacherTokens, pack_teacher_tokens
from lsrmwf.io.store import ResultStore, cache_key
from lsrmwf.llm.teacher_logprobs import document_sha
from lsrmwf.training.base import DistillTrainingArguments
from lsrmwf.training.logit_kd import LogitKDArguments, LogitKDTrainer
from lsrmwf.training.recipes.logit_kd import sparse_kd_dataset

TEMPLATE = "Summarize:\n{document}\n\nSummary:"
BETA = {"forward_kl": 0.0, "reverse_kl": 0.0, "jsd": 0.3, "skew_kl": 0.2}


def dense(p, q, kind, beta):
    """The textbook formulas on probability vectors (last axis)."""
    def kl(a, b):
        return torch.where(a > 0, a * (a.clamp(min=1e-30).log() - b.log()), torch.zeros_like(a)).sum(-1)

    if kind == "forward_kl":
        return kl(p, q)
    if kind == "reverse_kl":
        return kl(q, p)
    if kind == "jsd":
        m = beta * p + (1 - beta) * q
        return beta * kl(p, m) + (1 - beta) * kl(q, m)
    return kl(p, beta * p + (1 - beta) * q)


@pytest.mark.parametrize("kind", KD_LOSSES)
def test_white_box_loss_and_gradient_match_autograd_of_the_dense_formula(kind):
    torch.manual_seed(0)
    V, alpha, T, beta = 7, 0.3, 2.0, BETA[kind]
    s = torch.randn(2, 3, V, requires_grad=True)
    t = torch.randn(2, 3, V)
    labels = torch.tensor([[2, 5, -100], [1, 0, 6]])
    loss, ce, d = kd_loss(s, t, labels, alpha, T, loss_type=kind, beta=beta)
    (grad,) = torch.autograd.grad(loss, s)
    ref = s.detach().clone().requires_grad_(True)
    m = labels.ne(-100)
    ce_ref = torch.nn.functional.cross_entropy(ref[m], labels[m])
    d_ref = dense(torch.softmax(t[m] / T, -1), torch.softmax(ref[m] / T, -1), kind, beta).mean()
    (grad_ref,) = torch.autograd.grad(alpha * ce_ref + (1 - alpha) * T**2 * d_ref, ref)
    torch.testing.assert_close(d, d_ref.detach())
    torch.testing.assert_close(grad, grad_ref, atol=1e-6, rtol=1e-5)
    assert grad[0, 2].abs().max() == 0 and d > 0


@pytest.mark.parametrize("kind", KD_LOSSES)
def test_sparse_loss_and_gradient_match_autograd_of_the_bucketed_formula(kind):
    """K teacher tokens + one tail class on both sides; a ragged K, a position without teacher data, and one whose
    K values sum to 1 (no teacher tail: the student's tail still counts, except for reverse KL)."""
    torch.manual_seed(0)
    V, alpha, T, beta = 7, 0.4, 2.0, BETA[kind]
    s = torch.randn(2, 3, V, requires_grad=True)
    labels = torch.tensor([[2, 5, -100], [1, 0, 6]])
    top_ids = torch.tensor([[[2, 4, 0], [5, 1, -1], [3, 4, 5]],
                            [[1, 2, 3], [-1, -1, -1], [6, 0, 1]]])
    teacher_p = torch.tensor([[[0.5, 0.2, 0.1], [0.6, 0.3, 0.0], [0.3, 0.3, 0.3]],
                              [[0.7, 0.2, 0.1], [0.0, 0.0, 0.0], [0.4, 0.4, 0.1]]])  # (1, 0) sums to 1
    loss, _, d = sparse_kd_loss(s, labels, top_ids, teacher_p.clamp(min=1e-9).log(), alpha, T, loss_type=kind,
                                beta=beta)
    (grad,) = torch.autograd.grad(loss, s)
    ref = s.detach().clone().requires_grad_(True)
    label_pos = [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]
    kd_pos = [(0, 0), (0, 1), (1, 0), (1, 2)]
    ce_ref = sum(-torch.log_softmax(ref[b, i], -1)[labels[b, i]] for b, i in label_pos) / len(label_pos)
    d_ref = 0.0
    for b, i in kd_pos:
        q = torch.softmax(ref[b, i], -1)
        ids = [int(x) for x in top_ids[b, i] if x >= 0]
        p = teacher_p[b, i, : len(ids)]
        p_tail = (1 - p.sum()).clamp(min=0)
        keep_tail = not (kind == "reverse_kl" and p_tail == 0)
        p_cls = torch.cat([p, p_tail.reshape(1)]) if keep_tail else p
        q_cls = torch.cat([q[ids], (1 - q[ids].sum()).reshape(1)]) if keep_tail else q[ids]
        pT, qT = p_cls ** (1 / T), q_cls ** (1 / T)
        d_ref = d_ref + dense(pT / pT.sum(), qT / qT.sum(), kind, beta) / len(kd_pos)
    (grad_ref,) = torch.autograd.grad(alpha * ce_ref + (1 - alpha) * T**2 * d_ref, ref)
    torch.testing.assert_close(d, d_ref.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(grad, grad_ref, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("kind", KD_LOSSES)
@pytest.mark.parametrize("T", [1.0, 2.0])
def test_top_k_over_the_whole_vocabulary_equals_white_box_in_fp32(kind, T):
    torch.manual_seed(1)
    V = 11
    s = torch.randn(2, 4, V, requires_grad=True)
    t = torch.randn(2, 4, V) * 3
    labels = torch.tensor([[1, 2, 3, -100], [4, 5, 6, 7]])
    sparse, ce_s, d_s = sparse_kd_loss(s, labels, torch.arange(V).expand(2, 4, V), torch.log_softmax(t, -1), 0.3, T,
                                       loss_type=kind, beta=BETA[kind])
    (g_s,) = torch.autograd.grad(sparse, s)
    white, ce_w, d_w = kd_loss(s, t, labels, 0.3, T, loss_type=kind, beta=BETA[kind])
    (g_w,) = torch.autograd.grad(white, s)
    torch.testing.assert_close(d_s, d_w)
    torch.testing.assert_close(ce_s, ce_w)
    torch.testing.assert_close(g_s, g_w)


# ----------------------------------------------------------------------------------------------
# Padded embeddings over one tokenizer, white-box and through the store
# ----------------------------------------------------------------------------------------------


def llama(tok, vocab, layers=1, hidden=32, seed=0):
    return tiny.llama_lm(tok, vocab_size=vocab, layers=layers, hidden=hidden, seed=seed)


def served_records(tok, teacher, ds, K, max_new=8):
    """Greedy teacher summaries with top-K log-probs over the tokenizer's ids (as a server reports them)."""
    n, table, out = len(tok), token_bytes_table(tok), {}
    for rid, doc in zip(ds["id"], ds["document"]):
        seq = encode_prompt(doc, tok, TEMPLATE, False, 48)
        new, lps = [], []
        with torch.no_grad():
            for _ in range(max_new):
                lp = torch.log_softmax(teacher(torch.tensor([seq + new])).logits[0, -1, :n].float(), -1)
                new.append(int(lp.argmax()))
                lps.append(lp)
        top = [lp.topk(K) for lp in lps]
        out[rid] = (TeacherTokens(np.array(new, np.int32), np.array([lp[t] for lp, t in zip(lps, new)], np.float16),
                                  np.array([t.indices.tolist() for t in top], np.int32),
                                  np.array([t.values.tolist() for t in top], np.float16),
                                  [table[t] for t in new]), doc)
    return out


def write_store(path, records, K):
    settings = {"task": "teacher_logprobs", "model": "tiny-teacher", "params": {"top_logprobs": K}}
    with ResultStore(path, cache_key(settings), settings, payload=True) as store:
        for rid, (tokens, doc) in records.items():
            store.append({"id": rid, "summary": "", "finish_reason": "length", "error": None,
                          "document_sha": document_sha(doc)}, payload=pack_teacher_tokens(tokens))


@pytest.fixture(scope="module")
def padded_pair(tiny_tokenizer, tmp_path_factory):
    """Student and teacher embeddings padded to 544 and 576 rows over the 512-token tokenizer (Qwen2.5-0.5B/7B's
    151,936/152,064 in small)."""
    root = tmp_path_factory.mktemp("padded")
    for name, kw in (("student", dict(vocab=544, seed=0)), ("teacher", dict(vocab=576, layers=2, hidden=48, seed=1))):
        llama(tiny_tokenizer, **kw).save_pretrained(root / name)
        tiny_tokenizer.save_pretrained(root / name)
    return root


def test_padded_teacher_is_accepted_by_its_tokenizer_and_compared_over_it(padded_pair, tiny_tokenizer, aclsum_train,
                                                                          caplog):
    tok = tiny_tokenizer
    student = LlamaForCausalLM.from_pretrained(padded_pair / "student")
    with caplog.at_level(logging.INFO, logger="lsrmwf.distill.logit_kd"):
        teacher = load_causal_teacher(str(padded_pair / "teacher"), student, tok, [aclsum_train[0]["document"]])
    assert "over the tokenizer's 512 ids" in caplog.text and teacher.config.vocab_size == 576
    # another tokenizer is still refused, whatever the sizes
    from lsrmwf.data.tokenization import train_bpe_tokenizer

    other = train_bpe_tokenizer(list(aclsum_train["summary"][:30]), vocab_size=len(tok))
    with pytest.raises(InputError, match="tokeniz"):
        load_causal_teacher(str(padded_pair / "teacher"), student, other, [aclsum_train[0]["document"]])
    # white-box: the trainer's loss is the dense formula over the first 512 ids of both sides
    ds = small_ds(aclsum_train, 2)
    from lsrmwf.data.causal import tokenize_causal

    data = tokenize_causal(ds, tok, TEMPLATE, False, 48, 24, with_prompt=False)
    batch = CausalCollator(tok.pad_token_id)([data[i] for i in range(2)])
    args = DistillTrainingArguments(output_dir=str(padded_pair / "run"), report_to="none", use_cpu=True)
    trainer = LogitKDTrainer(model=student, args=args, processing_class=tok, teacher_model=teacher, kd_alpha=0.0,
                             kd_temperature=2.0, kd_loss="jsd", data_collator=CausalCollator(tok.pad_token_id))
    assert trainer.kd_vocab_size == 512
    student.train()
    loss = trainer.compute_loss(student, batch)
    with torch.no_grad():
        s = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1, :512]
        t = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1, :512]
    m = batch["labels"][:, 1:].ne(-100)
    expected = 4.0 * dense(torch.softmax(t[m] / 2, -1), torch.softmax(s[m] / 2, -1), "jsd", 0.5).mean()
    torch.testing.assert_close(loss.detach(), expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("vocabs", [(512, 512), (544, 576)], ids=["same_size", "padded"])
def test_top_k_over_the_tokenizer_through_the_store_equals_white_box_within_fp16(vocabs, tiny_tokenizer, aclsum_train,
                                                                                tmp_path):
    tok, n = tiny_tokenizer, len(tiny_tokenizer)
    student, teacher = llama(tok, vocabs[0], seed=0), llama(tok, vocabs[1], layers=2, hidden=48, seed=1).eval()
    ds = small_ds(aclsum_train, 2)
    path = str(tmp_path / "t.jsonl")
    write_store(path, served_records(tok, teacher, ds, K=n), K=n)
    batch = CausalCollator(tok.pad_token_id)(list(sparse_kd_dataset(ds, path, tok, Args, Args)))
    with torch.no_grad():
        s = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        t = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    targets, top_ids = batch["labels"][:, 1:], batch["teacher_top_ids"][:, 1:]
    top_lp = batch["teacher_top_logprobs"][:, 1:]
    assert top_ids.ge(0).sum(-1).max() == n  # K = the whole tokenizer
    on_teacher = targets.masked_fill(~top_ids.ge(0).any(-1), -100)  # the closing eos has no teacher data
    for kind in KD_LOSSES:
        for T in (1.0, 2.0):
            _, _, d_sparse = sparse_kd_loss(s, targets, top_ids, top_lp, 0.5, T, loss_type=kind, beta=BETA[kind],
                                            vocab_size=n)
            _, _, d_white = kd_loss(s, t, on_teacher, 0.5, T, loss_type=kind, beta=BETA[kind], vocab_size=n)
            # fp16 keeps log-probs to ~2^-11 relative: a few 1e-3 on these divergences of ~0.1-1
            torch.testing.assert_close(d_sparse, d_white, atol=5e-3, rtol=5e-3, msg=f"{kind} T={T}")


# ----------------------------------------------------------------------------------------------
# On-policy samples
# ----------------------------------------------------------------------------------------------


def test_on_policy_batch_is_the_prompt_and_the_students_sample_scored_by_the_teacher(tiny_tokenizer, aclsum_train,
                                                                                      tmp_path):
    from lsrmwf.data.causal import tokenize_causal

    tok = tiny_tokenizer
    student, teacher = llama(tok, 512, seed=0), llama(tok, 512, layers=2, hidden=48, seed=1)
    data = tokenize_causal(small_ds(aclsum_train, 2), tok, TEMPLATE, False, 48, 24, with_prompt=False)
    batch = CausalCollator(tok.pad_token_id)([data[i] for i in range(2)])
    args = DistillTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, seed=3)
    trainer = LogitKDTrainer(model=student, args=args, processing_class=tok, teacher_model=teacher, kd_alpha=0.4,
                             kd_temperature=2.0, kd_loss="reverse_kl", on_policy_lambda=1.0,
                             on_policy_max_new_tokens=5,
                             data_collator=CausalCollator(tok.pad_token_id))
    student.train()
    torch.manual_seed(7)
    on = trainer._on_policy_batch(student, batch)
    for b in range(2):
        prompt = batch["input_ids"][b][batch["labels"][b].eq(-100) & batch["attention_mask"][b].bool()].tolist()
        n_prompt, n = len(prompt), int(on["attention_mask"][b].sum())
        assert on["input_ids"][b, :n_prompt].tolist() == prompt and on["labels"][b, :n_prompt].eq(-100).all()
        sample = on["labels"][b, n_prompt:n].tolist()
        assert 1 <= len(sample) <= 5 and sample == on["input_ids"][b, n_prompt:n].tolist()
        assert tok.eos_token_id not in sample[:-1]  # cut at the first eos
    assert student.training
    # the step's loss is (1 - alpha) T^2 D on the sample, counted with the batch's own token share
    torch.manual_seed(7)
    loss = trainer.compute_loss(student, batch)
    with torch.no_grad():
        s = student(input_ids=on["input_ids"], attention_mask=on["attention_mask"]).logits[:, :-1]
        t = teacher(input_ids=on["input_ids"], attention_mask=on["attention_mask"]).logits[:, :-1]
    m = on["labels"][:, 1:].ne(-100)
    expected = 0.6 * 4.0 * dense(torch.softmax(t[m] / 2, -1), torch.softmax(s[m] / 2, -1), "reverse_kl", 0).mean()
    torch.testing.assert_close(loss.detach(), expected / trainer.args.gradient_accumulation_steps, atol=1e-6,
                               rtol=1e-5)


def test_train_py_padded_teacher_jsd_with_on_policy_samples(padded_pair, aclsum_train, tmp_path):
    from lsrmwf.commands.train import main

    ds = small_ds(aclsum_train, 4)
    data = str(tmp_path / "data.jsonl")
    with open(data, "w") as f:
        for r in ds:
            f.write(json.dumps(r) + "\n")
    out = tmp_path / "run"
    main(["--model_name_or_path", str(padded_pair / "student"), "--teacher_model_name_or_path",
          str(padded_pair / "teacher"), "--train_file", data, "--output_dir", str(out), "--do_train",
          "--max_steps", "4", "--per_device_train_batch_size", "2", "--max_source_length", "48",
          "--max_target_length", "24", "--report_to", "none", "--use_cpu", "--logging_steps", "1", "--seed", "0",
          "--kd_loss", "jsd", "--kd_beta", "0.3", "--kd_on_policy_lambda", "0.5",
          "--kd_on_policy_max_new_tokens", "4"])
    summary = json.load(open(out / "run_summary.json"))
    assert summary["kd_loss"] == {"loss": "jsd", "beta": 0.3, "alpha": 0.5, "temperature": 2.0, "compared_ids": 512}
    pol = summary["on_policy"]
    assert pol["micro_batches"] == 4 and pol["on_policy"]["steps"] + pol["off_policy"]["steps"] == 4
    assert pol["on_policy_share"] == pol["on_policy"]["steps"] / 4 and pol["on_policy"]["steps"] >= 1
    assert pol["on_policy"]["target_tokens_per_s"] > 0 and pol["off_policy"]["micro_batches_per_s"] > 0
    log = json.load(open(out / "trainer_state.json"))["log_history"]
    assert any("kd_jsd" in e for e in log) and any("on_policy_share" in e for e in log)


# ----------------------------------------------------------------------------------------------
# One line for bad input
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    (dict(kd_loss="tvd"), r"--kd_loss must be one of \['forward_kl'"),
    (dict(kd_loss="jsd", kd_beta=1.0), r"--kd_beta 1.0: JSD's beta must lie in \(0, 1\)"),
    (dict(kd_loss="jsd", kd_beta=0.0), r"JSD's beta must lie in \(0, 1\)"),
    (dict(kd_loss="skew_kl", kd_beta=-0.1), r"skew KL's alpha must lie in \[0, 1\)"),
    (dict(kd_loss="forward_kl", kd_beta=0.5), "forward_kl takes no beta"),
    (dict(kd_on_policy_lambda=1.5, teacher_model_name_or_path="t"), r"--kd_on_policy_lambda must lie in \[0, 1\]"),
    (dict(kd_on_policy_lambda=0.5, teacher_logprobs_file="f.jsonl"), "name the endpoint that serves the teacher with "
                                                                     "--teacher_endpoint_config"),
    (dict(kd_on_policy_lambda=0.5), "needs a teacher to score the student's samples"),
])
def test_bad_kd_flags_get_one_line(kwargs, match):
    with pytest.raises(InputError, match=match) as e:
        LogitKDArguments(**kwargs)
    assert "\n" not in str(e.value)


def test_kd_beta_defaults_per_divergence_and_stays_out_of_the_saved_arguments():
    assert check_kd_loss("skew_kl", None) == 0.1 and check_kd_loss("jsd", None) == 0.5
    assert check_kd_loss("jsd", 0.3) == 0.3
    args = LogitKDArguments(kd_loss="jsd")
    assert args.kd_beta is None and "beta" not in vars(args)


def test_a_bart_student_refuses_the_causal_kd_flags():
    from lsrmwf.commands.train import parse_args
    from lsrmwf.training.recipes import lsr_mwf

    args = parse_args(["--model_name_or_path", "facebook/bart-large", "--dataset_name", "cnn_dailymail",
                       "--output_dir", "o", "--kd_loss", "reverse_kl"])
    with pytest.raises(InputError, match="apply to causal"):
        lsr_mwf.check(args)
