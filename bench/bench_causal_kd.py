"""Benchmark the causal KD paths (issue: task-specific logit KD), ratios measured in one run.

1. Training step time of the same causal student (a Llama built from a config), forward + backward
   + AdamW step through ``LogitKDTrainer.compute_loss``, for each ``--kd_loss``:
   sparse top-K KD step / CE-only step (target <= 1.10), white-box KD step / CE-only step (it adds the
   teacher's forward) and white-box step / white-box forward-KL step (the divergence's own cost), and an
   on-policy step (the student samples ``--on_policy_new_tokens`` tokens, the teacher scores them) / CE-only,
   and a text-aligned step of a served teacher with another tokenizer (``--kd_alignment text``: ULD on the
   aligned positions, and ULD + shared-vocabulary KL) / CE-only (target <= 1.30). ``--text_only`` times CE
   and the text-aligned steps alone.
   All kinds of step alternate so none always meets a warmer cache; medians (and min-max) are compared.
2. Served top-K collection: ``run_task(TeacherLogprobsTask)`` (parsing, fp16 packing, fsynced
   payload + row per document) vs a bare ``AsyncOpenAI`` loop sending the same requests with the
   same concurrency and discarding the answers (target >= 0.95: pipeline throughput / bare
   throughput). Against the test suite's fault server by default (answers after ``--delay_s``, like
   a busy model server), or ``--base_url`` (e.g. a running llama-server).

    python bench/bench_causal_kd.py                 # a few minutes on 2 CPU cores
    python bench/bench_causal_kd.py --skip_collection   # the step times only
    python bench/bench_causal_kd.py --hidden 512 --layers 8 --vocab 32000 --steps 10

Prints one JSON object at the end.
"""

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


@dataclass
class BenchArguments:
    hidden: int = field(default=256, metadata={"help": "Student hidden size (the teacher is 1.5x wider and 2x deeper)."})
    layers: int = field(default=4, metadata={"help": "Student layers."})
    vocab: int = field(default=16000, metadata={"help": "Vocabulary size (shared)."})
    batch: int = field(default=4, metadata={"help": "Sequences per step."})
    prompt_len: int = field(default=192, metadata={"help": "Prompt tokens per sequence (no loss)."})
    summary_len: int = field(default=64, metadata={"help": "Summary tokens per sequence (the loss)."})
    top_k: int = field(default=20, metadata={"help": "K of the sparse teacher."})
    steps: int = field(default=6, metadata={"help": "Timed steps per kind (after one warm-up each)."})
    docs: int = field(default=200, metadata={"help": "Collection: documents per run."})
    concurrency: int = field(default=8, metadata={"help": "Collection: requests in flight (both sides)."})
    delay_s: float = field(default=0.05, metadata={"help": "Collection: the fault server's answer delay."})
    repeats: int = field(default=3, metadata={"help": "Collection: alternating bare/pipeline pairs."})
    base_url: Optional[str] = field(default=None, metadata={"help": "Collection against this endpoint instead of the fault server."})
    model: str = field(default="teacher", metadata={"help": "Model name sent to --base_url."})
    on_policy_new_tokens: int = field(default=32, metadata={"help": "On-policy step: tokens the student samples."})
    aligned_share: float = field(default=0.8, metadata={"help": "Text-aligned step: share of summary positions "
                                                                    "with a teacher row (the rest: CE only)."})
    text_only: bool = field(default=False, metadata={"help": "Training steps: CE and the text-aligned steps only."})
    skip_steps: bool = field(default=False, metadata={"help": "Only the collection benchmark."})
    skip_collection: bool = field(default=False, metadata={"help": "Only the training-step benchmark."})


