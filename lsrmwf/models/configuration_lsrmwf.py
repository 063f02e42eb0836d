"""Configuration of the LSR-MWF model: a BART configuration plus the rationale views and gates."""

from transformers import BartConfig

from ..io.schema import VIEWS as ALL_VIEWS


class LsrMwfConfig(BartConfig):
    r"""
    Configuration for [`LsrMwfForConditionalGeneration`]: every [`BartConfig`] field, plus

    Args:
        views (`list[str]`, *optional*, defaults to `["ea", "as", "ter"]`):
            The rationale views to build, any non-empty subset of `("ea", "as", "ter")` (the paper's
            ablations). Views are stacked hierarchically in this canonical order whatever order is
            given: the first active view reads the document embeddings, each next one also reads
            the previous view's output.
        gate_init (`float`, *optional*, defaults to 0.02):
            Initial value of every fusion gate (paper: 0.02 for CNN/DM, 0.01 for XSum).
        freeze_gates (`bool`, *optional*, defaults to `False`):
            Keep the gates at `gate_init` (the fixed-gate ablation, paper Table 4).
        gate_logit_scale (`float`, *optional*):
            Each gate is `sigmoid(gate_logit_scale * p)` of a learned parameter `p`. `None` (the
            default) means `1 / (gate_init * (1 - gate_init))`, resolved when the model is built and
            then stored, so that near its initial value a gate moves as fast as a directly learned
            weight would (see `LsrMwfDecoderLayer`). Checkpoints saved before this option existed
            used plain logits and reload with 1.0.
        view_dropout (`float`, *optional*):
            Dropout inside the view modules; `None` means the model's `dropout`.
        view_ffn_dim (`int`, *optional*):
            Feed-forward width of the view layers; `None` means `2 * d_model` (2048 for
            bart-large, whose own layers use 4096). The paper does not give this width. Half of
            BART's keeps a training step within 1.25x of plain BART's with a margin (full-width
            views cost about 1.19x BART's step FLOPs, narrow ones 1.13x); set `encoder_ffn_dim`
            for full BART layers. The resolved number is stored, so a checkpoint always reloads
            with the width it was trained with.

    Gates are stored as scaled logits and read through a sigmoid, so they stay strictly inside
    (0, 1) whatever the optimizer does. The view layers are BART encoder layers, so
    `model.gradient_checkpointing_enable()` (`--gradient_checkpointing`) recomputes them too.
    """

    model_type = "lsrmwf"

    views: list[str] | tuple[str, ...] = ALL_VIEWS
    gate_init: float = 0.02
    freeze_gates: bool = False
    gate_logit_scale: float | None = None
    view_dropout: float | None = None
    view_ffn_dim: int | None = None

    def __post_init__(self, **kwargs):
        views = tuple(self.views)
        unknown = [v for v in views if v not in ALL_VIEWS]
        if not views or unknown or len(set(views)) != len(views):
            raise ValueError(f"views must be a non-empty subset of {ALL_VIEWS} without repeats, got {list(views)}")
        if not 0.0 < float(self.gate_init) < 1.0:
            raise ValueError(f"gate_init must lie strictly between 0 and 1, got {self.gate_init}")
        self.views = [v for v in ALL_VIEWS if v in views]
        self.gate_init = float(self.gate_init)
        if self.gate_logit_scale is not None and not float(self.gate_logit_scale) > 0.0:
            raise ValueError(f"gate_logit_scale must be > 0, got {self.gate_logit_scale}")
        kwargs.pop("model_type", None)  # a BART config.json says "bart"; this config is always "lsrmwf"
        super().__post_init__(**kwargs)
        self.__dict__.pop("model_type", None)
        if self.view_ffn_dim is None:
            self.view_ffn_dim = 2 * self.d_model
        if int(self.view_ffn_dim) < 1:
            raise ValueError(f"view_ffn_dim must be a positive width, got {self.view_ffn_dim}")
        self.view_ffn_dim = int(self.view_ffn_dim)
