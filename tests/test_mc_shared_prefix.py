"""Shared-prefix multiple-choice scoring (one pass over each prompt, candidates against its cache) gives the
full path's per-candidate log-probabilities: tiny causal models built from configs, a BPE trained on aclsum
text, prompts and candidates of varied lengths, a BPE merge across the boundary, left truncation."""

import json

import pytest
import torch

from lsrmwf.evaluation import multiple_choice as mc
from lsrmwf.evaluation.shared_prefix import score_examples_shared_prefix, shared_prefix_length
from lsrmwf.io import InputError


def _models(vocab: int):
    from transformers import (
        Gemma3ForCausalLM,
        Gemma3TextConfig,
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
    )

    torch.manual_seed(0)
    small = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    models = {
        "llama": LlamaForCausalLM(LlamaConfig(**small, num_key_value_heads=2, max_position_embeddings=96)),
        "gpt2": GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=96, n_embd=32, n_layer=2, n_head=2)),
        # a sliding window shorter than the prompts: the cache's layout must keep every window exact
        "gemma3": Gemma3ForCausalLM(Gemma3TextConfig(**small, num_key_value_heads=1, head_dim=8,
                                                     max_position_embeddings=96, sliding_window=8,
                                                     layer_types=["sliding_attention", "full_attention"])),
    }
    for m in models.values():
        m.eval()
        with torch.no_grad():  # sharper distributions than the default init
            for p in m.parameters():
                p.mul_(3.0)
    return models


@pytest.fixture(scope="module")
def models(tiny_tokenizer):
    return _models(len(tiny_tokenizer) + 8)


@pytest.fixture(scope="module")
def merging_tokenizer(aclsum_train):
    """A byte-level BPE trained on aclsum text without the pre-tokenizer's word split, so tokens run across
    spaces ("ofĠtheĠ") and a candidate's first characters can merge with the prompt's last ones."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(aclsum_train["document"][:20]) + list(aclsum_train["summary"]), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")


def _examples(aclsum_train):
    docs = [d.split(". ") for d in aclsum_train["document"][:6]]
    words = " ".join(aclsum_train["summary"][:3]).split()
    examples = [
        (docs[0][0] + ". Answer: ", ["yes", "no", " ".join(words[:9])]),  # candidates of 1 to ~12 tokens
        (docs[1][0] + " " + docs[1][1] + "\nA:", [words[3], " ".join(words[4:6])]),
        ("", [words[7], words[8] + " " + words[9]]),  # empty prompt: the start token is the context
        ("We describe the mod", ["el", "model of the", "paper"]),  # merges across the boundary (no-split BPE)
        (docs[2][0] + " of the", ["new method for the task", "paper and its results"]),
        (" ".join(docs[3]) * 3, ["positive", "negative", "it is neutral"]),  # longer than the models: truncated
        (docs[4][0] + "?", [" ".join(words[10:10 + k]) for k in range(1, 8)]),
    ]
    return examples


@pytest.mark.parametrize("which", ["bart_bpe", "merging_bpe"])
def test_shared_prefix_equals_full_path_per_candidate(which, models, tiny_tokenizer, merging_tokenizer, aclsum_train):
    tok = {"bart_bpe": tiny_tokenizer, "merging_bpe": merging_tokenizer}[which]
    start = mc.start_ids_of(tok)
    examples = _examples(aclsum_train)
    merged = 0
    for prompt, choices in examples:
        context = prompt.rstrip(" ")
        ctx = tok(context, add_special_tokens=False)["input_ids"] if context else []
        for c in choices:
            whole = tok(context + prompt[len(context):] + mc.join_continuation(prompt, c),
                        add_special_tokens=False)["input_ids"]
            merged += whole[:len(ctx)] != ctx
    if which == "merging_bpe":
        assert merged, "no candidate merges with its prompt across the boundary; the test lost its point"
    for name, model in models.items():
        max_length = mc._max_length(model)
        seqs = [[mc.encode_pair(tok, p, c, start, max_length) for c in cs] for p, cs in examples]
        assert any(len(ids) - 1 == max_length for e in seqs for ids, _ in e), "no example was truncated"
        flat = [s for e in seqs for s in e]
        full = mc.score_sequences(model, flat, batch_size=3, pad_id=0)
        for batch_size in (1, 4):
            shared = [v for e in score_examples_shared_prefix(model, seqs, batch_size=batch_size, pad_id=0) for v in e]
            assert shared == pytest.approx(full, abs=1e-4), (name, batch_size)
        # candidates cut differently from the left (the truncated example) share nothing; the others share
        # their prompt, up to a token merged with a candidate
        whole = [e for e, (p, _) in zip(seqs, examples) if p and all(len(ids) - 1 < max_length for ids, _ in e)]
        assert all(shared_prefix_length(e) >= min(n for _, n in e) - 2 for e in whole), "the prompt was not shared"


def test_scoring_mode_is_part_of_the_cache_key(tmp_path, models, tiny_tokenizer, aclsum_train):
    rows = [{"prompt": p, "choices": c, "label": 0} for p, c in _examples(aclsum_train)]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    task = mc.load_jsonl_task(str(path), name="modes")
    cache = str(tmp_path / "mc_cache.jsonl")
    model = models["llama"]
    full = mc.run_multiple_choice(model, tiny_tokenizer, [task], cache_path=cache, progress=False, scoring="full",
                                  fingerprint="m", return_details=True)
    shared = mc.run_multiple_choice(model, tiny_tokenizer, [task], cache_path=cache, progress=False,
                                    fingerprint="m", return_details=True)
    assert shared["scoring"] == "shared_prefix" and shared["scored"] == len(rows) and shared["cached"] == 0
    again = mc.run_multiple_choice(model, tiny_tokenizer, [task], cache_path=cache, progress=False, scoring="full",
                                   fingerprint="m")
    assert again["cached"] == len(rows)
    for a, b in zip(full["details"]["modes"], shared["details"]["modes"]):
        assert a["prediction"] == b["prediction"] and b["scores"] == pytest.approx(a["scores"], abs=1e-4)
    modes = [json.loads(line)["scoring"] for line in open(cache, encoding="utf-8")]
    assert modes == ["full"] * len(rows) + ["shared_prefix"] * len(rows)


def test_model_without_a_cache_needs_full_scoring(models, tiny_tokenizer, aclsum_train):
    class NoCache(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.config = inner, inner.config

        def forward(self, input_ids, attention_mask=None):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask)

    task = mc.MCTask("t", [mc.MCExample("Is it?", ["yes", "no"], (0,))], kind="jsonl", source="t.jsonl")
    with pytest.raises(InputError, match="--mc_scoring full"):
        mc.run_multiple_choice(NoCache(models["llama"]), tiny_tokenizer, [task], progress=False)
    res = mc.run_multiple_choice(NoCache(models["llama"]), tiny_tokenizer, [task], progress=False, scoring="full")
    assert res["scoring"] == "full" and res["tasks"]["t"]["n"] == 1
