"""Causal BRD training: the D_ORI/D_NER/D_QRA mix (weights, --max_passages, the QRA drop pattern),
packing, the errors for bad passage files and flags, and train.py end to end with save and resume."""

import json
from collections import OrderedDict

import pytest
from test_causal_kd import llama

from lsrmwf.distill.brd_compose import Passage, compose
from lsrmwf.distill.brd_mix import (
    drop_qra_pairs,
    load_brd_mix,
    mix_passages,
    pack_token_ids,
    packed_dataset,
    parse_mix,
    read_passages,
)
from lsrmwf.io import InputError


def passages_from(aclsum_train, n_docs=6, n_sents=3):
    """Composed passages from real aclsum sentences; every third QRA answer asks about attitude."""
    passages = OrderedDict()
    for d in range(n_docs):
        words = aclsum_train[d]["document"].split()
        p = Passage(str(d), n_sents)
        for k in range(n_sents):
            p.sentences[k] = " ".join(words[k * 10:(k + 1) * 10])
            p.answers[(k, "ner")] = f'In this sentence, "{words[k * 10]}" is a concept entity.'
            topic = "the attitude of the authors" if (d * n_sents + k) % 3 == 0 else "the method"
            p.answers[(k, "qra")] = f"Question: What does this sentence say about {topic}? Answer: {words[k * 10 + 1]}."
        passages[str(d)] = p
    return passages


