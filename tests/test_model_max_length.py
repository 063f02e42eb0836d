"""A tokenizer trained from scratch truncates to the model's positions: saved with the checkpoint by
train.py, capped on loading for older checkpoints, and the README's snippet runs on a long document."""

import os
import re

import pytest
import tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POSITIONS = 160  # the README snippet generates up to 140 tokens
OVERRIDES = tiny.overrides(decoder_layers=1, max_position_embeddings=POSITIONS)


@pytest.fixture(scope="module")
def scratch_checkpoint(aclsum_train, tmp_path_factory):
    """What train.py saves for a model built from --config_overrides with a BPE trained on the text."""
    import torch

    from lsrmwf.training.arguments import ModelArguments, SummarizationDataArguments
    from lsrmwf.training.lsr_mwf import LsrMwfArguments
    from lsrmwf.training.recipes.lsr_mwf import build_model_and_tokenizer

    texts = list(aclsum_train["document"][:10]) + list(aclsum_train["summary"][:10])
    torch.manual_seed(0)
    model, tok = build_model_and_tokenizer(
        ModelArguments(config_overrides=OVERRIDES, tokenizer_vocab_size=400),
        SummarizationDataArguments(max_source_length=POSITIONS, max_target_length=32), LsrMwfArguments(gate_init=0.02),
        texts)
    assert model.config.max_position_embeddings == POSITIONS and tok.model_max_length == POSITIONS
    path = tmp_path_factory.mktemp("scratch") / "model"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def long_document(aclsum_train):
    text = " ".join(aclsum_train["document"][:6])
    return text


def test_saved_tokenizer_truncates_to_the_positions(scratch_checkpoint, long_document):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(scratch_checkpoint)
    assert tok.model_max_length == POSITIONS
    assert len(tok(long_document)["input_ids"]) > 4 * POSITIONS  # the document is much longer than the model
    enc = tok([long_document], truncation=True, return_tensors="pt")
    assert enc["input_ids"].shape[1] == POSITIONS
    model = AutoModelForSeq2SeqLM.from_pretrained(scratch_checkpoint).eval()
    with torch.inference_mode():
        out = model.generate(**enc, num_beams=2, max_length=12, min_length=2)  # IndexError before the fix
    assert out.shape[0] == 1


def test_an_old_checkpoint_with_an_unlimited_tokenizer_still_truncates(scratch_checkpoint, long_document, tmp_path):
    import json
    import shutil

    from lsrmwf.evaluation.generation import GenerationSettings, generate_summaries, load_model

    old = tmp_path / "old"
    shutil.copytree(scratch_checkpoint, old)
    config_path = old / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["model_max_length"] = int(1e30)  # what train.py saved before the fix
    config_path.write_text(json.dumps(config))

    model, tok = load_model(str(old), device="cpu")
    assert tok.model_max_length == POSITIONS
    assert tok([long_document], truncation=True, return_tensors="pt")["input_ids"].shape[1] == POSITIONS
    settings = GenerationSettings(num_beams=2, max_length=12, min_length=2, batch_size=1, device="cpu")
    summaries, _, stats = generate_summaries(model, tok, [long_document, "A short one."], settings, progress=False)
    assert len(summaries) == 2 and stats["max_source_length"] == POSITIONS


def test_readme_snippet_runs_on_a_saved_checkpoint(scratch_checkpoint, long_document, capsys):
    """The "Use the model like any Transformers model" block of README.md, as written, on a long document."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    block = re.search(r"Use the model like any Transformers model\..*?```python\n(.*?)```", readme, re.S).group(1)
    assert 'from_pretrained("runs/lsrmwf-cnndm", trust_remote_code=True)' in block
    code = block.replace("runs/lsrmwf-cnndm", scratch_checkpoint)
    scope = {"article": long_document}
    exec(compile(code, "README.md", "exec"), scope)
    assert isinstance(scope["summary"], list) and len(scope["summary"]) == 1
    assert scope["ids"]["input_ids"].shape[1] == POSITIONS
    assert capsys.readouterr().out.strip()  # the gates were printed
