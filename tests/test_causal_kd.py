"""Causal students: prompt masking, white-box and sparse top-K KD (gradients against hand computations),
token mapping and the errors for a teacher or logprobs file that does not fit, and train.py end to end."""

import json
import os

import numpy as np
import pytest
import tiny
import torch

from lsrmwf.data.causal import CausalCollator, encode_prompt, tokenize_causal
from lsrmwf.distill.logit_kd import check_same_tokenizer
from lsrmwf.distill.sparse_kd import map_teacher_tokens, sparse_kd_loss, token_bytes_table
from lsrmwf.io import InputError
from lsrmwf.io.logprobs import TeacherTokens, pack_teacher_tokens, read_teacher_logprobs
from lsrmwf.io.store import ResultStore, cache_key
from lsrmwf.llm.teacher_logprobs import document_sha
from lsrmwf.training.base import DistillTrainingArguments
from lsrmwf.training.logit_kd import LogitKDTrainer
from lsrmwf.training.recipes.logit_kd import sparse_kd_dataset

TEMPLATE = "Summarize:\n{document}\n\nSummary:"


def llama(tok, layers=1, hidden=32, seed=0):
    return tiny.llama_lm(tok, layers=layers, hidden=hidden, seed=seed)


def small_ds(aclsum_train, n=3):
    import datasets

    rows = aclsum_train.select(range(n))
    return datasets.Dataset.from_dict({"id": list(rows["id"]), "document": [" ".join(d.split()[:30]) for d in rows["document"]],
                                       "summary": [" ".join(s.split()[:12]) for s in rows["summary"]]})


class Args:
    prompt_template = TEMPLATE
    use_chat_template = False
    max_source_length = 48
    max_target_length = 24


def trainer_for(student, tok, tmp_path, teacher=None, alpha=0.3, T=2.0):
    args = DistillTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    return LogitKDTrainer(model=student, args=args, processing_class=tok, teacher_model=teacher, kd_alpha=alpha,
                          kd_temperature=T, data_collator=CausalCollator(tok.pad_token_id))


def logits_with_grad(model):
    """Run-time handle on the model's output logits (lm_head's output) to read their gradient."""
    box = {}

    def hook(_module, _inp, out):
        out.retain_grad()
        box["logits"] = out

    return box, model.lm_head.register_forward_hook(hook)


def test_prompt_and_padding_carry_no_loss(tiny_tokenizer, aclsum_train):
    tok = tiny_tokenizer
    ds = tokenize_causal(small_ds(aclsum_train), tok, TEMPLATE, False, 48, 24, with_prompt=True)
    for ex in ds:
        n_prompt = len(ex["prompt_input_ids"])
        assert ex["input_ids"][:n_prompt] == ex["prompt_input_ids"]
        assert ex["labels"][:n_prompt] == [-100] * n_prompt
        assert ex["labels"][n_prompt:] == ex["input_ids"][n_prompt:] and ex["labels"][-1] == tok.eos_token_id
        assert tok.decode(ex["prompt_input_ids"], skip_special_tokens=True).startswith("Summarize:\n")
    batch = CausalCollator(tok.pad_token_id)([ds[0], ds[1], ds[2]])
    # right-padded training fields, left-padded prompts (generation continues from the last column)
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
    assert (batch["prompt_attention_mask"][:, -1] == 1).all()


