"""A full disk as one line: which file, what was being written, and that the rerun resumes.

:func:`writing` wraps a write; an ``ENOSPC``/``EFBIG``/``EDQUOT`` ``OSError``, or the error a checkpoint writer
raises instead (torch's ``PytorchStreamWriter failed writing file``, safetensors' ``IoError(Os { code: 28 … })``,
DeepSpeed's wrapped ones), becomes a :class:`DiskFullError` (an :class:`InputError`, so every command prints it as
``<script>: error: …`` and exits 2). Anything else passes through unchanged.
"""

import contextlib
import errno
import re

from . import InputError

FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
# what torch, safetensors and DeepSpeed put in the message of a non-OSError raised by a failed write
_FULL_TEXT = re.compile(r"no space left on device|file too large|disk quota exceeded|failed writing file|"
                        r"unexpected pos \d+ vs \d+|code: (28|27|122)\b|os error (28|27|122)\b", re.I)


class DiskFullError(InputError):
    """A write failed because the disk (or the process's file-size limit) is full."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) is a write that failed for lack of space."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
            return True
        if _FULL_TEXT.search(str(exc)):  # torch and safetensors raise their own types
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split())[:200]


@contextlib.contextmanager
def writing(path: str, what: str):
    """Turn a full disk while writing ``what`` to ``path`` into a :class:`DiskFullError` naming both."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as e:
        if not is_disk_full(e):
            raise
        raise DiskFullError(f"{path}: disk full while writing {what} ({reason(e)}); everything written before it "
                            f"is kept: free space and rerun the same command to resume") from None
