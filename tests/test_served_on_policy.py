"""On-policy samples scored by a SERVED teacher (``--teacher_logprobs_file`` + ``--teacher_endpoint_config``): the
fake vLLM endpoint scores given text with a tiny white-box teacher's real log-probs, so a served on-policy step can be
checked against the white-box one; an endpoint that ignores echo is refused at start in one line; a short train.py
run with lambda = 1 reports a served teacher and an on-policy share of 1."""

import json
import os

import pytest
import tiny
import torch
import yaml
from llm_fault_server import FaultServer

from lsrmwf.data.causal import CausalCollator, encode_prompt, tokenize_causal
from lsrmwf.distill.logit_kd import KD_LOSSES
from lsrmwf.io import InputError
from lsrmwf.llm.client import GenerationParams, LLMClient
from lsrmwf.llm.teacher_logprobs import ServedTeacher, TeacherLogprobsTask
from lsrmwf.training.base import DistillTrainingArguments
from lsrmwf.training.logit_kd import LogitKDArguments, LogitKDTrainer

TEMPLATE = "Summarize:\n{document}\n\nSummary:"
BETA = {"forward_kl": None, "reverse_kl": None, "jsd": 0.3, "skew_kl": 0.2}
SAMPLES = [" the method works well", " we propose a new model for this task", " results show"]


