"""The model card (``README.md``) of a ``train.py`` output directory, written from ``run_summary.json`` and the
run's arguments: the method and base model, its data (rationales and selection for LSR-MWF, teacher and loss
for KD, mix for BRD), the presets with their sources, the final gates, evaluation results, how to load and
generate, and the paper to cite. :func:`push_to_hub` sends the card with the weights and the model's code."""

import json
import os
from typing import Dict, List, Optional

from ..io import write_text_atomic
from ..presets import BRD_PRESET, BRD_SOURCES, PRESETS, SOURCES

CARD = "README.md"
CITATIONS = {
    "lsr_mwf": ("Linyong Wang, Lianwei Wu, Shaoqi Song, Yaxiong Wang, Cuiyun Gao, Kang Wang. *Distilling Structured "
                "Rationale from Large Language Models to Small Language Models for Abstractive Summarization*. "
                "AAAI 2025."),
    "logit_kd": "*Task-Specific Knowledge Distillation for Accurate and Efficient Text Summarization*. 2025.",
    "basic_reading": "*Basic Reading Distillation* (ACL submission).",
}
TIMINGS = ("_runtime", "_per_second")
NOT_PUSHED = ["checkpoint-*", "*.tmp*", "runs/*", ".write_test*"]


def read_summary(output_dir: str) -> dict:
    path = os.path.join(output_dir, "run_summary.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def final_gates(output_dir: str) -> Optional[dict]:
    """The last row of ``gates.jsonl`` (``{"step", "views", "gates"}``), or None without one."""
    path = os.path.join(output_dir, "gates.jsonl")
    if not os.path.exists(path):
        return None
    last = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                last = json.loads(line)
    return last


def method_of(recipe: str, args) -> Dict[str, str]:
    """``{"key", "name"}``: the citation key and the method as the card names it."""
    kd = bool(args.logit_kd.teacher_model_name_or_path or args.logit_kd.teacher_logprobs_file)
    if recipe == "basic_reading" or args.basic_reading.stage == "basic_reading":
        return {"key": "basic_reading", "name": "Basic Reading Distillation (the basic reading stage)"}
    if recipe == "logit_kd" or kd:
        student = "" if recipe == "logit_kd" or args.lsr_mwf.baseline else " on an LSR-MWF student"
        return {"key": "logit_kd", "name": f"Task-specific logit distillation{student}"}
    if args.lsr_mwf.baseline:
        return {"key": "lsr_mwf", "name": "BART fine-tuned without rationales (the LSR-MWF paper's baseline)"}
    return {"key": "lsr_mwf", "name": "LSR-MWF (structured-rationale views with weak-gated fusion)"}


def used_value(args, name: str):
    for part in (args.data, args.lsr_mwf, args.training, args.basic_reading, args.model):
        if hasattr(part, name):
            return getattr(part, name)
    return None


def table(header: List[str], rows: List[list]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def preset_lines(method_key: str, args) -> List[str]:
    if method_key == "basic_reading":
        rows = [[k, BRD_PRESET[k], used_value(args, k), BRD_SOURCES[k]] for k in BRD_PRESET]
        return ["## Preset `brd`", "", *table(["setting", "preset", "used", "source"], rows), ""]
    preset = args.data.preset
    if preset not in PRESETS:
        return []
    values = PRESETS[preset]
    rows = [[k, getattr(values, k), "—" if used_value(args, k) is None else used_value(args, k), SOURCES[k]]
            for k in SOURCES]
    return [f"## Preset `{preset}`", "", "Values the command line did not give come from the preset; `used` is "
            "what this run used (— for the selection settings, which apply when generate_rationales.py selects "
            "the rationales).", "", *table(["setting", "preset", "used", "source"], rows), ""]


def data_lines(method_key: str, args, summary: dict) -> List[str]:
    data = args.data
    source = data.dataset_name or data.train_file or args.basic_reading.brd_passages_dir or \
        args.basic_reading.basic_reading_file
    lines = ["## Data", "", f"- training data: `{source}`"]
    if summary.get("examples"):
        lines.append("- examples: " + ", ".join(f"{k} {v}" for k, v in summary["examples"].items() if v is not None))
    if method_key == "lsr_mwf" and not args.lsr_mwf.baseline:
        lsr = args.lsr_mwf
        lines.append(f"- rationales: `{lsr.rationale_file}`" if lsr.rationale_file else
                     "- rationales: none given (the views train without alignment losses)")
        join = summary.get("rationale_join") or {}
        if join.get("line"):
            lines.append(f"- rationale counts: {join['line']}")
        preset = PRESETS.get(data.preset)
        if preset is not None:
            lines.append(f"- selection: {preset.score} ≥ threshold {preset.score_threshold} ({preset.rouge_measure}, "
                         f"Score2 terms {preset.score2_terms}); rationales {preset.rationales}; "
                         f"policy `{lsr.rationale_policy}`; targets `{lsr.target}`")
        lines.append(f"- views: {', '.join(summary.get('views') or lsr.views or [])}; γ_CE {lsr.gamma_ce}, "
                     f"γ_views {lsr.gamma_views}; gate init {lsr.gate_init}")
    if method_key == "logit_kd":
        kd = args.logit_kd
        teacher = kd.teacher_model_name_or_path or f"served teacher's top-K log-probs `{kd.teacher_logprobs_file}`"
        lines.append(f"- teacher: {teacher}")
        lines.append(f"- loss: {kd.kd_alpha}·CE + {1 - kd.kd_alpha:g}·T²·KL(teacher_T ‖ student_T), "
                     f"T = {kd.kd_temperature}")
    if method_key == "basic_reading":
        brd = args.basic_reading
        lines.append(f"- mix: `{brd.brd_mix}`" + (f" of `{brd.brd_passages_dir}`" if brd.brd_passages_dir else ""))
        if summary.get("brd"):
            lines.append(f"- mix statistics: `{json.dumps(summary['brd'], sort_keys=True)}`")
    return lines + [""]


def gate_lines(output_dir: str) -> List[str]:
    gates = final_gates(output_dir)
    if not gates:
        return []
    rows = [[i, *(f"{g:.4f}" for g in layer)] for i, layer in enumerate(gates["gates"])]
    return [f"## Final gates (step {gates.get('step')})", "", *table(["decoder layer", *gates["views"]], rows), ""]


def result_lines(summary: dict) -> List[str]:
    metrics = {k: v for k, v in (summary.get("metrics") or {}).items()
               if k.startswith(("eval_", "predict_")) and isinstance(v, (int, float)) and not k.endswith(TIMINGS)}
    if not metrics:
        return []
    return ["## Evaluation results", "", *table(["metric", "value"], [[k, round(v, 4)] for k, v in metrics.items()]),
            ""]


def usage_lines(method_key: str, args, repo: str) -> List[str]:
    if method_key == "basic_reading" or summary_is_causal(args):
        code = ["from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                f'model = AutoModelForCausalLM.from_pretrained("{repo}")',
                f'tok = AutoTokenizer.from_pretrained("{repo}")',
                'print(tok.batch_decode(model.generate(**tok(["Text:"], return_tensors="pt"), max_new_tokens=40)))']
    else:
        remote = ", trust_remote_code=True" if not args.lsr_mwf.baseline else ""
        code = ["from transformers import AutoModelForSeq2SeqLM, AutoTokenizer", "",
                f'model = AutoModelForSeq2SeqLM.from_pretrained("{repo}"{remote})',
                f'tok = AutoTokenizer.from_pretrained("{repo}")',
                'ids = tok([article], truncation=True, max_length=model.config.max_position_embeddings, '
                'return_tensors="pt")',
                f"summary = tok.batch_decode(model.generate(**ids, num_beams={args.data.num_beams}), "
                "skip_special_tokens=True)"]
    note = ("The checkpoint carries its modeling code (`auto_map`), so lsrmwf need not be installed."
            if "trust_remote_code" in "".join(code) else "")
    return ["## How to use", "", "```python", *code, "```", "", *([note, ""] if note else [])]


def summary_is_causal(args) -> bool:
    from .core import is_causal_run

    return is_causal_run(args.model)


def model_card(output_dir: str, args, recipe: str, summary: Optional[dict] = None) -> str:
    """The card's markdown for the run ``args`` (recipe name as in :data:`lsrmwf.training.recipes.RECIPES`)."""
    from .. import __version__

    summary = read_summary(output_dir) if summary is None else summary
    method = method_of(recipe, args)
    base = args.model.model_name_or_path or f"built from a BART config ({args.model.config_overrides or 'defaults'})"
    repo = args.training.hub_model_id or os.path.basename(os.path.abspath(output_dir))
    tags = ["lsrmwf", "distillation", method["key"].replace("_", "-")]
    front = ["---", "library_name: transformers", "tags:", *(f"- {t}" for t in tags)]
    if args.model.model_name_or_path:
        front.append(f"base_model: {args.model.model_name_or_path}")
    front += ["---", ""]
    lines = front + [
        f"# {repo}", "",
        f"Trained with [lsrmwf](https://pypi.org/project/lsrmwf/) {__version__} (`lsrmwf train`; the full arguments "
        "are in `train_config.yaml`, the run's record in `run_summary.json`).", "",
        f"- method: {method['name']}", f"- base model: {base}", f"- model class: {summary.get('model', 'n/a')}", "",
    ]
    lines += data_lines(method["key"], args, summary)
    lines += preset_lines(method["key"], args)
    lines += gate_lines(output_dir)
    lines += result_lines(summary)
    lines += usage_lines(method["key"], args, repo)
    lines += ["## Citation", "", CITATIONS[method["key"]], ""]
    return "\n".join(lines)


def write_model_card(output_dir: str, args, recipe: str) -> str:
    path = os.path.join(output_dir, CARD)
    write_text_atomic(path, model_card(output_dir, args, recipe))
    return path


def push_to_hub(output_dir: str, training_args) -> str:
    """Upload the output directory (card, config with ``auto_map``, code, weights, tokenizer; no checkpoints)
    to ``--hub_model_id`` (default: the directory's name); the repository id."""
    from huggingface_hub import HfApi

    api = HfApi(token=training_args.hub_token)
    repo_id = training_args.hub_model_id or os.path.basename(os.path.abspath(output_dir))
    repo_id = api.create_repo(repo_id, private=bool(training_args.hub_private_repo), exist_ok=True).repo_id
    api.upload_folder(repo_id=repo_id, folder_path=output_dir, ignore_patterns=NOT_PUSHED,
                      commit_message="lsrmwf train: model, code and card")
    return repo_id
