"""The LSR-MWF model: what must train trains, gates stay gates, generation survives save/load."""

import itertools

import pytest
import tiny
import torch
from devices import DEVICES
from transformers import AutoModelForSeq2SeqLM, BartConfig, BartForConditionalGeneration, T5Config

import lsrmwf  # noqa: F401  (registers the Auto classes)
from lsrmwf import LsrMwfConfig, LsrMwfForConditionalGeneration

TINY = tiny.bart(vocab_size=120, encoder_layers=2, decoder_layers=3, max_position_embeddings=64, dropout=0.0)


def tiny_model(**overrides):
    torch.manual_seed(0)
    return LsrMwfForConditionalGeneration(LsrMwfConfig(**{**TINY, **overrides}))


def batch(b=3, t=12, r=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, TINY["vocab_size"], (b, t), generator=g)
    mask = torch.ones_like(ids)
    mask[-1, t - 4:] = 0
    ids[-1, t - 4:] = 1
    labels = torch.randint(4, TINY["vocab_size"], (b, 7), generator=g)
    views = {}
    for v in ("ea", "as", "ter"):
        views[f"{v}_input_ids"] = torch.randint(4, TINY["vocab_size"], (b, r), generator=g)
        views[f"{v}_attention_mask"] = torch.ones(b, r, dtype=torch.long)
    return dict(input_ids=ids, attention_mask=mask, labels=labels, **views)


def grads(module):
    return [p.grad for p in module.parameters()]


def test_view_losses_train_the_view_modules_but_not_the_target_encoder():
    model = tiny_model()
    out = model(**batch())
    assert set(out.view_losses) == {"ea", "as", "ter"}
    for loss in out.view_losses.values():
        assert loss.requires_grad and 0.0 < loss.item() < 2.0
    sum(out.view_losses.values()).backward()
    for view, module in model.model.encoder.views.items():
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{view}.{name} got no gradient from the view losses"
    # the rationale targets carry no gradient: BART's encoder layers are untouched by the alignment
    assert all(g is None or g.abs().sum() == 0 for g in grads(model.model.encoder.layers))


def test_each_view_loss_reaches_its_module_and_those_below_it_in_the_hierarchy():
    model = tiny_model()
    out = model(**batch())
    out.view_losses["as"].backward()
    views = model.model.encoder.views
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in views["as"].parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in views["ea"].layer.parameters())  # AS reads EA
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in views["ter"].parameters())  # TER is above AS


def test_combined_loss_trains_every_gate_and_view():
    model = tiny_model()
    out = model(**batch())
    (0.6 * out.loss + 0.4 * sum(out.view_losses.values())).backward()
    for i, layer in enumerate(model.model.decoder.layers):
        assert layer.gate_logits.grad is not None and (layer.gate_logits.grad != 0).all(), f"layer {i} gates got no gradient"
    for view, module in model.model.encoder.views.items():
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()), view


def test_gates_start_at_gate_init_and_stay_in_unit_interval_under_huge_learning_rate():
    model = tiny_model(gate_init=0.01)
    assert model.gates().shape == (3, 3)
    torch.testing.assert_close(model.gates(), torch.full((3, 3), 0.01))
    gate_params = [layer.gate_logits for layer in model.model.decoder.layers]
    # Adam moves each gate parameter by ~lr per step: 100 is far past any sane learning rate
    opt = torch.optim.Adam(gate_params, lr=100.0)
    for step in range(4):
        out = model(**batch(seed=step))
        (out.loss + sum(out.view_losses.values())).backward()
        opt.step()
        opt.zero_grad()
        g = model.gates()
        assert torch.isfinite(g).all() and (g >= 0).all() and (g <= 1).all(), g
    assert not torch.allclose(model.gates(), torch.full((3, 3), 0.01)), "gates never moved"


def test_frozen_gates_do_not_move():
    model = tiny_model(freeze_gates=True)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    out = model(**batch())
    (out.loss + sum(out.view_losses.values())).backward()
    opt.step()
    torch.testing.assert_close(model.gates(), torch.full((3, 3), 0.02))


