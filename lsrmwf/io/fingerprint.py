"""Content fingerprints of checkpoints and data files: what saved work (evaluate.py's generated
predictions, train.py's encoded rationale targets) is keyed by, so that a model retrained into the
same directory, or a data file rewritten in place, is never mistaken for the old one.

A file's fingerprint is its size and the SHA-256 of its content. Files over 1 GiB are not read
whole: their hash covers 16 fixed 1-MiB samples spread evenly over the file, and the fingerprint
adds the size and the modification time (``mtime_ns``). A change to such a file that keeps its size
and mtime and falls between the samples goes unseen; any rewrite by ``save_pretrained`` sets a new
mtime.

A local checkpoint's fingerprint groups its files by what they decide: ``weights`` (every
``.safetensors``, ``.bin`` and ``.gguf`` file but ``training_args.bin``), ``config``
(``config.json``, ``generation_config.json``) and ``tokenizer`` (the tokenizer files
``save_pretrained`` writes), each ``{file name: fingerprint}``, plus the directory's absolute
``path``. A hub name is fingerprinted by its name and revision only (nothing is downloaded).
"""

import hashlib
import os
from typing import Optional

SAMPLED_ABOVE = 1 << 30  # bytes; larger files are hashed from samples
SAMPLES = 16
SAMPLE_BYTES = 1 << 20

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")
NOT_WEIGHTS = ("training_args.bin",)  # the Trainer's pickled arguments
CONFIG_FILES = ("config.json", "generation_config.json")
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
    "merges.txt", "vocab.txt", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "chat_template.jinja",
    "chat_template.json",
)


def file_fingerprint(path: str) -> dict:
    """``{"size", "sha256"}``; over 1 GiB ``{"size", "mtime_ns", "sha256_16_samples"}``
    (see the module's docstring)."""
    stat = os.stat(path)
    size = stat.st_size
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        if size <= SAMPLED_ABOVE:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
            return {"size": size, "sha256": digest.hexdigest()}
        last = size - SAMPLE_BYTES
        for k in range(SAMPLES):
            f.seek(last * k // (SAMPLES - 1))
            digest.update(f.read(SAMPLE_BYTES))
    return {"size": size, "mtime_ns": stat.st_mtime_ns, "sha256_16_samples": digest.hexdigest()}


def checkpoint_fingerprint(name_or_path: str, revision: Optional[str] = None) -> dict:
    """A local checkpoint directory: ``{"path", "weights", "config", "tokenizer"}``;
    a hub name: ``{"hub", "revision"}``."""
    if not os.path.isdir(name_or_path):
        return {"hub": name_or_path, "revision": revision}
    names = sorted(f for f in os.listdir(name_or_path) if os.path.isfile(os.path.join(name_or_path, f)))

    def group(keep) -> dict:
        return {f: file_fingerprint(os.path.join(name_or_path, f)) for f in names if keep(f)}

    return {
        "path": os.path.abspath(name_or_path),
        "weights": group(lambda f: f.endswith(WEIGHT_SUFFIXES) and f not in NOT_WEIGHTS),
        "config": group(lambda f: f in CONFIG_FILES),
        "tokenizer": group(lambda f: f in TOKENIZER_FILES),
    }


def data_file_fingerprint(path: Optional[str]) -> Optional[dict]:
    """A local data file's content (:func:`file_fingerprint`); ``None`` for no file (or a directory/pattern)."""
    if not path or not os.path.isfile(path):
        return None
    return file_fingerprint(path)
