"""A saved LSR-MWF checkpoint loads through ``trust_remote_code`` in a process where lsrmwf cannot be imported,
and its beam search equals the package class's; the README's "use the model" snippet is what that process runs."""

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POSITIONS = 160  # the snippet generates up to 140 tokens
OVERRIDES = (f"d_model=32,encoder_layers=1,decoder_layers=2,encoder_attention_heads=2,decoder_attention_heads=2,"
             f"encoder_ffn_dim=64,decoder_ffn_dim=64,max_position_embeddings={POSITIONS}")

# Runs in a fresh interpreter, cwd outside the repository, PYTHONPATH cleared: any import of lsrmwf fails.
HIDDEN = '''
import importlib.abc, json, sys

class HideLsrmwf(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "lsrmwf" or name.startswith("lsrmwf."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)", name=name)

sys.meta_path.insert(0, HideLsrmwf())
try:
    import lsrmwf
    raise SystemExit("lsrmwf was importable")
except ModuleNotFoundError:
    pass
article = json.load(open(sys.argv[1]))["article"]
exec(compile(open(sys.argv[2]).read(), "README.md", "exec"))
assert not [m for m in sys.modules if m == "lsrmwf" or m.startswith("lsrmwf.")]
print(json.dumps({"summary": summary, "gates": model.gates().tolist(), "class": type(model).__module__}))
'''


def readme_snippet() -> str:
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    return re.search(r"Use the model like any Transformers model\..*?```python\n(.*?)```", readme, re.S).group(1)


@pytest.fixture(scope="module")
def checkpoint(aclsum_train, tmp_path_factory):
    import torch

    from lsrmwf.training.arguments import ModelArguments, SummarizationDataArguments
    from lsrmwf.training.lsr_mwf import LsrMwfArguments
    from lsrmwf.training.recipes.lsr_mwf import build_model_and_tokenizer

    texts = list(aclsum_train["document"][:10]) + list(aclsum_train["summary"][:10])
    torch.manual_seed(0)
    model, tok = build_model_and_tokenizer(
        ModelArguments(config_overrides=OVERRIDES, tokenizer_vocab_size=400),
        SummarizationDataArguments(max_source_length=POSITIONS, max_target_length=32),
        LsrMwfArguments(gate_init=0.3), texts)
    with torch.no_grad():  # gates away from their initial value, so equal gates mean the weights were read
        for i, layer in enumerate(model.model.decoder.layers):
            layer.gate_logits.add_(0.1 * (i + 1))
    path = tmp_path_factory.mktemp("remote") / "model"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def test_the_checkpoint_carries_auto_map_and_self_contained_code(checkpoint):
    config = json.load(open(os.path.join(checkpoint, "config.json")))
    assert config["model_type"] == "lsrmwf"
    assert config["auto_map"]["AutoModelForSeq2SeqLM"] == "modeling_lsrmwf.LsrMwfForConditionalGeneration"
    assert config["auto_map"]["AutoConfig"] == "configuration_lsrmwf.LsrMwfConfig"
    for name in ("configuration_lsrmwf.py", "modeling_lsrmwf.py"):
        code = open(os.path.join(checkpoint, name), encoding="utf-8").read()
        assert not re.search(r"^\s*(from|import)\s+(lsrmwf|\.\.)", code, re.M), name  # nothing from the package


def test_trust_remote_code_without_lsrmwf_equals_the_package_class(checkpoint, aclsum_train, tmp_path):
    import torch
    from transformers import AutoTokenizer

    from lsrmwf import LsrMwfForConditionalGeneration

    article = " ".join(aclsum_train["document"][:3])
    snippet = readme_snippet()
    assert 'from_pretrained("runs/lsrmwf-cnndm", trust_remote_code=True)' in snippet and "import lsrmwf" not in snippet
    (tmp_path / "snippet.py").write_text(snippet.replace("runs/lsrmwf-cnndm", checkpoint))
    (tmp_path / "input.json").write_text(json.dumps({"article": article}))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", HIDDEN, "input.json", "snippet.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    remote = json.loads(done.stdout.strip().splitlines()[-1])
    assert remote["class"].startswith("transformers_modules.")  # the checkpoint's own code ran

    model = LsrMwfForConditionalGeneration.from_pretrained(checkpoint).eval()
    tok = AutoTokenizer.from_pretrained(checkpoint)
    ids = tok([article], truncation=True, max_length=model.config.max_position_embeddings, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, num_beams=4, length_penalty=2.0, min_length=55, max_length=140,
                             no_repeat_ngram_size=3)
    assert remote["summary"] == tok.batch_decode(out, skip_special_tokens=True)
    assert len(remote["summary"][0].split()) > 5
    assert torch.allclose(torch.tensor(remote["gates"]), model.gates().float(), atol=1e-6)


def test_a_checkpoint_directory_without_weights_is_one_line(checkpoint, tmp_path, capsys):
    import shutil

    from lsrmwf.commands.evaluate import main

    broken = tmp_path / "no_weights"
    shutil.copytree(checkpoint, broken, ignore=shutil.ignore_patterns("*.safetensors"))
    data = tmp_path / "test.jsonl"
    data.write_text(json.dumps({"id": "0", "document": "A short document.", "summary": "Short."}) + "\n")
    assert main(["--model_name_or_path", str(broken), "--data_file", str(data), "--output_dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bars
    assert err == (f"evaluate.py: error: --model_name_or_path {broken}: directory has no weights (none of "
                   "model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json)")
