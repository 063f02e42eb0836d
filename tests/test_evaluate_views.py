"""The paper's views: gate plots (Figure 4) and the HTML case view (Figure 3)."""

import json

import numpy as np
import pytest

from lsrmwf.evaluation import plot_gates, read_gates, render_cases
from lsrmwf.evaluation.cases import locate
from lsrmwf.io import InputError
from lsrmwf.io.schema import RationaleRow


def write_gates(path, steps=6, layers=4, views=("ea", "as", "ter"), torn=False):
    rows = []
    for s in range(steps):
        gates = [[0.02 + 0.01 * s * (layer + 1) * (v + 1) / 10 for v in range(len(views))] for layer in range(layers)]
        rows.append(json.dumps({"step": s * 10, "epoch": s / steps, "views": list(views), "gates": gates}))
    text = "\n".join(rows) + "\n"
    if torn:
        text += '{"step": 60, "epoch": 1.0, "views": ["ea", "as", "t'
    path.write_text(text, encoding="utf-8")
    return path


def test_gate_plots_are_nonempty_images(tmp_path):
    import matplotlib.image

    gates = write_gates(tmp_path / "gates.jsonl", torn=True)  # a run killed mid-write still plots
    written = plot_gates(str(gates), str(tmp_path / "plots"))
    assert set(written) == {"ea", "as", "ter", "final"}
    for name, path in written.items():
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        img = matplotlib.image.imread(path)
        assert img.shape[0] > 100 and img.shape[1] > 100
        assert np.ptp(img[..., :3]) > 0.5, f"{name} plot is blank"
    traj = read_gates(str(gates))
    assert traj.gates.shape == (6, 4, 3) and list(traj.steps) == [0, 10, 20, 30, 40, 50]


@pytest.mark.parametrize(
    "row, message",
    [
        ({"step": 1, "views": ["ea", "as"], "gates": [[0.1, 0.2], [0.1, 0.2]]}, r"gates.jsonl:2: views \['ea', 'as'\] differ"),
        ({"step": 1, "views": ["ea", "as", "ter"], "gates": [[0.1, 0.2]]}, r"gates.jsonl:2: field 'gates' must be \[decoder layers\]\[3 views\]"),
        ({"step": 1, "views": ["ea", "as", "ter"], "gates": [[0.1, 0.2, 0.3]]}, r"gates.jsonl:2: 1 decoder layers, but earlier rows have 4"),
        ({"views": ["ea", "as", "ter"], "gates": []}, r"gates.jsonl:2: field 'step' is missing"),
    ],
)
def test_bad_gate_rows_name_the_line(tmp_path, row, message):
    path = tmp_path / "gates.jsonl"
    write_gates(path, steps=1)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    with pytest.raises(InputError, match=message):
        plot_gates(str(path), str(tmp_path / "plots"))
    assert not (tmp_path / "plots").exists() or not any((tmp_path / "plots").iterdir())


def test_locate_tolerates_case_and_whitespace():
    doc = "Author J.K. Rowling has announced she is developing a play.\n  The story   will follow Potter."
    assert doc[slice(*locate(doc, "the story will follow potter."))] == "The story   will follow Potter."
    assert locate(doc, "J.K. Rowling") == (7, 19)
    assert locate(doc, "a sentence that is not there") is None


def test_case_view_html(tmp_path):
    doc = ("(CNN) -- There's some magic coming to a British stage. Author J.K. Rowling has announced she is "
           "developing a play based on her \"Harry Potter\" stories. The story will follow Potter in his early "
           "years as an orphan. Warner Bros. is owned by CNN's parent company.")
    rationale = {
        "id": "hp", "summary": "Rowling is developing a Harry Potter play.", "model": "llama-3-70b", "keep": True, "error": None,
        "rationales": [
            {"aspect": "The Harry Potter Play", "sentence": "Author J.K. Rowling has announced she is developing a play based on her \"Harry Potter\" stories.",
             "triples": [["J.K. Rowling", "is developing", "Harry Potter play"]]},
            {"aspect": "Harry Potter Story", "sentence": "the story will follow Potter in his early years as an orphan.",
             "triples": [["The story", "will follow", "Potter"], ["The story", "will follow", "orphan"]]},
            {"aspect": "Invented", "sentence": "Rowling will direct the film <b>herself</b>.", "triples": []},
        ],
    }
    path = render_cases(
        str(tmp_path / "cases.html"), ["hp"], {"hp": doc}, {"hp": "J.K. Rowling is developing a \"Harry Potter\" play."},
        {"BART": {"hp": "J.K. Rowling is developing a play."}, "LSR-MWF": {"hp": "Rowling's play will follow Potter as an orphan."}},
        {"hp": RationaleRow.from_json(rationale)},
    )
    html = open(path, encoding="utf-8").read()
    assert html.count("<mark") == 2  # two sentences found in the document, the invented one is not
    assert 'title="rationale 2">The story will follow Potter in his early years as an orphan.</mark>' in html
    assert "not found in the document" in html
    assert "&lt;b&gt;herself&lt;/b&gt;" in html and "<b>herself" not in html  # escaped
    assert "J.K. Rowling # is developing # Harry Potter play" in html
    for text in ("The Harry Potter Play", "LLM summary (llama-3-70b)", "BART", "LSR-MWF", "Rowling&#x27;s play will follow Potter"):
        assert text in html
    with pytest.raises(InputError, match="'nope' is not an example id"):
        render_cases(str(tmp_path / "x.html"), ["nope"], {"hp": doc}, {}, {}, None)
    assert not (tmp_path / "x.html").exists()
