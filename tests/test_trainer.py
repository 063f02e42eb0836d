"""LsrMwfTrainer: Eq. (11)'s loss, gate bounds and trajectory, the noam schedule, the collator."""

import json
import math

import pytest
import tiny
import torch

from lsrmwf import LsrMwfConfig, LsrMwfForConditionalGeneration
from lsrmwf.training.base import DistillTrainingArguments, noam_lr
from lsrmwf.training.collators import LsrMwfCollator, view_present
from lsrmwf.training.lsr_mwf import GATES_FILE, GateTrajectoryCallback, LsrMwfArguments, LsrMwfTrainer, current_gates


def tiny_model(tok, views=("ea", "as", "ter"), gate_init=0.02, **kw):
    torch.manual_seed(0)
    cfg = LsrMwfConfig(
        **tiny.bart(vocab_size=len(tok), max_position_embeddings=128), **tiny.special_ids(tok), **tiny.NO_DROPOUT,
        views=list(views), gate_init=gate_init, **kw,
    )
    return LsrMwfForConditionalGeneration(cfg)


def features(tok, ds, n=4, with_views=True, missing_view_row=None):
    rows = []
    for k in range(n):
        doc, summ = ds[k]["document"], ds[k]["summary"]
        row = {
            "input_ids": tok(doc, max_length=64, truncation=True)["input_ids"],
            "labels": tok(summ, max_length=24, truncation=True)["input_ids"],
        }
        row["attention_mask"] = [1] * len(row["input_ids"])
        if with_views:
            words = doc.split()
            texts = {"ea": "challenge | approach", "as": " ".join(words[:20]), "ter": f"{words[0]} # uses # {words[3]}"}
            for v, t in texts.items():
                ids = [] if k == missing_view_row and v == "as" else tok(t, max_length=32, truncation=True)["input_ids"]
                row[f"{v}_input_ids"], row[f"{v}_attention_mask"] = ids, [1] * len(ids)
        rows.append(row)
    return rows


def make_trainer(model, tok, tmp_path, train_rows=None, **args):
    method = {k: args.pop(k) for k in ("gamma_ce", "gamma_views", "gate_learning_rate") if k in args}
    defaults = dict(output_dir=str(tmp_path), report_to="none", logging_steps=1,
                    per_device_train_batch_size=2, save_strategy="no", use_cpu=True, disable_tqdm=True)
    defaults.update(args)
    return LsrMwfTrainer(model=model, args=DistillTrainingArguments(**defaults), train_dataset=train_rows,
                         lsr_mwf=LsrMwfArguments(**{"gamma_ce": 0.6, "gamma_views": 0.4, **method}),
                         data_collator=LsrMwfCollator(tok.pad_token_id), processing_class=tok)


def test_loss_is_gamma_weighted_sum(tiny_tokenizer, aclsum_train, tmp_path):
    tok = tiny_tokenizer
    model = tiny_model(tok)
    batch = LsrMwfCollator(tok.pad_token_id)(features(tok, aclsum_train, missing_view_row=1))
    trainer = make_trainer(model, tok, tmp_path, gamma_ce=0.7, gamma_views=0.3)
    model.train()
    loss = trainer.compute_loss(model, batch)
    out = model(**batch)
    assert set(out.view_losses) == {"ea", "as", "ter"}
    expected = 0.7 * out.loss + 0.3 * sum(out.view_losses.values())
    torch.testing.assert_close(loss, expected)
    assert all(float(v.detach()) > 0 for v in out.view_losses.values())  # real alignment terms, not zeros
    # the alignment terms carry gradient to the views: the loss differs from γ1·CE alone
    assert not torch.allclose(loss, 0.7 * out.loss)
    # evaluation reports the token cross-entropy only, comparable with plain BART
    model.eval()
    torch.testing.assert_close(trainer.compute_loss(model, batch), model(**batch).loss)


