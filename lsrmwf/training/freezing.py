"""``--freeze_encoder`` / ``--freeze_embeddings``: train less of the model on small GPUs.

Works for LSR-MWF and plain BART. The view modules live inside the encoder module but are never
frozen by these options: they are the method's new part, and they keep learning from the alignment
losses and, through the gates, from the token loss.
"""

from typing import Dict


def freeze_parameters(model, freeze_encoder: bool = False, freeze_embeddings: bool = False) -> Dict[str, int]:
    """Set ``requires_grad=False`` on

    * ``freeze_encoder``: BART's encoder (its layers, learned positions and LayerNorms), not the views;
    * ``freeze_embeddings``: the shared token embeddings (tied with the LM head) and BART's learned
      positions of encoder and decoder.

    Returns ``{"trainable", "total", "message"}``: parameter counts (tied weights counted once) and a line saying so.
    """
    base = model.get_encoder()
    decoder = model.get_decoder()
    frozen = set()
    if freeze_encoder:
        for name, p in base.named_parameters():
            # the token embeddings are shared with the decoder and the views: --freeze_embeddings decides
            if not name.startswith(("views.", "embed_tokens.")):
                frozen.add(id(p))
    if freeze_embeddings:
        frozen.add(id(model.get_input_embeddings().weight))
        for module in (base, decoder):
            frozen.update(id(p) for p in module.embed_positions.parameters())
    for p in model.parameters():
        if id(p) in frozen:
            p.requires_grad_(False)
    unique = {id(p): p for p in model.parameters()}.values()  # model.parameters() already yields tied weights once
    counts = {"total": sum(p.numel() for p in unique), "trainable": sum(p.numel() for p in unique if p.requires_grad)}
    counts["message"] = (f"trainable parameters: {counts['trainable']} of {counts['total']} "
                         f"({100.0 * counts['trainable'] / max(1, counts['total']):.1f}%)"
                         + ("; encoder frozen (views still train)" if freeze_encoder else "")
                         + ("; embeddings frozen" if freeze_embeddings else ""))
    return counts
