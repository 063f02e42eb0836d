"""The package's data as typed datasets: Parquet files with a dataset card (``README.md`` with a YAML
header), read back by ``datasets.load_dataset("parquet", data_files=...)`` or ``load_dataset(OUT)``.

Read-only: the JSONL stores stay the source of truth. Kinds (:data:`EXPORTERS`):

``rationales``        generate_rationales.py --task rationales output: ``id``, ``rationales`` (list of
                      ``{aspect, sentence, triples: list of list of string}``), ``sub_summaries``,
                      ``summary``, ``score``, ``keep``, ``rouge`` (JSON text); finished rows only.
``teacher_logprobs``  --task teacher_logprobs output (JSONL + ``.bin`` payload): ``id``, ``target``,
                      ``summary``, ``token_ids`` (int32), ``token_logprobs`` (float32), ``top_ids``
                      (list of list of int32), ``top_logprobs`` (list of list of float32),
                      ``token_bytes`` (binary). The log-probs are the stored float16 values widened to
                      float32, which is exact: casting back to float16 gives the stored bits.
``brd_passages``      compose_brd.py's ``--output_dir``: one split per file (ori, ner, qra) with ``id``,
                      ``text``, ``n_sentences``, ``partial``.

The card names what produced the data (task, model, endpoint, prompt version, settings, from the rows'
own settings fields or ``compose_summary.json``), the source files and their content hashes.
"""

import json
import os
from typing import Callable, Dict, List, Tuple

import datasets
import numpy as np

from ..io import InputError, iter_jsonl, read_json, write_json_atomic
from ..io.fingerprint import file_fingerprint
from ..io.schema import RationaleRow

SETTING_FIELDS = ("task", "model", "prompt_version", "brd_prompt_version", "params", "endpoint", "cache_key")

RATIONALE_FEATURES = datasets.Features({
    "id": datasets.Value("string"),
    "rationales": datasets.List({"aspect": datasets.Value("string"), "sentence": datasets.Value("string"),
                                 "triples": datasets.List(datasets.List(datasets.Value("string")))}),
    "sub_summaries": datasets.List(datasets.Value("string")),
    "summary": datasets.Value("string"),
    "score": datasets.Value("float64"),
    "keep": datasets.Value("bool"),
    "rouge": datasets.Value("string"),
})
LOGPROB_FEATURES = datasets.Features({
    "id": datasets.Value("string"),
    "target": datasets.Value("string"),
    "summary": datasets.Value("string"),
    "token_ids": datasets.List(datasets.Value("int32")),
    "token_logprobs": datasets.List(datasets.Value("float32")),
    "top_ids": datasets.List(datasets.List(datasets.Value("int32"))),
    "top_logprobs": datasets.List(datasets.List(datasets.Value("float32"))),
    "token_bytes": datasets.List(datasets.Value("binary")),
})
PASSAGE_FEATURES = datasets.Features({
    "id": datasets.Value("string"), "text": datasets.Value("string"), "n_sentences": datasets.Value("int32"),
    "partial": datasets.Value("bool"),
})
BRD_SPLITS = ("ori", "ner", "qra")


def settings_of(rows: List[dict]) -> dict:
    """The settings fields the store wrote on its rows (the same on every row of one store)."""
    return {k: rows[0][k] for k in SETTING_FIELDS if rows and k in rows[0]}


def finished_rows(path: str) -> List[dict]:
    if not os.path.isfile(path):
        raise InputError(f"--input {path}: no such file")
    return [row for _, row in iter_jsonl(path, tolerate_torn_tail=True) if row.get("error") is None]


def rationales(path: str) -> Tuple[Dict[str, datasets.Dataset], dict]:
    rows = finished_rows(path)
    typed = [RationaleRow.from_json(r, f"{path}: row {r.get('id')!r}") for r in rows]
    table = {"id": [r.id for r in typed], "rationales": [[x.to_json() for x in r.rationales] for r in typed],
             "sub_summaries": [r.sub_summaries for r in typed], "summary": [r.summary for r in typed],
             "score": [r.score for r in typed], "keep": [r.keep for r in typed],
             "rouge": [None if r.rouge is None else json.dumps(r.rouge, sort_keys=True) for r in typed]}
    return {"train": datasets.Dataset.from_dict(table, features=RATIONALE_FEATURES)}, {
        "settings": settings_of(rows), "sources": {path: file_fingerprint(path)}}


