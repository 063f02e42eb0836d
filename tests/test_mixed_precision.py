"""Mixed precision: a bf16 Trainer run end to end on CPU, and what CPU can check of the fp16 (CUDA) path.

fp16 on a GPU trains with a loss scale (torch.amp's GradScaler, or DeepSpeed's dynamic scaler, which
starts at 2^16 in ds_configs/*.json): the loss is multiplied by the scale before backward, every
gradient is checked for inf/nan, and a step with one is skipped and the scale halved. A gradient that
overflows at every scale the scaler can reach would skip every step. The gates' gradient is the
riskiest one: each sums a product over every position and channel of the document (B*T*D terms), so
it is taken in fp32 (GatedFusion.backward). The view losses' cosine is computed in fp32 too.
"""

import json
import math

import pytest
import torch
from devices import DEVICES

from lsrmwf.models.modeling_lsrmwf import GatedFusion, alignment_loss, masked_mean

SCALE = 2.0**16  # the initial loss scale of GradScaler and of ds_configs/*.json (initial_scale_power 16)


@pytest.mark.parametrize("device", DEVICES)
def test_gate_gradient_under_fp16_loss_scaling_stays_finite(device):
    torch.manual_seed(0)
    b, v, t, d = 2, 3, 256, 256
    views32 = (torch.randn(b, v, t, d) * 0.5 + 0.5).to(device)  # post-LayerNorm-sized, with a common sign: terms add up
    hidden32 = torch.randn(b, t, d).to(device)
    grad32 = torch.full((b, t, d), 1e-3, device=device) * SCALE  # d loss / d fused, loss-scaled: 65.5 per element
    gates = torch.full((v,), 0.02, device=device, requires_grad=True)  # torch.amp: parameters (and gates) stay fp32

    views = views32.half().requires_grad_()
    hidden = hidden32.half().requires_grad_()
    out = GatedFusion.apply(hidden, views, gates)
    assert out.dtype == torch.float16
    out.backward(grad32.half())
    assert torch.isfinite(gates.grad).all() and torch.isfinite(views.grad).all() and torch.isfinite(hidden.grad).all()
    # the reference in fp32: the gate gradient is far above fp16's 65504, an fp16 sum would be inf
    reference = (grad32.unsqueeze(1) * views32).sum(dim=(0, 2, 3))
    assert reference.min() > 65504 * 10
    torch.testing.assert_close(gates.grad, reference, rtol=2e-3, atol=0)
    # unscaled (what the optimizer sees after GradScaler.unscale_) it is an ordinary gradient
    assert (gates.grad / SCALE).abs().max() < 1e3


def test_fused_forward_and_view_gradient_in_fp16_match_fp32():
    torch.manual_seed(1)
    views32, hidden32 = torch.randn(2, 3, 16, 8), torch.randn(2, 16, 8)
    gates = torch.tensor([0.02, 0.5, 0.9])
    grad = torch.randn(2, 16, 8) * 1e-3 * SCALE
    v16 = views32.half().requires_grad_()
    out16 = GatedFusion.apply(hidden32.half(), v16, gates)
    out16.backward(grad.half())
    v32 = views32.clone().requires_grad_()
    out32 = hidden32 + (gates.view(1, 3, 1, 1) * v32).sum(1)
    out32.backward(grad)
    torch.testing.assert_close(out16.float(), out32, rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(v16.grad.float(), v32.grad, rtol=2e-3, atol=2e-2)


@pytest.mark.parametrize("device", DEVICES)
def test_view_loss_cosine_is_fp32_and_finite_for_half_inputs(device):
    torch.manual_seed(2)
    pooled32 = (torch.randn(4, 1024) * 20).to(device)  # norm ~640: its square (~4e5) overflows fp16
    target32 = pooled32 + torch.randn(4, 1024).to(device) * 20
    present = torch.tensor([True, True, False, True], device=device)
    reference = alignment_loss(pooled32, target32, present)
    for dtype in (torch.float16, torch.bfloat16):
        pooled = pooled32.to(dtype).requires_grad_()
        loss = alignment_loss(pooled, target32.to(dtype), present)
        assert loss.dtype == torch.float32 and math.isfinite(loss.item())
        assert abs(loss.item() - reference.item()) < 1e-2
        (loss * SCALE).backward()
        assert pooled.grad.dtype == dtype and torch.isfinite(pooled.grad).all()
    # masked_mean accumulates in fp32: 1024 positions of 100 sum past fp16's range
    hidden = torch.full((1, 1024, 4), 100.0, dtype=torch.float16, device=device)
    mean = masked_mean(hidden, torch.ones(1, 1024, device=device))
    assert mean.dtype == torch.float32 and torch.equal(mean, torch.full((1, 4), 100.0, device=device))


def test_bf16_training_run_end_to_end_on_cpu(aclsum_train, tmp_path):
    from test_train_script import TINY, read_jsonl, write_rationales

    from lsrmwf.commands.train import main

    rationales = write_rationales(tmp_path / "r.jsonl", aclsum_train, 8)
    out = tmp_path / "bf16"
    results = main(["--dataset_name", "aclsum", "--max_train_samples", "8", "--max_predict_samples", "3",
                    "--rationale_file", rationales, "--output_dir", str(out), "--do_train", "--do_predict",
                    *TINY, "--max_steps", "3", "--save_strategy", "no", "--bf16", "--lr_schedule", "hf"])
    args = torch.load(out / "training_args.bin", weights_only=False)
    assert args.bf16 and args.use_cpu
    logged = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    assert len(logged) == 3
    for h in logged:
        assert all(math.isfinite(h[k]) for k in ("loss", "ce", "loss_ea", "loss_as", "loss_ter", "grad_norm"))
    gates = read_jsonl(out / "gates.jsonl")
    assert [g["step"] for g in gates] == [0, 1, 2, 3] and gates[-1]["gates"] != gates[0]["gates"]
    assert len(read_jsonl(out / "predictions.jsonl")) == 3 and results["predict_samples"] == 3
