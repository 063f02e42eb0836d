"""The package as users install it: build the wheel offline, install it into a fresh virtual environment (which
sees this environment's packages, so torch is not reinstalled), and run every entry point from a directory
outside the repository, including a two-step default ``lsrmwf train``."""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from lsrmwf.commands.cli import COMMANDS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "lsrmwf")


def run(cmd, **kwargs):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the venv's ``lsrmwf`` executable, the environment to run it in, the wheel's file names)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a copy, so the build leaves nothing (build/, *.egg-info) in the repository
    src.mkdir()
    for name in SOURCES:
        if os.path.isdir(os.path.join(ROOT, name)):
            shutil.copytree(os.path.join(ROOT, name), src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(os.path.join(ROOT, name), src / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(tmp / "dist"), str(src)])
    (wheel,) = (tmp / "dist").glob("lsrmwf-*.whl")
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
    py = venv / "bin" / "python"
    purelib = run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    # this environment's packages (torch, transformers, aclsum, ...) after the venv's own, whatever its base
    with open(os.path.join(purelib, "outer_site_packages.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    run([str(py), "-m", "pip", "install", "--no-index", "--no-deps", "-q", str(wheel)])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    return str(venv / "bin" / "lsrmwf"), env, names, str(py)


def test_the_wheel_holds_the_package_license_and_entry_point(installed):
    _, _, names, _ = installed
    assert "lsrmwf/commands/cli.py" in names and "lsrmwf/llm/brd_fewshot.json" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    metadata = [n for n in names if n.endswith(".dist-info/METADATA")]
    assert entry_points and metadata


def test_installed_package_is_the_wheels(installed, tmp_path):
    _, env, _, py = installed
    out = run([py, "-c", "import lsrmwf; print(lsrmwf.__file__, lsrmwf.__version__)"], cwd=tmp_path, env=env).stdout
    path, version = out.split()
    assert "/venv/" in path and not path.startswith(ROOT)
    import lsrmwf

    assert version == lsrmwf.__version__


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_entry_point_answers_help(installed, tmp_path, command):
    exe, env, _, _ = installed
    out = run([exe, command, "--help"], cwd=tmp_path, env=env).stdout
    assert out.startswith("usage: ") and "-h, --help" in out
    if COMMANDS[command].module.startswith("lsrmwf.commands."):
        assert out.startswith(f"usage: lsrmwf {command}")  # the demo and analysis name their python -m form


def test_lsrmwf_alone_lists_the_commands_and_an_unknown_one_is_one_line(installed, tmp_path):
    exe, env, _, _ = installed
    done = subprocess.run([exe], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 2 and all(name in done.stdout for name in COMMANDS)
    done = subprocess.run([exe, "trian"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "unknown command 'trian'" in done.stderr


def test_a_two_step_default_train_from_outside_the_repository(installed, tmp_path):
    exe, env, _, _ = installed
    run([exe, "train", "--max_steps", "2", "--max_train_samples", "8", "--max_eval_samples", "2",
         "--max_predict_samples", "2", "--max_length", "16", "--min_length", "2", "--use_cpu",
         "--disable_tqdm", "true"], cwd=tmp_path, env=env)
    out = tmp_path / "outputs" / "default_run"
    for name in ("model.safetensors", "config.json", "modeling_lsrmwf.py", "configuration_lsrmwf.py", "README.md",
                 "train_config.yaml", "run_summary.json", "predictions.jsonl"):
        assert (out / name).exists(), name
