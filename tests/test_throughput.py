"""Throughput in the training log: samples/s, tokens/s, and the CNN/DM-sized time estimate."""

import json

from lsrmwf.training.throughput import CNNDM_TRAIN_DOCUMENTS, format_duration, planned_steps


def test_planned_steps_and_duration():
    assert planned_steps(CNNDM_TRAIN_DOCUMENTS, 64, 1, -1) == 4487  # ceil(287113 / 64)
    assert planned_steps(CNNDM_TRAIN_DOCUMENTS, 64, 3, -1) == 3 * 4487
    assert planned_steps(CNNDM_TRAIN_DOCUMENTS, 64, 3, 100_000) == 100_000  # --max_steps wins, as in the Trainer
    assert format_duration(90) == "1.5 min" and format_duration(2 * 3600) == "2.0 h" and format_duration(72 * 3600) == "3.0 days"


def test_training_log_has_throughput_and_cnndm_estimate(aclsum_train, tmp_path, capsys):
    from test_train_script import TINY, write_rationales

    from lsrmwf.commands.train import main

    rationales = write_rationales(tmp_path / "r.jsonl", aclsum_train, 8)
    out = tmp_path / "run"
    main(["--dataset_name", "aclsum", "--max_train_samples", "8", "--rationale_file", rationales, "--output_dir", str(out),
          "--do_train", *TINY, "--max_steps", "3", "--save_strategy", "no", "--gradient_accumulation_steps", "2"])
    logged = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    assert len(logged) == 3
    for h in logged:
        assert h["samples_per_second"] > 0 and h["tokens_per_second"] > 0
        # per sample: at most 128 source + 32 target tokens, and more than the target alone
        assert 1 < h["tokens_per_second"] / h["samples_per_second"] <= 160 * (1 + 1e-9)  # a ratio of two rounded rates
    # the estimate needs one timed step after the first: it comes with the step-2 log, once
    assert [h["step"] for h in logged if "eta_cnndm_hours" in h] == [2] and logged[1]["eta_cnndm_hours"] > 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("throughput:")]
    assert len(printed) == 1
    # global batch 2 × 1 process × 2 accumulation; --max_steps 3 is this run's length
    assert "287,113 documents, global batch 4 = 2 per device × 1 process(es) × 2 accumulation, --max_steps 3: 3 steps" in printed[0]