def test_white_box_kd_gradient_matches_hand_computation(tiny_tokenizer, aclsum_train, tmp_path):
    tok = tiny_tokenizer
    student, teacher = llama(tok, seed=0), llama(tok, layers=2, hidden=48, seed=1)
    ds = tokenize_causal(small_ds(aclsum_train), tok, TEMPLATE, False, 48, 24, with_prompt=False)
    batch = CausalCollator(tok.pad_token_id)([ds[i] for i in range(3)])
    alpha, T = 0.3, 2.0
    trainer = trainer_for(student, tok, tmp_path, teacher, alpha, T)
    student.train()
    box, handle = logits_with_grad(student)
    loss = trainer.compute_loss(student, batch)
    loss.backward()
    handle.remove()
    s = box["logits"].detach()
    grad = box["logits"].grad
    with torch.no_grad():
        t = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"]
    # position i predicts token i+1: only positions whose next token is a summary token get a gradient
    positions = [(b, i) for b in range(labels.shape[0]) for i in range(labels.shape[1] - 1) if labels[b, i + 1] != -100]
    n = len(positions)
    expected = torch.zeros_like(s)
    for b, i in positions:
        q = torch.softmax(s[b, i], -1)
        onehot = torch.nn.functional.one_hot(labels[b, i + 1], q.shape[-1]).float()
        # d/ds [alpha*CE + (1-alpha)*T^2*KL(p_T || q_T)] = alpha*(q - y) + (1-alpha)*T*(q_T - p_T)
        expected[b, i] = (alpha * (q - onehot) + (1 - alpha) * T * (torch.softmax(s[b, i] / T, -1) - torch.softmax(t[b, i] / T, -1))) / n
    torch.testing.assert_close(grad, expected, atol=1e-6, rtol=1e-4)
    prompt_rows = labels[:, 1:] == -100
    assert grad[:, :-1][prompt_rows].abs().max() == 0  # the prompt (and padding) carry no loss
    assert all(p.grad is None for p in teacher.parameters())