@pytest.fixture(scope="module")
def ascii_tok(aclsum_train, tmp_path_factory):
    """A byte-level BPE over printable ASCII only (about 400 tokens): every token has its own text, so a server that
    names its top-K alternatives by text (the completions API's dicts) can list the whole vocabulary."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, BartTokenizer

    texts = [t.encode("ascii", "ignore").decode() for t in list(aclsum_train["document"][:20]) +
             list(aclsum_train["summary"])]
    level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    alphabet = sorted({c for t in texts for w, _ in level.pre_tokenize_str(t) for c in w})
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer, bpe.decoder = level, decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                                       initial_alphabet=alphabet, show_progress=False))
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    path = tmp_path_factory.mktemp("ascii_tok")
    BartTokenizer(vocab=model["vocab"], merges=merges).save_pretrained(path)
    return AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="module")
def docs(aclsum_train):
    import datasets

    rows = aclsum_train.select(range(3))
    clean = [" ".join(t.encode("ascii", "ignore").decode().split()[:12]) for t in rows["document"]]
    summaries = [" ".join(t.encode("ascii", "ignore").decode().split()[:8]) for t in rows["summary"]]
    return datasets.Dataset.from_dict({"id": list(rows["id"]), "document": clean, "summary": summaries})


def served(url, k):
    client = LLMClient([url], None, GenerationParams(model="tiny", max_tokens=0, response_format="text"))
    return ServedTeacher(client, TeacherLogprobsTask(top_logprobs=k, prompt_template=TEMPLATE, api="completions",
                                                     target="reference"))


def test_served_on_policy_step_equals_the_white_box_step_with_top_k_over_the_vocabulary(ascii_tok, docs, tmp_path):
    tok, n = ascii_tok, len(ascii_tok)
    student, teacher = tiny.llama_lm(tok, seed=0), tiny.llama_lm(tok, layers=2, hidden=48, seed=1).eval()
    with torch.no_grad():
        teacher.lm_head.weight.mul_(30.0)  # a peaked teacher, far from the near-uniform student
    data = tokenize_causal(docs, tok, TEMPLATE, False, 256, 24, with_prompt=False)
    data = data.add_column("document_index", list(range(len(docs))))
    batch = CausalCollator(tok.pad_token_id)([data[i] for i in range(len(docs))])
    prompts = [encode_prompt(d, tok, TEMPLATE, False, 256) for d in docs["document"]]
    samples = [tok(s, add_special_tokens=False)["input_ids"] for s in SAMPLES]
    rows = list(zip(prompts, samples))  # the same samples for both teachers
    args = DistillTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    with FaultServer(tokenizer=tok, scoring_model=teacher, max_top_logprobs=n) as srv:
        scorer = served(srv.base_url, n)
        try:
            for kind in KD_LOSSES:
                common = dict(model=student, args=args, processing_class=tok, kd_alpha=0.4, kd_temperature=2.0,
                              kd_loss=kind, kd_beta=BETA[kind], on_policy_lambda=1.0,
                              data_collator=CausalCollator(tok.pad_token_id))
                white = LogitKDTrainer(teacher_model=teacher, **common)
                remote = LogitKDTrainer(served_teacher=scorer, documents=list(docs["document"]), **common)
                for trainer in (white, remote):
                    trainer._sample = lambda model, inputs: rows
                student.train()
                on = remote._on_policy_batch(student, batch)
                assert on["teacher_top_ids"].ge(0).sum(-1).max() == n  # K = the whole vocabulary
                for b, (p, s) in enumerate(rows):  # the teacher's tokens of the sample's text are the sample
                    assert on["labels"][b, len(p):len(p) + len(s)].tolist() == s
                    assert on["input_ids"][b, :len(p)].tolist() == p and on["labels"][b, :len(p)].eq(-100).all()
                loss_white, loss_served = white.compute_loss(student, batch), remote.compute_loss(student, batch)
                # the served log-probs travel as fp16 (2^-11 relative): the losses agree to a few 1e-4
                torch.testing.assert_close(loss_served, loss_white, atol=1e-6, rtol=2e-3, msg=kind)
                assert loss_white.item() > 0.05, kind
            assert remote.served_stats["scored"] == 6 and remote.served_stats["unscored"] == 0  # two batches of 3
            echo = [r["body"] for r in srv.requests]
            assert all(b["echo"] is True and b["max_tokens"] == 0 and b["logprobs"] == n for b in echo)
            assert echo[0]["prompt"] in {TEMPLATE.format(document=d) + s for d in docs["document"] for s in SAMPLES}
        finally:
            scorer.close()


def test_a_sample_the_servers_tokens_cannot_spell_is_left_out_and_counted(ascii_tok, docs, tmp_path):
    tok = ascii_tok
    student, teacher = tiny.llama_lm(tok, seed=0), tiny.llama_lm(tok, seed=1).eval()
    data = tokenize_causal(docs, tok, TEMPLATE, False, 256, 24, with_prompt=False)
    batch = CausalCollator(tok.pad_token_id)([dict(data[i], document_index=i) for i in range(2)])
    prompts = [encode_prompt(d, tok, TEMPLATE, False, 256) for d in docs["document"][:2]]
    # the first sample's text is empty (an immediate eos: nothing to score); the second is scored
    rows = [(prompts[0], [tok.eos_token_id]), (prompts[1], tok(" a model", add_special_tokens=False)["input_ids"])]
    args = DistillTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    with FaultServer(tokenizer=tok, scoring_model=teacher, max_top_logprobs=5) as srv:
        scorer = served(srv.base_url, 5)
        try:
            trainer = LogitKDTrainer(model=student, args=args, processing_class=tok, served_teacher=scorer,
                                     documents=list(docs["document"]), on_policy_lambda=1.0,
                                     data_collator=CausalCollator(tok.pad_token_id))
            trainer._sample = lambda model, inputs: rows
            on = trainer._on_policy_batch(student, batch)
            assert len(srv.requests) == 1  # no request for a sample without text
        finally:
            scorer.close()
    assert on["labels"][0].eq(-100).all() and on["labels"][1].ne(-100).sum() == 2
    assert trainer.served_stats["unscored"] == 1 and trainer.served_stats["scored"] == 1
    assert trainer.served_stats["eos_without_kd"] == 0  # the eos-only sample was not scored; the other did not end


def test_endpoint_config_needs_a_served_teacher_file_and_on_policy():
    with pytest.raises(InputError, match="--teacher_endpoint_config") as e:
        LogitKDArguments(kd_on_policy_lambda=0.5, teacher_logprobs_file="t.jsonl")
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="needs --teacher_logprobs_file and --kd_on_policy_lambda"):
        LogitKDArguments(teacher_logprobs_file="t.jsonl", teacher_endpoint_config="e.yaml")
    LogitKDArguments(kd_on_policy_lambda=0.5, teacher_logprobs_file="t.jsonl", teacher_endpoint_config="e.yaml")


# ----------------------------------------------------------------------------------------------
# train.py end to end: the teacher file from generate_rationales.py, then on-policy training against the endpoint
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_files(ascii_tok, docs, tmp_path_factory):
    """The student checkpoint, the training file and a reference-scored teacher file (K=5) with the config
    generate_rationales.py saved beside it; the endpoint that wrote it is gone afterwards."""
    from lsrmwf.commands.generate_rationales import main as generate

    root = tmp_path_factory.mktemp("served_on_policy")
    tiny.llama_lm(ascii_tok, seed=0).save_pretrained(root / "student")
    ascii_tok.save_pretrained(root / "student")
    data = root / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in docs))
    teacher = tiny.llama_lm(ascii_tok, layers=2, hidden=48, seed=1).eval()
    with FaultServer(tokenizer=ascii_tok, scoring_model=teacher) as srv:
        code = generate(["--base_url", srv.base_url, "--model", "tiny-teacher", "--data_file", str(data), "--id_column",
                         "id", "--output", str(root / "teacher.jsonl"), "--task", "teacher_logprobs",
                         "--logprobs_target", "reference", "--top_logprobs", "5", "--no_progress"])
    assert code == 0 and (root / "teacher.config.yaml").exists()
    return root, teacher


def train_argv(root, out, config, *extra):
    return ["--model_name_or_path", str(root / "student"), "--train_file", str(root / "train.jsonl"), "--output_dir",
            str(out), "--do_train", "--max_steps", "3", "--per_device_train_batch_size", "2", "--max_source_length",
            "64", "--max_target_length", "16", "--report_to", "none", "--use_cpu", "--logging_steps", "1", "--seed", "0",
            "--teacher_logprobs_file", str(root / "teacher.jsonl"), "--teacher_endpoint_config", str(config),
            "--kd_on_policy_lambda", "1", "--kd_on_policy_max_new_tokens", "6", *extra]


def point_config_at(root, url, name):
    """The saved generate config with the endpoint moved to ``url`` (the server's port changes per test)."""
    config = yaml.safe_load((root / "teacher.config.yaml").read_text())
    config["base_url"] = [url]
    path = root / name
    path.write_text(yaml.safe_dump(config))
    return path


def test_train_py_with_a_served_teacher_and_lambda_1(ascii_tok, run_files, tmp_path, caplog):
    from lsrmwf.commands.train import main

    root, teacher = run_files
    out = tmp_path / "run"
    with FaultServer(tokenizer=ascii_tok, scoring_model=teacher) as srv:
        main(train_argv(root, out, point_config_at(root, srv.base_url, "endpoint.yaml")))
        bodies = [r["body"] for r in srv.requests]
    assert len(bodies) >= 2 and all(b["echo"] is True and b["logprobs"] == 5 for b in bodies)  # the probe, then samples
    summary = json.load(open(out / "run_summary.json"))
    pol = summary["on_policy"]
    assert pol["teacher"] == "served" and pol["on_policy_share"] == 1.0 and pol["micro_batches"] == 3
    assert pol["off_policy"]["steps"] == 0 and pol["on_policy"]["steps"] == 3
    remote = pol["served_teacher"]
    assert remote["endpoint"] == srv.base_url and remote["model"] == "tiny-teacher" and remote["top_logprobs"] == 5
    assert remote["scored"] + remote["unscored"] == remote["samples"] >= 3 and remote["requests"] == len(bodies)
    assert remote["scored"] >= 1 and 0 <= remote["eos_without_kd"] <= remote["scored"]
    log = json.load(open(out / "trainer_state.json"))["log_history"]
    assert any("kd_kl" in e and e.get("on_policy_share") == 1.0 for e in log)


@pytest.mark.parametrize("echo_mode,why", [("ignore", "only the text it generated"), ("reject", "'echo' is not supported")])
def test_an_endpoint_that_cannot_score_given_text_is_refused_at_start_in_one_line(ascii_tok, run_files, tmp_path,
                                                                                 capsys, echo_mode, why):
    from lsrmwf.commands.train import script_main

    root, _ = run_files
    out = tmp_path / "run"
    with FaultServer(tokenizer=ascii_tok, echo_mode=echo_mode) as srv:
        code = script_main(train_argv(root, out, point_config_at(root, srv.base_url, f"{echo_mode}.yaml")))
        asked = len(srv.requests)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("train.py: error:")]
    assert code == 2 and len(errors) == 1, err
    assert "--teacher_endpoint_config" in errors[0] and srv.base_url in errors[0] and why in errors[0]
    assert "cannot score the student's samples" in errors[0]
    if echo_mode == "ignore":
        assert "llama-server ignores echo" in errors[0] and "without --kd_on_policy_lambda" in errors[0]
    assert asked <= 2  # the probe (and, refused with a 400, its retry with max_tokens=1)
    assert not any(p.name.startswith("checkpoint") for p in out.iterdir()) if out.exists() else True
    assert not os.path.exists(out / "run_summary.json")