def test_cached_targets_give_the_same_loss_as_rationale_ids(tiny_tokenizer, aclsum_train, tmp_path):
    tok = tiny_tokenizer
    model = tiny_model(tok).train()
    rows = features(tok, aclsum_train, missing_view_row=2)
    cached = []
    for r in rows:
        c = {k: r[k] for k in ("input_ids", "attention_mask", "labels")}
        for v in ("ea", "as", "ter"):
            ids = torch.tensor([r[f"{v}_input_ids"] or [tok.pad_token_id]])
            mask = torch.tensor([r[f"{v}_attention_mask"] or [0]])
            c[f"{v}_target"] = model.encode_rationale(ids, mask)[0].tolist()
        cached.append(c)
    collate = LsrMwfCollator(tok.pad_token_id)
    trainer = make_trainer(model, tok, tmp_path)
    a = trainer.compute_loss(model, collate(rows))
    b = trainer.compute_loss(model, collate(cached))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_gates_stay_in_unit_interval_and_trajectory_is_written(tiny_tokenizer, aclsum_train, tmp_path):
    tok = tiny_tokenizer
    model = tiny_model(tok)
    rows = features(tok, aclsum_train, n=8)
    trainer = make_trainer(model, tok, tmp_path, train_rows=rows, learning_rate=1e3, max_steps=4, optim="sgd",
                           lr_scheduler_type="constant", max_grad_norm=0.0)
    trainer.train()
    gates = model.gates()
    assert gates.shape == (2, 3)
    assert bool(((gates >= 0) & (gates <= 1)).all())
    assert not torch.allclose(gates, torch.full_like(gates, 0.02))  # they did move
    lines = [json.loads(x) for x in (tmp_path / GATES_FILE).read_text().splitlines()]
    assert [r["step"] for r in lines] == [0, 1, 2, 3, 4]
    torch.testing.assert_close(torch.tensor(lines[0]["gates"]), torch.full((2, 3), 0.02))
    assert lines[-1]["views"] == ["ea", "as", "ter"]
    torch.testing.assert_close(torch.tensor(lines[-1]["gates"]), gates)
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == 4
    for h in logged:
        for key in ("ce", "loss_ea", "loss_as", "loss_ter", "gate/ea/layer00", "gate/ter/layer01"):
            assert key in h, key
        assert h["loss"] == pytest.approx(0.6 * h["ce"] + 0.4 * (h["loss_ea"] + h["loss_as"] + h["loss_ter"]), rel=1e-4)


def test_resume_drops_trajectory_rows_after_the_checkpoint(tmp_path):
    class State:
        is_world_process_zero = True
        global_step = 2

    path = tmp_path / GATES_FILE
    path.write_text("".join(json.dumps({"step": s, "gates": [[0.1]]}) + "\n" for s in (0, 1, 2, 3, 4)))
    args = DistillTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    GateTrajectoryCallback(["ea"], 1).on_train_begin(args, State(), None)
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [0, 1, 2]


def test_frozen_gates_do_not_move(tiny_tokenizer, aclsum_train, tmp_path):
    tok = tiny_tokenizer
    model = tiny_model(tok, freeze_gates=True)
    trainer = make_trainer(model, tok, tmp_path, train_rows=features(tok, aclsum_train, n=4), learning_rate=1.0, max_steps=2)
    trainer.train()
    torch.testing.assert_close(current_gates(model), torch.full((2, 3), 0.02))


def test_gate_learning_rate_moves_the_gates_and_no_weight_decay_touches_them(tiny_tokenizer, aclsum_train, tmp_path):
    tok = tiny_tokenizer
    model = tiny_model(tok)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = make_trainer(model, tok, tmp_path, features(tok, aclsum_train), max_steps=1, learning_rate=1e-6,
                           gate_learning_rate=0.5, weight_decay=0.1, lr_scheduler_type="constant")
    assert not [n for n in trainer.get_decay_parameter_names(model) if "gate" in n]
    trainer.train()
    moved = {n: (p.detach() - before[n]).abs().max().item() for n, p in model.named_parameters()}
    gates = [m for n, m in moved.items() if n.endswith("gate_logits")]
    others = [m for n, m in moved.items() if not n.endswith("gate_logits")]
    assert len(gates) == 2 and min(gates) > 0.1  # Adam's first step moves each logit by about its lr
    assert max(others) < 1e-4


