"""Bad input, fed to the three command lines as a user would: each must end with rc 2 and one line
``<script>: error: ...`` that names the culprit (file and line, flag or field), with no traceback.

The table below is the list of inputs tried; the README's reliability section reports its size.
"""

import json
import os
import subprocess
import sys

import pytest
import tiny

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUMMARY = "The cat sat on the mat. The dog barked."
ROWS = [{"id": f"d{i}", "document": f"Document {i} talks about cats. It ends here.", "summary": SUMMARY} for i in range(4)]
TRAIN_TINY = ["--config_overrides", tiny.overrides(d_model=16, decoder_layers=1, encoder_ffn_dim=16, decoder_ffn_dim=16,
                                             max_position_embeddings=64),
              "--tokenizer_vocab_size", "300", "--max_source_length", "32", "--max_target_length", "16", "--num_beams", "1",
              "--min_length", "1", "--max_length", "8", "--max_steps", "1", "--save_strategy", "no", "--report_to", "none",
              "--use_cpu", "--do_train"]


def files(tmp):
    """Every input file a case may use, written once per test."""
    good = tmp / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    latin1 = tmp / "latin1.jsonl"
    latin1.write_bytes(json.dumps(ROWS[0]).encode() + b"\n" + '{"id": "x", "document": "caf\xe9", "summary": "s"}\n'.encode("latin-1"))
    broken = tmp / "broken.jsonl"
    broken.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + "\n" + '{"id": "d2", "document": "unterminated\n')
    latin_csv = tmp / "latin1.csv"
    latin_csv.write_bytes(b"id,document,summary\na,ok text,s\nb,caf\xe9 au lait,s\n")
    config = tmp / "config.json"
    config.write_text('{"output_dir": "x", "do_train": true,,}')
    wrong_rat = tmp / "wrong_type.jsonl"
    wrong_rat.write_text(json.dumps({"id": "d0", "rationales": [{"aspect": ["a", "list"], "sentence": "s", "triples": []}]}) + "\n")
    rat_str = tmp / "rationales_str.jsonl"
    rat_str.write_text(json.dumps({"id": "d0", "rationales": "the model's text"}) + "\n")
    dup_rat = tmp / "dup.jsonl"
    dup_rat.write_text("".join(json.dumps({"id": i, "rationales": []}) + "\n" for i in ("d0", "d1", "d0")))
    a_file = tmp / "a_file"
    a_file.write_text("not a directory")
    return {"good": str(good), "latin1": str(latin1), "broken": str(broken), "latin_csv": str(latin_csv),
            "config": str(config), "wrong_rat": str(wrong_rat), "rat_str": str(rat_str), "dup_rat": str(dup_rat),
            "under_file": str(a_file / "out"), "a_file": str(a_file), "out": str(tmp / "out"), "missing_model": str(tmp / "no_model")}


def train(f, *extra):
    return ["train.py", "--train_file", f["good"], "--output_dir", f["out"], *TRAIN_TINY, *extra]


def gen(f, *extra, data="good"):
    return ["generate_rationales.py", "--data_file", f[data], "--base_url", "http://127.0.0.1:9/v1", "--model", "m",
            "--preset", "cnndm", "--output", os.path.join(f["out"], "r.jsonl"), "--no_progress", *extra]


def ev(f, *extra):
    return ["evaluate.py", "--predictions", f["good"], "--prediction_field", "summary", "--references", f["good"],
            "--reference_field", "summary", "--no_bertscore", "--output_dir", f["out"], "--no_progress", *extra]


