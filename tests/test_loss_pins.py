"""The first three logged losses of tiny seeded train.py runs, pinned to the values the code gave before the
training core was split into one recipe per method: LSR-MWF with rationales (loss terms and a gate), plain BART,
causal white-box KD, causal sparse top-K KD and causal BRD. A refactor that changes any of them changes
behaviour."""

import json

import pytest
from test_brd_causal import write_passages
from test_causal_kd import llama, small_ds, teacher_records, train_argv, write_jsonl, write_store
from test_train_script import TINY, write_rationales

from lsrmwf.commands.train import main

KEYS = ("loss", "ce", "kd_kl", "loss_ea", "loss_as", "loss_ter", "gate/ea/layer00", "gate/ter/layer01")


def first_logs(out, n=3):
    log = json.load(open(out / "trainer_state.json"))["log_history"]
    return [{k: round(h[k], 5) for k in KEYS if k in h} for h in log if "loss" in h][:n]


def bart_argv(aclsum_train, tmp_path, *extra):
    return ["--dataset_name", "aclsum", "--max_train_samples", "8", "--output_dir", str(tmp_path / "run"),
            "--do_train", "--max_steps", "3", "--save_strategy", "no", "--seed", "0", *TINY, *extra]


@pytest.fixture(scope="module")
def causal_models(tiny_tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("pin_models")
    for name, kw in (("student", dict(seed=0)), ("teacher", dict(layers=2, hidden=48, seed=1))):
        llama(tiny_tokenizer, **kw).save_pretrained(root / name)
        tiny_tokenizer.save_pretrained(root / name)
    return root


def causal_argv(models, data, out, *extra):
    argv = train_argv(models, data, out, *extra)
    i = argv.index("--max_steps")
    argv[i + 1] = "3"
    return [a for a in argv if a not in ("--do_predict",)]


PINS = {  # recorded from the code before the split (commit 854f1ba), CPU, float32
    "lsr_mwf": [
        {"loss": 4.87608, "ce": 5.98896, "loss_ea": 1.11897, "loss_as": 0.943, "loss_ter": 1.1448,
         "gate/ea/layer00": 0.02, "gate/ter/layer01": 0.02},
        {"loss": 5.08488, "ce": 6.01543, "loss_ea": 1.28596, "loss_as": 1.10613, "loss_ter": 1.29697,
         "gate/ea/layer00": 0.02, "gate/ter/layer01": 0.02},
        {"loss": 4.83495, "ce": 5.99549, "loss_ea": 1.16216, "loss_as": 0.77094, "loss_ter": 1.16104,
         "gate/ea/layer00": 0.02, "gate/ter/layer01": 0.02}],
    "baseline": [{"loss": 5.99577, "ce": 5.99577}, {"loss": 6.01222, "ce": 6.01222}, {"loss": 6.00082, "ce": 6.00082}],
    "white_box_kd": [{"loss": 3.1281, "ce": 6.24, "kd_kl": 0.00405}, {"loss": 3.12769, "ce": 6.23937, "kd_kl": 0.004},
                     {"loss": 3.13795, "ce": 6.26, "kd_kl": 0.00397}],
    "sparse_kd": [{"loss": 3.1459, "ce": 6.28003, "kd_kl": 0.00294}, {"loss": 3.13877, "ce": 6.26547, "kd_kl": 0.00301},
                  {"loss": 3.13771, "ce": 6.26402, "kd_kl": 0.00285}],
    "brd": [{"loss": 6.26292, "ce": 6.26292}, {"loss": 6.24586, "ce": 6.24586}, {"loss": 6.23386, "ce": 6.23386}],
}


def check(name, logs):
    assert [sorted(h) for h in logs] == [sorted(h) for h in PINS[name]]  # the same terms logged
    for got, pinned in zip(logs, PINS[name]):
        assert got == pytest.approx(pinned, rel=1e-4, abs=2e-5)


def test_lsr_mwf_with_rationales(aclsum_train, tmp_path):
    rationales = write_rationales(tmp_path / "r.jsonl", aclsum_train, 8)
    main(bart_argv(aclsum_train, tmp_path, "--rationale_file", rationales))
    check("lsr_mwf", first_logs(tmp_path / "run"))


def test_plain_bart(aclsum_train, tmp_path):
    main(bart_argv(aclsum_train, tmp_path, "--baseline"))
    check("baseline", first_logs(tmp_path / "run"))


def test_causal_white_box_kd(causal_models, aclsum_train, tmp_path):
    data = str(tmp_path / "data.jsonl")
    write_jsonl(data, small_ds(aclsum_train, 4))
    main(causal_argv(causal_models, data, tmp_path / "run", "--teacher_model_name_or_path",
                     str(causal_models / "teacher")))
    check("white_box_kd", first_logs(tmp_path / "run"))


def test_causal_sparse_kd(causal_models, tiny_tokenizer, aclsum_train, tmp_path):
    ds = small_ds(aclsum_train, 4)
    data = str(tmp_path / "data.jsonl")
    write_jsonl(data, ds)
    store = str(tmp_path / "teacher.jsonl")
    write_store(store, teacher_records(tiny_tokenizer, llama(tiny_tokenizer, layers=2, hidden=48, seed=1), ds))
    main(causal_argv(causal_models, data, tmp_path / "run", "--teacher_logprobs_file", store))
    check("sparse_kd", first_logs(tmp_path / "run"))


def test_causal_brd(causal_models, aclsum_train, tmp_path):
    folder = write_passages(tmp_path, aclsum_train, n_docs=6)
    main(["--stage", "basic_reading", "--model_name_or_path", str(causal_models / "student"), "--brd_passages_dir",
          str(folder), "--output_dir", str(tmp_path / "run"), "--do_train", "--max_steps", "3", "--save_strategy", "no",
          "--block_size", "32", "--per_device_train_batch_size", "2", "--learning_rate", "1e-3", "--report_to", "none",
          "--use_cpu", "--logging_steps", "1", "--seed", "0"])
    check("brd", first_logs(tmp_path / "run"))