def test_an_endpoint_failing_mid_training_stops_in_one_line_and_keeps_the_last_checkpoint(ascii_tok, run_files,
                                                                                        tmp_path, capsys, monkeypatch):
    from lsrmwf.commands.train import script_main
    from lsrmwf.training.checkpoints import COMPLETE_MARKER

    root, teacher = run_files
    out = tmp_path / "run"
    score = ServedTeacher.score
    with FaultServer(tokenizer=ascii_tok, scoring_model=teacher) as srv:
        calls, forced_at = [], []

        def failing_from_step_3(self, pairs):  # the probe, steps 1 and 2 are answered; then the server fails
            calls.append(len(pairs))
            if len(calls) == 4:
                srv.force_status = 500
                forced_at.append(len(srv.requests))
            return score(self, pairs)

        monkeypatch.setattr(ServedTeacher, "score", failing_from_step_3)
        config = point_config_at(root, srv.base_url, "failing.yaml")
        config.write_text(config.read_text() + "max_retries: 1\n")
        code = script_main(train_argv(root, out, config, "--save_steps", "1"))
        failed = srv.requests[forced_at[0]:]
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("train.py: error:")]
    assert code == 2 and len(errors) == 1, err
    assert "served teacher, on-policy sample at step 3" in errors[0] and "HTTP 500" in errors[0]
    assert "the last complete checkpoint" in errors[0] and len(failed) >= 2  # the client retried
    assert (out / "checkpoint-2" / COMPLETE_MARKER).exists() and not (out / "checkpoint-3").exists()


