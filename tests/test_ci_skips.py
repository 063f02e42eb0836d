"""Under CI=true a skipped test fails (conftest.py), so a CI machine missing llama-server or
DeepSpeed cannot pass by skipping; elsewhere it stays a skip."""

import os
import shutil
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def run_probe(tmp_path, ci, *args):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "test_probe.py", *args],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)


def test_skips_fail_under_ci_only(tmp_path):
    shutil.copy(os.path.join(HERE, "conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text("import pytest\n\ndef test_needs_server():\n    pytest.skip('no llama-server')\n")

    def run(ci):
        return run_probe(tmp_path, ci)

    ci = run(True)
    assert ci.returncode == 1 and "skipped under CI=true" in ci.stdout and "no llama-server" in ci.stdout
    assert run(False).returncode == 0


def test_cuda_tests_are_deselected_under_ci_without_a_gpu_and_skipped_elsewhere(tmp_path):
    """A CPU CI neither fails on the cuda-marked tests nor counts them as passed; outside CI they skip with
    the reason. (On a GPU machine they run.)"""
    for name in ("conftest.py", "devices.py"):
        shutil.copy(os.path.join(HERE, name), tmp_path / name)
    (tmp_path / "test_probe.py").write_text(
        "import pytest\nfrom devices import CUDA_MARKS, DEVICES\n\n"
        "@pytest.mark.parametrize('device', DEVICES)\ndef test_both(device):\n    pass\n\n"
        "@pytest.mark.cuda\n@pytest.mark.skipif(not __import__('torch').cuda.is_available(), reason='no gpu')\n"
        "def test_gpu_only():\n    pass\n")
    ci, plain = run_probe(tmp_path, True), run_probe(tmp_path, False)
    assert ci.returncode == 0 and plain.returncode == 0, ci.stdout + plain.stdout
    if torch.cuda.is_available():
        assert "3 passed" in ci.stdout and "3 passed" in plain.stdout
        return
    assert "1 passed, 2 deselected" in ci.stdout and "skipped" not in ci.stdout
    assert "2 cuda-marked tests deselected: CI=true and no CUDA GPU" in ci.stdout
    assert "1 passed, 2 skipped" in plain.stdout and "needs a CUDA GPU" in plain.stdout and "no gpu" in plain.stdout
