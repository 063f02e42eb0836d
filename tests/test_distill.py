"""Logit KD: the loss formula, gradient to the student only, vocabulary checks, composition with views;
sequence-level KD targets (--target)."""

import json

import pytest
import tiny
import torch
from transformers import BartConfig, BartForConditionalGeneration

from lsrmwf import LsrMwfConfig, LsrMwfForConditionalGeneration
from lsrmwf.distill.logit_kd import kd_loss, load_teacher
from lsrmwf.io import InputError
from lsrmwf.training.base import DistillTrainingArguments
from lsrmwf.training.collators import LsrMwfCollator
from lsrmwf.training.lsr_mwf import LsrMwfArguments, LsrMwfTrainer


def student(tok, views=("ea", "as", "ter")):
    torch.manual_seed(0)
    return LsrMwfForConditionalGeneration(LsrMwfConfig(
        **tiny.bart(vocab_size=len(tok), decoder_layers=1, max_position_embeddings=128), **tiny.NO_DROPOUT,
        **tiny.special_ids(tok), views=list(views)))


def teacher(tok, vocab_size=None, **kw):
    torch.manual_seed(1)
    cfg = dict(**tiny.bart(vocab_size=vocab_size or len(tok), d_model=48, encoder_layers=2, max_position_embeddings=128),
               **tiny.NO_DROPOUT, **tiny.special_ids(tok))
    cfg.update(kw)
    return BartForConditionalGeneration(BartConfig(**cfg))


def batch(tok, ds, n=3, views=True):
    rows = []
    for k in range(n):
        r = {"input_ids": tok(ds[k]["document"], max_length=48, truncation=True)["input_ids"],
             "labels": tok(ds[k]["summary"], max_length=12 + 4 * k, truncation=True)["input_ids"]}  # ragged: padding
        if views:
            t = tok(" ".join(ds[k]["document"].split()[:12]), max_length=20, truncation=True)["input_ids"]
            for v in ("ea", "as", "ter"):
                r[f"{v}_input_ids"] = t
        rows.append(r)
    return LsrMwfCollator(tok.pad_token_id)(rows)


def test_kd_loss_matches_hand_computation():
    torch.manual_seed(0)
    s = torch.randn(2, 3, 5)
    t = torch.randn(2, 3, 5)
    labels = torch.tensor([[1, 4, -100], [0, 2, 3]])
    alpha, T = 0.3, 2.0
    loss, ce, kl = kd_loss(s, t, labels, alpha, T)
    tokens = [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]  # the padded position is left out
    ce_hand = sum(-torch.log_softmax(s[b, i], -1)[labels[b, i]] for b, i in tokens) / len(tokens)
    kl_hand = 0.0
    for b, i in tokens:
        p = torch.softmax(t[b, i] / T, -1)
        q = torch.softmax(s[b, i] / T, -1)
        kl_hand += (p * (p.log() - q.log())).sum()
    kl_hand /= len(tokens)
    torch.testing.assert_close(ce, ce_hand)
    torch.testing.assert_close(kl, kl_hand)
    torch.testing.assert_close(loss, alpha * ce_hand + (1 - alpha) * T**2 * kl_hand)
    # identical distributions: only the CE term is left
    same, ce2, kl2 = kd_loss(s, s.clone(), labels, alpha, T)
    assert abs(kl2.item()) < 1e-6
    torch.testing.assert_close(same, alpha * ce2)


def test_gradient_reaches_the_student_only_and_kd_composes_with_views(tiny_tokenizer, aclsum_train, tmp_path):
    tok = tiny_tokenizer
    stu, tea = student(tok), teacher(tok)
    args = DistillTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = LsrMwfTrainer(model=stu, args=args, processing_class=tok, teacher_model=tea, kd_alpha=0.25, kd_temperature=3.0,
                            lsr_mwf=LsrMwfArguments(gamma_ce=0.6, gamma_views=0.4),
                            data_collator=LsrMwfCollator(tok.pad_token_id))
    assert all(not p.requires_grad for p in tea.parameters()) and not tea.training
    b = batch(tok, aclsum_train)
    stu.train()
    loss = trainer.compute_loss(stu, b)
    loss.backward()
    assert all(p.grad is None for p in tea.parameters())
    grads = {n: p.grad for n, p in stu.named_parameters() if p.requires_grad}
    assert all(g is not None for g in grads.values())
    assert any(g.abs().sum() > 0 for n, g in grads.items() if "gate" in n)

    # the same number by hand: γ1·(α·CE + (1-α)·T²·KL) + γ2·Σ views
    with torch.no_grad():
        out = stu(**b)
        t_logits = tea(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).logits
    token, _, _ = kd_loss(out.logits, t_logits, b["labels"], 0.25, 3.0)
    expected = 0.6 * token + 0.4 * sum(out.view_losses.values())
    torch.testing.assert_close(loss.detach(), expected)
    assert "kd_kl" in trainer._term_names


