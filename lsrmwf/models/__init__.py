"""The LSR-MWF model: BART plus three rationale views and weak-gated fusion (configuration + modeling)."""

from .configuration_lsrmwf import ALL_VIEWS, LsrMwfConfig
from .modeling_lsrmwf import LsrMwfForConditionalGeneration, LsrMwfModel, LsrMwfPreTrainedModel

__all__ = ["ALL_VIEWS", "LsrMwfConfig", "LsrMwfModel", "LsrMwfPreTrainedModel", "LsrMwfForConditionalGeneration"]
