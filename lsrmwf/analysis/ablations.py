"""The paper's analyses as commands: train one system per setting, score it, write a results table.

    python -m lsrmwf.analysis views     --rationale_file r.jsonl --output_dir analysis/views      # Table 3
    python -m lsrmwf.analysis gate_init --rationale_file r.jsonl --output_dir analysis/gate_init  # Table 4
    python -m lsrmwf.analysis gamma     --rationale_file r.jsonl --output_dir analysis/gamma      # Figure 5 (+ plot)
    python -m lsrmwf.analysis llm       --rationale_file test_r.jsonl --output_dir analysis/llm   # Table 2's LLM rows

Every setting runs ``train.py`` with the same base arguments plus the setting's flags, so all
systems see the same documents, steps and seed. By default the base arguments are the demo's
scale (aclsum, a small BART from a config, a few minutes per setting on CPU); anything after
``--`` replaces them, e.g. the full-scale arguments of the README's reproduction recipe::

    python -m lsrmwf.analysis views --rationale_file rationales/cnndm_train.jsonl --output_dir analysis/cnndm-views \\
        -- --preset cnndm --dataset_name cnn_dailymail --dataset_config_name 3.0.0 \\
           --model_name_or_path facebook/bart-large --do_train --do_predict --bf16 --max_steps 100000

Writes ``<output_dir>/<setting>/`` per run and ``results.md`` / ``results.json`` (R-1, R-2,
R-Lsum = the paper's R-L, on the test split as ``train.py --do_predict`` scores it), plus
``gamma.png`` for the γ sweep. A finished setting (its ``all_results.json`` exists) is not rerun.

``llm`` trains nothing: it scores the LLM's total summaries S^tol from a rationale file of the
*test* split (``generate_rationales.py --split test``) as a system, as Table 2's "Llama-3-70B w/
structured rationale" row does, optionally beside trained systems' predictions
(``--predictions``), with ``evaluate.py``'s scoring (ROUGE, BERTScore, bootstrap intervals and
paired tests). Every system is scored on the test documents the LLM finished, and the command
says how many that is. After ``--`` come ``evaluate.py``'s data and scoring flags (default:
``--dataset_name aclsum --split test``). Note that S^tol is written from rationales the LLM dug
with the gold summary in view (paper Tasks 1-5), so this row is an upper reference, not a system
that sees only the document.
"""

import argparse
import json
import os
import sys
from typing import Dict, List, Tuple

DEMO_SCALE = [
    "--dataset_name", "aclsum", "--preset", "cnndm",
    "--config_overrides", "d_model=128,encoder_layers=2,decoder_layers=2,encoder_attention_heads=4,decoder_attention_heads=4,"
                          "encoder_ffn_dim=256,decoder_ffn_dim=256,max_position_embeddings=512",
    "--tokenizer_vocab_size", "4000", "--max_source_length", "384", "--max_target_length", "96",
    "--max_rationale_length", "128", "--num_beams", "2", "--min_length", "10", "--max_length", "96",
    "--max_steps", "150", "--warmup_steps", "50", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
    "--max_predict_samples", "40", "--do_train", "--do_predict", "--logging_steps", "10", "--save_strategy", "no",
    "--report_to", "none", "--seed", "42",
]

# Table 3: each single view, each pair, all three (the paper reports removing each "gem").
VIEW_GRID = [("ea",), ("as",), ("ter",), ("ea", "as"), ("ea", "ter"), ("as", "ter"), ("ea", "as", "ter")]
# Table 4: gate initial values on CNN/DM; "0.02*" is the fixed-gate ablation.
GATE_GRID = ["0.001", "0.015", "0.02", "0.02*", "0.025", "0.1"]
# Figure 5: gamma_1 : gamma_2 with gamma_1 + gamma_2 = 1.
GAMMA_GRID = ["9:1", "8:2", "7:3", "6:4", "5:5", "4:6", "3:7"]