def test_kd_with_plain_bart_student_is_the_kd_loss(tiny_tokenizer, aclsum_train, tmp_path):
    tok = tiny_tokenizer
    stu = teacher(tok, d_model=32, encoder_layers=1, decoder_layers=1)
    tea = teacher(tok)
    args = DistillTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = LsrMwfTrainer(model=stu, args=args, processing_class=tok, teacher_model=tea, kd_alpha=0.5, kd_temperature=2.0,
                            data_collator=LsrMwfCollator(tok.pad_token_id))
    b = batch(tok, aclsum_train, views=False)
    stu.train()
    loss = trainer.compute_loss(stu, b)
    with torch.no_grad():
        token, _, _ = kd_loss(stu(**b).logits, tea(**b).logits, b["labels"], 0.5, 2.0)
    torch.testing.assert_close(loss.detach(), token)


def test_teacher_loading_checks_vocabulary(tiny_tokenizer, tmp_path):
    tok = tiny_tokenizer
    stu = student(tok)
    good = tmp_path / "good"
    teacher(tok).save_pretrained(good)
    tok.save_pretrained(good)
    loaded = load_teacher(str(good), stu, tok)
    assert not loaded.training and all(not p.requires_grad for p in loaded.parameters())

    bigger = tmp_path / "bigger"
    teacher(tok, vocab_size=len(tok) + 8).save_pretrained(bigger)
    with pytest.raises(InputError, match=r"bigger: vocabulary size \d+ differs from the student's"):
        load_teacher(str(bigger), stu, tok)

    # same size, different token -> id mapping: a tokenizer trained on other text
    from lsrmwf.data.tokenization import train_bpe_tokenizer

    other_tok = train_bpe_tokenizer(["completely different words " * 50, "zebra yak quokka " * 40], vocab_size=len(tok))
    other = tmp_path / "other"
    teacher(tok, vocab_size=len(tok)).save_pretrained(other)
    other_tok.save_pretrained(other)
    with pytest.raises(InputError, match="tokenizer differs from the student's"):
        load_teacher(str(other), stu, tok)

    gpt = tmp_path / "gpt"
    gpt.mkdir()
    (gpt / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(InputError, match="model_type 'gpt2' is not BART"):
        load_teacher(str(gpt), stu, tok)


def test_llm_summary_targets(aclsum_train, tmp_path):
    from lsrmwf.data.preprocessing import apply_target
    from lsrmwf.data.rationales import join_rationales, rationale_table
    from lsrmwf.training.lsr_mwf import LsrMwfArguments

    ds = aclsum_train.select(range(4))
    ids_ = ds["id"]
    rows = [
        {"id": ids_[0], "rationales": [], "summary": "LLM summary zero.", "keep": True, "error": None},
        {"id": ids_[1], "rationales": [], "summary": "LLM summary one.", "keep": False, "error": None},
        {"id": ids_[2], "rationales": None, "summary": "", "keep": False, "error": "timeout"},
        {"id": ids_[3], "rationales": [], "summary": "LLM summary three.", "keep": True, "error": None},
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    joined, _ = join_rationales(ds, str(path))  # drops keep=false
    llm = apply_target(joined, LsrMwfArguments(rationale_file=str(path), target="llm_summary"), rationale_table(str(path)))
    assert llm["id"] == [ids_[0], ids_[3]]
    assert llm["summary"] == ["LLM summary zero.", "LLM summary three."]
    both = apply_target(joined, LsrMwfArguments(rationale_file=str(path), target="both"), rationale_table(str(path)))
    assert both["id"] == [ids_[0], ids_[3], ids_[0], ids_[3]]
    assert both["summary"][:2] == [ds[0]["summary"], ds[3]["summary"]]
    assert apply_target(joined, LsrMwfArguments(), None) is joined
    with pytest.raises(ValueError, match="--target llm_summary trains on the LLM summaries of --rationale_file"):
        LsrMwfArguments(target="llm_summary")


def test_train_script_with_teacher_and_llm_summaries(tiny_tokenizer, aclsum_train, tmp_path):
    from test_train_script import TINY, write_rationales

    from lsrmwf.commands.train import main

    tok = tiny_tokenizer
    teacher_dir = tmp_path / "teacher"
    teacher(tok, max_position_embeddings=256).save_pretrained(teacher_dir)
    tok.save_pretrained(teacher_dir)
    rationales = write_rationales(tmp_path / "r.jsonl", aclsum_train, 6)
    common = ["--dataset_name", "aclsum", "--max_train_samples", "6", "--rationale_file", rationales, "--do_train",
              "--max_steps", "2", "--save_strategy", "no", "--teacher_model_name_or_path", str(teacher_dir),
              "--kd_alpha", "0.5", "--kd_temperature", "2", *TINY]
    # the student's own BPE vocabulary is not the teacher's: refused before any training step
    with pytest.raises(InputError, match="vocabulary size .* differs from the student's|tokenizer differs"):
        main(common + ["--output_dir", str(tmp_path / "bad")])
    assert not (tmp_path / "bad" / "trainer_state.json").exists()

    out = tmp_path / "kd"
    results = main(common + ["--output_dir", str(out), "--tokenizer_name", str(teacher_dir), "--target", "both"])
    assert results["train_samples"] == 12  # each document with its gold and its LLM summary
    logged = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    assert logged and all("kd_kl" in h and "loss_ea" in h for h in logged)
