"""JSONL reading and writing shared by the rationale pipeline, training and evaluation."""

import contextlib
import json
import os
from typing import Iterator, Tuple


class InputError(ValueError):
    """Bad user input; the message names the file, row and field."""


def iter_jsonl(path: str, tolerate_torn_tail: bool = False) -> Iterator[Tuple[int, dict]]:
    """Yield ``(line_number, object)`` for each non-empty line (1-based line numbers).

    With ``tolerate_torn_tail`` a last line that is not valid JSON and has no trailing newline (a
    write cut short by a crash) is skipped; any other bad line raises :class:`InputError`.
    """
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    with f:  # streamed line by line: a rationale file for CNN/DM is several GB
        for i, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"{path}:{i}: not valid UTF-8 ({e})") from None
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                if tolerate_torn_tail and not raw.endswith(b"\n"):
                    continue  # torn final write (only the last line can lack its newline): never finished
                raise InputError(f"{path}:{i}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise InputError(f"{path}:{i}: expected a JSON object, got {type(obj).__name__}")
            yield i, obj


def read_json(path: str):
    """A whole JSON file; a missing file, bad UTF-8 or bad JSON is an :class:`InputError` naming the line."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid UTF-8 ({e})") from None


def repair_torn_tail(path: str) -> bool:
    """Cut a torn (newline-less, unparsable) last line off ``path`` so appends start on a fresh line.

    Returns True if something was cut.
    """
    if not os.path.exists(path):
        return False
    with open(path, "rb+") as f:
        data = f.read()
        if not data or data.endswith(b"\n"):
            return False
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        try:
            json.loads(tail.decode("utf-8"))
            f.seek(0, os.SEEK_END)
            f.write(b"\n")  # complete row that only lacks its newline
            return False
        except (UnicodeDecodeError, json.JSONDecodeError):
            f.truncate(cut)
            return True


def write_jsonl_atomic(path: str, rows, what: str = "rows") -> None:
    """Write ``rows`` to ``path`` through a temporary file so a crash never leaves half a file; a full disk is a
    :class:`lsrmwf.io.disk.DiskFullError` naming ``path`` and ``what`` (the earlier file is kept whole)."""
    with _atomic(path, what) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_text_atomic(path: str, text: str, what: str = "text") -> None:
    with _atomic(path, what) as f:
        f.write(text)


def write_json_atomic(path: str, obj, what: str = "results") -> None:
    with _atomic(path, what) as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


@contextlib.contextmanager
def _atomic(path: str, what: str):
    from .disk import writing

    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with writing(path, what):
            with open(tmp, "w", encoding="utf-8") as f:
                yield f
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
