"""The paper's Figure 3 as an HTML page: a document with its rationales, and the summaries.

For each chosen id the page shows the document with every rationale's associated sentence (AS)
highlighted in that rationale's colour, the rationale list (essential aspect, sentence, triples),
then the reference, the LLM's own summary from the rationale file, and each system's summary side
by side. All text is HTML-escaped.
"""

import html
import os
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..io import InputError
from ..io.schema import RationaleRow

PALETTE = ("#ffd6d6", "#fff0b3", "#dcd0ff", "#c9f2d0", "#cde8ff", "#ffdcb8", "#f5cdea", "#e0e0e0")

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;max-width:1400px;color:#222}
h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
.doc{line-height:1.6;background:#fafafa;padding:1em;border:1px solid #e5e5e5;border-radius:4px}
mark{padding:0 .1em;border-radius:3px}
.rationales{margin:1em 0}
.rationale{margin:.4em 0;padding:.4em .6em;border-left:6px solid;border-radius:3px;background:#fcfcfc}
.tag{display:inline-block;font-size:.75em;font-weight:600;color:#555;min-width:2.6em}
.triple{font-family:ui-monospace,monospace;font-size:.9em;margin-right:1em}
.summaries{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:1em}
.summary{border:1px solid #ddd;border-radius:4px;padding:.6em}
.summary h4{margin:.1em 0 .5em 0}
.note{color:#a33;font-size:.85em}
.meta{color:#666;font-size:.85em}
"""


def _normalized(text: str) -> Tuple[str, List[int]]:
    """Lower-cased text with runs of whitespace collapsed, and each character's original offset."""
    chars, offsets = [], []
    for m in re.finditer(r"\s+|\S", text):
        chars.append(" " if m.group().isspace() else m.group().lower())
        offsets.append(m.start())
    return "".join(chars), offsets + [len(text)]


def locate(document: str, sentence: str) -> Optional[Tuple[int, int]]:
    """Character span of ``sentence`` in ``document``: exact, else ignoring case and whitespace."""
    sentence = sentence.strip()
    if not sentence:
        return None
    k = document.find(sentence)
    if k >= 0:
        return k, k + len(sentence)
    norm_doc, offsets = _normalized(document)
    norm_sent, _ = _normalized(sentence)
    k = norm_doc.find(norm_sent)
    if k < 0:
        return None
    end = offsets[k + len(norm_sent) - 1] + 1
    return offsets[k], end


def _highlight(document: str, spans: Sequence[Tuple[int, int, int]]) -> str:
    """HTML of the document with non-overlapping ``(start, end, rationale index)`` spans marked."""
    out, pos = [], 0
    for start, end, k in sorted(spans):
        out.append(html.escape(document[pos:start]))
        color = PALETTE[k % len(PALETTE)]
        out.append(f'<mark style="background:{color}" title="rationale '
                   f'{k + 1}">{html.escape(document[start:end])}</mark>')
        pos = end
    out.append(html.escape(document[pos:]))
    return "".join(out).replace("\n", "<br>\n")


def _case(doc_id: str, document: str, reference: Optional[str], systems: Mapping[str, Mapping[str, str]],
          rationale: Optional[RationaleRow]) -> str:
    e = html.escape
    parts = [f"<section><h2>{e(doc_id)}</h2>"]
    rationales = rationale.rationales if rationale is not None else []
    spans, items = [], []
    for k, r in enumerate(rationales):
        color = PALETTE[k % len(PALETTE)]
        sentence = r.sentence.strip()
        span = locate(document, sentence) if sentence else None
        note = ""
        if sentence and span is None:
            note = ' <span class="note">(not found in the document)</span>'
        elif span is not None and any(s < span[1] and span[0] < t for s, t, _ in spans):
            note = ' <span class="note">(overlaps an earlier highlighted sentence)</span>'
        elif span is not None:
            spans.append((span[0], span[1], k))
        triples = "".join(
            f'<span class="triple">&lt;{" # ".join(e(str(p)) for p in t)}&gt;</span>' for t in r.triples
        )
        items.append(
            f'<div class="rationale" style="border-color:{color}">'
            f'<div><span class="tag">EA</span> {e(r.aspect)}</div>'
            f'<div><span class="tag">AS</span> <span style="background:{color}">{e(sentence)}</span>{note}</div>'
            f'<div><span class="tag">TER</span> {triples}</div></div>'
        )
    if rationale is None:
        parts.append('<p class="note">no row for this id in the rationale file</p>')
    elif not rationale.ok:
        parts.append(f'<p class="note">rationale generation failed: {e(rationale.error)}</p>')
    elif rationale.keep is False:
        parts.append('<p class="meta">rationale row marked keep=false (not used for training)</p>')
    parts.append(f'<div class="doc">{_highlight(document, spans)}</div>')
    if items:
        parts.append('<div class="rationales"><h3>Structured rationales</h3>' + "".join(items) + "</div>")
    columns = []
    if reference is not None:
        columns.append(("Reference", reference))
    if rationale is not None and rationale.summary:
        model = rationale.extra.get("model") or "LLM"
        columns.append((f"LLM summary ({model})", rationale.summary))
    for name, predictions in systems.items():
        columns.append((name, predictions.get(doc_id, "")))
    parts.append('<div class="summaries">' + "".join(
        f'<div class="summary"><h4>{e(title)}</h4>{e(text)}</div>' for title, text in columns
    ) + "</div></section>")
    return "\n".join(parts)


def render_cases(
    path: str,
    ids: Sequence[str],
    documents: Mapping[str, str],
    references: Mapping[str, str],
    systems: Mapping[str, Mapping[str, str]],
    rationales: Optional[Mapping[str, RationaleRow]] = None,
    title: str = "LSR-MWF case view",
) -> str:
    """Write the case page for ``ids`` to ``path`` (atomically) and return ``path``."""
    unknown = [i for i in ids if i not in documents]
    if unknown:
        raise InputError(f"--case_ids: {unknown[0]!r} is not an example id ({len(unknown)} of {len(ids)} unknown)")
    body = "\n".join(_case(i, documents[i], references.get(i), systems, (rationales or {}).get(i)) for i in ids)
    page = (
        f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, path)
    return path


def systems_by_id(ids: Sequence[str], systems: Mapping[str, Sequence[str]]) -> Dict[str, Dict[str, str]]:
    """``{system: {id: prediction}}`` from predictions aligned with ``ids``."""
    return {name: dict(zip(ids, preds)) for name, preds in systems.items()}
