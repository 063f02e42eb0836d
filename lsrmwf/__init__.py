"""lsrmwf: distil an LLM's summarization rationales into a small seq2seq model (LSR-MWF, AAAI 2025)."""

from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

from .models.configuration_lsrmwf import ALL_VIEWS, LsrMwfConfig
from .models.modeling_lsrmwf import LsrMwfForConditionalGeneration, LsrMwfModel, LsrMwfPreTrainedModel

AutoConfig.register(LsrMwfConfig.model_type, LsrMwfConfig, exist_ok=True)
AutoModel.register(LsrMwfConfig, LsrMwfModel, exist_ok=True)
AutoModelForSeq2SeqLM.register(LsrMwfConfig, LsrMwfForConditionalGeneration, exist_ok=True)

__version__ = "0.1.0"


def __getattr__(name):
    # The trainer pulls in the whole Trainer stack; import it only when asked for.
    if name in ("LsrMwfTrainer", "LsrMwfArguments"):
        from .training import lsr_mwf

        return getattr(lsr_mwf, name)
    if name == "DistillTrainingArguments":
        from .training import base

        return base.DistillTrainingArguments
    raise AttributeError(f"module 'lsrmwf' has no attribute {name!r}")


__all__ = [
    "ALL_VIEWS",
    "LsrMwfConfig",
    "LsrMwfModel",
    "LsrMwfPreTrainedModel",
    "LsrMwfForConditionalGeneration",
    "LsrMwfTrainer",
    "LsrMwfArguments",
    "DistillTrainingArguments",
]
