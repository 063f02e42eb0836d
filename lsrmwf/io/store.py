"""The resumable JSONL output: one row per id, appended and flushed as each finishes.

On open, a torn last line (a run killed mid-write) is cut off. Rows that finished (``error`` is
null) are *done*: a rerun never requests them again. Failed rows are dropped from the file
(atomically) so their ids are retried and still appear exactly once. Every row carries the
``cache_key`` of what produced it (task, model, prompt version, parameters), and those settings
themselves as fields, so a file
written with a different key is refused with the line and the differing setting named, never
silently mixed.
"""

import hashlib
import json
import os
from typing import Dict, List

from . import InputError, iter_jsonl, repair_torn_tail, write_jsonl_atomic


def cache_key(settings: dict) -> str:
    """A short stable hash of everything that decides an answer."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


class ResultStore:
    def __init__(self, path: str, key: str, settings: dict):
        self.path = path
        self.key = key
        self.settings = settings
        self.done: Dict[str, dict] = {}
        self.dropped_failed = 0
        self.cut_torn_tail = False
        self._file = None

    def open(self) -> "ResultStore":
        """Read what an earlier run finished; prepare the file for appending."""
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        rows: List[dict] = []
        if os.path.exists(self.path):
            self.cut_torn_tail = repair_torn_tail(self.path)
            seen = {}
            for line, row in iter_jsonl(self.path):
                if "id" not in row:
                    raise InputError(f"{self.path}:{line}: row has no 'id' field; is this a file generate_rationales.py wrote?")
                if row.get("cache_key") != self.key:
                    raise InputError(self._mismatch(line, row))
                rid = str(row["id"])
                if rid in seen:
                    raise InputError(f"{self.path}:{line}: id {rid!r} already written at line {seen[rid]}")
                seen[rid] = line
                rows.append(row)
        kept = [r for r in rows if r.get("error") is None]
        self.dropped_failed = len(rows) - len(kept)
        if self.dropped_failed:
            write_jsonl_atomic(self.path, kept)  # failed ids get a fresh try and stay unique
        self.done = {str(r["id"]): r for r in kept}
        self._file = open(self.path, "a", encoding="utf-8")
        return self

    def _mismatch(self, line: int, row: dict) -> str:
        where = f"{self.path}:{line}"
        fix = "write to a new --output (or delete the file) to regenerate with the new settings"
        if "cache_key" not in row:
            return f"{where}: row has no 'cache_key'; it was not written by this pipeline. {fix}"
        differences = []
        for name, new in self.settings.items():
            old = row.get(name, "<missing>")
            if old != new:
                differences.append(f"{name}: file has {json.dumps(old)}, this run has {json.dumps(new)}")
        detail = "; ".join(differences) or f"cache key {row.get('cache_key')} != {self.key}"
        return f"{where}: written with different settings ({detail}). {fix}"

    def append(self, row: dict) -> None:
        row = dict(row, **self.settings, cache_key=self.key)
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._file.flush()
        if row.get("error") is None:
            self.done[str(row["id"])] = row

    def rewrite_done(self, rows: List[dict]) -> None:
        """Replace the finished rows (e.g. re-selected with new thresholds) atomically."""
        self.close()
        write_jsonl_atomic(self.path, rows)
        self.done = {str(r["id"]): r for r in rows}
        self._file = open(self.path, "a", encoding="utf-8")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "ResultStore":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
