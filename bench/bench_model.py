"""Plain BART vs LSR-MWF in one run: training step time, peak memory, beam-search time.

Same harness, same batch, same depth as bart-large (12 encoder + 12 decoder layers) at a width a
CPU can run. Prints ratios LSR-MWF / BART; targets: step <= 1.15x, peak memory <= 1.15x,
generation <= 1.05x, and the step-time ratio within 0.03 of the step's FLOP ratio.

    python bench/bench_model.py                      # CPU defaults: d_model 256, source 512, target 64
    python bench/bench_model.py --device cuda --bf16 --d_model 1024 --heads 16 --vocab_size 50265 \
        --batch_size 8 --source_length 1024 --target_length 128 --steps 5     # bart-large, as scripts/gpu_check.sh runs it

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` during one step, less what the other model
keeps on the GPU meanwhile (its weights, optimizer state and batch, counted per storage). On CPU there is no allocator counter, so
it is computed as weights + gradients + Adam state + every tensor autograd keeps for the backward
(counted once per storage through saved-tensor hooks), measured during a real step.

Step time: ``--repeats`` alternating repeats (default 5), each timing ``--steps`` training steps of
each model, the two models taking turns step by step and the one that goes first alternating from
one repeat to the next. A repeat's ratio is its LSR-MWF time over its BART time; the printed step
ratio is the median over repeats. Generation alternates the same way. On a shared CPU single steps
vary by +-20%, so the script also prints the step's matmul + attention FLOP ratio, which does not
depend on the machine. ``--clock cpu`` times with the process's CPU time instead of the wall clock:
with ``OMP_NUM_THREADS=1`` on a machine that other jobs load, that leaves out the time the process
waits for a core (with more threads it would count their spin-waits instead).

Page faults: the script prints each model's minor page faults per timed step. With glibc's default
malloc, memory freed at the end of a step goes back to the OS and the next step faults it back in;
LSR-MWF's step (more, and larger, temporaries) faults more pages than BART's, which costs it about
2% of step time on CPU. ``MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_MMAP_THRESHOLD_=1073741824`` keep
freed memory in the process (no faults after the warm-up); a CUDA caching allocator has no such cost.

FLOPs: ``torch.utils.flop_counter`` counts matmuls and the CUDA attention kernels, but nothing for the
CPU one (``_scaled_dot_product_flash_attention_for_cpu`` and its backward), so on CPU attention is
counted here with the same convention PyTorch uses for the CUDA kernels: forward ``Q K^T`` and ``P V``,
2 * B * H * Tq * Tk * (Dqk + Dv) (= 4 * B * H * Tq * Tk * Dh); backward recomputes ``Q K^T`` and takes
``dP = dO V^T``, ``dV = P^T dO``, ``dQ = dS K``, ``dK = dS^T Q``, 2 * B * H * Tq * Tk * (3 * Dqk + 2 * Dv)
(= 10 * B * H * Tq * Tk * Dh, 2.5x the forward). Causal masking is not discounted (as in PyTorch).

``--bf16``: forward passes (training steps, FLOP count, generation) under bf16 autocast, the weights and
Adam state in fp32, as ``train.py --bf16`` trains. Times on CUDA are taken after ``torch.cuda.synchronize()``.

LSR-MWF is timed as it trains by default (rationale targets pre-encoded once, ``--cache_rationale_
targets``); ``--rationale_ids`` times the uncached path, which adds three short encoder passes.
"""

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import time

