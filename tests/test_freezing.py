"""--freeze_encoder / --freeze_embeddings: what gets gradient and what does not."""

import tiny
import torch
from transformers import BartConfig, BartForConditionalGeneration

from lsrmwf import LsrMwfConfig, LsrMwfForConditionalGeneration
from lsrmwf.training.freezing import freeze_parameters

TINY = tiny.bart(vocab_size=80, d_model=16, encoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                max_position_embeddings=32, dropout=0.0)


def batch():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 80, (2, 10), generator=g)
    out = dict(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.randint(4, 80, (2, 5), generator=g))
    for v in ("ea", "as", "ter"):
        out[f"{v}_input_ids"] = torch.randint(4, 80, (2, 6), generator=g)
        out[f"{v}_attention_mask"] = torch.ones(2, 6, dtype=torch.long)
    return out


def gradients(model):
    torch.manual_seed(0)
    out = model(**batch())
    (0.6 * out.loss + 0.4 * sum(out.view_losses.values())).backward()
    return {n: (p.grad is not None and p.grad.abs().sum().item() > 0) for n, p in model.named_parameters()}


def test_freeze_encoder_keeps_views_gates_decoder_and_embeddings_training():
    torch.manual_seed(0)
    model = LsrMwfForConditionalGeneration(LsrMwfConfig(**TINY))
    total = sum(p.numel() for p in model.parameters())
    counts = freeze_parameters(model, freeze_encoder=True)
    got = gradients(model)
    encoder_own = [n for n in got if n.startswith("model.encoder.") and ".views." not in n and "embed_tokens" not in n]
    assert encoder_own and not any(got[n] for n in encoder_own)  # frozen: no gradient at all
    assert all(not dict(model.named_parameters())[n].requires_grad for n in encoder_own)
    views = [n for n in got if ".views." in n]
    assert views and all(got[n] for n in views), [n for n in views if not got[n]]
    assert all(got[n] for n in got if n.endswith("gate_logits"))
    assert all(got[n] for n in got if n.startswith("model.decoder.layers.") and "bias" not in n)
    assert got["model.shared.weight"]
    assert counts["total"] == total
    assert counts["trainable"] == total - sum(dict(model.named_parameters())[n].numel() for n in encoder_own)


def test_freeze_embeddings_freezes_tokens_lm_head_and_positions_only():
    torch.manual_seed(0)
    model = LsrMwfForConditionalGeneration(LsrMwfConfig(**TINY))
    counts = freeze_parameters(model, freeze_embeddings=True)
    got = gradients(model)
    frozen = {"model.shared.weight", "model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight"}
    assert not any(got[n] for n in frozen if n in got)
    assert not model.lm_head.weight.requires_grad  # tied with the token embeddings
    assert all(got[n] for n in got if ".views." in n and "embed_positions" in n)  # the views' own positions train
    assert all(got[n] for n in got if n.startswith("model.encoder.layers.") and "bias" not in n)
    assert counts["trainable"] == counts["total"] - sum(p.numel() for n, p in model.named_parameters() if n in frozen)


def test_freezing_works_for_plain_bart_and_an_optimizer_step_leaves_frozen_weights_alone():
    torch.manual_seed(0)
    model = BartForConditionalGeneration(BartConfig(**TINY))
    freeze_parameters(model, freeze_encoder=True, freeze_embeddings=True)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    b = batch()
    model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).loss.backward()
    opt.step()
    for n, p in model.named_parameters():
        moved = not torch.equal(p, before[n])
        assert moved == p.requires_grad or "bias" in n, n
        if n.startswith("model.encoder.") or n == "model.shared.weight":
            assert not moved, n


def test_train_py_reports_the_trainable_count(aclsum_train, tmp_path, capsys):
    import json

    from test_presets import TINY_MODEL

    from lsrmwf.commands.train import main

    out = tmp_path / "frozen"
    main(["--dataset_name", "aclsum", "--max_train_samples", "4", "--output_dir", str(out), "--do_train",
          "--max_steps", "1", "--freeze_encoder", "--freeze_embeddings", *TINY_MODEL])
    params = json.loads((out / "run_summary.json").read_text())["parameters"]
    assert "message" not in params
    assert 0 < params["trainable"] < params["total"]
    assert f"trainable parameters: {params['trainable']} of {params['total']}" in capsys.readouterr().out
