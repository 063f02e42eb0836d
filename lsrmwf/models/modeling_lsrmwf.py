"""LSR-MWF: BART with three rationale views and multi-view weak-gated fusion (AAAI 2025).

The encoder pass computes, besides BART's encoding ``X`` of the document, one output per rationale
view (EA: essential aspects, AS: associated sentences, TER: triple entity relations). Each view is a
single Transformer layer over the document's shared token embeddings, with its own positions and
LayerNorm, stacked hierarchically (EA reads the document, AS also reads EA's output, TER also reads
AS's). Decoder layer ``i`` cross-attends to its own fusion

    X + g_i^EA * A + g_i^AS * S + g_i^TER * R,        g_i^v = sigmoid(k * p_i^v) in (0, 1)

(``p`` a learned parameter, ``k = 1 / (g0 (1 - g0))`` for the initial gate ``g0``; see
:func:`resolve_gate_logit_scale`.)

During training each view's masked-mean output is pulled toward the masked-mean encoding of that
view's rationale text by a cosine loss (``view_losses``); the target encoding carries no gradient,
the view modules and gates do. At inference only the document is needed, and the views are
computed once per input in the encoder pass, so beam search reuses them at every step.
"""

import copy
import inspect
import math
import os
from dataclasses import dataclass
from typing import Dict, Optional

import torch
from torch import nn
from transformers import BartForConditionalGeneration, BartModel, PretrainedConfig
from transformers import initialization as init
from transformers.cache_utils import EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput, Seq2SeqModelOutput
from transformers.models.bart.modeling_bart import (
    BartDecoder,
    BartDecoderLayer,
    BartEncoder,
    BartEncoderLayer,
    BartLearnedPositionalEmbedding,
    BartPreTrainedModel,
    shift_tokens_right,
)

from .configuration_lsrmwf import LsrMwfConfig

COMPATIBLE_MODEL_TYPES = ("bart", "lsrmwf")

# What a checkpoint carries so that `AutoModelForSeq2SeqLM.from_pretrained(path, trust_remote_code=True)` loads
# it without lsrmwf installed: these two files, copied beside the weights (see `write_remote_code`).
AUTO_MAP = {
    "AutoConfig": "configuration_lsrmwf.LsrMwfConfig",
    "AutoModel": "modeling_lsrmwf.LsrMwfModel",
    "AutoModelForSeq2SeqLM": "modeling_lsrmwf.LsrMwfForConditionalGeneration",
}
PACKAGE_VIEWS_IMPORT = "from ..io.schema import VIEWS as ALL_VIEWS"


