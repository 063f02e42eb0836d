"""Checkpoint and data fingerprints: content hashes (sampled over 1 GiB), the files each group
holds, and the store's message naming the part that changed."""

import hashlib
import os
from types import SimpleNamespace

from lsrmwf.io import fingerprint
from lsrmwf.io.fingerprint import checkpoint_fingerprint, data_file_fingerprint, file_fingerprint
from lsrmwf.io.store import describe_differences


def test_a_file_is_its_size_and_sha256(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    assert file_fingerprint(str(path)) == {"size": 3000, "sha256": hashlib.sha256(b"abc" * 1000).hexdigest()}


def test_a_large_file_is_hashed_from_16_samples_with_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setattr(fingerprint, "SAMPLED_ABOVE", 1000)
    monkeypatch.setattr(fingerprint, "SAMPLE_BYTES", 10)
    data = bytearray(os.urandom(5000))
    path = tmp_path / "big.safetensors"
    path.write_bytes(bytes(data))
    os.utime(path, ns=(1, 2_000_000_000))
    first = file_fingerprint(str(path))
    assert set(first) == {"size", "mtime_ns", "sha256_16_samples"} and first["mtime_ns"] == 2_000_000_000
    samples = b"".join(bytes(data[o:o + 10]) for o in (4990 * k // 15 for k in range(16)))
    assert first["sha256_16_samples"] == hashlib.sha256(samples).hexdigest()

    data[0] ^= 1  # inside the first sample
    path.write_bytes(bytes(data))
    os.utime(path, ns=(1, 2_000_000_000))
    assert file_fingerprint(str(path))["sha256_16_samples"] != first["sha256_16_samples"]
    os.utime(path, ns=(1, 3_000_000_000))  # touched: a new mtime is a new fingerprint
    assert file_fingerprint(str(path))["mtime_ns"] == 3_000_000_000


def test_a_checkpoint_groups_weights_config_and_tokenizer(tmp_path):
    for name in ("model.safetensors", "pytorch_model.bin", "model.gguf", "training_args.bin", "config.json",
                 "generation_config.json", "tokenizer.json", "tokenizer_config.json", "merges.txt", "optimizer.pt",
                 "notes.txt"):
        (tmp_path / name).write_text(name)
    (tmp_path / "checkpoint-2").mkdir()
    fp = checkpoint_fingerprint(str(tmp_path))
    assert fp["path"] == str(tmp_path)
    assert sorted(fp["weights"]) == ["model.gguf", "model.safetensors", "pytorch_model.bin"]
    assert sorted(fp["config"]) == ["config.json", "generation_config.json"]
    assert sorted(fp["tokenizer"]) == ["merges.txt", "tokenizer.json", "tokenizer_config.json"]
    assert fp["weights"]["model.safetensors"]["sha256"] == hashlib.sha256(b"model.safetensors").hexdigest()
    assert checkpoint_fingerprint("facebook/bart-large", "main") == {"hub": "facebook/bart-large", "revision": "main"}
    assert data_file_fingerprint(None) is None and data_file_fingerprint(str(tmp_path)) is None
    assert data_file_fingerprint(str(tmp_path / "notes.txt"))["size"] == len("notes.txt")


def test_the_message_names_the_part_that_changed(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 64)
    (tmp_path / "config.json").write_text("{}")
    old = checkpoint_fingerprint(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"\1" * 64)  # same size, other content
    new = checkpoint_fingerprint(str(tmp_path))
    assert describe_differences("model", old, new) == ["model weights changed (model.safetensors)"]
    assert describe_differences("settings", {"num_beams": 4, "dtype": "float32"}, {"num_beams": 3, "dtype": "float32"}) == \
        ["settings num_beams: file has 4, this run has 3"]
    assert describe_differences("model", "m", "other") == ['model: file has "m", this run has "other"']


def test_train_keys_its_rationale_targets_by_the_same_fingerprint(tmp_path):
    import json

    from lsrmwf.training.recipes.lsr_mwf import model_identity

    (tmp_path / "model.safetensors").write_bytes(b"\0" * 64)
    args = SimpleNamespace(model_name_or_path=str(tmp_path), model_revision="main", config_overrides=None)
    before = model_identity(args, SimpleNamespace(seed=1))
    assert json.loads(before) == checkpoint_fingerprint(str(tmp_path), "main")
    stat = os.stat(tmp_path / "model.safetensors")
    (tmp_path / "model.safetensors").write_bytes(b"\1" * 64)
    os.utime(tmp_path / "model.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime
    assert model_identity(args, SimpleNamespace(seed=1)) != before
