"""Under CI=true a skipped test fails (conftest.py), so a CI machine missing llama-server or
DeepSpeed cannot pass by skipping; elsewhere it stays a skip."""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def test_skips_fail_under_ci_only(tmp_path):
    shutil.copy(os.path.join(HERE, "conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text("import pytest\n\ndef test_needs_server():\n    pytest.skip('no llama-server')\n")

    def run(ci):
        env = {k: v for k, v in os.environ.items() if k != "CI"}
        if ci:
            env["CI"] = "true"
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_probe.py"],
                              cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)

    ci = run(True)
    assert ci.returncode == 1 and "skipped under CI=true" in ci.stdout and "no llama-server" in ci.stdout
    assert run(False).returncode == 0