def sentencepiece_tokenizer(texts):
    """A SentencePiece-style tokenizer trained here: a BPE model behind a Metaspace pre-tokenizer that prepends '▁'
    to the first word (prepend_scheme="first"), whose decoder drops that first space again, as Llama's does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    sp = Tokenizer(models.BPE(unk_token="<unk>"))
    sp.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    sp.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    sp.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=200, special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
                                                      show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=sp, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


def test_a_sentencepiece_sample_is_sent_with_its_leading_space(tmp_path):
    """The sample continues the prompt's 'Summary:' with '▁the ...': its text is ' the method works', while the
    tokenizer's decode() gives 'the method works'. The served teacher must score the text with the space."""
    import datasets

    docs = datasets.Dataset.from_dict({"id": ["a"], "document": ["We study the parsing of text."],
                                       "summary": ["the method works"]})
    tok = sentencepiece_tokenizer([TEMPLATE.format(document=docs["document"][0]) + " the method works",
                                   "the method works well", "we study the method"] * 20)
    sample = tok("the method works", add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(sample) == ["▁the", "▁method", "▁works"]
    assert tok.decode(sample) == "the method works"  # what a decode() of the sample would have sent
    data = tokenize_causal(docs, tok, TEMPLATE, False, 64, 16, with_prompt=False).add_column("document_index", [0])
    batch = CausalCollator(tok.pad_token_id)([data[0]])
    prompt = encode_prompt(docs["document"][0], tok, TEMPLATE, False, 64)
    args = DistillTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    # the fault server's tokens are words with their leading space; K=1: each token's alternative is itself
    with FaultServer(with_ids=False) as srv:
        scorer = served(srv.base_url, 1)
        try:
            trainer = LogitKDTrainer(model=tiny.llama_lm(tok), args=args, processing_class=tok, served_teacher=scorer,
                                     documents=list(docs["document"]), on_policy_lambda=1.0,
                                     data_collator=CausalCollator(tok.pad_token_id))
            trainer._sample = lambda model, inputs: [(prompt, sample + [tok.eos_token_id])]
            on = trainer._on_policy_batch(trainer.model, batch)
        finally:
            scorer.close()
    assert [r["body"]["prompt"] for r in srv.requests] == [TEMPLATE.format(document=docs["document"][0]) +
                                                           " the method works"]
    assert trainer.served_stats["scored"] == 1 and trainer.served_stats["unscored"] == 0
    assert on["labels"][0, len(prompt):len(prompt) + 3].tolist() == sample
    # the sample's eos is no text: no teacher row, no target, and counted
    assert on["labels"][0, len(prompt) + 3:].eq(-100).all() and trainer.served_stats["eos_without_kd"] == 1