def settings(kind: str, grid: List[str] = None) -> List[Tuple[str, List[str]]]:
    """``(name, extra train.py flags)`` for each setting of an analysis."""
    if kind == "views":
        views = [tuple(g.split("+")) for g in grid] if grid else VIEW_GRID
        return [("+".join(v), ["--views", *v]) for v in views]
    if kind == "gate_init":
        out = []
        for g in grid or GATE_GRID:
            fixed = g.endswith("*")
            out.append((g, ["--gate_init", g.rstrip("*")] + (["--freeze_gates"] if fixed else [])))
        return out
    if kind == "gamma":
        out = []
        for r in grid or GAMMA_GRID:
            a, b = (float(x) for x in r.split(":"))
            out.append((r, ["--gamma_ce", f"{a / (a + b):g}", "--gamma_views", f"{b / (a + b):g}"]))
        return out
    raise ValueError(f"unknown analysis {kind!r}; choose views, gate_init or gamma")


def run_setting(base: List[str], extra: List[str], output_dir: str) -> Dict[str, float]:
    """Train and predict one setting in a fresh process (one run's state never leaks into the next)."""
    import subprocess

    results = os.path.join(output_dir, "all_results.json")
    if not os.path.exists(results):
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        cmd = [sys.executable, os.path.join(repo, "train.py"), *base, *extra, "--output_dir", output_dir, "--overwrite_output_dir"]
        print("$ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)  # in the caller's directory, where its relative paths point
    with open(results, encoding="utf-8") as f:
        return json.load(f)


METRICS = (("predict_rouge1", "R-1"), ("predict_rouge2", "R-2"), ("predict_rougeLsum", "R-Lsum (paper's R-L)"))


def results_table(kind: str, rows: List[Tuple[str, Dict[str, float]]]) -> str:
    head = {"views": "views", "gate_init": "gate init (* fixed)", "gamma": "γ1:γ2"}[kind]
    lines = [f"| {head} | " + " | ".join(label for _, label in METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
    for name, r in rows:
        lines.append(f"| {name} | " + " | ".join(f"{r[k]:.2f}" if k in r else "n/a" for k, _ in METRICS) + " |")
    return "\n".join(lines) + "\n"


def plot_gamma(rows, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = [n for n, _ in rows]
    for key, label in METRICS:
        ax.plot(names, [r.get(key, float("nan")) for _, r in rows], marker="o", label=label)
    ax.set_xlabel("γ1 : γ2 (token loss : view losses)")
    ax.set_ylabel("F1 × 100")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


LLM_DATA = ["--dataset_name", "aclsum", "--split", "test"]


def llm_rows(rationale_file: str, output_dir: str, evaluate_args: List[str], predictions: List[str] = (),
             system_names: List[str] = None, llm_name: str = "LLM S^tol") -> Dict[str, object]:
    """Table 2's LLM rows: score the rationale file's S^tol (and ``predictions``) on the test
    documents the LLM finished. Returns evaluate.py's comparison table."""
    import subprocess

    from transformers import HfArgumentParser

    from ..data.arguments import DatasetSplitArguments
    from ..data.rationales import classify, load_rationales
    from ..evaluation.inputs import read_examples
    from ..evaluation.report import system_name
    from ..io import InputError, write_jsonl_atomic

    output_dir, predictions = os.path.abspath(output_dir), [os.path.abspath(p) for p in predictions]
    given_split = any(a == "--split" or a.startswith("--split=") for a in evaluate_args)
    evaluate_args = list(evaluate_args) + ([] if given_split else ["--split", "test"])
    inp, rest = HfArgumentParser(DatasetSplitArguments).parse_args_into_dataclasses(evaluate_args, return_remaining_strings=True)
    ds = inp.load_split()
    rows = load_rationales(rationale_file)
    ids = [i for i in ds["id"]]
    groups = {i: classify(rows.get(i)) for i in ids}
    summaries = {i: rows[i].summary.strip() for i in ids if groups[i] != "missing" and groups[i] != "failed"}
    finished = [i for i in ids if summaries.get(i)]
    counts = {g: sum(1 for x in groups.values() if x == g) for g in ("failed", "missing")}
    empty = sum(1 for i in ids if i in summaries and not summaries[i])
    line = (f"{llm_name} scored on {len(finished)} of {len(ids)} test documents ({counts['failed']} failed, "
            f"{counts['missing']} with no row, {empty} with an empty summary); every system is scored on the same {len(finished)}")
    if not finished:
        raise InputError(f"{rationale_file}: no finished row with a summary matches an id of the test split ({line})")
    os.makedirs(output_dir, exist_ok=True)
    keep = set(finished)
    references = os.path.join(output_dir, "references.jsonl")
    write_jsonl_atomic(references, ({"id": i, "reference": r, "document": d} for i, r, d in zip(ds["id"], ds["summary"], ds["document"])
                                    if i in keep))
    files = [os.path.join(output_dir, "llm_stol.jsonl")]
    write_jsonl_atomic(files[0], ({"id": i, "prediction": summaries[i]} for i in finished))
    names = [llm_name] + list(system_names or [system_name(p) for p in predictions])
    for k, path in enumerate(predictions):
        ex = read_examples(path, "prediction", "prediction", allow_empty=True)
        if ex.ids is None:
            raise InputError(f"{path}: the LLM rows pair systems by id; give a .jsonl with an 'id' per row")
        by_id = dict(zip(ex.ids, ex.texts))
        lacking = [i for i in finished if i not in by_id]
        if lacking:
            raise InputError(f"{path}: no prediction for test id {lacking[0]!r} ({len(lacking)} of the {len(finished)} scored ids)")
        files.append(os.path.join(output_dir, f"system{k + 1}.jsonl"))
        write_jsonl_atomic(files[-1], ({"id": i, "prediction": by_id[i]} for i in finished))
    print(line, flush=True)
    with open(os.path.join(output_dir, "llm_rows.txt"), "w", encoding="utf-8") as f:
        f.write(line + "\n")
    argv = ["--predictions", *files, "--system_names", *names, "--references", references, "--output_dir", output_dir, *rest]
    if len(names) > 1:  # differences are reported against the first trained system, as Table 2 reads
        argv += ["--baseline", names[1]]
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cmd = [sys.executable, os.path.join(repo, "evaluate.py"), *argv]
    print("$ " + " ".join(cmd), flush=True)
    if subprocess.run(cmd).returncode != 0:  # in the caller's directory, like its paths
        raise InputError("evaluate.py stopped; its message is above")
    with open(os.path.join(output_dir, "results.json"), encoding="utf-8") as f:
        return json.load(f)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    base = None
    if "--" in argv:
        k = argv.index("--")
        argv, base = argv[:k], argv[k + 1:]
    p = argparse.ArgumentParser(prog="python -m lsrmwf.analysis", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("analysis", choices=["views", "gate_init", "gamma", "llm"])
    p.add_argument("--output_dir", required=True)
    p.add_argument("--rationale_file", help="Rationale JSONL for the training split (without it the view losses are off); "
                                            "llm: for the test split (required).")
    p.add_argument("--grid", nargs="+", help="Settings to run instead of the paper's grid, e.g. ea+as ter | 0.02 0.02* | 6:4 7:3")
    p.add_argument("--predictions", nargs="+", default=[], help="llm: trained systems' predictions .jsonl to score beside S^tol.")
    p.add_argument("--system_names", nargs="+", help="llm: names for --predictions, in order.")
    args = p.parse_args(argv)
    if args.analysis == "llm":
        if not args.rationale_file:
            p.error("llm needs --rationale_file (rationales of the test split: generate_rationales.py --split test)")
        from ..io import InputError

        try:
            llm_rows(args.rationale_file, args.output_dir, LLM_DATA if base is None else base, args.predictions, args.system_names)
        except InputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    base = list(DEMO_SCALE if base is None else base)
    if args.rationale_file:
        base += ["--rationale_file", args.rationale_file]
    rows = []
    for name, extra in settings(args.analysis, args.grid):
        safe = name.replace("*", "_fixed").replace(":", "-").replace("+", "_")
        rows.append((name, run_setting(base, extra, os.path.join(args.output_dir, safe))))
    table = results_table(args.analysis, rows)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "results.md"), "w", encoding="utf-8") as f:
        f.write(table)
    with open(os.path.join(args.output_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"analysis": args.analysis, "base_args": base, "results": [{"setting": n, **r} for n, r in rows]}, f, indent=1)
    if args.analysis == "gamma":
        print(f"plot: {plot_gamma(rows, os.path.join(args.output_dir, 'gamma.png'))}")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
