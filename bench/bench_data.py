"""The training data path at CNN/DM's shape: load, join rationales, tokenize, encode rationale targets, cache.

Builds ``--num_documents`` synthetic documents with CNN/DM's length profile (about 780 words, a
3-4 sentence summary) and a rationale file of the same size in generate_rationales.py's format (one
rationale per summary sentence), then runs train.py's own data steps (``lsrmwf.training.core`` and ``lsrmwf.training.recipes.lsr_mwf``:
load_raw_data, attach_rationales, tokenize, encode_rationale_targets) twice in fresh processes
sharing one datasets cache: the first run prepares everything, the second should find it cached.

    python bench/bench_data.py                         # 2,000 documents: a few minutes on 2 CPU cores
    python bench/bench_data.py --num_documents 20000
    python bench/bench_data.py --ranks 2               # torchrun, gloo: rank 0 prepares, rank 1 loads

Prints, per run, the time of each step and the process's peak RSS, then the cached run's
speed-up, the bytes per example of the rationale-target cache and of the tokenized split, and a
linear extrapolation of all of these to CNN/DM's 287,113 training documents. The tokenizer is a
byte-level BPE trained on the synthetic text (no hub download); the student is a BART built from a
config of width ``--d_model`` (BART-large: 1024, which sets the target cache's size per example;
the targets are computed by the encoder, so its depth sets their time).
"""

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

CNNDM_TRAIN_DOCUMENTS = 287_113
DOC_WORDS = 780


def synthetic_corpus(work: str, n: int, seed: int = 0) -> tuple:
    """``train.jsonl`` (id, article, highlights) and ``rationales.jsonl`` with ``n`` rows each."""
    rng = random.Random(seed)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(20000)]
    cum, total = [], 0.0
    for k in range(len(vocab)):  # Zipf-like word frequencies
        total += 1.0 / (k + 1)
        cum.append(total)

    def sentence(lo, hi):
        words = rng.choices(vocab, cum_weights=cum, k=rng.randint(lo, hi))
        return " ".join(words).capitalize() + "."

    train, rationales = os.path.join(work, "train.jsonl"), os.path.join(work, "rationales.jsonl")
    with open(train, "w") as ft, open(rationales, "w") as fr:
        for i in range(n):
            sentences, words = [], 0
            while words < DOC_WORDS + rng.randint(-150, 150):
                sentences.append(sentence(12, 30))
                words += len(sentences[-1].split())
            summary = [sentence(10, 16) for _ in range(rng.choice((3, 4)))]
            ft.write(json.dumps({"id": f"doc{i}", "article": " ".join(sentences), "highlights": "\n".join(summary)}) + "\n")
            rows = []
            for s in summary:
                w = s.split()
                rows.append({"aspect": " ".join(w[:4]), "sentence": rng.choice(sentences),
                             "triples": [[w[0], w[1], w[2]], [w[3], w[4], w[5]]]})
            fr.write(json.dumps({
                "id": f"doc{i}", "rationales": rows, "sub_summaries": summary, "summary": " ".join(summary),
                "rouge": {"rouge1": 0.45, "rouge2": 0.2, "rougeL": 0.3}, "score": 0.8, "keep": True, "error": None,
                "model": "synthetic", "prompt_version": "bench", "params": {}, "usage": {}, "latency_s": 0.0,
                "cache_key": f"k{i}"}) + "\n")
    return train, rationales