def write_passages(tmp_path, aclsum_train, n_docs=6, name="passages"):
    out, _ = compose(passages_from(aclsum_train, n_docs))
    folder = tmp_path / name
    folder.mkdir()
    for key, rows in out.items():
        (folder / f"{key}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_mix_weights_give_the_expected_counts(aclsum_train, tmp_path):
    folder = write_passages(tmp_path, aclsum_train, n_docs=6)
    texts, stats = load_brd_mix(str(folder), "ori=1,ner=1,qra=1", seed=0)
    assert stats["mixed"] == {"ori": 6, "ner": 6, "qra": 6} and len(texts) == 18
    texts, stats = load_brd_mix(str(folder), "ori=0.5,ner=2,qra=1.5", seed=0)
    assert stats["mixed"] == {"ori": 3, "ner": 12, "qra": 9} and len(texts) == 24
    ner = [r["text"] for r in read_passages(str(folder / "ner.jsonl"))]
    assert sorted(t for t in texts if t in ner) == sorted(ner * 2)  # integer weight: each passage twice
    # weight 0 removes the source; its file need not exist (the -QRA ablation)
    (folder / "qra.jsonl").unlink()
    texts, stats = load_brd_mix(str(folder), "ori=1,ner=1,qra=0", seed=0)
    assert stats["mixed"] == {"ori": 6, "ner": 6} and not any("Question:" in t for t in texts)
    with pytest.raises(InputError, match=r"no qra\.jsonl.*--brd_mix qra=0"):
        load_brd_mix(str(folder), "ori=1,ner=1,qra=1", seed=0)
    # deterministic with the seed, shuffled across sources
    assert load_brd_mix(str(folder), "ori=1,ner=1,qra=0", seed=3)[0] == load_brd_mix(str(folder), "ori=1,ner=1,qra=0", seed=3)[0]
    mixed, _ = mix_passages({"ori": [{"text": "a"}] * 4, "ner": [{"text": "b"}] * 4}, {"ori": 1, "ner": 1}, seed=1)
    assert [s for s, _ in mixed] != ["ori"] * 4 + ["ner"] * 4


def test_max_passages_caps_each_file_nested_and_seeded(aclsum_train, tmp_path):
    folder = write_passages(tmp_path, aclsum_train, n_docs=6)
    _, stats = load_brd_mix(str(folder), max_passages=4, seed=0)
    assert stats["passages_read"] == {"ori": 6, "ner": 6, "qra": 6}
    assert stats["passages_kept"] == {"ori": 4, "ner": 4, "qra": 4} and stats["mixed"] == {"ori": 4, "ner": 4, "qra": 4}
    small = set(load_brd_mix(str(folder), "ori=1", max_passages=2, seed=0)[0])
    large = set(load_brd_mix(str(folder), "ori=1", max_passages=4, seed=0)[0])
    assert len(small) == 2 and small < large  # a larger N keeps the smaller N's passages (Figure 2's curve)
    with pytest.raises(InputError, match="--max_passages must be >= 1"):
        load_brd_mix(str(folder), max_passages=0)


def test_drop_pattern_removes_the_matching_qra_pairs(aclsum_train, tmp_path):
    folder = write_passages(tmp_path, aclsum_train, n_docs=6)
    rows = read_passages(str(folder / "qra.jsonl"))
    kept, removed = drop_qra_pairs(rows, r"attitude")
    assert removed == 6  # every third of the 18 sentences
    for before, after in zip(rows, kept):
        segs = after["text"].split(" <sep> ")
        assert not any("attitude" in s for s in segs)
        assert [s for s in before["text"].split(" <sep> ") if "attitude" not in s] == segs  # sentences and other pairs stay
    # a sentence that itself matches is not an answer segment and stays
    row = {"text": "The attitude was calm. <sep> Question: Why? Answer: Calm.", "n_sentences": 1, "partial": False}
    assert drop_qra_pairs([row], "attitude") == ([row], 0)
    # partial passages: answers are the segments starting with "Question:"
    row = {"text": "s1 <sep> s2 <sep> Question: attitude? Answer: good.", "n_sentences": 2, "partial": True}
    assert drop_qra_pairs([row], "attitude")[0][0]["text"] == "s1 <sep> s2"
    _, stats = load_brd_mix(str(folder), drop_qra_pattern="attitude", seed=0)
    assert stats["qra_pairs_dropped"] == 6
    with pytest.raises(InputError, match="not a valid regular expression"):
        drop_qra_pairs(rows, "(")


def test_packing_gives_full_blocks_with_eos_and_labels(tiny_tokenizer):
    blocks, left = pack_token_ids([[1, 2, 3], [4, 5], [6, 7, 8, 9]], eos_token_id=0, block_size=4)
    assert blocks.tolist() == [[1, 2, 3, 0], [4, 5, 0, 6], [7, 8, 9, 0]] and left == 0
    blocks, left = pack_token_ids([[1, 2, 3], [4]], eos_token_id=0, block_size=4)
    assert blocks.tolist() == [[1, 2, 3, 0]] and left == 2
    tok = tiny_tokenizer
    texts = ["the method works well on long documents", "we propose a new model", "results improve"] * 5
    ds, counts = packed_dataset(texts, tok, block_size=16)
    ids = [tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in texts]
    flat = [i for seq in ids for i in seq]
    assert counts["tokens"] == len(flat) and counts["blocks"] == len(flat) // 16 == len(ds)
    assert counts["tokens_left_out"] == len(flat) % 16
    for b in range(len(ds)):
        assert len(ds[b]["input_ids"]) == 16 and ds[b]["labels"] == ds[b]["input_ids"]
        assert ds[b]["input_ids"] == flat[b * 16:(b + 1) * 16]  # eos separators where the passages end
    with pytest.raises(InputError, match="fewer than one block"):
        packed_dataset(["short"], tok, block_size=512)


def test_bad_passage_files_and_flags_name_file_and_row(aclsum_train, tmp_path):
    folder = write_passages(tmp_path, aclsum_train, n_docs=2)
    lines = (folder / "ner.jsonl").read_text().splitlines()
    (folder / "ner.jsonl").write_text(lines[0] + "\n" + json.dumps({"id": "x", "passage": "no text"}) + "\n")
    with pytest.raises(InputError, match=r"ner\.jsonl:2: passage row has no 'text'"):
        load_brd_mix(str(folder))
    (folder / "ner.jsonl").write_text(lines[0] + "\n" + json.dumps({"id": "x", "text": "  "}) + "\n")
    with pytest.raises(InputError, match=r"ner\.jsonl:2: 'text' is empty"):
        load_brd_mix(str(folder))
    with pytest.raises(InputError, match="unknown source 'sft'"):
        parse_mix("ori=1,sft=1")
    with pytest.raises(InputError, match="every weight is 0"):
        parse_mix("ori=0")
    with pytest.raises(InputError, match="must be a finite number >= 0"):
        parse_mix("ori=-1")
    assert parse_mix("ner=1") == {"ori": 0.0, "ner": 1.0, "qra": 0.0}


# ----------------------------------------------------------------------------------------------
# train.py end to end
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_student(tiny_tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("brd_student")
    llama(tiny_tokenizer).save_pretrained(root)
    tiny_tokenizer.save_pretrained(root)
    return root


def brd_argv(student, folder, out, *extra):
    return ["--stage", "basic_reading", "--model_name_or_path", str(student), "--brd_passages_dir", str(folder),
            "--output_dir", str(out), "--do_train", "--max_steps", "2", "--save_steps", "1", "--block_size", "32",
            "--per_device_train_batch_size", "2", "--learning_rate", "1e-3", "--report_to", "none", "--use_cpu",
            "--logging_steps", "1", "--seed", "0", *extra]


def test_train_py_causal_brd_writes_a_checkpoint_and_resumes(tiny_student, aclsum_train, tmp_path):
    from lsrmwf.commands.train import main, parse_args

    folder = write_passages(tmp_path, aclsum_train, n_docs=6)
    out = tmp_path / "run"
    results = main(brd_argv(tiny_student, folder, out, "--brd_mix", "ori=1,ner=1,qra=0.5", "--max_passages", "5",
                            "--brd_drop_qra_pattern", "attitude"))
    assert results["train_samples"] > 2 and (out / "checkpoint-2").is_dir() and (out / "model.safetensors").exists()
    summary = json.load(open(out / "run_summary.json"))
    brd = summary["brd"]
    assert brd["mixed"] == {"ori": 5, "ner": 5, "qra": 2} and brd["passages_kept"]["qra"] == 5
    assert brd["packing"]["block_size"] == 32 and brd["packing"]["blocks"] == results["train_samples"]
    log = json.load(open(out / "trainer_state.json"))["log_history"]
    assert any("ce" in e for e in log)
    main(brd_argv(tiny_student, folder, out, "--brd_mix", "ori=1,ner=1,qra=0.5", "--max_passages", "5",
                  "--brd_drop_qra_pattern", "attitude")[:-2] + ["--seed", "0", "--max_steps", "4"])
    assert json.load(open(out / "trainer_state.json"))["global_step"] == 4
    assert json.load(open(out / "run_summary.json"))["resumed_from"].endswith("checkpoint-2")
    # the preset: the paper's A.1 fills what the command line left open
    parsed = parse_args(["--stage", "basic_reading", "--model_name_or_path", str(tiny_student),
                         "--brd_passages_dir", str(folder), "--output_dir", str(tmp_path / "p"),
                         "--do_train", "--learning_rate", "1e-4"])
    data_args, training_args = parsed.data, parsed.training
    assert parsed.basic_reading.brd_mix == "ori=1,ner=1,qra=1"
    assert data_args.preset == "brd" and data_args.max_source_length == 2048 and training_args.max_steps == 40000
    assert training_args.learning_rate == 1e-4 and training_args.per_device_train_batch_size == 8
    assert training_args.lr_schedule == "hf" and training_args.save_steps == 1000
    # flags that do not fit
    with pytest.raises(InputError, match="unknown source 'foo'"):
        main(brd_argv(tiny_student, folder, tmp_path / "bad", "--brd_mix", "foo=1"))
    with pytest.raises(InputError, match="exceeds the model's max_position_embeddings"):
        main(brd_argv(tiny_student, folder, tmp_path / "bad2", "--block_size", "4096"))
    with pytest.raises(InputError, match="only read by --stage basic_reading"):
        parse_args(["--model_name_or_path", str(tiny_student), "--train_file", "x.jsonl", "--max_passages", "3",
                    "--output_dir", str(tmp_path / "bad3"), "--do_train"])


@pytest.mark.deepspeed
@pytest.mark.slow
def test_causal_brd_trains_on_two_processes_under_deepspeed_zero2(tiny_student, aclsum_train, tmp_path):
    """The causal BRD stage launches like every other stage: torchrun, 2 processes (gloo on CPU),
    DeepSpeed ZeRO-2. The ranks train together (a step's global batch is both ranks'), and the first
    step's loss equals one process's on the same global batch (global token normalisation)."""
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec("deepspeed") is None:
        pytest.skip("DeepSpeed is not installed")
    from test_distributed import ROOT, free_port

    folder = write_passages(tmp_path, aclsum_train, n_docs=6)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONPATH=ROOT, DS_ACCELERATOR="cpu")
    zero2 = ["--deepspeed", os.path.join(ROOT, "ds_configs", "zero2.json")]

    def run(nproc, batch, out):
        argv = brd_argv(tiny_student, folder, out, "--per_device_train_batch_size", str(batch), "--save_steps", "100",
                        *zero2)
        cmd = [os.path.join(os.path.dirname(sys.executable), "torchrun"), "--nproc_per_node", str(nproc), "--master_port",
               free_port(), os.path.join(ROOT, "train.py"), *argv]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=570)
        assert proc.returncode == 0, proc.stderr[-4000:]
        state = json.load(open(out / "trainer_state.json"))
        return state, [h for h in state["log_history"] if "loss" in h]

    state2, log2 = run(2, 2, tmp_path / "two")
    state1, log1 = run(1, 4, tmp_path / "one")
    assert state2["global_step"] == state1["global_step"] == 2
    assert log2[0]["loss"] == pytest.approx(log1[0]["loss"], rel=1e-4)
    assert (tmp_path / "two" / "model.safetensors").exists()
