"""Plain BART vs LSR-MWF in one run: training step time, peak memory, beam-search time.

Same harness, same batch, same depth as bart-large (12 encoder + 12 decoder layers) at a width a
CPU can run. Prints ratios LSR-MWF / BART; targets: step <= 1.25x, peak memory <= 1.2x,
generation <= 1.10x.

    python bench/bench_model.py                      # CPU defaults: d_model 256, source 512, target 64
    python bench/bench_model.py --d_model 1024 --batch_size 8 --device cuda   # bart-large width

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated``. On CPU there is no allocator counter, so
it is computed as weights + gradients + Adam state + every tensor autograd keeps for the backward
(counted once per storage through saved-tensor hooks), measured during a real step.

Step and generation times are medians, over interleaved runs, of each LSR-MWF run's time divided
by the BART run just before it; on a shared CPU single steps vary by +-20%, so the script also prints the
step's matmul + attention FLOP ratio, which does not depend on the machine.

LSR-MWF is timed as it trains by default (rationale targets pre-encoded once, ``--cache_rationale_
targets``); ``--rationale_ids`` times the uncached path, which adds three short encoder passes.
"""

import argparse
import json
import os
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
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--gen_repeats", type=int, default=3)
    p.add_argument("--rationale_ids", action="store_true", help="feed rationale token ids instead of cached targets")
    p.add_argument("--view_ffn_dim", type=int, default=None, help="view layers' FFN width (default: the config's, 2 * d_model; 4 * d_model = full BART layers)")
    p.add_argument("--gradient_checkpointing", action="store_true", help="recompute every layer in backward, in both models")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--output", default=None, help="also write the results as JSON here")
    return p.parse_args()


def build(args, lsrmwf: bool):
    kw = dict(
        vocab_size=args.vocab_size, d_model=args.d_model, encoder_layers=args.layers, decoder_layers=args.layers,
        encoder_attention_heads=args.heads, decoder_attention_heads=args.heads, encoder_ffn_dim=4 * args.d_model,
        decoder_ffn_dim=4 * args.d_model, max_position_embeddings=max(args.source_length, 128) + 2,
    )
    torch.manual_seed(0)
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


def train_step(model, opt, batch):
    loss_of(model(**batch)).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def saved_activation_bytes(model, batch):
    """Bytes autograd keeps for the backward of one step, each storage counted once."""
    seen = {}

    def pack(t):
        try:
            key = t.untyped_storage().data_ptr()
            seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        except (RuntimeError, NotImplementedError):
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_of(model(**batch))
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(seen.values())


def step_flops(model, batch):
    """Matmul and attention FLOPs of one forward+backward: a machine-independent view of step cost."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        loss_of(model(**batch)).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def peak_memory(args, model, opt, batch):
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        train_step(model, opt, batch)
        sync(args.device)
        return torch.cuda.max_memory_allocated()
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return params + trainable * 3 + saved_activation_bytes(model, batch)  # weights + grads + Adam m, v


def main():
    args = parse()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    models = {name: build(args, name == "lsrmwf") for name in ("bart", "lsrmwf")}
    batches = {name: make_batch(args, name == "lsrmwf", m) for name, m in models.items()}
    opts = {name: torch.optim.Adam(m.parameters(), lr=1e-5) for name, m in models.items()}
    for m in models.values():
        m.train()

    results = {name: {"params": sum(p.numel() for p in m.parameters())} for name, m in models.items()}
    for name in models:  # warm-up (allocates Adam state) and peak memory
        train_step(models[name], opts[name], batches[name])
        results[name]["peak_memory_mb"] = peak_memory(args, models[name], opts[name], batches[name]) / 2**20
        results[name]["step_gflop"] = step_flops(models[name], batches[name]) / 1e9

    times = {name: [] for name in models}
    for _ in range(args.steps):  # interleaved so machine load hits both alike
        for name in models:
            sync(args.device)
            t = time.perf_counter()
            train_step(models[name], opts[name], batches[name])
            sync(args.device)
            times[name].append(time.perf_counter() - t)
    for name in models:
        results[name]["step_s"] = statistics.median(times[name])
    # Each LSR-MWF step runs right after a BART step, so a pair shares the machine's load of the
    # moment; the median of the per-pair ratios is steadier than a ratio of medians on a busy CPU.
    pair_ratios = sorted(l / b for b, l in zip(times["bart"], times["lsrmwf"]))

    gen_times = {name: [] for name in models}
    src = batches["bart"]["input_ids"][: args.gen_batch_size]
    mask = batches["bart"]["attention_mask"][: args.gen_batch_size]
    for m in models.values():
        m.eval()
    gen_kwargs = dict(num_beams=args.num_beams, min_length=args.target_length, max_length=args.target_length,
                      no_repeat_ngram_size=3, length_penalty=2.0)
    with torch.no_grad():
        for name in models:  # warm-up
            models[name].generate(src, attention_mask=mask, **gen_kwargs)
        for _ in range(args.gen_repeats):
            for name in models:
                sync(args.device)
                t = time.perf_counter()
                out = models[name].generate(src, attention_mask=mask, **gen_kwargs)
                sync(args.device)
                gen_times[name].append(time.perf_counter() - t)
                assert out.shape[1] == args.target_length, "forced lengths differ: the comparison would be unfair"
    for name in models:
        results[name]["generate_s"] = statistics.median(gen_times[name])

    b, l = results["bart"], results["lsrmwf"]
    ratios = {
        "step_time": statistics.median(pair_ratios),
        "peak_memory": l["peak_memory_mb"] / b["peak_memory_mb"],
        "generation_time": statistics.median(g_l / g_b for g_b, g_l in zip(gen_times["bart"], gen_times["lsrmwf"])),
    }
    targets = {"step_time": 1.25, "peak_memory": 1.20, "generation_time": 1.10}
    print(f"device={args.device} threads={torch.get_num_threads()} layers={args.layers}+{args.layers} d_model={args.d_model} "
          f"source={args.source_length} target={args.target_length} batch={args.batch_size} beams={args.num_beams} "
          f"rationale targets={'token ids (uncached)' if args.rationale_ids else 'pre-encoded (cached)'} "
          f"gradient checkpointing={'on' if args.gradient_checkpointing else 'off'} steps={args.steps} view_ffn_dim={models['lsrmwf'].config.view_ffn_dim}")
    print(f"{'':14}{'BART':>12}{'LSR-MWF':>12}{'ratio':>9}{'target':>9}")
    print(f"{'params (M)':14}{b['params'] / 1e6:12.2f}{l['params'] / 1e6:12.2f}{l['params'] / b['params']:9.3f}")
    rows = [("step (s)", "step_s", "step_time"), ("peak mem (MB)", "peak_memory_mb", "peak_memory"), ("generate (s)", "generate_s", "generation_time")]
    for label, key, r in rows:
        ok = "ok" if ratios[r] <= targets[r] else "MISSED"
        print(f"{label:14}{b[key]:12.3f}{l[key]:12.3f}{ratios[r]:9.3f}{'<= ' + str(targets[r]):>9}  {ok}")
    print(f"{'step (GFLOP)':14}{b['step_gflop']:12.1f}{l['step_gflop']:12.1f}{l['step_gflop'] / b['step_gflop']:9.3f}"
          "   (matmul + attention only; the same on any machine)")
    print(f"step ratio per interleaved pair: min {pair_ratios[0]:.3f}, max {pair_ratios[-1]:.3f} (the spread is machine noise)")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"args": vars(args), "results": results, "ratios": ratios, "targets": targets,
                       "step_pair_ratios": pair_ratios}, f, indent=2)


if __name__ == "__main__":
    main()
