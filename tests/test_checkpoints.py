"""Checkpoints: resuming continues the run exactly (not a restart), a save cut short is never
resumed from, and a checkpoint without optimizer state is refused unless asked for."""

import json
import logging
import os
import shutil

import pytest
import torch
from test_train_script import TINY

from lsrmwf.commands.train import main
from lsrmwf.io import InputError
from lsrmwf.training.checkpoints import COMPLETE_MARKER, checkpoint_problem, optimizer_problem
from lsrmwf.training.lsr_mwf import LsrMwfTrainer


def common(out, steps):
    return ["--dataset_name", "aclsum", "--max_train_samples", "8", "--output_dir", str(out), "--do_train",
            "--save_steps", "2", "--max_steps", str(steps), "--lr_schedule", "hf", "--lr_scheduler_type", "constant", *TINY]
    # HF's constant rate (not the preset's Noam warm-up, whose first steps barely move the weights): a run
    # stopped at step 2 and resumed to step 4 follows the same schedule as one run to step 4


def losses(out):
    state = json.loads((out / "trainer_state.json").read_text())
    return {h["step"]: h["loss"] for h in state["log_history"] if "loss" in h}


def adam_steps(checkpoint):
    state = torch.load(os.path.join(checkpoint, "optimizer.pt"), weights_only=False)["state"]
    return {int(s["step"]) for s in state.values()}


def test_resume_continues_the_run_it_was_not_a_restart(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    main(common(straight, 4))
    main(common(resumed, 2))
    assert adam_steps(resumed / "checkpoint-2") == {2}
    main(common(resumed, 4))
    a, b = losses(straight), losses(resumed)
    assert sorted(b) == [1, 2, 3, 4]
    # steps 3-4 after a resume equal those of the uninterrupted run: same weights, optimizer moments,
    # schedule, RNG and data order (a restart would see batches 1-2 again with a fresh optimizer)
    for step in (3, 4):
        assert b[step] == pytest.approx(a[step], rel=1e-5, abs=1e-6), (step, a, b)
    assert adam_steps(resumed / "checkpoint-4") == {4}  # a fresh optimizer would say 2
    state = json.loads((resumed / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert json.loads((resumed / "checkpoint-4" / COMPLETE_MARKER).read_text())["global_step"] == 4
    # and the test can tell: the same resume with the optimizer state thrown away does not match
    fresh = tmp_path / "fresh"
    main(common(fresh, 2))
    for f in ("optimizer.pt", "scheduler.pt"):
        os.remove(fresh / "checkpoint-2" / f)
    main(common(fresh, 4) + ["--allow_fresh_optimizer"])
    assert losses(fresh)[4] != pytest.approx(a[4], rel=1e-5, abs=1e-6)


def test_a_save_cut_short_is_skipped_and_a_missing_optimizer_refused(tmp_path, monkeypatch, caplog):
    out = tmp_path / "run"
    original = LsrMwfTrainer._save_rng_state

    def die_at_step_4(self, output_dir):
        if self.state.global_step == 4:
            raise KeyboardInterrupt("killed during the save of checkpoint-4")  # model and optimizer written, not the rest
        return original(self, output_dir)

    monkeypatch.setattr(LsrMwfTrainer, "_save_rng_state", die_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        main(common(out, 6))
    monkeypatch.setattr(LsrMwfTrainer, "_save_rng_state", original)
    partial = out / "checkpoint-4"
    assert (partial / "optimizer.pt").exists() and not (partial / COMPLETE_MARKER).exists()
    assert "did not finish" in checkpoint_problem(str(partial)) and checkpoint_problem(str(out / "checkpoint-2")) is None

    # pointing at it is an error that names the last complete one
    with pytest.raises(InputError, match=r"checkpoint-4: no completion marker .*did not finish.*last complete one there is .*checkpoint-2"):
        main(common(out, 6) + ["--resume_from_checkpoint", str(partial)])
    # found in --output_dir: skipped with a warning, moved aside, and the run resumes from checkpoint-2
    with caplog.at_level(logging.WARNING, logger="lsrmwf.train"):
        main(common(out, 6))
    messages = [r.getMessage() for r in caplog.records if r.name == "lsrmwf.train"]
    assert any("checkpoint-4 is incomplete" in m for m in messages), messages
    assert any("resuming from" in m and m.split()[2].endswith("checkpoint-2,") for m in messages), messages
    assert (out / "incomplete-checkpoint-4").is_dir()
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 6 and sorted(losses(out)) == [1, 2, 3, 4, 5, 6]
    assert adam_steps(out / "checkpoint-6") == {6}

    # a checkpoint without optimizer state: an error, unless a fresh optimizer is asked for
    os.remove(out / "checkpoint-6" / "optimizer.pt")
    assert optimizer_problem(str(out / "checkpoint-6")) == "no optimizer.pt"
    with pytest.raises(InputError, match=r"checkpoint-6: no optimizer.pt: resuming would restart the optimizer .*--allow_fresh_optimizer"):
        main(common(out, 7))
    deepspeed_like = tmp_path / "ds" / "checkpoint-2"
    shutil.copytree(out / "checkpoint-2", deepspeed_like)
    for f in ("optimizer.pt", "scheduler.pt"):
        os.remove(deepspeed_like / f)
    assert optimizer_problem(str(deepspeed_like)) == "no optimizer.pt or scheduler.pt"
    (deepspeed_like / "global_step2").mkdir()
    assert optimizer_problem(str(deepspeed_like)) is None