def test_sparse_kd_loss_and_gradient_match_hand_computation():
    torch.manual_seed(0)
    V, alpha, T = 7, 0.4, 2.0  # K = 3 teacher tokens per position below
    s = torch.randn(2, 3, V, requires_grad=True)
    labels = torch.tensor([[2, 5, -100], [1, 0, 6]])
    top_ids = torch.tensor([[[2, 4, 0], [5, 1, -1], [3, 4, 5]],      # ragged K at (0,1)
                            [[1, 2, 3], [-1, -1, -1], [6, 0, 1]]])   # no teacher data at (1,1): CE only
    teacher_p = torch.tensor([[[0.5, 0.2, 0.1], [0.6, 0.3, 0.0], [0.3, 0.3, 0.3]],
                              [[0.7, 0.1, 0.05], [0.0, 0.0, 0.0], [0.4, 0.4, 0.1]]])
    top_lp = teacher_p.clamp(min=1e-9).log()
    loss, ce, kl = sparse_kd_loss(s, labels, top_ids, top_lp, alpha, T)
    loss.backward()

    label_pos = [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]
    kd_pos = [(0, 0), (0, 1), (1, 0), (1, 2)]
    sd = s.detach()
    ce_hand = sum(-torch.log_softmax(sd[b, i], -1)[labels[b, i]] for b, i in label_pos) / len(label_pos)
    kl_hand, grad_hand = 0.0, torch.zeros_like(sd)
    for b, i in label_pos:
        q = torch.softmax(sd[b, i], -1)
        grad_hand[b, i] += alpha * (q - torch.nn.functional.one_hot(labels[b, i], V).float()) / len(label_pos)
    for b, i in kd_pos:
        q = torch.softmax(sd[b, i], -1)
        ids = [int(x) for x in top_ids[b, i] if x >= 0]
        p = [float(teacher_p[b, i, k]) for k in range(len(ids))]
        p_cls = torch.tensor(p + [1 - sum(p)])
        q_cls = torch.cat([q[ids], (1 - q[ids].sum()).reshape(1)])
        pT = p_cls ** (1 / T) / (p_cls ** (1 / T)).sum()
        qT = q_cls ** (1 / T) / (q_cls ** (1 / T)).sum()
        kl_hand += (pT * (pT / qT).log()).sum() / len(kd_pos)
        # dKL/ds_v = (qT_k - pT_k)/T for v = id_k; (qT_tail - pT_tail)/T * q_v/q_tail for the other tokens
        g = torch.empty(V)
        tail = [v for v in range(V) if v not in ids]
        g[tail] = (qT[-1] - pT[-1]) / T * q[tail] / q_cls[-1]
        for k, v in enumerate(ids):
            g[v] = (qT[k] - pT[k]) / T
        grad_hand[b, i] += (1 - alpha) * T**2 * g / len(kd_pos)
    torch.testing.assert_close(ce, ce_hand)
    torch.testing.assert_close(kl, torch.as_tensor(kl_hand, dtype=torch.float32), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(s.grad, grad_hand, atol=1e-6, rtol=1e-4)
    assert s.grad[0, 2].abs().max() == 0  # padding


def test_sparse_kd_with_full_teacher_equals_dense_kl():
    """With K = the whole vocabulary the tail is empty and the loss is the usual dense KD."""
    from lsrmwf.distill.logit_kd import kd_loss

    torch.manual_seed(1)
    s, t = torch.randn(1, 4, 6), torch.randn(1, 4, 6)
    labels = torch.tensor([[1, 2, 3, 4]])
    top_ids = torch.arange(6).expand(1, 4, 6)
    sparse, _, kl_sparse = sparse_kd_loss(s, labels, top_ids, torch.log_softmax(t, -1), 0.5, 1.0)
    dense, _, kl_dense = kd_loss(s, t, labels, 0.5, 1.0)
    torch.testing.assert_close(kl_sparse, kl_dense, atol=1e-5, rtol=1e-4)


def test_teacher_with_another_tokenizer_is_refused(tiny_tokenizer, aclsum_train):
    from lsrmwf.data.tokenization import train_bpe_tokenizer

    other = train_bpe_tokenizer(list(aclsum_train["summary"][:30]), vocab_size=len(tiny_tokenizer))
    with pytest.raises(InputError, match="tokeniz"):
        check_same_tokenizer(tiny_tokenizer, other, [aclsum_train[0]["document"]], "--teacher_model_name_or_path t")
    check_same_tokenizer(tiny_tokenizer, tiny_tokenizer, [aclsum_train[0]["document"]], "--teacher_model_name_or_path t")


# ----------------------------------------------------------------------------------------------
# A top-K store written like generate_rationales.py --task teacher_logprobs does
# ----------------------------------------------------------------------------------------------


def teacher_records(tok, teacher, ds, K=4, max_new=10):
    """Greedy teacher summaries with their top-K log-probs, as a server would report them."""
    table = token_bytes_table(tok)
    out = {}
    for rid, doc in zip(ds["id"], ds["document"]):
        prompt = torch.tensor([encode_prompt(doc, tok, TEMPLATE, False, 48)])
        with torch.no_grad():
            gen = teacher.generate(prompt, max_new_tokens=max_new, do_sample=False, output_scores=True,
                                   return_dict_in_generate=True, pad_token_id=tok.pad_token_id)
        new = gen.sequences[0, prompt.shape[1]:].tolist()
        finish = "stop" if new and new[-1] == tok.eos_token_id else "length"
        if finish == "stop":
            new = new[:-1]
        lps = [torch.log_softmax(sc[0].float(), -1) for sc in gen.scores][: len(new)]
        top = [lp.topk(K) for lp in lps]
        out[rid] = (TeacherTokens(np.array(new, np.int32), np.array([lp[t] for lp, t in zip(lps, new)], np.float16),
                                  np.array([t.indices.tolist() for t in top], np.int32).reshape(len(new), K),
                                  np.array([t.values.tolist() for t in top], np.float16).reshape(len(new), K),
                                  [table[t] for t in new]), finish, doc)
    return out


def write_store(path, records, doc_hash=True):
    settings = {"task": "teacher_logprobs", "model": "tiny-teacher", "params": {"top_logprobs": 4}}
    with ResultStore(path, cache_key(settings), settings, payload=True) as store:
        for rid, (tokens, finish, doc) in records.items():
            row = {"id": rid, "summary": "", "finish_reason": finish, "error": None}
            if doc_hash:
                row["document_sha"] = document_sha(doc)
            store.append(row, payload=pack_teacher_tokens(tokens))


@pytest.fixture(scope="module")
def tiny_models(tiny_tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("causal_models")
    for name, kw in (("student", dict(seed=0)), ("teacher", dict(layers=2, hidden=48, seed=1))):
        llama(tiny_tokenizer, **kw).save_pretrained(root / name)
        tiny_tokenizer.save_pretrained(root / name)
    return root


def test_sparse_store_round_trip_and_gradient(tiny_tokenizer, aclsum_train, tmp_path):
    tok = tiny_tokenizer
    ds = small_ds(aclsum_train)
    teacher = llama(tok, layers=2, hidden=48, seed=1)
    records = teacher_records(tok, teacher, ds)
    path = str(tmp_path / "t.jsonl")
    write_store(path, records)
    back = read_teacher_logprobs(path)
    assert set(back) == set(ds["id"])
    rid = ds["id"][0]
    np.testing.assert_array_equal(back[rid][1].top_ids, records[rid][0].top_ids)
    train = sparse_kd_dataset(ds, path, tok, Args, Args)
    batch = CausalCollator(tok.pad_token_id)([train[i] for i in range(len(train))])
    # the teacher's tokens are the labels (sequence-level KD); each label position holds the teacher's top-K there
    for b, rid in enumerate(ds["id"]):
        toks = records[rid][0]
        lab = [x for x in batch["labels"][b].tolist() if x != -100]
        assert lab[: len(toks)] == toks.token_ids.tolist()
        first = batch["labels"][b].tolist().index(lab[0])
        assert batch["teacher_top_ids"][b, first].tolist() == toks.top_ids[0].tolist()
    student = llama(tok, seed=0)
    trainer = trainer_for(student, tok, tmp_path, alpha=0.0, T=1.0)  # KD term alone
    student.train()
    box, handle = logits_with_grad(student)
    loss = trainer.compute_loss(student, batch)
    loss.backward()
    handle.remove()
    s = box["logits"].detach()[:, :-1]
    ref = s.clone().requires_grad_(True)
    _, _, kl = sparse_kd_loss(ref, batch["labels"][:, 1:], batch["teacher_top_ids"][:, 1:], batch["teacher_top_logprobs"][:, 1:], 0.0, 1.0)
    torch.testing.assert_close(loss.detach(), kl.detach())
    (g,) = torch.autograd.grad(kl, ref)
    torch.testing.assert_close(box["logits"].grad[:, :-1], g)
    assert box["logits"].grad[:, :-1][batch["labels"][:, 1:] == -100].abs().max() == 0


def test_logprobs_file_that_does_not_match_is_refused(tiny_tokenizer, aclsum_train, tmp_path):
    tok = tiny_tokenizer
    ds = small_ds(aclsum_train)
    records = teacher_records(tok, llama(tok, layers=2, hidden=48, seed=1), ds)
    # other documents under the same ids
    moved = {rid: (t, f, doc + " changed") for rid, (t, f, doc) in records.items()}
    write_store(str(tmp_path / "moved.jsonl"), moved)
    with pytest.raises(InputError, match="different document"):
        sparse_kd_dataset(ds, str(tmp_path / "moved.jsonl"), tok, Args, Args)
    # ids of another split
    other = {f"x{k}": v for k, v in enumerate(records.values())}
    write_store(str(tmp_path / "other.jsonl"), other)
    with pytest.raises(InputError, match="none of its 3 ids"):
        sparse_kd_dataset(ds, str(tmp_path / "other.jsonl"), tok, Args, Args)
    # a served model with another vocabulary: the same ids stand for other bytes
    rid = ds["id"][0]
    tokens, finish, doc = records[rid]
    table = token_bytes_table(tok)
    wrong = TeacherTokens(tokens.token_ids, tokens.token_logprobs, tokens.top_ids, tokens.top_logprobs,
                          [b"zz" + (table[int(t)] or b"") for t in tokens.token_ids])
    write_store(str(tmp_path / "vocab.jsonl"), {rid: (wrong, finish, doc)})
    with pytest.raises(InputError, match=r"token 0 of the teacher's summary is id \d+ = b'zz.*but the student's id"):
        sparse_kd_dataset(ds, str(tmp_path / "vocab.jsonl"), tok, Args, Args)


def test_served_tokens_without_ids_map_by_bytes(tiny_tokenizer):
    tok = tiny_tokenizer
    table = token_bytes_table(tok)
    ids = tok(" the method works", add_special_tokens=False)["input_ids"]
    alts = [[table[i], table[ids[0]]] for i in ids]
    tokens = TeacherTokens(np.full(len(ids), -1, np.int32), np.zeros(len(ids), np.float16), np.full((len(ids), 2), -1, np.int32),
                           np.full((len(ids), 2), -1.0, np.float16), [table[i] for i in ids], alts)
    labels, top, _ = map_teacher_tokens(tokens, table, "row")
    assert labels == ids and top[:, 0].tolist() == ids
    # the second alternative is the first token's id: kept, except where it repeats the first alternative
    assert top[:, 1].tolist() == [-1 if i == ids[0] else ids[0] for i in ids]
    bad = TeacherTokens(tokens.token_ids, tokens.token_logprobs, tokens.top_ids, tokens.top_logprobs,
                        [b"\xff\xfe unknown"] + tokens.token_bytes[1:], alts)
    with pytest.raises(InputError, match="not a token of the student's vocabulary"):
        map_teacher_tokens(bad, table, "row")


# ----------------------------------------------------------------------------------------------
# train.py end to end
# ----------------------------------------------------------------------------------------------


def write_jsonl(path, ds):
    with open(path, "w") as f:
        for r in ds:
            f.write(json.dumps({"id": r["id"], "document": r["document"], "summary": r["summary"]}) + "\n")


def train_argv(tiny_models, data, out, *extra):
    return ["--model_name_or_path", str(tiny_models / "student"), "--train_file", data, "--test_file", data,
            "--output_dir", str(out), "--do_train", "--do_predict", "--max_steps", "2", "--save_steps", "1",
            "--per_device_train_batch_size", "2", "--per_device_eval_batch_size", "2", "--learning_rate", "1e-3",
            "--max_source_length", "48", "--max_target_length", "24", "--max_length", "8", "--min_length", "1",
            "--num_beams", "1", "--report_to", "none", "--use_cpu", "--logging_steps", "1", "--seed", "0", *extra]


def test_train_py_causal_white_box_kd_predicts_and_resumes(tiny_models, aclsum_train, tmp_path):
    from lsrmwf.commands.train import main

    data = str(tmp_path / "data.jsonl")
    write_jsonl(data, small_ds(aclsum_train, 4))
    out = tmp_path / "run"
    results = main(train_argv(tiny_models, data, out, "--teacher_model_name_or_path", str(tiny_models / "teacher")))
    assert "predict_rouge1" in results
    rows = [json.loads(line) for line in open(out / "predictions.jsonl")]
    assert len(rows) == 4 and all("Summarize:" not in r["prediction"] for r in rows)  # new tokens only
    log = json.load(open(out / "trainer_state.json"))["log_history"]
    assert any("kd_kl" in e for e in log)
    # resume: two more steps continue from checkpoint-2
    main(train_argv(tiny_models, data, out, "--teacher_model_name_or_path", str(tiny_models / "teacher"))[:-2]
         + ["--seed", "0", "--max_steps", "4"])
    assert json.load(open(out / "trainer_state.json"))["global_step"] == 4
    summary = json.load(open(out / "run_summary.json"))
    assert summary["resumed_from"].endswith("checkpoint-2")
    # evaluate.py generates from the saved causal checkpoint exactly as train.py's predict did
    from lsrmwf.commands.evaluate import main as evaluate

    assert evaluate(["--model_name_or_path", str(out), "--data_file", data, "--id_column", "id", "--output_dir", str(tmp_path / "ev"),
                     "--num_beams", "1", "--min_length", "1", "--max_length", "8", "--max_source_length", "48",
                     "--bertscore", "false", "--bootstrap_resamples", "10", "--no_progress", "--batch_size", "3"]) == 0
    trained = {r["id"]: r["prediction"] for r in map(json.loads, open(out / "predictions.jsonl"))}
    generated = {r["id"]: r["prediction"] for r in map(json.loads, open(tmp_path / "ev" / "predictions.jsonl"))}
    assert generated == trained


def test_train_py_sparse_kd_from_store(tiny_models, tiny_tokenizer, aclsum_train, tmp_path):
    from lsrmwf.commands.train import main

    ds = small_ds(aclsum_train, 4)
    data = str(tmp_path / "data.jsonl")
    write_jsonl(data, ds)
    store = str(tmp_path / "teacher.jsonl")
    write_store(store, teacher_records(tiny_tokenizer, llama(tiny_tokenizer, layers=2, hidden=48, seed=1), ds))
    results = main(train_argv(tiny_models, data, tmp_path / "run", "--teacher_logprobs_file", store))
    assert results["train_samples"] == 4
    with pytest.raises(InputError, match="one teacher"):
        main(train_argv(tiny_models, data, tmp_path / "run2", "--teacher_logprobs_file", store,
                        "--teacher_model_name_or_path", str(tiny_models / "teacher")))


def test_half_depth_student_copies_the_kept_teacher_layers():
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from lsrmwf.distill.causal_student import kept_layers, shrink_causal_lm

    assert kept_layers(18, 9) == [0, 2, 4, 6, 8, 11, 13, 15, 17] and kept_layers(4, 2) == [0, 3]
    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=2,
                           num_key_value_heads=1, head_dim=16, max_position_embeddings=64, sliding_window=8,
                           layer_types=["sliding_attention", "sliding_attention", "full_attention", "full_attention"])
    teacher = Gemma3ForCausalLM(cfg)
    student = shrink_causal_lm(teacher)
    assert student.config.num_hidden_layers == 2 and student.config.layer_types == ["sliding_attention", "full_attention"]
    t, s = teacher.state_dict(), student.state_dict()
    for key in s:
        src = key.replace("layers.1.", "layers.3.")
        torch.testing.assert_close(s[key], t[src])
    ids = torch.randint(0, 64, (1, 10))
    assert student(ids).logits.shape == teacher(ids).logits.shape


def test_chat_template_prompt_and_template_errors(tiny_tokenizer, aclsum_train):
    import copy

    from lsrmwf.data.causal import check_template, prompt_text

    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
                         "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    text = prompt_text("A paper.", tok, TEMPLATE, True)
    assert text == "<|user|>Summarize:\nA paper.\n\nSummary:</s><|assistant|>"
    ds = tokenize_causal(small_ds(aclsum_train, 1), tok, TEMPLATE, True, 48, 24, with_prompt=True)
    ex = ds[0]
    n = len(ex["prompt_input_ids"])
    assert tok.decode(ex["input_ids"][:n]).endswith("<|assistant|>") and ex["labels"][:n] == [-100] * n
    assert not tok.decode(ex["labels"][n:]).startswith(" ")  # no continuation space after a chat turn
    with pytest.raises(InputError, match="no chat template"):
        prompt_text("x", tiny_tokenizer, TEMPLATE, True)
    for bad in ("Summarize: {doc}", "{document} {document}", "{document} {other}"):
        with pytest.raises(InputError, match="--prompt_template"):
            check_template(bad)


def test_train_py_on_reference_rows_scored_by_a_served_teacher(tiny_models, tiny_tokenizer, aclsum_train, tmp_path, caplog):
    """generate_rationales.py --logprobs_target reference against a vLLM-like server tokenizing as the student
    does, then train.py on that file: the targets are the references' tokens, the KD term is logged."""
    import logging
    import os
    import sys

    from lsrmwf.commands.generate_rationales import main as collect
    from lsrmwf.commands.train import main
    from lsrmwf.data.causal import encode_summary

    sys.path.insert(0, os.path.dirname(__file__))
    from llm_fault_server import FaultServer

    ds = small_ds(aclsum_train, 4)
    data = str(tmp_path / "data.jsonl")
    write_jsonl(data, ds)
    store = str(tmp_path / "reference.jsonl")
    with FaultServer(tokenizer=tiny_tokenizer) as srv:
        assert collect(["--base_url", srv.base_url, "--model", "m", "--data_file", data, "--id_column", "id", "--output", store,
                        "--task", "teacher_logprobs", "--logprobs_target", "reference", "--top_logprobs", "4",
                        "--no_progress"]) == 0
    stats = {}
    train = sparse_kd_dataset(ds, store, tiny_tokenizer, Args, Args, stats)
    assert stats["rows_per_target"] == {"teacher_summary": 0, "reference": 4}
    for ex, summary in zip(train, ds["summary"]):  # the labels are the reference's tokens, as the CE path has them
        assert [x for x in ex["labels"] if x != -100] == encode_summary(summary, tiny_tokenizer, False, Args.max_target_length)
        assert any(ids[0] >= 0 for ids in ex["teacher_top_ids"])
    with caplog.at_level(logging.INFO, logger="lsrmwf.train"):
        main(train_argv(tiny_models, data, tmp_path / "run", "--teacher_logprobs_file", store, "--kd_alpha", "0.5",
                  "--log_level", "info"))
    assert "sparse top-K KD on 4 reference summaries" in caplog.text
    log = json.load(open(tmp_path / "run" / "trainer_state.json"))["log_history"]
    steps = [e for e in log if "kd_kl" in e]
    assert steps and all(np.isfinite(e["loss"]) and np.isfinite(e["kd_kl"]) and e["kd_kl"] > 0 for e in steps)
    assert json.load(open(tmp_path / "run" / "run_summary.json"))["teacher_logprobs"]["rows_per_target"]["reference"] == 4
    # the file scored other references than the training data now has
    changed = str(tmp_path / "changed.jsonl")
    write_jsonl(changed, ds.map(lambda r: {"summary": r["summary"] + " Edited."}))
    import datasets

    edited = datasets.load_dataset("json", data_files=changed, split="train")
    with pytest.raises(InputError, match="scored another reference summary"):
        sparse_kd_dataset(edited, store, tiny_tokenizer, Args, Args)


def test_causal_demo_builds_another_tokenizer_student_per_vocabulary_size(aclsum_train, tmp_path):
    """A rerun of the demo with another --other_vocab (or other training papers) must not reuse the first run's
    tokenizer: each size gets its own folder, and the same size and papers reuse theirs."""
    from transformers import AutoTokenizer

    from lsrmwf.demo.causal import other_tokenizer_student

    train = tmp_path / "train.jsonl"
    rows = aclsum_train.select(range(10))
    train.write_text("".join(json.dumps({"id": i, "document": d, "summary": s}) + "\n"
                             for i, d, s in zip(rows["id"], rows["document"], rows["summary"])))
    small = other_tokenizer_student(str(tmp_path), str(train), 300)
    large = other_tokenizer_student(str(tmp_path), str(train), 400)
    assert small != large
    assert len(AutoTokenizer.from_pretrained(small)) < len(AutoTokenizer.from_pretrained(large))
    stamp = os.path.getmtime(os.path.join(small, "config.json"))
    assert other_tokenizer_student(str(tmp_path), str(train), 300) == small  # reused, not rebuilt
    assert os.path.getmtime(os.path.join(small, "config.json")) == stamp
    train.write_text(train.read_text().replace("the", "a"))  # other training papers: another folder
    assert other_tokenizer_student(str(tmp_path), str(train), 300) != small