def test_each_decoder_layer_reads_its_own_fusion_once_gates_differ():
    model = tiny_model().eval()
    seen = {}
    hooks = [
        layer.encoder_attn.k_proj.register_forward_hook(lambda m, args, out, i=i: seen.__setitem__(i, args[0].detach().clone()))
        for i, layer in enumerate(model.model.decoder.layers)
    ]
    b = batch()
    with torch.no_grad():
        model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"])
        assert torch.equal(seen[0], seen[1])  # equal gates -> equal fused states
        for i, layer in enumerate(model.model.decoder.layers):
            layer.gate_logits.fill_((-3.0 + 2.0 * i) / layer.gate_logit_scale)  # gates sigmoid(-3), sigmoid(-1), sigmoid(1)
        model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"])
    for h in hooks:
        h.remove()
    for i, j in itertools.combinations(range(3), 2):
        assert not torch.allclose(seen[i], seen[j]), f"decoder layers {i} and {j} read the same states"
    # and the fusion is X + sum_v g_v * view_v, exactly
    enc = model.get_encoder()(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
    layer = model.model.decoder.layers[2]
    expected = enc.last_hidden_state + sum(layer.gates()[k] * enc.view_states[:, k] for k in range(3))
    torch.testing.assert_close(seen[2], expected)


def test_fusion_gradients_match_the_plain_expression():
    from lsrmwf.models.modeling_lsrmwf import GatedFusion

    g = torch.Generator().manual_seed(3)
    hidden = torch.randn(2, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    views = torch.randn(2, 3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    gates = torch.rand(3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(GatedFusion.apply, (hidden, views, gates))
    torch.testing.assert_close(GatedFusion.apply(hidden, views, gates), hidden + torch.einsum("v,bvtd->btd", gates, views))
    # mixed precision (fp32 hidden states, bf16 views and gates): each gradient comes back in its input's dtype
    hidden32 = hidden.detach().float().requires_grad_()
    views16, gates16 = (t.detach().bfloat16().requires_grad_() for t in (views, gates))
    GatedFusion.apply(hidden32, views16, gates16).sum().backward()
    assert (hidden32.grad.dtype, views16.grad.dtype, gates16.grad.dtype) == (torch.float32, torch.bfloat16, torch.bfloat16)
    torch.testing.assert_close(gates16.grad.float(), views.detach().sum((0, 2, 3)).float(), rtol=2e-2, atol=2e-2)


def test_trains_under_bf16_autocast():
    """The --bf16 path (autocast): forward and backward run, and gates and views get gradient."""
    model = tiny_model()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**batch())
        loss = out.loss + sum(out.view_losses.values())
    loss.backward()
    gates = torch.stack([layer.gate_logits.grad for layer in model.model.decoder.layers])
    assert torch.isfinite(gates).all() and (gates != 0).all()
    for view, module in model.model.encoder.views.items():
        assert module.layer.fc1.weight.grad.abs().sum() > 0, view


def test_missing_rationales_are_masked_out_of_their_view_loss():
    model = tiny_model().eval()
    b = batch()
    b["ea_attention_mask"][1:] = 0  # only the first example has an EA rationale
    b["ter_attention_mask"][:] = 0  # nobody has TER
    with torch.no_grad():
        full = model(**b).view_losses
        first = model(**{k: v[:1] for k, v in b.items()}).view_losses
    torch.testing.assert_close(full["ea"], first["ea"])
    assert full["ter"].item() == 0.0


def test_precomputed_targets_give_the_same_losses_as_rationale_ids():
    model = tiny_model().eval()
    b = batch()
    b["as_attention_mask"][0] = 0
    targets = {f"{v}_target": model.encode_rationale(b[f"{v}_input_ids"], b[f"{v}_attention_mask"]) for v in ("ea", "as", "ter")}
    assert targets["as_target"][0].abs().sum() == 0  # no rationale -> zero row
    plain = {k: v for k, v in b.items() if not k.startswith(("ea_", "as_", "ter_"))}
    with torch.no_grad():
        from_ids = model(**b).view_losses
        from_targets = model(**plain, **targets).view_losses
    for v in from_ids:
        torch.testing.assert_close(from_ids[v], from_targets[v])


def test_inference_needs_the_document_only_and_no_rationale_means_no_view_losses():
    model = tiny_model().eval()
    b = batch()
    out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"])
    assert out.view_losses is None and out.loss is not None


@pytest.mark.parametrize("device", DEVICES)
def test_beam_search_computes_the_fusion_once_per_input_and_reads_the_cache(device):
    """Fusion once per input, cross-attention keys/values computed once per layer and then read from the
    cache, whatever name the installed transformers gives the cache; no deprecation warning on the way;
    the cached decode gives the same beams as an uncached one."""
    import warnings

    model = tiny_model().eval().to(device)
    layers = model.model.decoder.layers
    fusions, cross_kv = [], []
    for layer in layers:
        original = layer.fuse
        layer.fuse = lambda *a, _orig=original: fusions.append(1) or _orig(*a)
        layer.encoder_attn.k_proj.register_forward_hook(lambda *_: cross_kv.append(1))
    b = {k: v.to(device) for k, v in batch().items()}
    kwargs = dict(attention_mask=b["attention_mask"], num_beams=4, max_length=10, min_length=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        cached = model.generate(b["input_ids"], **kwargs)
    steps = cached.shape[1] - 1
    assert steps >= 7
    assert len(fusions) == len(layers), f"{len(fusions)} fusions for {len(layers)} layers over {steps} decode steps"
    assert len(cross_kv) == len(layers), f"cross-attention keys computed {len(cross_kv)} times: the cache is not read"
    fusions.clear()
    uncached = model.generate(b["input_ids"], use_cache=False, **kwargs)
    assert len(fusions) == len(layers) * steps  # without a cache every step fuses again: the count can tell
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("device", DEVICES)
def test_generate_with_beams_survives_save_and_load(tmp_path, device):
    model = tiny_model(gate_init=0.05).eval().to(device)
    with torch.no_grad():
        model.model.decoder.layers[1].gate_logits.add_(1.5 / model.config.gate_logit_scale)  # trained-looking, non-initial gates
    b = {k: v.to(device) for k, v in batch().items()}
    kwargs = dict(attention_mask=b["attention_mask"], num_beams=4, max_length=12, min_length=5, no_repeat_ngram_size=2, length_penalty=2.0)
    before = model.generate(b["input_ids"], **kwargs)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval().to(device)
    assert type(loaded) is LsrMwfForConditionalGeneration
    assert loaded.config.views == ["ea", "as", "ter"] and loaded.config.gate_init == 0.05
    for (name, p), (name2, q) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert name == name2 and torch.equal(p, q), name
    assert torch.equal(loaded.generate(b["input_ids"], **kwargs), before)


@pytest.mark.parametrize("views", [("ea",), ("as",), ("ter",), ("ea", "as"), ("as", "ter"), ("ter", "ea")])
def test_ablation_views(views):
    model = tiny_model(views=list(views))
    assert list(model.config.views) == [v for v in ("ea", "as", "ter") if v in views]
    assert model.gates().shape == (3, len(views))
    assert set(model.model.encoder.views) == set(views)
    out = model(**batch())
    assert set(out.view_losses) == set(views)
    (out.loss + sum(out.view_losses.values())).backward()
    model.eval()
    b = batch()
    assert model.generate(b["input_ids"], attention_mask=b["attention_mask"], num_beams=2, max_length=6).shape[0] == 3


def test_starts_from_a_bart_checkpoint_and_refuses_other_architectures(tmp_path):
    torch.manual_seed(0)
    bart = BartForConditionalGeneration(BartConfig(**TINY))
    bart.save_pretrained(tmp_path / "bart")
    model = LsrMwfForConditionalGeneration.from_pretrained(tmp_path / "bart", gate_init=0.01, views=["ea", "ter"])
    assert model.config.model_type == "lsrmwf" and model.config.views == ["ea", "ter"]
    torch.testing.assert_close(model.gates(), torch.full((3, 2), 0.01))
    bart_state = bart.state_dict()
    for name, p in model.state_dict().items():
        if name in bart_state:
            assert torch.equal(p, bart_state[name]), f"{name} was not loaded from the BART checkpoint"
    T5Config(d_model=16, num_layers=1, num_heads=1, d_kv=8, d_ff=16, vocab_size=50).save_pretrained(tmp_path / "t5")
    with pytest.raises(ValueError, match=r"model_type 't5' is not a BART checkpoint"):
        LsrMwfForConditionalGeneration.from_pretrained(tmp_path / "t5")


def test_view_ffn_width_is_resolved_once_and_stored(tmp_path):
    model = tiny_model(encoder_ffn_dim=128)
    assert model.config.view_ffn_dim == 2 * TINY["d_model"]
    assert all(m.layer.fc1.out_features == 2 * TINY["d_model"] for m in model.model.encoder.views.values())
    assert all(layer.fc1.out_features == 128 for layer in model.model.encoder.layers)
    model.save_pretrained(tmp_path)
    # the saved number, not the default rule, decides the width when the checkpoint is read back
    assert LsrMwfConfig.from_pretrained(tmp_path, d_model=16).view_ffn_dim == 2 * TINY["d_model"]
    full = tiny_model(encoder_ffn_dim=128, view_ffn_dim=128)
    assert all(m.layer.fc1.out_features == 128 for m in full.model.encoder.views.values())


def test_config_rejects_bad_views_and_gates():
    with pytest.raises(ValueError, match="views"):
        LsrMwfConfig(views=["ea", "xx"])
    with pytest.raises(ValueError, match="views"):
        LsrMwfConfig(views=[])
    with pytest.raises(ValueError, match="gate_init"):
        LsrMwfConfig(gate_init=1.5)


def test_gradient_checkpointing_recomputes_the_view_layers_with_the_same_gradients():
    plain, ckpt = tiny_model(), tiny_model()
    if hasattr(ckpt, "activation_checkpointing_enable"):  # transformers >= 5.23; the older name is deprecated there
        ckpt.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        ckpt.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert all(module.layer.gradient_checkpointing for module in ckpt.model.encoder.views.values())
    for model in (plain, ckpt):
        model.train()
        out = model(**batch())
        (out.loss + sum(out.view_losses.values())).backward()
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_fusion_keeps_no_per_layer_copy_of_the_views_for_backward():
    """Every decoder layer fuses the same view states; what autograd keeps for the fusions must not
    grow with the number of decoder layers (an einsum kept one permuted copy per layer)."""

    def view_sized_storages(decoder_layers):
        model = tiny_model(decoder_layers=decoder_layers)
        sizes = []

        def pack(t):
            sizes.append((t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()))
            return t

        b = batch()
        view_bytes = b["input_ids"].shape[0] * 3 * b["input_ids"].shape[1] * TINY["d_model"] * 4
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(**b)
        return len({ptr for ptr, n in sizes if n == view_bytes})

    assert view_sized_storages(2) == view_sized_storages(6) == 1


def test_fusion_and_view_pooling_fast_paths_match_the_plain_formulas():
    """GatedFusion's fused multiply-add (fp32, non-contiguous input), its autocast path, and the
    one-pass pooling of all views give what the plain per-layer / per-view expressions give."""
    from lsrmwf.models.modeling_lsrmwf import GatedFusion, masked_mean

    g = torch.Generator().manual_seed(4)
    views = torch.randn(2, 3, 6, 8, generator=g, requires_grad=True)
    gates = torch.rand(3, generator=g, requires_grad=True)
    hidden = torch.randn(2, 8, 6, generator=g).transpose(1, 2).requires_grad_()  # non-contiguous
    plain = lambda h, v, w: h + torch.matmul(w.to(v.dtype), v.reshape(v.shape[0], v.shape[1], -1)).view_as(h)  # noqa: E731
    out, grad = GatedFusion.apply(hidden, views, gates), torch.randn(2, 6, 8, generator=g)
    expected = plain(hidden, views, gates)
    torch.testing.assert_close(out, expected)
    for a, b in zip(torch.autograd.grad(out, (hidden, views, gates), grad), torch.autograd.grad(expected, (hidden, views, gates), grad)):
        torch.testing.assert_close(a, b)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, expected = GatedFusion.apply(hidden, views, gates), plain(hidden, views, gates)
    assert out.dtype == expected.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=0, atol=0)

    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, 4:] = 0
    pooled = masked_mean(views, mask)
    assert pooled.shape == (2, 3, 8)
    for k in range(3):
        torch.testing.assert_close(pooled[:, k], masked_mean(views[:, k], mask))


def test_training_fuses_all_layers_at_once_with_the_per_layer_results():
    """With gradients on, the decoder fuses every layer in one AllLayersFusion; the loss and every
    gradient equal the per-layer GatedFusion path's, and each layer still reads its fusion through fuse()."""
    from lsrmwf.models.modeling_lsrmwf import AllLayersFusion, GatedFusion, LsrMwfDecoder

    g = torch.Generator().manual_seed(5)
    hidden = torch.randn(2, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    views = torch.randn(2, 3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    gates = torch.rand(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(AllLayersFusion.apply, (hidden, views, gates))
    fused = AllLayersFusion.apply(hidden, views, gates)
    for layer in range(4):
        torch.testing.assert_close(fused[layer], GatedFusion.apply(hidden, views, gates[layer]))

    def run(at_once):
        model = tiny_model(gate_init=0.1)
        calls = []
        for layer in model.model.decoder.layers:
            original = layer.fuse
            layer.fuse = lambda *a, _orig=original: calls.append(1) or _orig(*a)
        seen = []
        original_apply = AllLayersFusion.apply
        AllLayersFusion.apply = lambda *a: seen.append(1) or original_apply(*a)
        decide = LsrMwfDecoder._fuses_all_layers_at_once
        if not at_once:
            LsrMwfDecoder._fuses_all_layers_at_once = lambda *a: False
        try:
            out = model(**batch())
            (out.loss + sum(out.view_losses.values())).backward()
        finally:
            AllLayersFusion.apply = original_apply
            LsrMwfDecoder._fuses_all_layers_at_once = decide
        assert len(calls) == len(model.model.decoder.layers) and len(seen) == int(at_once)
        return out.loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    (loss_a, grads_a), (loss_b, grads_b) = run(True), run(False)
    torch.testing.assert_close(loss_a, loss_b)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], msg=name)
