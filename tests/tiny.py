"""The tiny models the tests build from configs (nothing comes from a hub): their sizes in one place.

    bart(**changes)        keyword arguments of BartConfig / LsrMwfConfig: the suite's standard tiny BART
                           (d_model 32, 1 encoder + 2 decoder layers, 2 heads, FFN 64, 256 positions), changed
    overrides(**changes)   the same model as train.py's --config_overrides value
    special_ids(tok)       pad / bos / eos / decoder-start ids of a tokenizer, for a config
    llama(vocab_size, …)   a tiny LlamaConfig; llama_lm(tok, …) the seeded model (causal students and teachers)
    gpt2(vocab_size, …)    a tiny GPT2Config; gpt2_lm(tok, …) the seeded model, its output sharpened so that
                           candidates' scores differ clearly (the multiple-choice scorers)
"""

TINY_BART = dict(d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
                 encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256)
NO_DROPOUT = dict(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)


def bart(**changes) -> dict:
    return {**TINY_BART, **changes}


def overrides(**changes) -> str:
    return ",".join(f"{k}={v}" for k, v in bart(**changes).items())


def special_ids(tok, decoder_start: bool = True) -> dict:
    ids = dict(pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    return {**ids, "decoder_start_token_id": tok.eos_token_id} if decoder_start else ids


def llama(vocab_size: int, hidden: int = 32, layers: int = 2, **changes):
    from transformers import LlamaConfig

    cfg = dict(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
               num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512)
    return LlamaConfig(**{**cfg, **changes})


def gpt2(vocab_size: int, **changes):
    from transformers import GPT2Config

    cfg = dict(vocab_size=vocab_size, n_positions=128, n_embd=32, n_layer=2, n_head=2)
    return GPT2Config(**{**cfg, **changes})


def token_ids(tok) -> dict:
    return dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)


def llama_lm(tok, vocab_size=None, layers: int = 1, hidden: int = 32, seed: int = 0):
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(llama(vocab_size or len(tok), hidden=hidden, layers=layers, **token_ids(tok),
                                  pad_token_id=tok.pad_token_id))


def gpt2_lm(tok, seed: int = 0, sharpen: float = 5.0):
    import torch
    from transformers import GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(gpt2(len(tok), **token_ids(tok))).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(sharpen)
    return model
