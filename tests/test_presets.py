"""The presets train the paper's method: its optimizer (Noam schedule, explicit values win), gates that
move, and every preset number marked with its source."""

import json

import pytest
import tiny
from test_train_script import read_jsonl, write_rationales

from lsrmwf.commands.train import main, parse_args
from lsrmwf.presets import PRESETS, SOURCES, Preset, source_of

# TINY of test_train_script without its learning rate: the preset chooses the optimizer here
TINY_MODEL = [
    "--config_overrides", tiny.overrides(),
    "--tokenizer_vocab_size", "400", "--max_source_length", "128", "--max_target_length", "32",
    "--max_rationale_length", "32", "--num_beams", "2", "--min_length", "2", "--max_length", "16",
    "--per_device_train_batch_size", "2", "--logging_steps", "1", "--report_to", "none", "--use_cpu",
    "--disable_tqdm", "true", "--save_strategy", "no",
]


def noam(step, factor=2e-3, warmup=10):
    return factor * min(step**-0.5, step * warmup**-1.5)


def test_preset_cnndm_trains_with_the_papers_schedule_and_the_gates_move(aclsum_train, tmp_path):
    rationales = write_rationales(tmp_path / "r.jsonl", aclsum_train, 12)
    out = tmp_path / "run"
    main(["--preset", "cnndm", "--warmup_steps", "10", "--max_steps", "30", "--dataset_name", "aclsum",
          "--max_train_samples", "12", "--rationale_file", rationales, "--output_dir", str(out), "--do_train", *TINY_MODEL])
    state = json.loads((out / "trainer_state.json").read_text())
    logged = [h for h in state["log_history"] if "loss" in h]
    assert [h["step"] for h in logged] == list(range(1, 31))
    # update s runs with 2e-3 * min(s^-0.5, s * 10^-1.5): the paper's formula with warmup 10
    assert [h["learning_rate"] for h in logged] == pytest.approx([noam(s) for s in range(1, 31)], rel=1e-6)
    assert logged[9]["learning_rate"] == pytest.approx(6.32e-4, rel=1e-3)
    rows = read_jsonl(out / "gates.jsonl")
    assert rows[0]["step"] == 0 and all(g == pytest.approx(0.02, abs=1e-8) for layer in rows[0]["gates"] for g in layer)
    every = [g for r in rows for layer in r["gates"] for g in layer]
    assert all(0.0 <= g <= 1.0 for g in every)
    final = [g for layer in rows[-1]["gates"] for g in layer]
    assert max(abs(g - 0.02) for g in final) >= 0.005, final


def test_presets_fill_the_papers_optimizer_and_explicit_values_win():
    base = ["--dataset_name", "aclsum", "--output_dir", "x"]
    for preset in ("cnndm", "xsum"):
        t = parse_args(base + ["--preset", preset]).training
        assert (t.lr_schedule, t.learning_rate, t.warmup_steps, t.weight_decay) == ("noam", 2e-3, 10000, 0.0)
        assert 2e-3 * 10000**-0.5 == pytest.approx(2e-5)  # the peak, at step 10000
    t = parse_args(base + ["--learning_rate", "1e-3"]).training
    assert (t.lr_schedule, t.learning_rate, t.warmup_steps) == ("noam", 1e-3, 10000)
    t = parse_args(base + ["--warmup-steps=500"]).training
    assert (t.lr_schedule, t.learning_rate, t.warmup_steps) == ("noam", 2e-3, 500)
    # HF's defaults are real values, not None: an explicit value equal to the default still wins
    t = parse_args(base + ["--learning_rate", "5e-05", "--warmup_steps", "0", "--lr_schedule", "hf"]).training
    assert (t.lr_schedule, t.learning_rate, t.warmup_steps) == ("hf", 5e-5, 0)
    t = parse_args(base + ["--lr_schedule", "hf"]).training  # the preset's numbers are Noam's: HF's defaults stay
    assert (t.lr_schedule, t.learning_rate, t.warmup_steps) == ("hf", 5e-5, 0)
    from lsrmwf.io import InputError

    with pytest.raises(InputError, match="noam needs --warmup_steps >= 1"):
        parse_args(base + ["--warmup_steps", "0"])


def test_json_config_keys_count_as_given(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"dataset_name": "aclsum", "output_dir": "x", "learning_rate": 3e-4, "lr_schedule": "hf"}))
    t = parse_args([str(path)]).training
    assert (t.lr_schedule, t.learning_rate, t.warmup_steps) == ("hf", 3e-4, 0)
    path.write_text(json.dumps({"dataset_name": "aclsum", "output_dir": "x", "warmup_steps": 20}))
    t = parse_args([str(path)]).training
    assert (t.lr_schedule, t.learning_rate, t.warmup_steps) == ("noam", 2e-3, 20)


def test_every_preset_number_names_its_source():
    import dataclasses

    assert set(SOURCES) == {f.name for f in dataclasses.fields(Preset)}
    assert set(SOURCES.values()) <= {"paper", "BRIO", "own choice"}
    # what the paper states itself (Experimental Setup / Method) ...
    for field in ("gate_init", "gamma_ce", "gamma_views", "score", "score_threshold", "lr_schedule", "learning_rate", "warmup_steps"):
        assert source_of(field) == "paper", field
    # ... and the beam search it never gives (BRIO's settings, which the README must not call the paper's)
    for field in ("num_beams", "length_penalty", "min_length", "max_length", "no_repeat_ngram_size"):
        assert source_of(field) == "BRIO", field
    assert (PRESETS["cnndm"].gate_init, PRESETS["xsum"].gate_init) == (0.02, 0.01)
