"""The resumable JSONL output: one row per id, appended, flushed and fsynced as each finishes.

Used by everything that asks an LLM or a model for something worth keeping: rationale digging,
teacher log-probs, BRD answers (``generate_rationales.py``) and evaluation's generated summaries.

On open, a torn last line (a run killed mid-write) is cut off. Rows that finished (``error`` is
null) are *done*: a rerun never requests them again. Failed rows are dropped from the file
(atomically) so their ids are retried and still appear exactly once. Every row carries the
``cache_key`` of what produced it (task, model, prompt version, parameters), and those settings
themselves as fields, so a file
written with a different key is refused with the line and the differing setting named, never
silently mixed.

One writer at a time: opening takes an exclusive ``flock`` on ``<path>.lock`` (released by the
kernel when the process ends, even on kill -9), so a second run on the same output stops at once
with the file and the holder's pid named, instead of appending duplicate ids.

Binary payloads (``payload=True``): bulky numeric results (per-token teacher log-probs: token ids
and fp16 values) go to ``<path>.bin`` instead of JSON floats; the row records
``payload: {offset, length}``. The payload is written and fsynced before its row, so a row never
points past the end of the payload file; :func:`pack_arrays`/:func:`unpack_arrays` give a compact
self-describing encoding of named numpy arrays.
"""

import contextlib
import hashlib
import json
import os
import struct
from typing import Dict, List, Optional

from . import InputError, iter_jsonl, repair_torn_tail, write_jsonl_atomic
from .disk import writing


def cache_key(settings: dict) -> str:
    """A short stable hash of everything that decides an answer."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def pack_arrays(**arrays) -> bytes:
    """Named numpy arrays as bytes: a length-prefixed JSON header (name, dtype, shape) and the raw data."""
    import numpy as np

    header, blobs = [], []
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        header.append([name, a.dtype.str, list(a.shape)])
        blobs.append(a.tobytes())
    head = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<I", len(head)) + head + b"".join(blobs)


def unpack_arrays(data: bytes) -> Dict[str, "object"]:
    """Inverse of :func:`pack_arrays`."""
    import numpy as np

    (n,) = struct.unpack_from("<I", data)
    header = json.loads(data[4 : 4 + n])
    out, pos = {}, 4 + n
    for name, dtype, shape in header:
        dt = np.dtype(dtype)
        size = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        out[name] = np.frombuffer(data, dtype=dt, count=size // dt.itemsize, offset=pos).reshape(shape)
        pos += size
    return out


def acquire_writer_lock(path: str):
    """Take the exclusive writer lock of ``path`` (``<path>.lock``) or raise :class:`InputError` naming the
    holder's pid. Returns the open lock file; closing it (or the process ending) releases the lock."""
    import fcntl

    handle = open(path + ".lock", "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise InputError(f"{path}: another run (pid {holder}) is writing this file; wait for it to finish, "
                         f"or stop it, then rerun to resume") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


@contextlib.contextmanager
def writer_lock(path: str):
    """``with writer_lock(path):`` the same lock as :class:`ResultStore`, for code that rewrites ``path`` whole."""
    handle = acquire_writer_lock(path)
    try:
        yield
    finally:
        handle.close()