def step_bench(a: BenchArguments) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lsrmwf.data.causal import CausalCollator
    from lsrmwf.distill.logit_kd import KD_LOSSES
    from lsrmwf.training.base import DistillTrainingArguments
    from lsrmwf.training.logit_kd import LogitKDTrainer

    torch.manual_seed(0)

    def llama(hidden, layers):
        return LlamaForCausalLM(LlamaConfig(vocab_size=a.vocab, hidden_size=hidden, intermediate_size=hidden * 3,
                                            num_hidden_layers=layers, num_attention_heads=max(2, hidden // 64),
                                            num_key_value_heads=max(2, hidden // 64), max_position_embeddings=1024,
                                            pad_token_id=0, eos_token_id=1, bos_token_id=2))

    student = llama(a.hidden, a.layers)
    teacher = llama(int(a.hidden * 1.5) // 64 * 64, a.layers * 2).eval()
    features = []
    for _ in range(a.batch):
        prompt = torch.randint(3, a.vocab, (a.prompt_len,)).tolist()
        summary = torch.randint(3, a.vocab, (a.summary_len,)).tolist()
        top = torch.randint(3, a.vocab, (a.summary_len, a.top_k)).tolist()
        lp = torch.log_softmax(torch.randn(a.summary_len, a.top_k + 1), -1)[:, : a.top_k].tolist()
        features.append({"input_ids": prompt + summary, "labels": [-100] * a.prompt_len + summary,
                         "teacher_top_ids": [[-1] * a.top_k] * a.prompt_len + top,
                         "teacher_top_logprobs": [[0.0] * a.top_k] * a.prompt_len + lp})
    collate = CausalCollator(pad_token_id=0)
    sparse = collate(features)
    plain = {k: v for k, v in sparse.items() if not k.startswith("teacher_")}
    # another tokenizer's rows: a share of the summary positions aligned, the alternatives' shared ids where the
    # served ids happen to be student tokens (here: half of them)
    gen = torch.Generator().manual_seed(1)
    aligned = (torch.rand(sparse["labels"].shape, generator=gen) < a.aligned_share) & sparse["labels"].ne(-100)
    top_ids = sparse["teacher_top_ids"]
    shared_ids = top_ids.masked_fill(torch.rand(top_ids.shape, generator=gen) < 0.5, -1)
    text = {**sparse, "teacher_aligned": aligned.long(), "teacher_top_ids": torch.full_like(shared_ids, -1)}
    text_shared = {**text, "teacher_top_ids": shared_ids}
    with tempfile.TemporaryDirectory() as d:
        args = DistillTrainingArguments(output_dir=d, report_to="none", use_cpu=True)
        kd = dict(kd_alpha=0.5, kd_temperature=2.0)
        ce_trainer = LogitKDTrainer(model=student, args=args, data_collator=collate, **kd)
        kinds = {"ce": (ce_trainer, plain)}
        text_kd = dict(model=student, args=args, data_collator=collate, kd_alignment="text", **kd)
        kinds["text_uld"] = (LogitKDTrainer(**text_kd), text)
        kinds["text_uld_shared"] = (LogitKDTrainer(kd_shared_vocab_weight=0.5, **text_kd), text_shared)
        for loss in KD_LOSSES if not a.text_only else ():
            kinds[f"sparse_{loss}"] = (LogitKDTrainer(model=student, args=args, data_collator=collate, kd_loss=loss,
                                                      **kd), sparse)
            kinds[f"white_box_{loss}"] = (LogitKDTrainer(model=student, args=args, data_collator=collate, kd_loss=loss,
                                                         teacher_model=teacher, **kd), plain)
        kinds["on_policy"] = None
        if not a.text_only:
            on_policy = dict(teacher_model=teacher, on_policy_lambda=1.0,
                             on_policy_max_new_tokens=a.on_policy_new_tokens)
            kinds["on_policy"] = (LogitKDTrainer(model=student, args=args, data_collator=collate, **on_policy, **kd),
                                  plain)
    student.generation_config.eos_token_id = None  # sample the full --on_policy_new_tokens every time
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-5)
    student.train()

    def one(kind):
        trainer, batch = kinds[kind]
        t0 = time.perf_counter()
        loss = trainer.compute_loss(student, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    kinds = {k: v for k, v in kinds.items() if v is not None}
    times = {k: [] for k in kinds}
    for k in kinds:
        one(k)  # warm-up
    for _ in range(a.steps):
        for k in kinds:
            times[k].append(one(k))
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = {"text_uld_over_ce": round(med["text_uld"] / med["ce"], 3),
              "text_uld_shared_over_ce": round(med["text_uld_shared"] / med["ce"], 3), "text_target": "<= 1.30"}
    for loss in KD_LOSSES if not a.text_only else ():
        ratios[f"sparse_{loss}_over_ce"] = round(med[f"sparse_{loss}"] / med["ce"], 3)
        ratios[f"white_box_{loss}_over_ce"] = round(med[f"white_box_{loss}"] / med["ce"], 3)
        if loss != "forward_kl":
            ratios[f"white_box_{loss}_over_white_box_forward_kl"] = round(
                med[f"white_box_{loss}"] / med["white_box_forward_kl"], 3)
    if "on_policy" in med:
        ratios["on_policy_over_ce"] = round(med["on_policy"] / med["ce"], 3)
    return {
        "student_parameters_M": round(student.num_parameters() / 1e6, 2),
        "teacher_parameters_M": round(teacher.num_parameters() / 1e6, 2),
        "tokens_per_step": a.batch * (a.prompt_len + a.summary_len), "loss_tokens_per_step": a.batch * a.summary_len,
        "on_policy_new_tokens": a.on_policy_new_tokens,
        "median_step_s": {k: round(v, 4) for k, v in med.items()},
        "min_max_step_s": {k: [round(min(v), 4), round(max(v), 4)] for k, v in times.items()},
        **ratios,
        "sparse_target": "<= 1.10",
    }


def collection_bench(a: BenchArguments) -> dict:
    import datasets
    from openai import AsyncOpenAI

    from lsrmwf.llm.client import GenerationParams, LLMClient
    from lsrmwf.llm.pipeline import run_task
    from lsrmwf.llm.teacher_logprobs import TeacherLogprobsTask

    docs = [f"Paper {i} proposes method {i}. It improves accuracy on task {i}. The code is public." for i in range(a.docs)]
    task = TeacherLogprobsTask(top_logprobs=a.top_k)

    def pipeline(url, out):
        ds = datasets.Dataset.from_dict({"id": [str(i) for i in range(a.docs)], "document": docs, "summary": [""] * a.docs})
        client = LLMClient([url], None, GenerationParams(model=a.model, max_tokens=64))
        t0 = time.perf_counter()
        summary = run_task(task, ds, client, out, concurrency=a.concurrency, progress=False)
        return time.perf_counter() - t0, summary

    async def bare(url):
        client = AsyncOpenAI(base_url=url, api_key="not-needed")
        queue = iter(docs)

        async def worker():
            for doc in queue:
                await client.chat.completions.create(model=a.model, messages=task.prompt(doc), temperature=0.0, max_tokens=64,
                                                     logprobs=True, top_logprobs=a.top_k)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(a.concurrency)))
        await client.close()
        return time.perf_counter() - t0

    def run(url):
        bare_s, pipe_s, last = [], [], None
        with tempfile.TemporaryDirectory() as d:
            for r in range(a.repeats):
                bare_s.append(asyncio.run(bare(url)))
                seconds, last = pipeline(url, os.path.join(d, f"t{r}.jsonl"))
                pipe_s.append(seconds)
        return {"docs": a.docs, "concurrency": a.concurrency, "bare_s": [round(x, 3) for x in bare_s],
                "pipeline_s": [round(x, 3) for x in pipe_s],
                "pipeline_over_bare_throughput": round(sum(bare_s) / sum(pipe_s), 3), "target": ">= 0.95",
                "bytes_per_token": last["file"]["bytes_per_token"], "failed": last["this_run"]["failed"]}

    if a.base_url:
        return run(a.base_url)
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from llm_fault_server import FaultServer

    with FaultServer(delay_s=a.delay_s) as srv:
        out = run(srv.base_url)
    out["server"] = f"fault server, {a.delay_s}s per answer"
    return out


def main():
    from transformers import HfArgumentParser

    (a,) = HfArgumentParser(BenchArguments).parse_args_into_dataclasses()
    result = {}
    if not a.skip_steps:
        result["training_step"] = step_bench(a)
        print(json.dumps(result["training_step"]), file=sys.stderr)
    if not a.skip_collection:
        result["served_collection"] = collection_bench(a)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