def child(argv_json: str) -> None:
    """One run of train.py's data steps; prints a JSON line with step times and peak RSS."""
    from lsrmwf.commands.train import parse_args
    from lsrmwf.training import core
    from lsrmwf.training.recipes import lsr_mwf as R

    args = parse_args(json.loads(argv_json))
    model_args, data_args, training_args = args.model, args.data, args.training
    times = {}
    t = time.perf_counter()
    raw = core.load_raw_data(data_args, model_args, training_args)
    times["load"] = time.perf_counter() - t
    t = time.perf_counter()
    raw.train, _ = R.attach_rationales(raw.train, args.lsr_mwf, model_args, training_args)
    times["join"] = time.perf_counter() - t
    t = time.perf_counter()
    model, tokenizer = R.build_model_and_tokenizer(model_args, data_args, args.lsr_mwf)
    times["model"] = time.perf_counter() - t
    views = core.model_views(model)
    t = time.perf_counter()
    data = R.tokenize(raw, tokenizer, data_args, args.lsr_mwf, training_args, views)
    times["tokenize"] = time.perf_counter() - t
    tokenized_bytes = sum(os.path.getsize(f["filename"]) for f in data.train.cache_files)
    t = time.perf_counter()
    encoded = R.encode_rationale_targets(data.train, model, views, args)
    times["encode_targets"] = time.perf_counter() - t
    target_bytes = sum(encoded.data.column(c).nbytes for c in encoded.column_names if c.endswith("_target"))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("BENCH " + json.dumps({"rank": int(os.environ.get("RANK", "0")), "times": times, "total": sum(times.values()), "peak_rss_mb": peak_kb / 1024,
                                 "examples": len(encoded), "tokenized_bytes": tokenized_bytes,
                                 "encoded_bytes": target_bytes, "columns": encoded.column_names}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num_documents", type=int, default=2000, help="Synthetic training documents (CNN/DM: 287,113).")
    p.add_argument("--d_model", type=int, default=64, help="Width of the student whose encoder makes the targets.")
    p.add_argument("--encoder_layers", type=int, default=1)
    p.add_argument("--max_source_length", type=int, default=1024, help="cnndm preset: 1024.")
    p.add_argument("--max_rationale_length", type=int, default=256, help="train.py's default.")
    p.add_argument("--vocab_size", type=int, default=8000, help="BPE vocabulary trained on the synthetic text.")
    p.add_argument("--ranks", type=int, default=1,
                   help="Processes (torchrun, gloo): rank 0 prepares the caches, the others wait and load them.")
    p.add_argument("--work_dir", default=None, help="Where data and caches go (default: a temporary directory, removed).")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._child:
        return child(args._child)

    work = args.work_dir or tempfile.mkdtemp(prefix="bench_data_")
    os.makedirs(work, exist_ok=True)
    t = time.perf_counter()
    train, rationales = synthetic_corpus(work, args.num_documents)
    gen_s = time.perf_counter() - t
    from lsrmwf.data.tokenization import train_bpe_tokenizer

    sample = [json.loads(line)["article"] for _, line in zip(range(500), open(train))]
    tok_dir = os.path.join(work, "tokenizer")
    train_bpe_tokenizer(sample, vocab_size=args.vocab_size).save_pretrained(tok_dir)
    d = args.d_model
    argv = ["--train_file", train, "--text_column", "article", "--summary_column", "highlights",
            "--rationale_file", rationales, "--tokenizer_name", tok_dir, "--preset", "cnndm",
            "--max_source_length", str(args.max_source_length), "--max_rationale_length", str(args.max_rationale_length),
            "--config_overrides", f"d_model={d},encoder_layers={args.encoder_layers},decoder_layers=1,"
                                  f"encoder_attention_heads={max(1, d // 64)},decoder_attention_heads={max(1, d // 64)},"
                                  f"encoder_ffn_dim={4 * d},decoder_ffn_dim={4 * d}",
            "--output_dir", os.path.join(work, "out"), "--do_train", "--use_cpu", "--report_to", "none",
            "--per_device_eval_batch_size", "32", "--seed", "1"]
    env = dict(os.environ, HF_DATASETS_CACHE=os.path.join(work, "hf_cache"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONPATH=REPO, HF_DATASETS_DISABLE_PROGRESS_BARS="1")
    script = [os.path.abspath(__file__), "--_child", json.dumps(argv)]
    if args.ranks > 1:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cmd = [os.path.join(os.path.dirname(sys.executable), "torchrun"), "--nproc_per_node", str(args.ranks),
               "--master_port", str(port), *script]
    else:
        cmd = [sys.executable, *script]
    runs = []
    for label in ("first (prepares)", "second (cached)"):
        t = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            sys.exit(f"bench_data: the {label} run failed:\n{proc.stderr[-3000:]}")
        ranks = sorted((json.loads(line[6:]) for line in proc.stdout.splitlines() if line.startswith("BENCH ")),
                       key=lambda r: r["rank"])
        result = dict(ranks[0], wall=wall, total=max(r["total"] for r in ranks),
                      peak_rss_mb=max(r["peak_rss_mb"] for r in ranks))
        runs.append(result)
        for r in ranks:
            steps = "  ".join(f"{k} {v:.1f}s" for k, v in r["times"].items())
            print(f"{label:17s} rank {r['rank']}: {r['total']:7.1f}s in the data steps ({wall:.1f}s with start-up), "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB: {steps}", flush=True)

    n = runs[0]["examples"]
    scale = CNNDM_TRAIN_DOCUMENTS / n
    first, second = runs

    def scaled(run):  # building the model does not grow with the data (rank 0's times: it prepares)
        return sum(v for k, v in run["times"].items() if k != "model") * scale + run["times"]["model"]

    per_target = first["encoded_bytes"] / n
    per_tokenized = first["tokenized_bytes"] / n
    report = {
        "documents": args.num_documents, "examples": n, "ranks": args.ranks, "generate_s": round(gen_s, 1),
        "first_s": round(first["total"], 2), "second_s": round(second["total"], 2),
        "cached_speedup": round(first["total"] / max(second["total"], 1e-9), 1),
        "peak_rss_mb_per_rank": [round(r["peak_rss_mb"]) for r in runs],
        "rationale_target_cache_bytes_per_example": round(per_target),
        "rationale_target_floats_per_example": 3 * d,
        "tokenized_cache_bytes_per_example": round(per_tokenized),
        "extrapolated_to_287113": {
            "first_run_hours": round(scaled(first) / 3600, 2),
            "second_run_min": round(scaled(second) / 60, 1),
            "rationale_target_cache_gb_at_this_d_model": round(per_target * CNNDM_TRAIN_DOCUMENTS / 1e9, 2),
            "rationale_target_cache_gb_at_d_model_1024": round(
                (per_target - 12 * d + 12 * 1024) * CNNDM_TRAIN_DOCUMENTS / 1e9, 2),
            "tokenized_cache_gb": round(per_tokenized * CNNDM_TRAIN_DOCUMENTS / 1e9, 2),
        },
    }
    print(json.dumps(report, indent=1))
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
