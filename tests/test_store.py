"""The resumable store: one writer, torn tails, binary payloads."""

import json
import subprocess
import sys

import numpy as np
import pytest

from lsrmwf.io import InputError
from lsrmwf.io.store import ResultStore, cache_key, pack_arrays, unpack_arrays

SETTINGS = {"task": "t", "model": "m"}


def store(path, **kw):
    return ResultStore(str(path), cache_key(SETTINGS), SETTINGS, **kw)


def test_a_second_writer_is_refused_naming_the_file_and_the_holders_pid(tmp_path):
    out = tmp_path / "rows.jsonl"
    code = (
        "import sys; from lsrmwf.io.store import ResultStore, cache_key; s = {'task': 't', 'model': 'm'}\n"
        f"st = ResultStore({str(out)!r}, cache_key(s), s).open()\n"
        "print('locked', flush=True); sys.stdin.read()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(InputError, match=rf"rows\.jsonl: another run \(pid {holder.pid}\) is writing this file"):
            store(out).open()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with store(out) as s:  # the lock died with its holder
        s.append({"id": "a", "error": None})
    # and is released by close(): the same process can reopen
    with store(out) as s:
        assert set(s.done) == {"a"}


def test_rows_survive_reopen_and_a_torn_tail_is_cut(tmp_path):
    out = tmp_path / "rows.jsonl"
    with store(out) as s:
        s.append({"id": "a", "error": None, "x": 1})
        s.append({"id": "b", "error": "timeout"})
    with open(out, "a") as f:
        f.write('{"id": "c", "err')  # a write cut by kill -9
    with store(out) as s:
        assert s.cut_torn_tail and s.dropped_failed == 1
        assert set(s.done) == {"a"}
    assert [json.loads(line)["id"] for line in open(out)] == ["a"]


def test_binary_payloads_round_trip_and_rows_never_point_past_the_payload_file(tmp_path):
    out = tmp_path / "logprobs.jsonl"
    ids = np.array([[5, 9, 2], [7, 1, 3]], dtype=np.int32)
    lp = np.array([[-0.1, -2.5, -3.0], [-0.7, -1.0, -4.25]], dtype=np.float16)
    blob = pack_arrays(ids=ids, logprobs=lp)
    assert len(blob) < 4 + 100 + ids.nbytes + lp.nbytes  # header + raw bytes, no JSON floats
    with store(out, payload=True) as s:
        s.append({"id": "a", "error": None}, payload=blob)
        s.append({"id": "b", "error": None}, payload=pack_arrays(ids=ids[:1], logprobs=lp[:1]))
    with store(out, payload=True) as s:
        back = unpack_arrays(s.read_payload(s.done["a"]))
        np.testing.assert_array_equal(back["ids"], ids)
        np.testing.assert_array_equal(back["logprobs"], lp)
        assert back["logprobs"].dtype == np.float16
        assert unpack_arrays(s.read_payload(s.done["b"]))["ids"].shape == (1, 3)
    with open(str(out) + ".bin", "r+b") as f:  # someone truncates the payload file
        f.truncate(len(blob) + 3)
    with pytest.raises(InputError, match=r"1 rows point past the end of .*logprobs\.jsonl\.bin"):
        store(out, payload=True).open()


def test_changed_settings_are_refused_with_the_line_and_setting(tmp_path):
    out = tmp_path / "rows.jsonl"
    with store(out) as s:
        s.append({"id": "a", "error": None})
    other = {"task": "t", "model": "other"}
    with pytest.raises(InputError, match=r'rows\.jsonl:1: written with different settings \(model: file has "m", this run has "other"\)'):
        ResultStore(str(out), cache_key(other), other).open()
