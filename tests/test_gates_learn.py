"""The gates learn from the token loss through the cross-attention: a gate whose view carries the
answer rises, a gate whose view is noise falls, and near the initial value a gate moves about as
fast as a directly learned weight (the scaled logit of ``resolve_gate_logit_scale``)."""

import math

import pytest
import tiny
import torch
from torch import nn

from lsrmwf import LsrMwfConfig, LsrMwfForConditionalGeneration

V, D, CLASSES = 40, 32, 4


class StubView(nn.Module):
    """Replaces a view module: its output is either a code of the answer token (the same vector at
    every document position) or fresh Gaussian noise of the same per-dimension scale."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.code = torch.randn(V, D, generator=torch.Generator().manual_seed(7))
        self.answer = None

    def forward(self, embeds, mask, previous=None):
        b, t, d = embeds.shape
        if self.kind == "answer":
            return self.code[self.answer].unsqueeze(1).expand(b, t, d)
        if self.kind == "zeros":
            return embeds.new_zeros(b, t, d)
        return torch.randn(b, t, d)


def model_with_stub_views(kinds, gate_init, **kw):
    torch.manual_seed(0)
    cfg = LsrMwfConfig(
        **tiny.bart(vocab_size=V, d_model=D, max_position_embeddings=32), **tiny.NO_DROPOUT, views=["ea", "as"], gate_init=gate_init,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, **kw,
    )
    model = LsrMwfForConditionalGeneration(cfg)
    stubs = {v: StubView(k) for v, k in zip(("ea", "as"), kinds)}
    for v, stub in stubs.items():
        model.model.encoder.views[v] = stub
    return model, stubs


def train(model, stubs, steps, lr=2e-3, seed=0):
    """Adam on every trainable parameter. The document is one repeated token, so the answer
    (labels = [c, eos], c one of CLASSES tokens) reaches the decoder only through a fused view."""
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    losses = []
    for _ in range(steps):
        c = torch.randint(5, 5 + CLASSES, (16,), generator=g)
        for stub in stubs.values():
            stub.answer = c
        ids = torch.full((16, 10), 4)
        labels = torch.stack([c, torch.full_like(c, 2)], 1)
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(out.loss.item())
    return losses


def test_gate_of_a_helpful_view_rises_and_of_a_noisy_view_falls():
    model, stubs = model_with_stub_views(("answer", "noise"), gate_init=0.2)
    losses = train(model, stubs, steps=80)
    gates = model.gates()  # [layers, (ea = answer, as = noise)]
    assert sum(losses[-10:]) / 10 < 0.6 * sum(losses[:10]) / 10  # the decoder learned to read the answer view
    assert (gates[:, 0] > 0.35).all(), gates  # every layer opens the gate of the view that carries the answer
    assert (gates[:, 1] < 0.17).all(), gates  # and closes the one that only adds noise
    assert ((gates >= 0) & (gates <= 1)).all()


def test_a_view_that_contributes_nothing_gives_its_gate_no_gradient():
    # the gates' only gradient is the one that reaches them through the fusion
    model, stubs = model_with_stub_views(("answer", "zeros"), gate_init=0.02)
    train(model, stubs, steps=1)
    logits = torch.stack([layer.gate_logits for layer in model.model.decoder.layers])
    torch.testing.assert_close(logits[:, 1], torch.full((2,), logits[0, 1].item()))
    torch.testing.assert_close(model.gates()[:, 1], torch.full((2,), 0.02))
    assert (model.gates()[:, 0] != 0.02).all()


def test_frozen_gates_stay_put_while_the_rest_learns():
    model, stubs = model_with_stub_views(("answer", "noise"), gate_init=0.2, freeze_gates=True)
    train(model, stubs, steps=5)
    torch.testing.assert_close(model.gates(), torch.full((2, 2), 0.2))


@pytest.mark.parametrize("gate_init", [0.001, 0.01, 0.02, 0.1])
def test_near_its_init_a_gate_moves_at_the_learning_rate(gate_init):
    """One Adam step moves each parameter by its learning rate; the scale makes that the gate's move too
    (to first order), instead of g(1-g) times it (1/51 at 0.02)."""
    model, stubs = model_with_stub_views(("answer", "noise"), gate_init=gate_init)
    assert model.config.gate_logit_scale == pytest.approx(1 / (gate_init * (1 - gate_init)))
    torch.testing.assert_close(model.gates(), torch.full((2, 2), gate_init))  # starts exactly at the init
    lr = gate_init / 100
    opt = torch.optim.Adam([layer.gate_logits for layer in model.model.decoder.layers], lr=lr)
    c = torch.arange(5, 5 + CLASSES).repeat(4)
    for stub in stubs.values():
        stub.answer = c
    ids = torch.full((16, 10), 4)
    model(input_ids=ids, labels=torch.stack([c, torch.full_like(c, 2)], 1)).loss.backward()
    opt.step()
    moved = (model.gates() - gate_init).abs()
    assert torch.allclose(moved, torch.full_like(moved, lr), rtol=0.05), moved / lr


def test_checkpoints_saved_before_the_scale_reload_their_plain_logits(tmp_path):
    import json

    model, _ = model_with_stub_views(("answer", "noise"), gate_init=0.02)
    model = LsrMwfForConditionalGeneration(model.config)  # real view modules, so it saves and reloads
    with torch.no_grad():
        for layer in model.model.decoder.layers:
            layer.gate_logits.fill_(math.log(0.3 / 0.7))  # what an old checkpoint stored: a plain logit
    model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["gate_logit_scale"] == pytest.approx(51.0204, rel=1e-4)  # resolved and stored
    del cfg["gate_logit_scale"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    old = LsrMwfForConditionalGeneration.from_pretrained(tmp_path)
    torch.testing.assert_close(old.gates(), torch.full((2, 2), 0.3))
