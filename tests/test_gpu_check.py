"""scripts/gpu_check.sh on a CPU machine: --dry-run lists the steps and the wheel commands and writes
gpu_check.json; usage errors and a missing GPU are one-line errors with rc 2."""

import json
import os
import subprocess
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = ["versions", "wheels", "cuda-tests", "bench-model", "bench-mc"]


def gpu_check(*args, **env):
    return subprocess.run(["bash", os.path.join(ROOT, "scripts", "gpu_check.sh"), *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHON": sys.executable, **env})


def test_dry_run_lists_steps_and_wheel_commands(tmp_path):
    present = tmp_path / "present.txt"
    present.write_text("numpy==2.5.2\nPyYAML==6.0.1\ntransformers==5.17.0\n")
    run = gpu_check(str(tmp_path / "out"), "--dry-run", GPU_PRESENT=str(present), GPU_PYTHON_VERSION="3.12")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    for name in STEPS:
        assert f"  {name}" in out
    assert "bench/bench_model.py --device cuda --bf16 --d_model 1024 --layers 12 --heads 16" in out
    assert "--batch_size 8 --source_length 1024 --target_length 128" in out
    assert "pytest -m cuda" in out
    assert f"pip wheel --no-deps -w wheels {ROOT}\n" in out  # the package's own wheel
    assert "pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp" in out
    assert "--platform manylinux2014_x86_64" in out

    summary = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert summary["dry_run"] is True and [s["name"] for s in summary["steps"]] == STEPS
    assert all(s["status"] == "planned" for s in summary["steps"] if s["name"] != "bench-mc")
    assert summary["total_timeout_s"] <= 8 * 60
    wheels = summary["wheels"]
    names = {w.split("==")[0] for w in wheels["pure"] + wheels["binary"]}
    assert {"datasets", "rouge-score", "aclsum", "pytest"} <= names  # missing from a bare CUDA image
    assert "rouge-score" in {w.split("==")[0] for w in wheels["pure"]}  # sdist-only on PyPI: built here
    assert "pyarrow" in {w.split("==")[0] for w in wheels["binary"]}
    assert not names & {"torch", "numpy", "pyyaml", "transformers"}  # the machine's own, or listed as present
    assert "torch" in wheels["machine_own"]


def test_usage_errors_and_no_gpu_are_one_line_rc_2(tmp_path):
    for args, message in (([], "OUTDIR missing"), ([str(tmp_path), "--bogus"], "unknown option --bogus"),
                          ([str(tmp_path), "--wheels", str(tmp_path / "nope")], "no such folder")):
        run = gpu_check(*args)
        assert run.returncode == 2 and run.stderr.startswith("gpu_check.sh: error: ") and message in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1
    if not torch.cuda.is_available():
        run = gpu_check(str(tmp_path / "out"))
        assert run.returncode == 2 and "no CUDA GPU here" in run.stderr and "--dry-run" in run.stderr
        summary = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
        assert summary["steps"][0]["name"] == "versions" and summary["steps"][0]["status"] == "failed"
        assert summary["versions"]["cuda_available"] is False
