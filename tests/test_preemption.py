"""A signal stops training after a complete checkpoint and the rerun continues exactly (issue 28).

A real ``train.py`` process gets SIGTERM mid-run (and a second signal while it stops): it finishes the optimizer
step, saves ``checkpoint-N`` with its completion marker, skips prediction, writes ``run_summary.json`` with an
``interrupted`` entry and exits 130. Rerunning the same command resumes from that checkpoint; its losses, gates
and final weights equal an uninterrupted run's.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from test_distributed import ROOT, TINY, free_port, needs_deepspeed
from test_train_script import read_jsonl, write_rationales

STEPS = 40


def args(rationales, out, *extra):
    return [*TINY, "--max_train_samples", "12", "--rationale_file", str(rationales), "--output_dir", str(out),
            "--max_steps", str(STEPS), "--save_steps", "1000", "--learning_rate", "1e-2", "--lr_schedule", "hf",
            "--seed", "7", "--use_cpu", *extra]


def env():
    return dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                TOKENIZERS_PARALLELISM="false", PYTHONPATH=ROOT)


def train_py(train_args, **kw):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), *train_args], cwd=ROOT, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def signal_after_logs(proc, n_logs, signals, pid=None):
    """Send ``signals`` (one after the other) to ``pid`` (default the process) once ``n_logs`` loss logs
    were printed; return the process's stdout and stderr once it ended."""
    seen, lines = 0, []
    for line in proc.stdout:
        lines.append(line)
        seen += "'loss'" in line
        if seen == n_logs:
            for sig in signals:
                os.kill(pid or proc.pid, sig)
                time.sleep(0.05)
            break
    out, err = proc.communicate(timeout=570)
    return "".join(lines) + out, err


def logged(out):
    state = json.loads((out / "trainer_state.json").read_text())
    return {h["step"]: h for h in state["log_history"] if "loss" in h}


def weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def check_same_run(straight, resumed, stopped_at):
    a, b = logged(straight), logged(resumed)
    assert sorted(a) == sorted(b) == list(range(1, STEPS + 1))
    gate_keys = [k for k in a[1] if k.startswith("gate/")]
    assert gate_keys
    for step in range(stopped_at + 1, STEPS + 1):  # trained after the resume
        for key in ["loss", "ce", *gate_keys]:
            assert b[step][key] == pytest.approx(a[step][key], rel=1e-5, abs=1e-7), (step, key)
    gates = read_jsonl(resumed / "gates.jsonl")
    assert [g["step"] for g in gates] == [0, *range(1, STEPS + 1)]  # no gap, no repeat across the stop
    torch.testing.assert_close(torch.tensor([g["gates"] for g in gates]),
                               torch.tensor([g["gates"] for g in read_jsonl(straight / "gates.jsonl")]))
    wa, wb = weights(straight), weights(resumed)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], msg=k)


@pytest.mark.slow
def test_sigterm_saves_exits_130_and_the_rerun_continues_exactly(aclsum_train, tmp_path):
    from lsrmwf.commands.train import main

    rationales = write_rationales(tmp_path / "r.jsonl", aclsum_train, 12)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    main(args(rationales, straight))

    proc = train_py(args(rationales, resumed))
    _, err = signal_after_logs(proc, 3, [signal.SIGTERM, signal.SIGUSR1])  # the second one must not tear the save
    assert proc.returncode == 130, err[-3000:]
    # the second signal may land after the summary line; its one warning may then follow it
    last = [line for line in err.strip().splitlines() if "received while stopping after SIGTERM" not in line][-1]
    assert last.startswith("train.py: interrupted: stopped by SIGTERM at step") and "Traceback" not in err, err[-3000:]
    summary = json.loads((resumed / "run_summary.json").read_text())
    step = summary["interrupted"]["step"]
    assert summary["interrupted"]["signal"] == "SIGTERM" and 3 <= step < STEPS
    assert (resumed / f"checkpoint-{step}" / "checkpoint_complete.json").is_file()
    assert not (resumed / "predictions.jsonl").exists()  # prediction skipped
    assert max(logged(resumed / f"checkpoint-{step}")) == step

    proc = train_py(args(rationales, resumed))
    _, err = proc.communicate(timeout=570)
    assert proc.returncode == 0, err[-3000:]
    summary = json.loads((resumed / "run_summary.json").read_text())
    assert "interrupted" not in summary and summary["resumed_from"].endswith(f"checkpoint-{step}")
    assert len(read_jsonl(resumed / "predictions.jsonl")) == 5
    check_same_run(straight, resumed, step)


def rank_pid(launcher_pid, rank, timeout=300):
    """The pid of the worker process with ``RANK=rank`` that ``launcher_pid`` (torchrun) started."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(launcher_pid).children(recursive=True):
            try:
                if child.environ().get("RANK") == str(rank) and "train.py" in " ".join(child.cmdline()):
                    return child.pid
            except psutil.Error:
                continue
        time.sleep(0.5)
    raise AssertionError(f"no rank {rank} under torchrun {launcher_pid}")


@needs_deepspeed
@pytest.mark.multiprocess
@pytest.mark.deepspeed
@pytest.mark.slow
def test_sigterm_to_one_zero_rank_saves_collectively_and_the_rerun_continues_exactly(aclsum_train, tmp_path):
    from test_multiprocess_zero import ENV, TORCHRUN, torchrun

    rationales = write_rationales(tmp_path / "r.jsonl", aclsum_train, 12)
    zero2 = ["--deepspeed", os.path.join(ROOT, "ds_configs", "zero2.json")]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    torchrun(args(rationales, straight, *zero2))

    cmd = [TORCHRUN, "--nproc_per_node", "2", "--master_port", free_port(), os.path.join(ROOT, "train.py"),
           *args(rationales, resumed, *zero2)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(env(), **ENV), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _, err = signal_after_logs(proc, 3, [signal.SIGTERM], pid=rank_pid(proc.pid, 1))  # rank 1: not the saver
    assert proc.returncode != 0, err[-3000:]  # torchrun reports its workers' 130 as a failure
    assert "train.py: interrupted: stopped by SIGTERM at step" in err, err[-3000:]
    summary = json.loads((resumed / "run_summary.json").read_text())
    step = summary["interrupted"]["step"]
    assert (resumed / f"checkpoint-{step}" / "checkpoint_complete.json").is_file()
    assert (resumed / f"checkpoint-{step}" / f"global_step{step}").is_dir()  # the ZeRO state, saved by both ranks

    torchrun(args(rationales, resumed, *zero2))
    check_same_run(straight, resumed, step)


def test_a_second_signal_after_the_stop_cannot_kill_the_exit():
    """Once a signal was received, the handler outlives the training loop: a late second signal (here after
    restore(), as the Trainer's end of training does) is logged, and the process still exits 130."""
    code = (
        "import os, signal, sys, time\n"
        "from lsrmwf.io.interrupts import EXIT_INTERRUPTED, SignalFlag\n"
        "quiet = SignalFlag([signal.SIGUSR1]).install(); quiet.restore()\n"
        "assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # nothing received: the default is back\n"
        "flag = SignalFlag([signal.SIGTERM, signal.SIGUSR1]).install()\n"
        "os.kill(os.getpid(), signal.SIGTERM); time.sleep(0.05); flag.restore()\n"
        "os.kill(os.getpid(), signal.SIGUSR1); time.sleep(0.05)\n"
        "sys.exit(EXIT_INTERRUPTED if flag.received == 'SIGTERM' else 1)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 130, done.stderr
    assert "SIGUSR1 received while stopping after SIGTERM" in done.stderr