def _shown(value, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_differences(name: str, old, new) -> List[str]:
    """What differs between a setting's value in a file (``old``) and in this run (``new``), one phrase each.

    Plain values: ``name: file has X, this run has Y``. Dicts are compared key by key, so the phrase
    names the part: ``settings num_beams: file has 4, this run has 3``; and where both sides of a key
    are dicts themselves, ``model weights changed (model.safetensors)`` lists the entries that differ
    (a checkpoint's fingerprint, :mod:`lsrmwf.io.fingerprint`)."""
    missing = "<missing>"
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [f"{name}: file has {_shown(old)}, this run has {_shown(new)}"]
    out = []
    for key in sorted(set(old) | set(new), key=str):
        o, n = old.get(key, missing), new.get(key, missing)
        if o == n:
            continue
        if isinstance(o, dict) and isinstance(n, dict):
            parts = sorted((k for k in set(o) | set(n) if o.get(k, missing) != n.get(k, missing)), key=str)
            out.append(f"{name} {key} changed ({', '.join(map(str, parts))})")
        else:
            out.append(f"{name} {key}: file has {_shown(o)}, this run has {_shown(n)}")
    return out


class ResultStore:
    """See the module's docstring. ``fix``: what a refused run should do instead, in the words of its
    command line (default: generate_rationales.py's)."""

    def __init__(self, path: str, key: str, settings: dict, payload: bool = False, fsync: bool = True,
                 fix: Optional[str] = None):
        self.path = path
        self.key = key
        self.settings = settings
        self.fix = fix or "write to a new --output (or delete the file) to regenerate with the new settings"
        self.payload = payload
        self.fsync = fsync
        self.done: Dict[str, dict] = {}
        self.dropped_failed = 0
        self.cut_torn_tail = False
        self._file = None
        self._bin = None
        self._lock = None

    @property
    def payload_path(self) -> str:
        return self.path + ".bin"

    def _acquire_lock(self) -> None:
        self._lock = acquire_writer_lock(self.path)

    def open(self) -> "ResultStore":
        """Lock the output; read what an earlier run finished; prepare the file for appending."""
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        self._acquire_lock()
        try:
            self._read_existing()
        except BaseException:
            self.close()
            raise
        return self

    def _read_existing(self) -> None:
        rows: List[dict] = []
        if os.path.exists(self.path):
            self.cut_torn_tail = repair_torn_tail(self.path)
            seen = {}
            for line, row in iter_jsonl(self.path):
                if "id" not in row:
                    raise InputError(f"{self.path}:{line}: row has no 'id' field; is this a file "
                                     "generate_rationales.py wrote?")
                if row.get("cache_key") != self.key:
                    raise InputError(self._mismatch(line, row))
                rid = str(row["id"])
                if rid in seen:
                    raise InputError(f"{self.path}:{line}: id {rid!r} already written at line {seen[rid]}")
                seen[rid] = line
                rows.append(row)
        kept = [r for r in rows if r.get("error") is None]
        if self.payload:
            size = os.path.getsize(self.payload_path) if os.path.exists(self.payload_path) else 0
            whole = [r for r in kept if self._payload_end(r) <= size]
            if len(whole) != len(kept):
                raise InputError(f"{self.path}: {len(kept) - len(whole)} rows point past the end of "
                                 f"{self.payload_path} ({size} bytes); the payload file was truncated or replaced")
        self.dropped_failed = len(rows) - len(kept)
        if self.dropped_failed:
            write_jsonl_atomic(self.path, kept)  # failed ids get a fresh try and stay unique
        self.done = {str(r["id"]): r for r in kept}
        self._file = open(self.path, "ab", buffering=0)  # unbuffered: a failed write leaves nothing to flush later
        if self.payload:
            self._bin = open(self.payload_path, "ab", buffering=0)

    @staticmethod
    def _payload_end(row: dict) -> int:
        p = row.get("payload")
        return 0 if not p else int(p["offset"]) + int(p["length"])

    def read_payload(self, row: dict) -> bytes:
        """The payload bytes a finished row points to."""
        p = row.get("payload")
        if not p:
            raise InputError(f"{self.path}: row {row.get('id')!r} has no payload")
        with open(self.payload_path, "rb") as f:
            f.seek(int(p["offset"]))
            data = f.read(int(p["length"]))
        if len(data) != int(p["length"]):
            raise InputError(f"{self.payload_path}: row {row.get('id')!r} needs bytes up to {self._payload_end(row)}, "
                             f"the file ends before")
        return data

    def _mismatch(self, line: int, row: dict) -> str:
        where = f"{self.path}:{line}"
        fix = self.fix
        if "cache_key" not in row:
            return f"{where}: row has no 'cache_key'; it was not written by this pipeline. {fix}"
        differences = []
        for name, new in self.settings.items():
            old = row.get(name, "<missing>")
            if old != new:
                differences.extend(describe_differences(name, old, new))
        detail = "; ".join(differences) or f"cache key {row.get('cache_key')} != {self.key}"
        return f"{where}: written with different settings ({detail}). {fix}"

    def append(self, row: dict, payload: Optional[bytes] = None) -> None:
        """Write one finished (or failed) row; with ``payload``, its bytes first (payload stores only)."""
        row = dict(row, **self.settings, cache_key=self.key)
        if payload is not None:
            if not self.payload:
                raise ValueError("this store was opened without payload=True")
            offset = self._bin.seek(0, os.SEEK_END)
            with writing(self.payload_path, f"the payload of row {row.get('id')!r}"):
                self._write(self._bin, payload)
            row["payload"] = {"offset": offset, "length": len(payload)}
        with writing(self.path, f"row {row.get('id')!r}"):  # a torn line a full disk leaves is cut on reopen
            self._write(self._file, (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
        if row.get("error") is None:
            self.done[str(row["id"])] = row

    def _write(self, f, data: bytes) -> None:
        view = memoryview(data)
        while view:  # an unbuffered write may be short (a file-size limit, a nearly full disk); the next one raises
            view = view[f.write(view):]
        if self.fsync:
            os.fsync(f.fileno())

    def rewrite_done(self, rows: List[dict]) -> None:
        """Replace the finished rows (e.g. re-selected with new thresholds) atomically; the lock is kept."""
        self._file.close()
        write_jsonl_atomic(self.path, rows)
        self.done = {str(r["id"]): r for r in rows}
        self._file = open(self.path, "ab", buffering=0)

    def close(self) -> None:
        for name in ("_file", "_bin", "_lock"):
            f = getattr(self, name)
            if f is not None:
                f.close()  # closing the lock file releases the flock
                setattr(self, name, None)

    def __enter__(self) -> "ResultStore":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