# (case id, command builder, what the one error line must contain)
CASES = [
    ("train: non-UTF-8 data file", lambda f: train(f)[:2] + [f["latin1"]] + train(f)[3:], ["latin1.jsonl:2", "UTF-8"]),
    ("train: malformed JSONL line", lambda f: train(f)[:2] + [f["broken"]] + train(f)[3:], ["broken.jsonl:3", "not valid JSON"]),
    ("train: non-UTF-8 CSV", lambda f: train(f)[:2] + [f["latin_csv"]] + train(f)[3:], ["latin1.csv:3", "UTF-8"]),
    ("train: --max_train_samples 0", lambda f: train(f, "--max_train_samples", "0"), ["--max_train_samples must be >= 1"]),
    ("train: --max_eval_samples -1", lambda f: train(f, "--max_eval_samples", "-1"), ["--max_eval_samples must be >= 1"]),
    ("train: nonexistent --model_name_or_path", lambda f: ["train.py", "--train_file", f["good"], "--output_dir", f["out"],
                                                          "--model_name_or_path", f["missing_model"], "--do_train"],
     ["--model_name_or_path", "no_model", "no such directory"]),
    ("train: unknown hub model", lambda f: ["train.py", "--train_file", f["good"], "--output_dir", f["out"],
                                            "--model_name_or_path", "nobody-xyz/no-such-model", "--do_train", "--use_cpu"],
     ["--model_name_or_path nobody-xyz/no-such-model: cannot be loaded"]),
    ("train: unknown flag", lambda f: train(f, "--learning_rat", "1e-3"), ["unknown argument(s)", "--learning_rat"]),  # no prefix match
    ("train: broken JSON config", lambda f: ["train.py", f["config"]], ["config.json:1: not valid JSON"]),
    ("train: unwritable --output_dir", lambda f: train(f)[:4] + [f["under_file"]] + train(f)[5:], ["--output_dir", "a_file/out", "cannot be written"]),
    ("train: rationale field of the wrong type", lambda f: train(f, "--rationale_file", f["wrong_rat"]),
     ["wrong_type.jsonl:1", "rationales[0].aspect: must be a string, got list"]),
    ("train: rationales a string", lambda f: train(f, "--rationale_file", f["rat_str"]),
     ["rationales_str.jsonl:1", "'rationales' must be a list, got str"]),
    ("train: duplicate rationale ids", lambda f: train(f, "--rationale_file", f["dup_rat"]), ["dup.jsonl", "id 'd0' at lines 1, 3"]),
    ("train: --baseline with --views", lambda f: train(f, "--baseline", "--views", "ea"), ["--baseline", "--views ea"]),
    ("generate_rationales: --max_examples -1", lambda f: gen(f, "--max_examples", "-1"), ["--max_examples must be >= 1"]),
    ("generate_rationales: malformed JSONL line", lambda f: gen(f, data="broken"), ["broken.jsonl:3", "not valid JSON"]),
    ("generate_rationales: non-UTF-8 data file", lambda f: gen(f, data="latin1"), ["latin1.jsonl:2", "UTF-8"]),
    ("generate_rationales: unknown flag", lambda f: gen(f, "--concurency", "2"), ["unknown argument(s)", "--concurency"]),
    ("generate_rationales: unwritable --output", lambda f: [*gen(f)[:-2], os.path.join(f["under_file"], "r.jsonl"), "--no_progress"],
     ["--output", "a_file/out/r.jsonl", "cannot be written"]),
    ("evaluate: --max_examples -1", lambda f: ["evaluate.py", "--model_name_or_path", f["missing_model"], "--data_file", f["good"],
                                               "--output_dir", f["out"], "--max_examples", "-1"], ["--max_examples must be >= 1"]),
    ("evaluate: nonexistent --model_name_or_path", lambda f: ["evaluate.py", "--model_name_or_path", f["missing_model"],
                                                             "--data_file", f["good"], "--output_dir", f["out"], "--no_bertscore"],
     ["--model_name_or_path", "no_model", "no such directory"]),
    ("evaluate: non-UTF-8 data file", lambda f: ["evaluate.py", "--model_name_or_path", f["missing_model"], "--data_file",
                                                 f["latin1"], "--output_dir", f["out"]], ["latin1.jsonl:2", "UTF-8"]),
    ("evaluate: unknown flag", lambda f: ev(f, "--bootstrap", "10"), ["unknown argument(s)", "--bootstrap"]),
    ("evaluate: unwritable --output_dir", lambda f: ev(f)[:-3] + ["--output_dir", f["under_file"], "--no_progress"],
     ["--output_dir", "a_file/out", "cannot be written"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_line(case, tmp_path):
    name, build, needles = case
    f = files(tmp_path)
    cmd = build(f)
    script = cmd[0]
    proc = subprocess.run([sys.executable, *cmd], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1"))
    err = proc.stderr
    assert "Traceback" not in err, err[-3000:]
    assert proc.returncode == 2, (proc.returncode, err[-3000:])
    lines = [line for line in err.strip().splitlines() if line.startswith(f"{script}: error: ")]
    assert len(lines) == 1, err[-3000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert err.strip().splitlines()[-1] == lines[0], err[-1500:]
