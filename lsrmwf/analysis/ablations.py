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

Writes ``<output_dir>/<setting>/`` per run (``<setting>/seed<S>/`` with ``--seeds``), then runs
``evaluate.py`` on the settings' ``predictions.jsonl`` (``<output_dir>/evaluate/`` or
``evaluate/seed<S>/``): R-1, R-2, R-Lsum (the paper's R-L) and BERTScore F1, each with its 95%
bootstrap interval, and the paired bootstrap test of every setting against the reference run (all
views / the preset's gate / the preset's γ; ``--reference`` names another; it is added to the grid
when missing). ``results.md`` / ``results.json`` tabulate them; with ``--seeds 42,43,44`` every
setting is trained once per seed and the table gives mean ± sd over the seeds and in how many seeds
the difference to the reference was significant. ``--evaluate_args`` passes flags to
``evaluate.py`` (e.g. ``"--bertscore_model roberta-large"``); ``gamma.png`` plots the γ sweep. A
finished run (its ``all_results.json`` exists) is not rerun.

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
import shlex
import sys
from typing import Dict, List, Tuple

DEMO_SCALE = [
    "--dataset_name", "aclsum", "--preset", "cnndm",
    "--config_overrides",
    "d_model=128,encoder_layers=2,decoder_layers=2,encoder_attention_heads=4,decoder_attention_heads=4,"
    "encoder_ffn_dim=256,decoder_ffn_dim=256,max_position_embeddings=512",
    "--tokenizer_vocab_size", "4000", "--max_source_length", "384", "--max_target_length", "96",
    "--max_rationale_length", "128", "--num_beams", "2", "--min_length", "10", "--max_length", "96",
    "--max_steps", "150", "--warmup_steps", "50", "--per_device_train_batch_size", "4",
    "--per_device_eval_batch_size", "8",
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
        cmd = [sys.executable, os.path.join(repo, "train.py"), *base, *extra, "--output_dir", output_dir,
               "--overwrite_output_dir"]
        print("$ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)  # in the caller's directory, where its relative paths point
    with open(results, encoding="utf-8") as f:
        return json.load(f)


# what the table reports, from evaluate.py's results.json
METRICS = (("rouge1", "R-1"), ("rouge2", "R-2"), ("rougeLsum", "R-Lsum (paper's R-L)"), ("bertscore_f1", "BS-F1"))
HEADS = {"views": "views", "gate_init": "gate init (* fixed)", "gamma": "γ1:γ2"}


def reference_setting(kind: str, base: List[str]) -> str:
    """The run the others are tested against: all three views, or the preset's gate init / γ1:γ2 (cnndm
    unless the base arguments name another preset)."""
    from ..presets import get_preset

    if kind == "views":
        return "ea+as+ter"
    name = base[base.index("--preset") + 1] if "--preset" in base[:-1] else "cnndm"
    p = get_preset(name)
    if kind == "gate_init":
        return f"{p.gate_init:g}"
    return f"{round(10 * p.gamma_ce)}:{round(10 * p.gamma_views)}"


def evaluate_setting_runs(names: List[str], run_dirs: List[str], reference: str, output_dir: str,
                          evaluate_args: List[str]) -> dict:
    """``evaluate.py`` on the runs' ``predictions.jsonl`` (same test documents), tested against ``reference``;
    returns its results.json (metrics, intervals, paired tests). A finished evaluation is read back."""
    import subprocess

    from ..io import InputError

    results = os.path.join(output_dir, "results.json")
    if not os.path.exists(results):
        files = [os.path.join(d, "predictions.jsonl") for d in run_dirs]
        missing = [f for f in files if not os.path.exists(f)]
        if missing:
            raise InputError(f"{missing[0]}: not found; the analysis needs train.py --do_predict (with generation)")
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        cmd = [sys.executable, os.path.join(repo, "evaluate.py"), "--predictions", *files, "--system_names", *names,
               "--baseline", reference, "--output_dir", output_dir, "--overwrite_output_dir", *evaluate_args]
        print("$ " + " ".join(cmd), flush=True)
        if subprocess.run(cmd).returncode != 0:
            raise InputError("evaluate.py stopped; its message is above")
    with open(results, encoding="utf-8") as f:
        return json.load(f)


def summarize(names: List[str], per_seed: Dict[int, dict], reference: str) -> List[dict]:
    """Per setting and metric: the value (mean ± sd over seeds), its interval (one seed) and the paired test
    against ``reference`` (p-value for one seed; the number of seeds with p < alpha for several)."""
    import statistics

    rows = []
    for name in names:
        row = {"setting": name, "reference": name == reference, "metrics": {}}
        for key, _ in METRICS:
            values, cis, tests = [], [], []
            for table in per_seed.values():
                system = next(s for s in table["systems"] if s["name"] == name)
                if key not in system["metrics"]:
                    continue
                values.append(system["metrics"][key])
                cis.append(system["ci"][key])
                test = system.get("vs_baseline", {}).get(key)
                if test is not None:
                    tests.append({**test, "significant": test["p_value"] < table["significance_level"]})
            if not values:
                continue
            row["metrics"][key] = {
                "mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None,
                "values": values, "ci": cis, "vs_reference": tests}
        rows.append(row)
    return rows


def results_table(kind: str, rows: List[dict], seeds: List[int], confidence: float = 0.95) -> str:
    """Markdown: one seed gives value [interval] (p vs the reference); several give mean ± sd (significant
    in k of n seeds)."""
    keys = [(k, label) for k, label in METRICS if any(k in r["metrics"] for r in rows)]
    lines = [f"| {HEADS[kind]} | " + " | ".join(label for _, label in keys) + " |", "|---|" + "---:|" * len(keys)]
    for r in rows:
        cells = []
        for k, _ in keys:
            m = r["metrics"].get(k)
            if m is None:
                cells.append("n/a")
                continue
            f = (lambda x: f"{x:.4f}") if k.startswith("bertscore") else (lambda x: f"{x:.2f}")
            tests = m["vs_reference"]
            if len(m["values"]) == 1:
                ci = m["ci"][0]
                cell = f"{f(m['mean'])} [{f(ci['low'])}, {f(ci['high'])}]"
                cell += f" (p={tests[0]['p_value']:.3f})" if tests else ""
            else:
                cell = f"{f(m['mean'])} ± {f(m['sd'])}"
                cell += f" (p<α in {sum(t['significant'] for t in tests)}/{len(tests)})" if tests else ""
            cells.append(cell)
        name = r["setting"] + (" (reference)" if r["reference"] else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    pct = round(100 * confidence)
    if len(seeds) > 1:
        note = (f"Mean ± sd over seeds {', '.join(map(str, seeds))}; (p<α in k/n): "
                f"seeds in which evaluate.py's paired bootstrap found the difference to the reference significant.")
    else:
        note = f"Brackets: {pct}% bootstrap interval; p: paired bootstrap test against the reference setting."
    return "\n".join(lines) + "\n\nROUGE: F1 x 100 (evaluate.py); BS-F1: BERTScore F1. " + note + "\n"


def plot_gamma(rows: List[dict], path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = [r["setting"] for r in rows]
    for key, label in METRICS[:3]:
        means = [r["metrics"][key]["mean"] if key in r["metrics"] else float("nan") for r in rows]
        sds = [r["metrics"][key]["sd"] or 0.0 if key in r["metrics"] else 0.0 for r in rows]
        ax.errorbar(names, means, yerr=sds, marker="o", capsize=3, label=label)
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
    inp, rest = HfArgumentParser(DatasetSplitArguments).parse_args_into_dataclasses(evaluate_args,
                                                                                    return_remaining_strings=True)
    ds = inp.load_split()
    rows = load_rationales(rationale_file)
    ids = [i for i in ds["id"]]
    groups = {i: classify(rows.get(i)) for i in ids}
    summaries = {i: rows[i].summary.strip() for i in ids if groups[i] != "missing" and groups[i] != "failed"}
    finished = [i for i in ids if summaries.get(i)]
    counts = {g: sum(1 for x in groups.values() if x == g) for g in ("failed", "missing")}
    empty = sum(1 for i in ids if i in summaries and not summaries[i])
    line = (f"{llm_name} scored on {len(finished)} of {len(ids)} test documents ({counts['failed']} failed, "
            f"{counts['missing']} with no row, {empty} with an empty summary); every system is scored "
            f"on the same {len(finished)}")
    if not finished:
        raise InputError(f"{rationale_file}: no finished row with a summary matches an id of the test split ({line})")
    os.makedirs(output_dir, exist_ok=True)
    keep = set(finished)
    references = os.path.join(output_dir, "references.jsonl")
    write_jsonl_atomic(references, ({"id": i, "reference": r, "document": d}
                                    for i, r, d in zip(ds["id"], ds["summary"], ds["document"])
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
            raise InputError(f"{path}: no prediction for test id {lacking[0]!r} ({len(lacking)} of the "
                             f"{len(finished)} scored ids)")
        files.append(os.path.join(output_dir, f"system{k + 1}.jsonl"))
        write_jsonl_atomic(files[-1], ({"id": i, "prediction": by_id[i]} for i in finished))
    print(line, flush=True)
    with open(os.path.join(output_dir, "llm_rows.txt"), "w", encoding="utf-8") as f:
        f.write(line + "\n")
    argv = ["--predictions", *files, "--system_names", *names, "--references", references, "--output_dir", output_dir,
            *rest]
    if len(names) > 1:  # differences are reported against the first trained system, as Table 2 reads
        argv += ["--baseline", names[1]]
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cmd = [sys.executable, os.path.join(repo, "evaluate.py"), *argv]
    print("$ " + " ".join(cmd), flush=True)
    if subprocess.run(cmd).returncode != 0:  # in the caller's directory, like its paths
        raise InputError("evaluate.py stopped; its message is above")
    with open(os.path.join(output_dir, "results.json"), encoding="utf-8") as f:
        return json.load(f)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lsrmwf.analysis", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("analysis", choices=["views", "gate_init", "gamma", "llm"])
    p.add_argument("--output_dir", required=True)
    p.add_argument("--rationale_file", help="Rationale JSONL for the training split (without "
                                            "it the view losses are off); llm: for the test split (required).")
    p.add_argument("--grid", nargs="+",
                   help="Settings to run instead of the paper's grid, e.g. ea+as ter | 0.02 0.02* | 6:4 7:3")
    p.add_argument("--predictions", nargs="+", default=[],
                   help="llm: trained systems' predictions .jsonl to score beside S^tol.")
    p.add_argument("--system_names", nargs="+", help="llm: names for --predictions, in order.")
    p.add_argument("--seeds", help="Train every setting once per seed, e.g. 42,43,44; the table gives mean ± sd.")
    p.add_argument("--reference", help="The setting every other is tested against (default: ea+as+ter, the "
                                       "preset's gate init, the preset's γ1:γ2); added to the grid when missing.")
    p.add_argument("--evaluate_args", default="", help="Flags for evaluate.py, as one string, e.g. "
                                                       "\"--bertscore_model roberta-large "
                                                       "--bootstrap_resamples 1000\".")
    return p


def main(argv=None) -> int:
    from ..io import InputError
    from ..io.config import expand_config

    argv = sys.argv[1:] if argv is None else list(argv)
    base = None
    if "--" in argv:
        k = argv.index("--")
        argv, base = argv[:k], argv[k + 1:]
    p = build_parser()
    try:  # --config FILE: its arguments, the command line winning
        argv = expand_config(p, argv)
    except InputError as e:
        p.exit(2, f"{p.prog}: error: {e}\n")
    args = p.parse_args(argv)
    try:
        seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else []
    except ValueError:
        p.error(f"--seeds must be comma-separated integers, e.g. 42,43,44; got {args.seeds!r}")
    if args.analysis == "llm" and not args.rationale_file:
        p.error("llm needs --rationale_file (rationales of the test split: generate_rationales.py --split test)")
    try:
        if args.analysis == "llm":
            llm_rows(args.rationale_file, args.output_dir, LLM_DATA if base is None else base, args.predictions,
                     args.system_names)
        else:
            run_grid(args, list(DEMO_SCALE if base is None else base), seeds)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def run_grid(args, base: List[str], seeds: List[int]) -> None:
    """Train every setting of the grid (once per seed), score all against the reference, write the table."""
    if args.rationale_file:
        base += ["--rationale_file", args.rationale_file]
    grid = settings(args.analysis, args.grid)
    reference = args.reference or reference_setting(args.analysis, base)
    if reference not in dict(grid):
        grid += settings(args.analysis, [reference])
    names = [name for name, _ in grid]
    per_seed, train_results = {}, {}
    for seed in seeds or [None]:
        dirs = []
        for name, extra in grid:
            safe = name.replace("*", "_fixed").replace(":", "-").replace("+", "_")
            run_dir = os.path.join(args.output_dir, safe, *([f"seed{seed}"] if seed is not None else []))
            dirs.append(run_dir)
            seed_flag = ["--seed", str(seed)] if seed is not None else []
            train_results.setdefault(name, []).append(run_setting(base, extra + seed_flag, run_dir))
        eval_dir = os.path.join(args.output_dir, "evaluate", *([f"seed{seed}"] if seed is not None else []))
        per_seed[seed] = evaluate_setting_runs(names, dirs, reference, eval_dir, shlex.split(args.evaluate_args))
    rows = summarize(names, per_seed, reference)
    confidence = next(iter(per_seed.values()))["confidence"]
    table = results_table(args.analysis, rows, seeds, confidence)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "results.md"), "w", encoding="utf-8") as f:
        f.write(table)
    with open(os.path.join(args.output_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"analysis": args.analysis, "base_args": base, "seeds": seeds, "reference": reference,
                   "results": rows, "train_results": [{"setting": n, "runs": train_results[n]} for n in names]},
                  f, indent=1)
    if args.analysis == "gamma":
        print(f"plot: {plot_gamma(rows, os.path.join(args.output_dir, 'gamma.png'))}")
    print(table)

if __name__ == "__main__":
    sys.exit(main())
