"""The layer-wise probe (issue 23; BRD paper A.4): a hand-made case where one layer separates the labels and
another does not, mean pooling over real tokens only, evaluate.py --task probe end to end, and its errors."""

import json

import numpy as np
import pytest
import torch
from test_causal_kd import llama

from lsrmwf.evaluation.probe import layer_features, probe_layers
from lsrmwf.io import InputError


def test_one_layer_separates_the_labels_and_another_does_not():
    rng = np.random.RandomState(0)
    n, dim = 80, 6
    y = np.arange(n) % 2
    noise = rng.normal(size=(n, dim))  # layer 0: no information about y
    signal = rng.normal(size=(n, dim)) * 0.3
    signal[:, 2] += np.where(y == 1, 2.0, -2.0)  # layer 1: one direction carries y
    x = np.stack([noise, signal])
    train, test = slice(0, 60), slice(60, n)
    accs = probe_layers(x[:, train], y[train], x[:, test], y[test])
    assert accs[1] == 1.0 and accs[0] <= 0.75
    with pytest.raises(InputError, match="1 class"):
        probe_layers(x[:, train], [0] * 60, x[:, test], y[test])


def test_mean_pooling_ignores_padding_and_a_model_without_hidden_states_is_refused(tiny_tokenizer):
    model = llama(tiny_tokenizer, layers=2).eval()
    texts = ["a short one", "a rather longer sentence with quite a few more words in it"]
    both = layer_features(model, tiny_tokenizer, texts, batch_size=2)
    alone = layer_features(model, tiny_tokenizer, texts[:1], batch_size=1)
    assert both.shape[:2] == (3, 2) and np.allclose(both[:, 0], alone[:, 0], atol=1e-5)
    # features come from the transformer without its LM head: equal to the full model's hidden states
    ids = tiny_tokenizer(texts[0], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        full = model(input_ids=ids, output_hidden_states=True).hidden_states
    assert np.allclose(alone[:, 0], torch.stack([h[0].mean(0) for h in full]).numpy(), atol=1e-5)

    class NoHidden(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(1, 1)

        def forward(self, input_ids, attention_mask, output_hidden_states=False):
            return type("Out", (), {"hidden_states": None})()

    with pytest.raises(InputError, match="NoHidden: the model returns no hidden states"):
        layer_features(NoHidden(), tiny_tokenizer, texts)


def test_evaluate_probe_writes_table_and_plot(tiny_tokenizer, tmp_path):
    from lsrmwf.commands.evaluate import main

    paths = []
    for seed in (0, 1):
        p = tmp_path / f"m{seed}"
        llama(tiny_tokenizer, layers=2, seed=seed).save_pretrained(p)
        tiny_tokenizer.save_pretrained(p)
        paths.append(str(p))
    for split, n in (("train", 24), ("test", 8)):
        (tmp_path / "tasks" / split).mkdir(parents=True)
        rows = [{"id": f"t:{i}", "prompt": ("good great fine " if i % 2 else "bad awful poor ") + f"item {i}",
                 "choices": ["negative", "positive"], "label": [i % 2]} for i in range(n)]
        (tmp_path / "tasks" / split / "toy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    assert main(["--task", "probe", "--probe_models", *paths, "--task_data_dir", str(tmp_path / "tasks"),
                 "--probe_tasks", "toy", "--output_dir", str(out), "--device", "cpu"]) == 0
    res = json.loads((out / "probe_results.json").read_text())
    assert set(res["accuracy"]) == set(paths) and len(res["accuracy"][paths[0]]["toy"]) == 3
    assert (out / "probe.png").stat().st_size > 0 and "| model | 0 | 1 | 2 |" in (out / "probe_results.md").read_text()
    assert main(["--task", "probe", "--probe_models", paths[0], "--task_data_dir", str(tmp_path / "tasks"),
                 "--probe_tasks", "missing", "--output_dir", str(out), "--device", "cpu"]) == 2
    # LABEL=PATH: the label names the model in the results, the table and the plot
    assert main(["--task", "probe", "--probe_models", f"base={paths[0]}", f"brd={paths[1]}", "--task_data_dir",
                 str(tmp_path / "tasks"), "--probe_tasks", "toy", "--output_dir", str(out), "--device", "cpu"]) == 0
    labelled = json.loads((out / "probe_results.json").read_text())
    assert labelled["accuracy"] == {"base": res["accuracy"][paths[0]], "brd": res["accuracy"][paths[1]]}
    assert labelled["models"] == {"base": paths[0], "brd": paths[1]}
    assert "| base |" in (out / "probe_results.md").read_text()