def test_ablation_views_and_baseline(tiny_tokenizer, aclsum_train, tmp_path):
    from transformers import BartConfig, BartForConditionalGeneration

    tok = tiny_tokenizer
    model = tiny_model(tok, views=("as",)).train()
    rows = features(tok, aclsum_train)
    for r in rows:  # an AS-only model ignores nothing it was given: feed only its view
        for v in ("ea", "ter"):
            del r[f"{v}_input_ids"], r[f"{v}_attention_mask"]
    batch = LsrMwfCollator(tok.pad_token_id)(rows)
    trainer = make_trainer(model, tok, tmp_path)
    out = model(**batch)
    torch.testing.assert_close(trainer.compute_loss(model, batch), 0.6 * out.loss + 0.4 * out.view_losses["as"])

    bart = BartForConditionalGeneration(BartConfig(**{k: v for k, v in model.config.to_dict().items()
                                                      if k not in ("views", "gate_init", "freeze_gates", "view_dropout", "model_type")})).train()
    plain = LsrMwfCollator(tok.pad_token_id)(features(tok, aclsum_train, with_views=False))
    trainer = make_trainer(bart, tok, tmp_path)
    torch.testing.assert_close(trainer.compute_loss(bart, plain), bart(**plain).loss)  # no γ for plain BART
    assert current_gates(bart) is None


def test_gammas_must_be_set_for_lsrmwf(tiny_tokenizer, tmp_path):
    with pytest.raises(ValueError, match="gamma_ce and gamma_views are unset"):
        make_trainer(tiny_model(tiny_tokenizer), tiny_tokenizer, tmp_path, gamma_ce=None, gamma_views=None)


def test_noam_schedule_matches_the_paper(tiny_tokenizer, tmp_path):
    model = tiny_model(tiny_tokenizer)
    trainer = make_trainer(model, tiny_tokenizer, tmp_path, lr_schedule="noam", learning_rate=2e-3, warmup_steps=100)
    trainer.create_optimizer_and_scheduler(num_training_steps=1000)
    sched, opt = trainer.lr_scheduler, trainer.optimizer
    used = {}  # the learning rate each update (1-based) runs with
    for step in range(1, 401):
        used[step] = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
    for step in (1, 50, 100, 101, 400):
        assert used[step] == pytest.approx(2e-3 * min(step**-0.5, step * 100**-1.5))
        assert used[step] == pytest.approx(noam_lr(step, 2e-3, 100))
    assert max(used, key=used.get) == 100  # peak at the end of warmup: 2e-3 * 100^-0.5
    assert noam_lr(10000, 2e-3, 10000) == pytest.approx(2e-5)  # the paper's peak
    with pytest.raises(ValueError, match="warmup_steps"):
        DistillTrainingArguments(output_dir=str(tmp_path), lr_schedule="noam", warmup_steps=0, report_to="none")