def write_remote_code(save_directory: str) -> None:
    """Copy ``configuration_lsrmwf.py`` and ``modeling_lsrmwf.py`` into ``save_directory``, self-contained: the
    configuration's one import from the package (the view names) becomes the value it imports."""
    from .configuration_lsrmwf import ALL_VIEWS

    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("configuration_lsrmwf.py", "modeling_lsrmwf.py"):
        with open(os.path.join(here, name), encoding="utf-8") as f:
            text = f.read()
        if name.startswith("configuration"):
            text = text.replace(PACKAGE_VIEWS_IMPORT, f"ALL_VIEWS = {tuple(ALL_VIEWS)!r}  # lsrmwf.io.schema.VIEWS")
        tmp = os.path.join(save_directory, f"{name}.tmp{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, os.path.join(save_directory, name))

# transformers 5.24 renamed the decoder cache argument and output field `past_key_values` -> `cache`
# (the old name is accepted with a FutureWarning until 5.40, and a call that carries both names warns at
# every decoding step). The layers below read and pass the cache under whichever name the installed
# version declares, so no deprecation path is ever taken. The decorated forward keeps its signature
# through functools.wraps, so inspect sees the real parameter names.
CACHE_KWARG = "cache" if "cache" in inspect.signature(BartDecoderLayer.forward).parameters else "past_key_values"
_CACHE_NAMES = ("cache", "past_key_values")


def pop_cache(kwargs: dict):
    """Remove the decoder cache from ``kwargs`` under either name and return it (``None`` if absent)."""
    found = [kwargs.pop(name) for name in _CACHE_NAMES if name in kwargs]
    found = [c for c in found if c is not None]
    if len(found) > 1:
        raise ValueError("pass the decoder cache once, as `cache` or as `past_key_values`, not both")
    return found[0] if found else None


def cache_of(output):
    """The decoder cache carried by a transformers model output, whatever the installed version calls it."""
    return getattr(output, CACHE_KWARG, None)


def resolve_gate_logit_scale(config) -> float:
    """The gates' logit scale ``k`` (``g = sigmoid(k * p)``), resolved once and written to the config.

    Why scaled: the paper learns each gate as a plain weight in [0, 1] with Adam. Adam moves any
    parameter by about its learning rate per step, whatever the gradient's size, so a directly
    learned gate moves ~lr per step. Through an unscaled sigmoid the logit moves ~lr and the gate
    only ``g (1 - g)`` times that, 1/51 at g = 0.02: over a whole run at the paper's rates the gates
    would stay at their initial value (the paper's fixed-gate ablation, Table 4). With
    ``k = 1 / (g0 (1 - g0))`` the gate's derivative is ``dg/dp = k g (1 - g) = 1`` at ``g0``: near its
    initial value a gate learns at the model's learning rate like the paper's direct weight, while
    the sigmoid keeps it inside (0, 1) with a non-zero gradient everywhere. (A clamp would trap a
    gate at 0 or 1 for good; projecting after each step is lost on DeepSpeed's fp32 master copies.)
    """
    if getattr(config, "gate_logit_scale", None) is None:
        g0 = float(config.gate_init)
        config.gate_logit_scale = 1.0 / (g0 * (1.0 - g0))
    return float(config.gate_logit_scale)


def initial_gate_parameter(config) -> float:
    """The parameter value ``p`` whose gate ``sigmoid(k * p)`` is ``config.gate_init``."""
    g0 = float(config.gate_init)
    return math.log(g0 / (1.0 - g0)) / resolve_gate_logit_scale(config)


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` [B, T, D] over positions where ``mask`` [B, T] is non-zero; zeros if none.
    ``hidden`` may have middle dimensions ([B, V, T, D]: every view pooled with the same mask). In fp32
    (whatever ``hidden``'s dtype): the sum over T positions is accumulated in fp32, so fp16's range
    (65504) cannot overflow it; the product stays in ``hidden``'s dtype."""
    mask = mask.to(hidden.dtype).reshape(mask.shape[0], *([1] * (hidden.dim() - 3)), mask.shape[1], 1)
    return (hidden * mask).sum(-2, dtype=torch.float32) / mask.sum(-2, dtype=torch.float32).clamp(min=1.0)


def alignment_loss(pooled: torch.Tensor, target: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Mean of ``1 - cos(pooled, target)`` over rows where ``present``; an exact zero (still attached
    to the graph, so every rank has the same parameters in its backward) when no row has a target.

    Computed in fp32 whatever the inputs' dtype (bf16/fp16 training): the norms square d_model values,
    which overflows fp16 for a vector norm above 256, and bf16's 8-bit mantissa would round 1 - cos."""
    pooled, target = pooled.float(), target.float()
    cos = nn.functional.cosine_similarity(pooled, target, dim=-1, eps=1e-6)
    weight = present.float()
    return ((1.0 - cos) * weight).sum() / weight.sum().clamp(min=1.0)


class GatedFusion(torch.autograd.Function):
    """``X + sum_v g[v] * views[:, v]`` for ``X`` [B, T, D], ``views`` [B, V, T, D], ``g`` [V].

    Every decoder layer fuses the same ``views`` with its own gates. Autograd through a plain
    expression keeps a permuted copy of ``views`` per layer (einsum) or builds [B, V, T, D]
    temporaries in forward and backward (broadcast multiply-sum); this keeps only the shared
    ``views`` storage and computes the gate gradient as one batched matrix product.
    """

    @staticmethod
    def forward(ctx, hidden, views, gates):
        ctx.save_for_backward(views, gates)
        b, v = views.shape[:2]
        # [B, 1, V] @ [B, V, T*D] reads the views in place; matmul([V], [B, V, T*D]) copied them to
        # [B*T*D, V] for a matrix-vector product, in every layer. Same sum, ~10x faster on CPU.
        weights = gates.to(views.dtype).view(1, 1, v).expand(b, 1, v)
        flat = views.reshape(b, v, -1)
        if hidden.dtype == views.dtype and not torch.is_autocast_enabled(hidden.device.type):
            return torch.baddbmm(hidden.reshape(b, 1, -1), weights, flat).view_as(hidden)
        # mixed dtypes or autocast: the product in the views' (autocast) dtype, the sum in the promoted one
        return hidden + torch.bmm(weights, flat).view_as(hidden)

    @staticmethod
    def backward(ctx, grad):
        views, gates = ctx.saved_tensors
        b, v = views.shape[:2]
        grad_views = grad_gates = None
        # Backward runs outside autocast: with mixed dtypes (e.g. fp32 hidden, bf16 views) the products
        # are taken in the views' dtype and each gradient is returned in its input's dtype.
        grad_v = grad.to(views.dtype)
        if ctx.needs_input_grad[1]:
            grad_views = gates.to(views.dtype).view(1, v, 1, 1) * grad_v.unsqueeze(1)
        if ctx.needs_input_grad[2]:
            # [B, 1, N] @ [B, N, V]: on CPU about 8x faster than the [B, V, N] @ [B, N, 1] form.
            # In fp16 the product sums T*D loss-scaled terms per gate: its fp16 result would pass 65504 (inf, a
            # skipped step, a lower loss scale) long before any single gradient does, so it is taken in fp32.
            g, vs = (grad_v.float(), views.float()) if views.dtype == torch.float16 else (grad_v, views)
            grad_gates = torch.matmul(g.reshape(b, 1, -1), vs.reshape(b, v, -1).transpose(1, 2)).sum(0).view(v)
            grad_gates = grad_gates.to(gates.dtype)
        return grad, grad_views, grad_gates


class AllLayersFusion(torch.autograd.Function):
    """Every decoder layer's ``X + sum_v g[l, v] * views[:, v]``: ``X`` [B, T, D], ``views`` [B, V, T, D],
    ``g`` [L, V] -> L tensors [B, T, D], one per layer, as L `GatedFusion`s would give.

    One autograd node for all layers: its backward receives the L layers' gradients together and adds
    them into one [B, V, T, D] gradient for the views (and one [B, T, D] for ``X``) in place, where L
    per-layer fusions each returned a new [B, V, T, D] gradient that autograd then summed out of place.
    """

    @staticmethod
    def forward(ctx, hidden, views, gates):
        ctx.save_for_backward(views, gates)
        b, v = views.shape[:2]
        weights, flat_views, flat_hidden = gates.to(views.dtype), views.reshape(b, v, -1), hidden.reshape(b, 1, -1)
        return tuple(torch.baddbmm(flat_hidden, w.view(1, 1, v).expand(b, 1, v), flat_views).view_as(hidden)
                     for w in weights)

    @staticmethod
    def backward(ctx, *grads):
        views, gates = ctx.saved_tensors
        b, v = views.shape[:2]
        weights, flat_views = gates.to(views.dtype), views.reshape(b, v, -1)
        grad_hidden = grad_views = grad_gates = None
        if ctx.needs_input_grad[0]:
            grad_hidden = grads[0].clone()
            for grad in grads[1:]:
                grad_hidden.add_(grad)
        flat = [grad.to(views.dtype).reshape(b, 1, -1) for grad in grads]
        if ctx.needs_input_grad[1]:
            grad_views = torch.zeros_like(flat_views)
            for w, grad in zip(weights, flat):  # [B, V, 1] @ [B, 1, T*D], accumulated in place
                grad_views.baddbmm_(w.view(1, v, 1).expand(b, v, 1), grad)
            grad_views = grad_views.view_as(views)
        if ctx.needs_input_grad[2]:
            transposed = flat_views.transpose(1, 2)
            grad_gates = torch.stack([torch.bmm(grad, transposed).sum(0).view(v) for grad in flat]).to(gates.dtype)
        return grad_hidden, grad_views, grad_gates


class LayerFusions:
    """The decoder layers' fused encoder states, computed for all layers at once by the decoder."""

    def __init__(self, fused):
        self.fused = fused

    def __getitem__(self, layer_idx: int) -> torch.Tensor:
        return self.fused[layer_idx]


@dataclass
class LsrMwfEncoderOutput(BaseModelOutput):
    """BART's encoder output plus the rationale views.

    Args:
        view_states (`torch.FloatTensor` of shape `(batch_size, num_views, sequence_length, d_model)`):
            Each view module's output, in `config.views` order; same length as the document.
    """

    view_states: Optional[torch.FloatTensor] = None


@dataclass
class LsrMwfSeq2SeqModelOutput(Seq2SeqModelOutput):
    view_states: Optional[torch.FloatTensor] = None


@dataclass
class LsrMwfSeq2SeqLMOutput(Seq2SeqLMOutput):
    """`Seq2SeqLMOutput` (``loss`` is the token cross-entropy) plus

    Args:
        view_losses (`dict[str, torch.FloatTensor]`, *optional*):
            For each view, the mean over examples that have that view's rationale of
            `1 - cos(masked-mean(view output), masked-mean(encoding of the rationale))`.
            Returned when any rationale input or target is given.
    """

    view_losses: Optional[Dict[str, torch.FloatTensor]] = None


class LsrMwfViewModule(nn.Module):
    """One rationale view: own positions + LayerNorm + a single Transformer layer over the shared
    token embeddings of the document (plus, for hierarchical views, the previous view's output)."""

    def __init__(self, config: LsrMwfConfig):
        super().__init__()
        view_config = copy.deepcopy(config)
        if config.view_dropout is not None:
            view_config.dropout = config.view_dropout
        view_config.encoder_ffn_dim = config.view_ffn_dim
        self.dropout = view_config.dropout
        self.embed_positions = BartLearnedPositionalEmbedding(config.max_position_embeddings, config.d_model)
        self.layernorm_embedding = nn.LayerNorm(config.d_model)
        # A BartEncoderLayer, so `model.gradient_checkpointing_enable()` recomputes it like BART's own.
        self.layer = BartEncoderLayer(view_config)

    def forward(self, token_embeds, attention_mask_4d, previous: Optional[torch.Tensor] = None):
        hidden = token_embeds + self.embed_positions(token_embeds[:, :, -1]).to(token_embeds.device)
        if previous is not None:
            hidden = hidden + previous
        hidden = self.layernorm_embedding(hidden)
        hidden = nn.functional.dropout(hidden, p=self.dropout, training=self.training)
        return self.layer(hidden, attention_mask_4d)


class LsrMwfPreTrainedModel(BartPreTrainedModel):
    config_class = LsrMwfConfig
    config: LsrMwfConfig
    _no_split_modules = [r"BartEncoderLayer", r"LsrMwfDecoderLayer", r"LsrMwfViewModule"]

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, LsrMwfDecoderLayer):
            init.constant_(module.gate_logits, initial_gate_parameter(self.config))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """Load an LSR-MWF checkpoint, or a BART one whose views and gates are then initialised.

        LSR-MWF options (``views``, ``gate_init``, ``freeze_gates``, ``view_dropout``, ``view_ffn_dim``) may be given
        as keyword arguments. Checkpoints of other architectures are refused with a clear message.
        """
        config = kwargs.get("config")
        if not isinstance(config, PretrainedConfig):
            config_dict, _ = PretrainedConfig.get_config_dict(
                pretrained_model_name_or_path,
                **{k: kwargs[k] for k in ("cache_dir", "revision", "token", "local_files_only", "subfolder")
                   if k in kwargs},
            )
            model_type = config_dict.get("model_type")
            if model_type == "lsrmwf" and "gate_logit_scale" not in config_dict and "gate_logit_scale" not in kwargs:
                kwargs["gate_logit_scale"] = 1.0  # saved before the scale existed: its gates are plain logits
            if model_type not in COMPATIBLE_MODEL_TYPES:
                raise ValueError(
                    f"{pretrained_model_name_or_path}: model_type {model_type!r} is not a BART checkpoint; "
                    f"LSR-MWF extends BART and can start from model types {COMPATIBLE_MODEL_TYPES} only"
                )
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save as BART does, with ``auto_map`` in ``config.json`` and the model's code beside the weights."""
        self.config.auto_map = dict(AUTO_MAP)
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            write_remote_code(str(save_directory))


class LsrMwfEncoder(LsrMwfPreTrainedModel, BartEncoder):
    """BART's encoder plus the view modules, computed in the same (single) encoder pass."""

    def __init__(self, config: LsrMwfConfig):
        BartEncoder.__init__(self, config)
        self.views = nn.ModuleDict({v: LsrMwfViewModule(config) for v in config.views})
        self.post_init()

    def encode(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs) -> BaseModelOutput:
        """BART's encoding only (no views): used for documents and for rationale targets."""
        return BartEncoder.forward(self, input_ids=input_ids, attention_mask=attention_mask,
                                   inputs_embeds=inputs_embeds, **kwargs)

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs) -> LsrMwfEncoderOutput:
        if (input_ids is None) ^ (inputs_embeds is not None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        base = self.encode(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **kwargs)

        from transformers.masking_utils import create_bidirectional_mask

        mask_4d = create_bidirectional_mask(config=self.config, inputs_embeds=inputs_embeds,
                                            attention_mask=attention_mask)
        outputs, previous = [], None
        for view in self.config.views:
            previous = self.views[view](inputs_embeds, mask_4d, previous)
            outputs.append(previous)
        return LsrMwfEncoderOutput(
            last_hidden_state=base.last_hidden_state,
            hidden_states=base.hidden_states,
            attentions=base.attentions,
            view_states=torch.stack(outputs, dim=1),
        )


class LsrMwfDecoderLayer(BartDecoderLayer):
    """A BART decoder layer whose cross-attention reads its own gated fusion of the views."""

    def __init__(self, config: LsrMwfConfig, layer_idx: Optional[int] = None):
        super().__init__(config, layer_idx=layer_idx)
        self.layer_idx = layer_idx
        # gate = sigmoid(gate_logit_scale * gate_logits): see resolve_gate_logit_scale for why scaled
        self.gate_logit_scale = resolve_gate_logit_scale(config)
        self.gate_logits = nn.Parameter(torch.full((len(config.views),), initial_gate_parameter(config)),
                                        requires_grad=not config.freeze_gates)

    def gates(self) -> torch.Tensor:
        return torch.sigmoid(self.gate_logits * self.gate_logit_scale)

    def fuse(self, encoder_hidden_states: torch.Tensor, view_states) -> torch.Tensor:
        if isinstance(view_states, LayerFusions):  # already fused for every layer by the decoder
            return view_states[self.layer_idx]
        return GatedFusion.apply(encoder_hidden_states, view_states, self.gates())  # casts to the views' dtype itself

    def forward(self, hidden_states, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None,
                use_cache=True, view_states=None, **kwargs):
        cache = pop_cache(kwargs)
        if encoder_hidden_states is not None and view_states is not None:
            cached = isinstance(cache, EncoderDecoderCache) and cache.is_updated.get(self.layer_idx, False)
            # After the first decoding step the cross-attention keys/values come from the cache,
            # so the fusion is computed once per input, not once per generated token.
            if not cached:
                encoder_hidden_states = self.fuse(encoder_hidden_states, view_states)
        return super().forward(
            hidden_states, attention_mask, encoder_hidden_states, encoder_attention_mask=encoder_attention_mask,
            use_cache=use_cache, **{CACHE_KWARG: cache}, **kwargs,
        )


class LsrMwfDecoder(LsrMwfPreTrainedModel, BartDecoder):
    def __init__(self, config: LsrMwfConfig):
        BartDecoder.__init__(self, config)
        self.layers = nn.ModuleList([LsrMwfDecoderLayer(config, layer_idx=i) for i in range(config.decoder_layers)])
        self.post_init()

    def forward(self, *args, view_states=None, **kwargs):
        hidden = kwargs.get("encoder_hidden_states")
        if isinstance(view_states, torch.Tensor) and self._fuses_all_layers_at_once(hidden, view_states, kwargs):
            gates = torch.stack([layer.gates() for layer in self.layers])
            view_states = LayerFusions(AllLayersFusion.apply(hidden, view_states, gates))
        return BartDecoder.forward(self, *args, view_states=view_states, **kwargs)

    def _fuses_all_layers_at_once(self, hidden, views, kwargs) -> bool:
        """When gradients are taken. Each layer's own `GatedFusion` is what runs under no_grad
        (generation), autocast, fp16 or mixed dtypes, gradient checkpointing (a layer's recompute must compute
        its own fusion), and once the cross-attention cache holds the keys and values."""
        cache = next((kwargs[n] for n in _CACHE_NAMES if kwargs.get(n) is not None), None)
        return (
            torch.is_grad_enabled()
            and hidden is not None
            and hidden.dtype == views.dtype
            and views.dtype != torch.float16  # GatedFusion takes fp16 gate gradients in fp32 (loss scaling)
            and not torch.is_autocast_enabled(hidden.device.type)
            and not self.gradient_checkpointing
            and not any(getattr(layer, "gradient_checkpointing", False) for layer in self.layers)
            and not (isinstance(cache, EncoderDecoderCache) and any(cache.is_updated.values()))
            and [layer.layer_idx for layer in self.layers] == list(range(len(self.layers)))
            # read outside their layers' forward: only when every gate is there whole (not a ZeRO-3/FSDP shard)
            and all(layer.gate_logits.numel() == views.shape[1] for layer in self.layers)
        )


class LsrMwfModel(LsrMwfPreTrainedModel, BartModel):
    def __init__(self, config: LsrMwfConfig):
        LsrMwfPreTrainedModel.__init__(self, config)
        padding_idx, vocab_size = config.pad_token_id, config.vocab_size
        embed_scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0
        from transformers.models.bart.modeling_bart import BartScaledWordEmbedding

        self.shared = BartScaledWordEmbedding(vocab_size, config.d_model, padding_idx, embed_scale=embed_scale)
        self.encoder = LsrMwfEncoder(config)
        self.decoder = LsrMwfDecoder(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, inputs_embeds=None, decoder_inputs_embeds=None,
                use_cache=None, **kwargs) -> LsrMwfSeq2SeqModelOutput:
        cache = pop_cache(kwargs)
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            if input_ids is None:
                raise ValueError("pass decoder_input_ids, decoder_inputs_embeds, or input_ids to shift")
            decoder_input_ids = shift_tokens_right(input_ids, self.config.pad_token_id,
                                                   self.config.decoder_start_token_id)
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                           inputs_embeds=inputs_embeds, **kwargs)
        view_states = getattr(encoder_outputs, "view_states", None)
        if view_states is None:
            raise ValueError(
                "encoder_outputs carry no view_states: pass the output of model.get_encoder() "
                "(an LsrMwfEncoderOutput), not a plain BART encoding"
            )
        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=attention_mask,
            inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            view_states=view_states,
            **{CACHE_KWARG: cache},
            **kwargs,
        )
        return LsrMwfSeq2SeqModelOutput(
            last_hidden_state=decoder_outputs.last_hidden_state,
            **{CACHE_KWARG: cache_of(decoder_outputs)},
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
            view_states=view_states,
        )


class LsrMwfForConditionalGeneration(LsrMwfPreTrainedModel, BartForConditionalGeneration):
    """BART for summarization with LSR-MWF's rationale views and weak-gated fusion.

    Example::

        model = LsrMwfForConditionalGeneration.from_pretrained("facebook/bart-large", gate_init=0.02)
        out = model(input_ids, attention_mask, labels=labels,
                    ea_input_ids=..., ea_attention_mask=..., as_input_ids=..., ...)
        loss = 0.6 * out.loss + 0.4 * sum(out.view_losses.values())
        summary_ids = model.generate(input_ids, attention_mask=attention_mask, num_beams=4)
    """

    def __init__(self, config: LsrMwfConfig):
        LsrMwfPreTrainedModel.__init__(self, config)
        self.model = LsrMwfModel(config)
        self.final_logits_bias = nn.Buffer(torch.zeros((1, self.model.shared.num_embeddings)))
        self.lm_head = nn.Linear(config.d_model, self.model.shared.num_embeddings, bias=False)
        self.post_init()

    # ------------------------------------------------------------------------------------------
    def gates(self) -> torch.Tensor:
        """Current gate values, shape ``[decoder_layers, len(config.views)]``, detached."""
        return torch.stack([layer.gates() for layer in self.model.decoder.layers]).detach()

    @torch.no_grad()
    def encode_rationale(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Masked-mean BART encoding of rationale texts, ``[B, d_model]``, without gradient.

        The encoder runs in eval mode (no dropout) so a target does not change from one call to the
        next except through training. Rows whose mask is all zero give a zero vector ("no rationale").
        """
        encoder = self.model.encoder
        was_training = encoder.training
        encoder.eval()
        try:
            hidden = encoder.encode(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        finally:
            encoder.train(was_training)
        return masked_mean(hidden, attention_mask)

    def _view_losses(self, view_states, attention_mask, rationale_inputs):
        losses, pooled = {}, None
        batch, _, length, _ = view_states.shape
        doc_mask = attention_mask if attention_mask is not None else view_states.new_ones(batch, length)
        for k, view in enumerate(self.config.views):
            ids, mask, target = rationale_inputs[view]
            if target is None and ids is None:
                continue
            if target is None:
                if mask is None:
                    mask = ids.ne(self.config.pad_token_id).long()
                target = self.encode_rationale(ids, mask)
                present = mask.sum(-1) > 0
            else:
                target = target.detach()
                present = target.abs().sum(-1) > 0
            if pooled is None:
                # All views pooled in one pass: the backward writes one [B, V, T, D] gradient, where pooling
                # view_states[:, k] view by view wrote a zero-filled one per view and summed them.
                pooled = masked_mean(view_states, doc_mask)
            losses[view] = alignment_loss(pooled[:, k], target, present.to(pooled.device))
        return losses or None

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, inputs_embeds=None, decoder_inputs_embeds=None,
                labels=None, use_cache=None,
                ea_input_ids=None, ea_attention_mask=None, ea_target=None,
                as_input_ids=None, as_attention_mask=None, as_target=None,
                ter_input_ids=None, ter_attention_mask=None, ter_target=None,
                **kwargs) -> LsrMwfSeq2SeqLMOutput:
        r"""
        Besides BART's arguments:

        ea_input_ids / as_input_ids / ter_input_ids (`torch.LongTensor` of shape `(batch_size, rationale_length)`):
            Token ids of each view's rationale text (training only). A row whose attention mask is
            all zeros has no rationale for that view and is left out of its loss.
        ea_attention_mask / as_attention_mask / ter_attention_mask: masks of the above.
        ea_target / as_target / ter_target (`torch.FloatTensor` of shape `(batch_size, d_model)`):
            Pre-computed rationale encodings (see `encode_rationale`), instead of the ids; an all-zero
            row means "no rationale". Saves the three extra encoder passes per step.
        """
        cache = pop_cache(kwargs)
        if labels is not None:
            use_cache = False
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = shift_tokens_right(labels, self.config.pad_token_id,
                                                       self.config.decoder_start_token_id)

        outputs = self.model(
            input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
            encoder_outputs=encoder_outputs, decoder_attention_mask=decoder_attention_mask,
            inputs_embeds=inputs_embeds, decoder_inputs_embeds=decoder_inputs_embeds, use_cache=use_cache,
            **{CACHE_KWARG: cache}, **kwargs,
        )
        lm_logits = (self.lm_head(outputs.last_hidden_state)
                     + self.final_logits_bias.to(outputs.last_hidden_state.device))

        loss = None
        if labels is not None:
            labels = labels.to(lm_logits.device)
            loss = nn.functional.cross_entropy(lm_logits.view(-1, self.config.vocab_size), labels.view(-1))

        rationale_inputs = {
            "ea": (ea_input_ids, ea_attention_mask, ea_target),
            "as": (as_input_ids, as_attention_mask, as_target),
            "ter": (ter_input_ids, ter_attention_mask, ter_target),
        }
        view_losses = self._view_losses(outputs.view_states, attention_mask, rationale_inputs)

        return LsrMwfSeq2SeqLMOutput(
            loss=loss,
            logits=lm_logits,
            **{CACHE_KWARG: cache_of(outputs)},
            decoder_hidden_states=outputs.decoder_hidden_states,
            decoder_attentions=outputs.decoder_attentions,
            cross_attentions=outputs.cross_attentions,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_hidden_states=outputs.encoder_hidden_states,
            encoder_attentions=outputs.encoder_attentions,
            view_losses=view_losses,
        )
