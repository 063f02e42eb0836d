"""On a CUDA GPU: the LSR-MWF model under fp32 and bf16/fp16 autocast (the gate gradient and the view
cosine in fp32), 20-step train.py runs (LSR-MWF in bf16 and fp16, causal KD with a teacher) and
multiple-choice scoring. Every test here is marked ``cuda``: it skips without a GPU (deselected under
CI=true, see conftest.py); scripts/gpu_check.sh runs them on a GPU machine. The fusion-once beam search,
save/load and the fp16 gate-gradient/cosine tests run on CUDA through their ``device`` parameter
(test_modeling.py, test_mixed_precision.py)."""

import json
import math

import pytest
import tiny
import torch
from devices import CUDA_MARKS

pytestmark = list(CUDA_MARKS)

SCALE = 2.0**16  # GradScaler's initial loss scale


def _model_and_batch():
    from test_modeling import batch, tiny_model

    model = tiny_model(gate_init=0.1).cuda()
    return model, {k: v.cuda() for k, v in batch().items()}


def _step(model, b, dtype):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
        out = model(**b)
        loss = out.loss + sum(out.view_losses.values())
    (loss * (SCALE if dtype is torch.float16 else 1.0)).backward()
    return out, {n: p.grad.float() / (SCALE if dtype is torch.float16 else 1.0)
                 for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("dtype", [None, torch.bfloat16, torch.float16], ids=["fp32", "bf16", "fp16"])
def test_forward_backward_on_cuda_with_fp32_gate_gradient_and_cosine(dtype):
    """Views, gates and decoder all on the GPU; under autocast the view losses (cosine) are fp32, every
    gate gets a finite fp32 gradient (fp16: through the 2^16 loss scale), and loss and gradients follow fp32's."""
    model, b = _model_and_batch()
    ref_out, ref_grads = _step(model, b, None)
    out, grads = _step(model, b, dtype)
    assert out.logits.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in model.parameters())
    for view, loss in out.view_losses.items():
        assert loss.dtype == torch.float32 and math.isfinite(loss.item()), view
        assert abs(loss.item() - ref_out.view_losses[view].item()) < 2e-2, view
    assert abs(out.loss.item() - ref_out.loss.item()) < 5e-2 * ref_out.loss.item()
    for layer in model.model.decoder.layers:
        g = layer.gate_logits.grad
        assert g.dtype == torch.float32 and torch.isfinite(g).all() and (g != 0).all()
    assert grads.keys() == ref_grads.keys()
    for name, g in grads.items():
        assert torch.isfinite(g).all(), name
    gates = [n for n in grads if n.endswith("gate_logits")]
    got, want = torch.cat([grads[n] for n in gates]), torch.cat([ref_grads[n] for n in gates])
    assert torch.nn.functional.cosine_similarity(got, want, dim=0) > 0.98
    for view, module in model.model.encoder.views.items():
        assert module.layer.fc1.weight.grad.abs().sum() > 0, view


def _device_of_run(out):
    args = torch.load(out / "training_args.bin", weights_only=False)
    return args.use_cpu, args.device.type


@pytest.mark.parametrize("precision", ["--bf16", "--fp16"])
def test_train_py_lsrmwf_20_steps_on_cuda(aclsum_train, tmp_path, precision):
    from test_train_script import TINY, read_jsonl, write_rationales

    from lsrmwf.commands.train import main

    rationales = write_rationales(tmp_path / "r.jsonl", aclsum_train, 16)
    out = tmp_path / "run"
    torch.cuda.reset_peak_memory_stats()
    results = main(["--dataset_name", "aclsum", "--max_train_samples", "16", "--max_predict_samples", "4",
                    "--rationale_file", rationales, "--output_dir", str(out), "--do_train", "--do_predict",
                    *[a for a in TINY if a != "--use_cpu"], "--max_steps", "20", "--save_strategy", "no",
                    precision, "--lr_schedule", "hf"])
    assert _device_of_run(out) == (False, "cuda") and torch.cuda.max_memory_allocated() > 0
    logged = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    assert len(logged) == 20  # fp16: no step lost to an overflowing (gate) gradient at any loss scale
    for h in logged:
        assert all(math.isfinite(h[k]) for k in ("loss", "ce", "loss_ea", "loss_as", "loss_ter", "grad_norm")), h
    assert sum(h["loss"] for h in logged[-5:]) < sum(h["loss"] for h in logged[:5])
    gates = read_jsonl(out / "gates.jsonl")
    assert [g["step"] for g in gates] == list(range(21)) and gates[-1]["gates"] != gates[0]["gates"]
    assert len(read_jsonl(out / "predictions.jsonl")) == 4 and results["predict_samples"] == 4


def test_train_py_causal_kd_20_steps_on_cuda(tiny_tokenizer, aclsum_train, tmp_path):
    from test_causal_kd import llama, small_ds, train_argv, write_jsonl

    from lsrmwf.commands.train import main

    for name, kw in (("student", dict(seed=0)), ("teacher", dict(layers=2, hidden=48, seed=1))):
        llama(tiny_tokenizer, **kw).save_pretrained(tmp_path / name)
        tiny_tokenizer.save_pretrained(tmp_path / name)
    data = str(tmp_path / "data.jsonl")
    write_jsonl(data, small_ds(aclsum_train, 8))
    out = tmp_path / "run"
    argv = [a for a in train_argv(tmp_path, data, out) if a != "--use_cpu"]
    results = main(argv + ["--teacher_model_name_or_path", str(tmp_path / "teacher"), "--max_steps", "20",
                           "--save_strategy", "no", "--bf16"])
    assert _device_of_run(out) == (False, "cuda")
    log = [e for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in e]
    assert len(log) == 20 and all(math.isfinite(e["loss"]) and math.isfinite(e["kd_kl"]) for e in log)
    assert sum(e["loss"] for e in log[-5:]) < sum(e["loss"] for e in log[:5])
    assert "predict_rouge1" in results and len(open(out / "predictions.jsonl").readlines()) == 8


def test_multiple_choice_scores_on_cuda_match_cpu(tmp_path):
    from test_multiple_choice import PROMPTS, _tokenizer, write_jsonl

    from lsrmwf.evaluation import multiple_choice as mc

    tok = _tokenizer()
    model = tiny.gpt2_lm(tok)
    rows = [{"prompt": p, "choices": c, "label": 0} for p, c in PROMPTS]
    task = mc.load_jsonl_task(write_jsonl(tmp_path / "t.jsonl", rows), name="hand")
    cpu = mc.run_multiple_choice(model, tok, [task], batch_size=4, progress=False, return_details=True)
    gpu = mc.run_multiple_choice(model.cuda(), tok, [task], batch_size=4, device="cuda", progress=False,
                                 return_details=True)
    assert gpu["accuracy"] == cpu["accuracy"]
    for a, b in zip(cpu["details"]["hand"], gpu["details"]["hand"]):
        assert a["prediction"] == b["prediction"] and a["scores"] == pytest.approx(b["scores"], abs=1e-4)