def test_collator_pads_and_masks_missing_views(tiny_tokenizer):
    pad = tiny_tokenizer.pad_token_id
    collate = LsrMwfCollator(pad)
    batch = collate([
        {"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": [8, 9], "ea_input_ids": [], "ea_attention_mask": [],
         "as_target": [0.5, -1.0]},
        {"input_ids": [5], "attention_mask": [1], "labels": [8, 9, 10], "ea_input_ids": [11, 12], "ea_attention_mask": [1, 1],
         "as_target": [0.0, 0.0]},
    ])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, pad, pad]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[8, 9, -100], [8, 9, 10]]
    assert batch["ea_attention_mask"].tolist() == [[0, 0], [1, 1]]
    assert view_present(batch, "ea").tolist() == [False, True]
    assert view_present(batch, "as").tolist() == [True, False]
    assert view_present(batch, "ter").tolist() == [False, False]
    all_missing = collate([{"input_ids": [1], "ea_input_ids": []}, {"input_ids": [2], "ea_input_ids": []}])
    assert all_missing["ea_attention_mask"].shape == (2, 1) and all_missing["ea_attention_mask"].sum() == 0
    assert collate([{"input_ids": [1, 2, 3]}] * 2).keys() == {"input_ids", "attention_mask"}
    assert LsrMwfCollator(pad, pad_to_multiple_of=8)([{"input_ids": [1, 2, 3]}])["input_ids"].shape == (1, 8)
    with pytest.raises(ValueError, match="unexpected example fields.*ea_text"):
        collate([{"input_ids": [1], "ea_text": "x"}])
    with pytest.raises(ValueError, match="example 1 has fields"):
        collate([{"input_ids": [1], "labels": [2]}, {"input_ids": [1]}])


def test_term_averages_cover_only_batches_with_the_view(tiny_tokenizer, aclsum_train, tmp_path):
    tok = tiny_tokenizer
    model = tiny_model(tok).train()
    trainer = make_trainer(model, tok, tmp_path)
    collate = LsrMwfCollator(tok.pad_token_id)
    with_views = collate(features(tok, aclsum_train, n=2))
    without = collate(features(tok, aclsum_train, n=2, with_views=False))
    trainer.compute_loss(model, with_views)
    trainer.compute_loss(model, without)
    names = trainer._term_names
    counts = dict(zip(names, trainer._term_count.tolist()))
    assert counts == {"ce": 2, "loss_ea": 1, "loss_as": 1, "loss_ter": 1}
    assert math.isfinite(trainer._term_sum.sum().item())


@pytest.mark.parametrize("views", [("ea", "as", "ter"), ()])
def test_gradient_accumulation_gives_the_full_batch_step(tiny_tokenizer, aclsum_train, tmp_path, views):
    """One step over two examples of unequal summary length is the same step whether they come as
    one batch of 2 or as 2 accumulated micro-batches of 1: the token loss is a mean over the step's
    tokens (not a mean of per-batch means) and is not counted once per micro-batch."""
    rows = features(tiny_tokenizer, aclsum_train, n=2, with_views=bool(views))
    rows[1]["labels"] = rows[1]["labels"][:5]
    assert len(rows[0]["labels"]) > 3 * len(rows[1]["labels"])

    def build():
        model = tiny_model(tiny_tokenizer, views=views or ("ea",))
        if views:
            return model
        from transformers import BartConfig, BartForConditionalGeneration

        torch.manual_seed(0)
        return BartForConditionalGeneration(BartConfig(**{k: v for k, v in model.config.to_dict().items() if k not in (
            "views", "gate_init", "freeze_gates", "view_dropout", "model_type")}))

    def step(batch, accumulation):
        model = build()
        trainer = make_trainer(model, tiny_tokenizer, tmp_path / f"{batch}x{accumulation}", rows, max_steps=1, optim="sgd",
                               learning_rate=0.5, max_grad_norm=0.0, per_device_train_batch_size=batch,
                               gradient_accumulation_steps=accumulation, dataloader_drop_last=False)
        trainer.train()
        return trainer.state.log_history[0]["loss"], {n: p.detach().clone() for n, p in model.named_parameters()}

    (loss_full, after_full), (loss_acc, after_acc) = step(2, 1), step(1, 2)
    assert loss_acc == pytest.approx(loss_full, rel=1e-5)
    initial = build().state_dict()
    assert [n for n in after_full if not torch.equal(after_full[n], initial[n])]
    for name in after_full:
        torch.testing.assert_close(after_acc[name], after_full[name], rtol=1e-5, atol=1e-6, msg=name)
