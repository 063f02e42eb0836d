"""The BRD paper's layer-wise probe (Appendix A.4, Figure 4): how well each layer's representation of a task
input predicts the task's label.

Per layer (the embeddings are layer 0, then each block's output, as ``output_hidden_states`` gives them),
the hidden states of each input are averaged over its tokens (padding excluded); a logistic regression with
L2 regularisation (scikit-learn, inverse strength ``C``; the features standardised on the training split,
an own choice) is fitted on the training inputs' vectors and gold labels and scored by accuracy on the
test split. The inputs are the prompts of ``python -m lsrmwf.commands.task_data``'s split files, the label
their first gold choice.
"""

from typing import Dict, List, Sequence

import numpy as np

from ..io import InputError


def layer_features(model, tokenizer, texts: Sequence[str], batch_size: int = 8, max_length: int = 512) -> np.ndarray:
    """``[layers + 1, len(texts), hidden]``: each text's token-mean hidden state per layer."""
    import torch

    device = next(model.parameters()).device
    # the transformer without its LM head: the same hidden states, no [batch, length, vocab] logits to compute
    body = getattr(model, "base_model", None) or model
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = None
    for start in range(0, len(texts), batch_size):
        enc = [tokenizer(t, add_special_tokens=True, truncation=True, max_length=max_length)["input_ids"]
               for t in texts[start:start + batch_size]]
        width = max(len(e) for e in enc)
        ids = torch.full((len(enc), width), pad if pad is not None else 0, dtype=torch.long)
        mask = torch.zeros((len(enc), width), dtype=torch.long)
        for i, e in enumerate(enc):
            ids[i, :len(e)] = torch.tensor(e)
            mask[i, :len(e)] = 1
        with torch.no_grad():
            result = body(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True)
        hidden = getattr(result, "hidden_states", None)
        if not hidden:
            raise InputError(f"{type(model).__name__}: the model returns no hidden states (output_hidden_states); "
                             "the probe needs a transformers model that does")
        m = mask.to(device).unsqueeze(-1).float()
        pooled = torch.stack([(h.float() * m).sum(1) / m.sum(1) for h in hidden]).cpu().numpy()
        out = pooled if out is None else np.concatenate([out, pooled], axis=1)
    return out


def probe_layers(train_x: np.ndarray, train_y: Sequence[int], test_x: np.ndarray, test_y: Sequence[int],
                 C: float = 1.0, max_iter: int = 2000) -> List[float]:
    """Test accuracy of an L2 logistic regression per layer; ``*_x`` are ``[layers, n, dim]``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(set(train_y)) < 2:
        raise InputError(f"the probe's training labels have {len(set(train_y))} class(es); it needs at least 2")
    accs = []
    for layer in range(train_x.shape[0]):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, l1_ratio=0.0, max_iter=max_iter))
        clf.fit(train_x[layer], list(train_y))
        accs.append(float((clf.predict(test_x[layer]) == np.asarray(test_y)).mean()))
    return accs


def probe_table(results: Dict[str, Dict[str, List[float]]]) -> str:
    """Markdown: per task, one row per model, one column per layer (accuracy in %)."""
    lines = []
    for task in sorted({t for per_model in results.values() for t in per_model}):
        models = [m for m in results if task in results[m]]
        n = max(len(results[m][task]) for m in models)
        lines += [f"Probe: {task} (accuracy in % per layer; 0 = embeddings)", "",
                  "| model | " + " | ".join(str(i) for i in range(n)) + " |", "|---|" + "---:|" * n]
        for m in models:
            lines.append(f"| {m} | " + " | ".join(f"{100 * a:.1f}" for a in results[m][task]) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_probe(results: Dict[str, Dict[str, List[float]]], path: str) -> str:
    """Figure 4's layout: one panel per task, accuracy per layer, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({t for per_model in results.values() for t in per_model})
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for model, per_task in results.items():
            if task in per_task:
                ax.plot(range(len(per_task[task])), [100 * a for a in per_task[task]], marker="o", label=model)
        ax.set_title(task)
        ax.set_xlabel("layer")
        ax.set_ylabel("accuracy (%)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