def teacher_logprobs(path: str) -> Tuple[Dict[str, datasets.Dataset], dict]:
    from ..io.logprobs import read_teacher_logprobs

    if not os.path.isfile(path):
        raise InputError(f"--input {path}: no such file")
    records = read_teacher_logprobs(path)
    table = {name: [] for name in LOGPROB_FEATURES}
    for rid, (row, t) in records.items():
        if t.top_bytes is not None:
            raise InputError(f"{path}: row {rid!r} has no token ids (the server gave token bytes only); "
                             f"exporting such rows is not supported")
        table["id"].append(rid)
        table["target"].append(row.get("target", "teacher_summary"))
        table["summary"].append(row.get("summary"))
        table["token_ids"].append(np.asarray(t.token_ids, np.int32).tolist())
        table["token_logprobs"].append(np.asarray(t.token_logprobs, np.float16).astype(np.float32).tolist())
        table["top_ids"].append(np.asarray(t.top_ids, np.int32).tolist())
        table["top_logprobs"].append(np.asarray(t.top_logprobs, np.float16).astype(np.float32).tolist())
        table["token_bytes"].append(list(t.token_bytes))
    rows = [row for row, _ in records.values()]
    sources = {p: file_fingerprint(p) for p in (path, path + ".bin") if os.path.exists(p)}
    return {"train": datasets.Dataset.from_dict(table, features=LOGPROB_FEATURES)}, {
        "settings": settings_of(rows), "sources": sources}


def brd_passages(directory: str) -> Tuple[Dict[str, datasets.Dataset], dict]:
    files = {s: os.path.join(directory, f"{s}.jsonl") for s in BRD_SPLITS}
    files = {s: p for s, p in files.items() if os.path.isfile(p)}
    if not files:
        raise InputError(f"--input {directory}: no ori.jsonl / ner.jsonl / qra.jsonl (compose_brd.py's --output_dir)")
    splits = {}
    for name, path in files.items():
        rows = [row for _, row in iter_jsonl(path)]
        table = {k: [r.get(k) for r in rows] for k in PASSAGE_FEATURES}
        splits[name] = datasets.Dataset.from_dict(table, features=PASSAGE_FEATURES)
    summary_path = os.path.join(directory, "compose_summary.json")
    settings = read_json(summary_path) if os.path.isfile(summary_path) else {}
    return splits, {"settings": settings, "sources": {p: file_fingerprint(p) for p in files.values()}}


EXPORTERS: Dict[str, Callable[[str], Tuple[Dict[str, datasets.Dataset], dict]]] = {
    "rationales": rationales, "teacher_logprobs": teacher_logprobs, "brd_passages": brd_passages}


def dataset_card(kind: str, splits: Dict[str, datasets.Dataset], info: dict, provenance: dict) -> str:
    """``README.md``: a YAML header naming the Parquet files per split, then what produced the data."""
    yaml = ["---", "configs:", "- config_name: default", "  data_files:"]
    for name in splits:
        yaml += [f"  - split: {name}", f"    path: data/{name}.parquet"]
    yaml += ["tags:", "- lsrmwf", f"- {kind.replace('_', '-')}", "---", ""]
    settings = info["settings"]
    body = [f"# lsrmwf {kind}", "",
            "Exported read-only from the lsrmwf store (the JSONL files stay the source of truth).", "",
            "| split | rows |", "|---|---:|"] + [f"| {n} | {len(d)} |" for n, d in splits.items()]
    body += ["", "## What produced it", ""]
    for key in ("task", "model", "endpoint", "prompt_version", "brd_prompt_version"):
        if settings.get(key) is not None:
            body.append(f"- {key}: {settings[key]}")
    body += ["", "Settings:", "", "```json", json.dumps(settings, indent=2, ensure_ascii=False, sort_keys=True), "```",
             "", "## Sources", "", "```json", json.dumps(info["sources"], indent=2), "```", "",
             "## Features", ""] + [f"- {n}: {d.features}" for n, d in list(splits.items())[:1]]
    body += ["", "## Export", "", "```json", json.dumps(provenance, indent=2, ensure_ascii=False), "```", ""]
    return "\n".join(yaml + body)


def export(kind: str, source: str, output_dir: str, provenance: dict) -> dict:
    """Write ``output_dir/data/<split>.parquet`` and ``output_dir/README.md``; return what was written."""
    if kind not in EXPORTERS:
        raise InputError(f"--kind {kind}: choose one of {', '.join(EXPORTERS)}")
    splits, info = EXPORTERS[kind](source)
    os.makedirs(os.path.join(output_dir, "data"), exist_ok=True)
    files = {}
    for name, ds in splits.items():
        files[name] = os.path.join(output_dir, "data", f"{name}.parquet")
        ds.to_parquet(files[name])
    with open(os.path.join(output_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(dataset_card(kind, splits, info, provenance))
    summary = {"kind": kind, "rows": {n: len(d) for n, d in splits.items()}, "files": files,
               "settings": info["settings"], "provenance": provenance}
    write_json_atomic(os.path.join(output_dir, "export_summary.json"), summary)
    return summary
