"""``--task probe``: the BRD paper's layer-wise probe (Appendix A.4, Figure 4) for several models
(:mod:`lsrmwf.evaluation.probe`): ``probe_results.json`` / ``.md`` and ``probe.png``."""

import logging
import os
from dataclasses import dataclass, field
from typing import List, Mapping, Optional

from ...io import InputError, write_json_atomic
from .arguments import GenerationArguments, InputArguments
from .registry import EvaluationTask, register_task

logger = logging.getLogger("lsrmwf.evaluate")


@dataclass
class ProbeArguments:
    """Which models, which tasks (train and test split files of task_data) and the regularisation."""

    _argument_group_name = "probe"

    probe_models: Optional[List[str]] = field(
        default=None, metadata={"help": "probe: the causal LMs to probe (default: --model_name_or_path), e.g. "
                                        "facebook/xglm-564M runs/xglm-brd; LABEL=PATH names one in the table and "
                                        "the plot (default: the path)."})
    task_data_dir: Optional[str] = field(
        default=None, metadata={"help": "probe: the --output_dir of python -m lsrmwf.commands.task_data; the probe "
                                        "trains on train/<task>.jsonl and scores test/<task>.jsonl."})
    probe_tasks: Optional[List[str]] = field(default=None, metadata={"help": "probe: task names in --task_data_dir."})
    probe_c: float = field(default=1.0, metadata={"help": "probe: inverse L2 strength C of the logistic regression."})
    probe_max_train: Optional[int] = field(
        default=None, metadata={"help": "probe: at most N training inputs per task (the first N)."})


def _split(path: str, limit: Optional[int] = None):
    from ..task_data import read_split_rows

    if not os.path.isfile(path):
        raise InputError(f"{path}: file not found (python -m lsrmwf.commands.task_data writes it)")
    rows = read_split_rows(path)[:limit] if limit else read_split_rows(path)
    return [r["prompt"] for r in rows], [r["label"][0] for r in rows]


@register_task("probe")
class ProbeTask(EvaluationTask):
    summary = "accuracy per layer of an L2 logistic regression on mean-pooled hidden states; BRD paper A.4"
    arguments = (ProbeArguments,)

    def run(self, args: Mapping[type, object]) -> dict:
        from ..causal_lm import load_causal_lm
        from ..probe import layer_features, plot_probe, probe_layers, probe_table

        inp, gen, pa = args[InputArguments], args[GenerationArguments], args[ProbeArguments]
        models = pa.probe_models or ([inp.model_name_or_path] if inp.model_name_or_path else [])
        if not models or not pa.task_data_dir or not pa.probe_tasks or not inp.output_dir:
            raise InputError("--task probe needs --probe_models (or --model_name_or_path), --task_data_dir, "
                             "--probe_tasks and --output_dir")
        data = {t: (_split(os.path.join(pa.task_data_dir, "train", f"{t}.jsonl"), pa.probe_max_train),
                    _split(os.path.join(pa.task_data_dir, "test", f"{t}.jsonl"))) for t in pa.probe_tasks}
        os.makedirs(inp.output_dir, exist_ok=True)
        results = {}
        for spec in models:
            name, path = spec.split("=", 1) if "=" in spec else (spec, spec)
            if name in results:
                raise InputError(f"--probe_models: {name!r} is given twice")
            model, tokenizer = load_causal_lm(path, gen.device, gen.dtype, inp.cache_dir, flag="--probe_models")
            results[name] = {}
            for task, ((tr_x, tr_y), (te_x, te_y)) in data.items():
                train_f = layer_features(model, tokenizer, tr_x, gen.batch_size)
                test_f = layer_features(model, tokenizer, te_x, gen.batch_size)
                results[name][task] = probe_layers(train_f, tr_y, test_f, te_y, C=pa.probe_c)
                logger.info("%s %s: best layer %d", name, task, max(range(len(results[name][task])),
                                                                    key=results[name][task].__getitem__))
        table = probe_table(results)
        labels = dict(m.split("=", 1) if "=" in m else (m, m) for m in models)
        write_json_atomic(os.path.join(inp.output_dir, "probe_results.json"),
                          {"accuracy": results, "models": labels, "C": pa.probe_c, "penalty": "l2",
                           "pooling": "token mean"})
        with open(os.path.join(inp.output_dir, "probe_results.md"), "w", encoding="utf-8") as f:
            f.write(table)
        plot_probe(results, os.path.join(inp.output_dir, "probe.png"))
        print(table)
        return results