import torch
from transformers import BartConfig, BartForConditionalGeneration

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lsrmwf import LsrMwfConfig, LsrMwfForConditionalGeneration  # noqa: E402


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--d_model", type=int, default=256)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab_size", type=int, default=8000)
    p.add_argument("--source_length", type=int, default=512)
    p.add_argument("--target_length", type=int, default=64)
    p.add_argument("--rationale_length", type=int, default=64)
    p.add_argument("--batch_size", type=int, default=2)
    p.add_argument("--gen_batch_size", type=int, default=2)
    p.add_argument("--num_beams", type=int, default=4)
    p.add_argument("--steps", type=int, default=2, help="timed training steps per model in each repeat (0: no step timing)")
    p.add_argument("--repeats", type=int, default=5, help="alternating repeats of --steps steps per model; the step ratio is their median")
    p.add_argument("--gen_repeats", type=int, default=3, help="timed beam searches per model, alternating (0: no generation timing)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="wall clock, or the process's CPU time (see above)")
    p.add_argument("--rationale_ids", action="store_true", help="feed rationale token ids instead of cached targets")
    p.add_argument("--view_ffn_dim", type=int, default=None, help="view layers' FFN width (default: the config's, 2 * d_model; 4 * d_model = full BART layers)")
    p.add_argument("--gradient_checkpointing", action="store_true", help="recompute every layer in backward, in both models")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--bf16", action="store_true", help="forward passes under bf16 autocast (weights and Adam state fp32)")
    p.add_argument("--output", default=None, help="also write the results as JSON here")
    return p.parse_args()


def build(args, lsrmwf: bool):
    kw = dict(
        vocab_size=args.vocab_size, d_model=args.d_model, encoder_layers=args.layers, decoder_layers=args.layers,
        encoder_attention_heads=args.heads, decoder_attention_heads=args.heads, encoder_ffn_dim=4 * args.d_model,
        decoder_ffn_dim=4 * args.d_model, max_position_embeddings=max(args.source_length, 128) + 2,
    )
    torch.manual_seed(0)
    with torch.device(args.device):  # on a GPU the weights are initialised there, not on the CPU
        model = LsrMwfForConditionalGeneration(LsrMwfConfig(**kw, gate_init=0.02, view_ffn_dim=args.view_ffn_dim)) if lsrmwf else BartForConditionalGeneration(BartConfig(**kw))
    if args.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    return model.to(args.device)


def make_batch(args, lsrmwf: bool, model=None):
    g = torch.Generator().manual_seed(1)
    b, dev = args.batch_size, args.device
    batch = {
        "input_ids": torch.randint(4, args.vocab_size, (b, args.source_length), generator=g),
        "attention_mask": torch.ones(b, args.source_length, dtype=torch.long),
        "labels": torch.randint(4, args.vocab_size, (b, args.target_length), generator=g),
    }
    if lsrmwf:
        for v in ("ea", "as", "ter"):
            ids = torch.randint(4, args.vocab_size, (b, args.rationale_length), generator=g)
            mask = torch.ones_like(ids)
            if args.rationale_ids:
                batch[f"{v}_input_ids"], batch[f"{v}_attention_mask"] = ids, mask
            else:
                batch[f"{v}_target"] = model.encode_rationale(ids.to(dev), mask.to(dev)).cpu()
    return {k: v.to(dev) for k, v in batch.items()}


def loss_of(out):
    if getattr(out, "view_losses", None):
        return 0.6 * out.loss + 0.4 * sum(out.view_losses.values())
    return out.loss


def sync(dev):
    if dev.startswith("cuda"):
        torch.cuda.synchronize()


def autocast(args):
    """bf16 autocast with ``--bf16``, nothing otherwise."""
    if not args.bf16:
        return contextlib.nullcontext()
    return torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16)


def train_step(model, opt, batch, args):
    with autocast(args):
        loss = loss_of(model(**batch))
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def saved_activation_bytes(model, batch, args):
    """Bytes autograd keeps for the backward of one step, each storage counted once."""
    seen = {}

    def pack(t):
        try:
            key = t.untyped_storage().data_ptr()
            seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        except (RuntimeError, NotImplementedError):
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast(args):
        loss = loss_of(model(**batch))
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(seen.values())


def _attention_shapes(query, key, value):
    b, h, tq, dqk = query
    bk, hk, tk, dk = key
    _, _, tv, dv = value
    if not (b == bk and dk == dqk and tv == tk and h % hk == 0):
        raise ValueError(f"attention shapes q={query} k={key} v={value} do not fit together")
    return b * h, tq, tk, dqk, dv


def cpu_attention_flops(query, key, value, *args, out_shape=None, **kwargs):
    """Forward of ``_scaled_dot_product_flash_attention_for_cpu``: S = Q K^T and O = P V."""
    bh, tq, tk, dqk, dv = _attention_shapes(query, key, value)
    return 2 * bh * tq * tk * dqk + 2 * bh * tq * tk * dv


def cpu_attention_backward_flops(grad_out, query, key, value, *args, out_shape=None, **kwargs):
    """Backward: S = Q K^T recomputed, dP = dO V^T, dV = P^T dO, dQ = dS K, dK = dS^T Q."""
    bh, tq, tk, dqk, dv = _attention_shapes(query, key, value)
    return 2 * bh * tq * tk * (3 * dqk + 2 * dv)


