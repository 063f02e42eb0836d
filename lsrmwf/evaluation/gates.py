"""The paper's Figure 4: weak-gate values over training, from ``<output_dir>/gates.jsonl``.

Each row of the gate file is ``{"step", "epoch", "views", "gates": [[g per view] per decoder
layer]}``. :func:`plot_gates` draws one PNG per view (a line per decoder layer over training
steps) and a heat map of the last logged values (decoder layer x view).
"""

import os
from dataclasses import dataclass
from typing import Dict, List

import numpy as np

from ..io import InputError, iter_jsonl

VIEW_TITLES = {"ea": "essential aspects (EA)", "as": "associated sentences (AS)",
               "ter": "triple entity relations (TER)"}


@dataclass
class GateTrajectory:
    steps: np.ndarray  # [T]
    views: List[str]
    gates: np.ndarray  # [T, layers, views]


def read_gates(path: str) -> GateTrajectory:
    """Read and check a gate file; a torn last line (training killed mid-write) is skipped."""
    steps, rows, views, shape = [], [], None, None
    for line, row in iter_jsonl(path, tolerate_torn_tail=True):
        for field in ("step", "views", "gates"):
            if field not in row:
                raise InputError(f"{path}:{line}: field {field!r} is missing")
        if views is None:
            views = list(row["views"])
        elif list(row["views"]) != views:
            raise InputError(f"{path}:{line}: views {row['views']} differ from {views} on the first row")
        try:
            g = np.asarray(row["gates"], dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{path}:{line}: field 'gates' must be a list of per-layer lists of numbers") from None
        if g.ndim != 2 or g.shape[1] != len(views):
            raise InputError(f"{path}:{line}: field 'gates' must be [decoder layers][{len(views)} "
                             f"views], got shape {list(g.shape)}")
        if shape is None:
            shape = g.shape
        elif g.shape != shape:
            raise InputError(f"{path}:{line}: {g.shape[0]} decoder layers, but earlier rows have {shape[0]}")
        if not isinstance(row["step"], (int, float)):
            raise InputError(f"{path}:{line}: field 'step' must be a number")
        steps.append(row["step"])
        rows.append(g)
    if not rows:
        raise InputError(f"{path}: no gate rows (training writes one per logging step)")
    return GateTrajectory(np.asarray(steps), views, np.stack(rows))


def plot_gates(path: str, output_dir: str, prefix: str = "gates") -> Dict[str, str]:
    """Write ``<prefix>_<view>.png`` per view and ``<prefix>_final.png``; returns {name: file}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    traj = read_gates(path)
    os.makedirs(output_dir, exist_ok=True)
    layers = traj.gates.shape[1]
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, layers))
    written = {}
    for v, view in enumerate(traj.views):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for layer in range(layers):
            ax.plot(traj.steps, traj.gates[:, layer, v], color=colors[layer], lw=1.3, label=f"layer {layer + 1}")
        ax.set_xlabel("training step")
        ax.set_ylabel("gate value")
        ax.set_title(f"Weak gates for {VIEW_TITLES.get(view, view)}")
        ax.grid(alpha=0.3)
        ax.legend(ncol=2 if layers > 6 else 1, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5),
                  frameon=False)
        out = os.path.join(output_dir, f"{prefix}_{view}.png")
        _save(fig, out)
        written[view] = out

    final = traj.gates[-1]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(traj.views), 1.2 + 0.4 * layers))
    im = ax.imshow(final, aspect="auto", cmap="magma")
    ax.set_xticks(range(len(traj.views)), [v.upper() for v in traj.views])
    ax.set_yticks(range(layers), [str(i + 1) for i in range(layers)])
    ax.set_ylabel("decoder layer")
    ax.set_title(f"Gates at step {traj.steps[-1]:g}")
    mid = (final.max() + final.min()) / 2
    for layer in range(layers):
        for v in range(len(traj.views)):
            ax.text(v, layer, f"{final[layer, v]:.3g}", ha="center", va="center", fontsize=7,
                    color="black" if final[layer, v] > mid else "white")
    fig.colorbar(im, ax=ax)
    out = os.path.join(output_dir, f"{prefix}_final.png")
    _save(fig, out)
    written["final"] = out
    return written


def _save(fig, path: str) -> None:
    import matplotlib.pyplot as plt

    tmp = f"{path}.tmp{os.getpid()}.png"
    fig.savefig(tmp, dpi=130, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