CPU_ATTENTION_FLOPS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_attention_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: cpu_attention_backward_flops,
}
ATTENTION_OPS = {
    "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention_for_cpu_backward",
    "_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_backward",
    "_scaled_dot_product_efficient_attention", "_scaled_dot_product_efficient_attention_backward",
    "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_cudnn_attention_backward",
    "_flash_attention_forward", "_flash_attention_backward", "_efficient_attention_forward", "_efficient_attention_backward",
}


def step_flops(model, batch, args):
    """Matmul + attention FLOPs of one forward+backward (a machine-independent view of step cost),
    and the attention part of them."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS) as counter:
        with autocast(args):
            loss = loss_of(model(**batch))
        loss.backward()
    model.zero_grad(set_to_none=True)
    counts = counter.get_flop_counts()["Global"]
    attention = sum(n for op, n in counts.items() if getattr(op, "__name__", str(op)).split(".")[0] in ATTENTION_OPS)
    return counter.get_total_flops(), attention


def resident_bytes(model, opt, batch):
    """Bytes a model keeps between steps: weights, gradients, optimizer state and its batch, each storage once."""
    tensors = [*model.parameters(), *(p.grad for p in model.parameters() if p.grad is not None), *batch.values()]
    tensors += [t for state in opt.state.values() for t in state.values() if torch.is_tensor(t)]
    return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}.values())


def peak_memory(args, model, opt, batch, others_bytes=0):
    """Peak bytes of one training step of ``model``; on CUDA less ``others_bytes``, what the other model
    holds on the same GPU meanwhile."""
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        train_step(model, opt, batch, args)
        sync(args.device)
        return torch.cuda.max_memory_allocated() - others_bytes
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return params + trainable * 3 + saved_activation_bytes(model, batch, args)  # weights + grads + Adam m, v


def main():
    args = parse()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    models = {name: build(args, name == "lsrmwf") for name in ("bart", "lsrmwf")}
    batches = {name: make_batch(args, name == "lsrmwf", m) for name, m in models.items()}
    opts = {name: torch.optim.Adam(m.parameters(), lr=1e-5) for name, m in models.items()}
    for m in models.values():
        m.train()

    results = {name: {"params": sum(p.numel() for p in m.parameters())} for name, m in models.items()}
    for name in models:  # warm-up (allocates Adam state)
        train_step(models[name], opts[name], batches[name], args)
    for name in models:  # peak memory and FLOPs
        others = sum(resident_bytes(models[n], opts[n], batches[n]) for n in models if n != name)
        results[name]["peak_memory_mb"] = peak_memory(args, models[name], opts[name], batches[name], others) / 2**20
        total, attention = step_flops(models[name], batches[name], args)
        results[name]["step_gflop"], results[name]["attention_gflop"] = total / 1e9, attention / 1e9
        if attention == 0:
            print(f"warning: no attention FLOPs counted for {name}: its attention kernel has no formula", file=sys.stderr)

    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    names = tuple(models)
    times = {name: [] for name in models}
    faults = {name: [] for name in models}
    repeat_ratios = []
    for r in range(args.repeats if args.steps > 0 else 0):
        # The models take turns step by step, and the first alternates between repeats, so both see
        # the machine's load of the moment alike; a repeat's ratio is its summed LSR-MWF time over BART's.
        spent = dict.fromkeys(names, 0.0)
        for _ in range(args.steps):
            for name in (names if r % 2 == 0 else names[::-1]):
                sync(args.device)
                f, t = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, clock()
                train_step(models[name], opts[name], batches[name], args)
                sync(args.device)
                times[name].append(clock() - t)
                faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f)
                spent[name] += times[name][-1]
        repeat_ratios.append(spent["lsrmwf"] / spent["bart"])
    for name in models:
        results[name]["step_s"] = statistics.median(times[name]) if times[name] else float("nan")
        results[name]["page_faults_per_step"] = statistics.median(faults[name]) if faults[name] else float("nan")

    gen_times = {name: [] for name in models}
    src = batches["bart"]["input_ids"][: args.gen_batch_size]
    mask = batches["bart"]["attention_mask"][: args.gen_batch_size]
    for m in models.values():
        m.eval()
    gen_kwargs = dict(num_beams=args.num_beams, min_length=args.target_length, max_length=args.target_length,
                      no_repeat_ngram_size=3, length_penalty=2.0)
    with torch.no_grad(), autocast(args):
        for name in models:  # warm-up
            models[name].generate(src, attention_mask=mask, **gen_kwargs)
        for r in range(args.gen_repeats):
            for name in (names if r % 2 == 0 else names[::-1]):
                sync(args.device)
                t = clock()
                out = models[name].generate(src, attention_mask=mask, **gen_kwargs)
                sync(args.device)
                gen_times[name].append(clock() - t)
                assert out.shape[1] == args.target_length, "forced lengths differ: the comparison would be unfair"
    for name in models:
        results[name]["generate_s"] = statistics.median(gen_times[name]) if gen_times[name] else float("nan")

    b, l = results["bart"], results["lsrmwf"]
    gen_ratios = [g_l / g_b for g_b, g_l in zip(gen_times["bart"], gen_times["lsrmwf"])]
    ratios = {
        "step_time": statistics.median(repeat_ratios) if repeat_ratios else float("nan"),
        "peak_memory": l["peak_memory_mb"] / b["peak_memory_mb"],
        "generation_time": statistics.median(gen_ratios) if gen_ratios else float("nan"),
        "step_flops": l["step_gflop"] / b["step_gflop"],
    }
    targets = {"step_time": 1.15, "peak_memory": 1.15, "generation_time": 1.05}
    env = {"torch": torch.__version__, "device_name": torch.cuda.get_device_name(args.device)
           if args.device.startswith("cuda") else "cpu", "precision": "bf16 autocast" if args.bf16 else "fp32"}
    print(f"device={args.device} ({env['device_name']}) torch={env['torch']} precision={env['precision']} threads={torch.get_num_threads()} layers={args.layers}+{args.layers} d_model={args.d_model} "
          f"source={args.source_length} target={args.target_length} batch={args.batch_size} beams={args.num_beams} "
          f"rationale targets={'token ids (uncached)' if args.rationale_ids else 'pre-encoded (cached)'} "
          f"gradient checkpointing={'on' if args.gradient_checkpointing else 'off'} view_ffn_dim={models['lsrmwf'].config.view_ffn_dim} "
          f"repeats={args.repeats}x{args.steps} steps gen_repeats={args.gen_repeats} clock={args.clock}")
    print(f"{'':14}{'BART':>12}{'LSR-MWF':>12}{'ratio':>9}{'target':>9}")
    print(f"{'params (M)':14}{b['params'] / 1e6:12.2f}{l['params'] / 1e6:12.2f}{l['params'] / b['params']:9.3f}")
    rows = [("step (s)", "step_s", "step_time"), ("peak mem (MB)", "peak_memory_mb", "peak_memory"), ("generate (s)", "generate_s", "generation_time")]
    for label, key, r in rows:
        if ratios[r] != ratios[r]:  # nan: not timed in this run
            continue
        ok = "ok" if ratios[r] <= targets[r] else "MISSED"
        print(f"{label:14}{b[key]:12.3f}{l[key]:12.3f}{ratios[r]:9.3f}{'<= ' + str(targets[r]):>9}  {ok}")
    print(f"{'step (GFLOP)':14}{b['step_gflop']:12.1f}{l['step_gflop']:12.1f}{ratios['step_flops']:9.3f}"
          f"   matmul + attention (attention {b['attention_gflop']:.1f} / {l['attention_gflop']:.1f}); the same on any machine")
    if repeat_ratios:
        gap = ratios["step_time"] - ratios["step_flops"]
        print(f"step time ratio - FLOP ratio: {gap:+.3f} (target <= +0.03: {'ok' if gap <= 0.03 else 'MISSED'}); "
              f"per repeat: {', '.join(f'{x:.3f}' for x in repeat_ratios)} (the spread is machine noise)")
        print(f"minor page faults per step (median): BART {b['page_faults_per_step']:.0f}, LSR-MWF {l['page_faults_per_step']:.0f}")
    if gen_ratios:
        print(f"generation ratio per repeat: {', '.join(f'{x:.3f}' for x in gen_ratios)}")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"args": vars(args), "env": env, "results": results, "ratios": ratios, "targets": targets,
                       "step_repeat_ratios": repeat_ratios, "generation_ratios": gen_ratios}, f, indent=2)


if __name__ == "__main__":
    main()
