"""Multiple-choice evaluation (BRD paper, section 3.3): scorer against hand computation, task
readers, cache resume, errors. Tiny models built from configs; task files written into tmp_path."""

import csv
import importlib.util
import io
import json
import os
import tarfile

import pytest
import tiny
import torch

from lsrmwf.evaluation import multiple_choice as mc
from lsrmwf.evaluation.mc_tasks import BIGBENCH_TASK_LIST, GLUE_STYLE_TASKS
from lsrmwf.io import InputError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CORPUS = [
    "Question: Is the sky blue? Answer: Yes, the sky is blue on a clear day.",
    "Question: Can we infer that the cat sat? Answer: No, not at all.",
    "The weather was absolutely wonderful and maybe it will rain later.",
    "Sentence 1: a quick brown fox. Sentence 2: the lazy dog sleeps.",
    "positive or negative sentiment? The movie was great, the plot was poor.",
    "Q: what colour is grass?\nA: green, perhaps yellow in summer.",
] * 3


def _tokenizer(bos_template: bool = False):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    if bos_template:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
        return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<|endoftext|>")
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")


@pytest.fixture(scope="module")
def tok():
    return _tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny.gpt2_lm(tok)


def hand_logprob(model, tok, prompt: str, continuation: str):
    """Sum of log P(candidate tokens | prompt) straight from the model's logits, and the token count.

    ``continuation`` includes its leading space; the prompt's tokens must be a prefix of the whole.
    """
    ctx = tok(prompt, add_special_tokens=False)["input_ids"]
    whole = tok(prompt + continuation, add_special_tokens=False)["input_ids"]
    assert whole[:len(ctx)] == ctx and len(whole) > len(ctx)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([whole])).logits[0]
    logp = torch.log_softmax(logits.double(), dim=-1)
    total = sum(float(logp[t - 1, whole[t]]) for t in range(len(ctx), len(whole)))
    return total, len(whole) - len(ctx)


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return str(path)


PROMPTS = [
    ("Question: Is the sky blue? Answer:", ["Yes", "No", "maybe it will rain later"]),
    ("Question: Can we infer that the cat sat? Answer:", ["absolutely wonderful", "No", "Yes, not at all"]),
    ("The movie was great. Sentiment:", ["positive", "negative"]),
]


def test_scorer_matches_hand_computation_with_different_candidate_lengths(tmp_path, model, tok):
    rows = [{"prompt": p, "choices": c, "label": 0} for p, c in PROMPTS]
    task = mc.load_jsonl_task(write_jsonl(tmp_path / "t.jsonl", rows), name="hand")
    res = mc.run_multiple_choice(model, tok, [task], batch_size=4, progress=False, return_details=True)
    n_tokens = set()
    hits = 0
    for (prompt, choices), det in zip(PROMPTS, res["details"]["hand"]):
        expected = []
        for c in choices:
            s, n = hand_logprob(model, tok, prompt, " " + c)
            n_tokens.add(n)
            expected.append(s / n)  # the paper's average per-token log-probability
        assert det["scores"] == pytest.approx(expected, abs=1e-5)
        best = max(range(len(expected)), key=lambda j: expected[j])
        assert det["prediction"] == best
        hits += best == 0
    assert len(n_tokens) >= 3, "the candidates must differ in token length for this test to mean anything"
    assert res["accuracy"]["hand"] == pytest.approx(hits / len(PROMPTS))
    assert res["average"] == res["macro_average"] == res["accuracy"]["hand"] and res["bigbench_average"] is None


def test_sum_mean_word_normalizations(tmp_path, model, tok):
    prompt, choices = PROMPTS[1]
    task = mc.load_jsonl_task(write_jsonl(tmp_path / "t.jsonl", [{"prompt": prompt, "choices": choices, "label": 1}]))
    got = {}
    for norm in mc.NORMALIZATIONS:
        got[norm] = mc.run_multiple_choice(model, tok, [task], normalization=norm, progress=False,
                                           return_details=True)["details"][task.name][0]["scores"]
    for j, c in enumerate(choices):
        s, n = hand_logprob(model, tok, prompt, " " + c)
        words = len(c.split())
        assert got["sum"][j] == pytest.approx(s, rel=1e-6, abs=1e-5)
        assert got["token"][j] == pytest.approx(s / n, rel=1e-6, abs=1e-5)
        assert got["word"][j] == pytest.approx(s / words, rel=1e-6, abs=1e-5)
    # "Yes, not at all": 4 words and more tokens, so the three scores really differ
    assert len({round(got[k][2], 6) for k in mc.NORMALIZATIONS}) == 3
    assert mc.DEFAULT_NORMALIZATION == "token"
    assert mc.normalize(-6.0, 3, 2, "token") == -2.0
    assert mc.normalize(-6.0, 3, 2, "word") == -3.0
    assert mc.normalize(-6.0, 3, 2, "sum") == -6.0
    with pytest.raises(InputError, match="normalization"):
        mc.run_multiple_choice(model, tok, [task], normalization="mean", progress=False)


def _bigbench_file(path, examples, **settings):
    data = {"name": "toy_task", "description": "toy", "keywords": ["multiple choice"],
            "metrics": ["multiple_choice_grade"], "preferred_score": "multiple_choice_grade",
            "examples": examples, **settings}
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_bigbench_prompt_format_and_defaults(tmp_path):
    # BIG-bench 1.0.0 defaults; the listed choices follow RandomState(42).permutation(sorted(choices)),
    # which for 4 items is [1, 3, 0, 2]
    p = _bigbench_file(tmp_path / "task.json", [
        {"input": "Pick one.", "target_scores": {"delta": 0, "alpha": 1, "charlie": 0, "bravo": 0}}])
    task = mc.load_bigbench_task(p)
    ex = task.examples[0]
    assert ex.prompt == "\nQ: Pick one.\n  choice: bravo\n  choice: delta\n  choice: alpha\n  choice: charlie\nA: "
    assert ex.choices == ["delta", "alpha", "charlie", "bravo"] and ex.correct == (1,)
    assert task.name == "toy_task" and task.kind == "bigbench"
    # the task's own prefixes, choices not appended
    p2 = _bigbench_file(tmp_path / "task2.json", [{"input": "Is it?", "target_scores": {"yes": 1, "no": 0}}],
                        task_prefix="Answer well.\n", example_input_prefix="\nQuestion: ",
                        example_output_prefix="\nAnswer: ", append_choices_to_input=False)
    assert mc.load_bigbench_task(p2).examples[0].prompt == "Answer well.\n\nQuestion: Is it?\nAnswer: "


def test_bigbench_several_correct_targets(tmp_path, model, tok):
    items = [("Is the sky blue?", ["Yes", "No", "maybe", "green"]),
             ("What colour is grass?", ["green", "yellow in summer", "blue", "No"]),
             ("Was the movie great?", ["positive", "negative", "Yes"]),
             ("Did the cat sit?", ["Yes", "No", "perhaps"])]

    def hand_best(text, choices):
        scores = {c: None for c in choices}
        prompt = mc.bigbench_prompt({}, text, scores)
        per_tok = []
        for c in choices:  # the prompt ends with "A: "; the space moves to the candidate
            s, n = hand_logprob(model, tok, prompt.rstrip(" "), " " + c)
            per_tok.append(s / n)
        return max(range(len(choices)), key=lambda j: per_tok[j])

    best = [hand_best(t, c) for t, c in items]
    examples = []
    for k, ((text, choices), b) in enumerate(zip(items, best)):
        other = [j for j in range(len(choices)) if j != b]
        scores = {c: 0 for c in choices}
        if k == 0:  # argmax is one of two correct answers -> correct
            scores[choices[b]] = scores[choices[other[0]]] = 1
        elif k == 1:  # two correct answers, neither is the argmax -> wrong
            scores[choices[other[0]]] = scores[choices[other[1]]] = 1
        elif k == 2:  # fractional scores: the argmax has 0.5, another 1 -> wrong (not maximal)
            scores[choices[b]], scores[choices[other[0]]] = 0.5, 1
        else:  # argmax is the only correct one -> correct
            scores[choices[b]] = 1
        examples.append({"input": text, "target_scores": scores})
    task = mc.load_bigbench_task(_bigbench_file(tmp_path / "task.json", examples))
    assert [len(e.correct) for e in task.examples] == [2, 2, 1, 1]
    res = mc.run_multiple_choice(model, tok, [task], batch_size=3, progress=False, return_details=True)
    assert [d["prediction"] for d in res["details"]["toy_task"]] == best
    assert [d["correct"] for d in res["details"]["toy_task"]] == [True, False, False, True]
    assert res["accuracy"]["toy_task"] == 0.5
    assert res["bigbench_average"] == 0.5


def test_bigbench_container_task_averages_subtasks(tmp_path, model, tok):
    root = tmp_path / "parent"
    root.mkdir()
    (root / "task.json").write_text(json.dumps({"name": "parent", "description": "d", "keywords": []}))
    for sub, n in (("a", 1), ("b", 3)):
        (root / sub).mkdir()
        _bigbench_file(root / sub / "task.json", [{"input": f"q{i}", "target_scores": {"x": 1, "y": 0}} for i in range(n)],
                       name=sub)
    task = mc.load_bigbench_task(str(root))
    assert [e.group for e in task.examples] == ["parent:a"] + ["parent:b"] * 3
    res = mc.run_multiple_choice(model, tok, [task], progress=False)
    subs = res["tasks"]["parent"]["subtasks"]
    assert set(subs) == {"parent:a", "parent:b"}
    assert res["accuracy"]["parent"] == pytest.approx((subs["parent:a"] + subs["parent:b"]) / 2)


def test_batch_sizes_give_identical_scores(tmp_path, model, tok):
    rows = [{"prompt": p, "choices": c, "label": 0} for p, c in PROMPTS] * 2
    task = mc.load_jsonl_task(write_jsonl(tmp_path / "t.jsonl", rows))
    runs = [mc.run_multiple_choice(model, tok, [task], batch_size=b, progress=False, return_details=True)
            for b in (1, 4, 3)]
    base = runs[0]["details"][task.name]
    for other in runs[1:]:
        for a, b in zip(base, other["details"][task.name]):
            assert a["prediction"] == b["prediction"]
            assert b["scores"] == pytest.approx(a["scores"], abs=1e-6)
        assert other["accuracy"] == runs[0]["accuracy"]


def test_cache_resume_does_not_call_the_model_again(tmp_path, model, tok):
    rows = [{"prompt": p, "choices": c, "label": 0} for p, c in PROMPTS] * 2
    task = mc.load_jsonl_task(write_jsonl(tmp_path / "t.jsonl", rows), name="cached")
    cache = str(tmp_path / "cache" / "mc.jsonl")
    first = mc.run_multiple_choice(model, tok, [task], batch_size=2, cache_path=cache, progress=False, return_details=True,
                                   scoring="full")
    assert first["scored"] == 6 and first["cached"] == 0
    lines = open(cache, encoding="utf-8").read().splitlines()
    assert len(lines) == 6 and {json.loads(x)["index"] for x in lines} == set(range(6))

    seen = []
    handle = model.register_forward_pre_hook(lambda mod, args, kwargs: seen.append(kwargs["input_ids"].shape[0]),
                                             with_kwargs=True)
    try:
        again = mc.run_multiple_choice(model, tok, [task], batch_size=2, cache_path=cache, progress=False,
                                       return_details=True, scoring="full")
        assert seen == [], "a fully cached run must not call the model"
        assert again["cached"] == 6 and again["scored"] == 0
        assert again["details"] == first["details"] and again["accuracy"] == first["accuracy"]

        # a run killed after 4 examples, the 5th row torn: only examples 4 and 5 are scored again
        with open(cache, "w", encoding="utf-8") as f:
            f.write("\n".join(lines[:4]) + "\n" + lines[4][:25])
        resumed = mc.run_multiple_choice(model, tok, [task], batch_size=2, cache_path=cache, progress=False,
                                         return_details=True, scoring="full")
        pairs_left = sum(len(task.examples[i].choices) for i in (4, 5))
        assert sum(seen) == pairs_left
        assert resumed["cached"] == 4 and resumed["scored"] == 2
        assert resumed["details"] == first["details"]
        for line in open(cache, encoding="utf-8").read().splitlines():
            json.loads(line)  # the torn row was cut before appending

        # another model (different weights) does not reuse the rows
        seen.clear()
        other = mc.run_multiple_choice(model, tok, [task], cache_path=cache, progress=False, fingerprint="other-model",
                                     scoring="full")
        assert other["scored"] == 6 and sum(seen) == sum(len(e.choices) for e in task.examples)
    finally:
        handle.remove()


def test_model_fingerprint_tracks_weights(model, tok):
    import copy

    a = mc.model_fingerprint(model, tok)
    assert a == mc.model_fingerprint(model, tok)
    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed.transformer.h[0].mlp.c_fc.bias[0] += 1e-3
    assert mc.model_fingerprint(changed, tok) != a


def test_tokenization_convention(tok):
    # trailing spaces of the prompt travel with the candidate: "A: " + "Yes" is scored like "A:" + " Yes"
    ids1, n1 = mc.encode_pair(tok, "Question: Is the sky blue? Answer: ", "Yes")
    ids2, n2 = mc.encode_pair(tok, "Question: Is the sky blue? Answer:", "Yes")
    assert (ids1, n1) == (ids2, n2)
    assert tok.decode(ids1[n1:]) == " Yes"
    assert tok.decode(ids1[:n1]) == "Question: Is the sky blue? Answer:"
    # a newline is not moved, and a candidate after whitespace gets no extra space
    ids3, n3 = mc.encode_pair(tok, "Answer:\n", "No")
    assert tok.decode(ids3[n3:]) == "No" and tok.decode(ids3[:n3]) == "Answer:\n"
    # GPT-2 style: nothing in front of the prompt; an empty prompt is conditioned on bos
    ids4, n4 = mc.encode_pair(tok, "", "Yes")
    assert ids4[0] == tok.bos_token_id and n4 == 1
    # a tokenizer that adds <s> in front of every text gets it in front of the prompt
    bos_tok = _tokenizer(bos_template=True)
    ids5, n5 = mc.encode_pair(bos_tok, "Answer:", "Yes")
    assert ids5[0] == bos_tok.convert_tokens_to_ids("<s>") and bos_tok.decode(ids5[n5:]) == " Yes"
    assert ids5[1:] == tok("Answer: Yes", add_special_tokens=False)["input_ids"]
    # too long: prompt tokens are dropped from the left, the candidate is kept
    ids6, n6 = mc.encode_pair(tok, "Question: Is the sky blue? Answer:", "Yes", max_length=4)
    assert len(ids6) == 5 and ids6[n6:] == ids2[n2:]


def test_glue_style_templates_and_labels(tmp_path):
    rte = write_jsonl(tmp_path / "rte.jsonl", [
        {"premise": "The cat sat.", "hypothesis": "A cat sat", "label": 0},
        {"sentence1": "Dogs bark.", "sentence2": "Cats bark", "label": "not_entailment"},
    ])
    task = mc.load_glue_style_task("rte", path=rte)
    assert task.examples[0].prompt == 'Question: Can we infer that "A cat sat" ? The cat sat. Answer:'
    assert task.examples[0].choices == ["Yes", "No"]
    assert [e.correct for e in task.examples] == [(0,), (1,)]
    xnli = write_jsonl(tmp_path / "xnli.jsonl", [{"premise": "P.", "hypothesis": "H", "label": i} for i in range(3)])
    t = mc.load_glue_style_task("xnli", path=xnli)
    assert t.examples[0].prompt == 'P. Question: Does this imply that "H"? Yes, no or maybe? Answer:'
    # entailment -> Yes, neutral -> Maybe, contradiction -> No
    assert [t.examples[i].choices[t.examples[i].correct[0]] for i in range(3)] == ["Yes", "Maybe", "No"]
    sst = tmp_path / "sst2.csv"
    with open(sst, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["sentence", "label"])
        w.writerow(["a great film", "1"])
        w.writerow(["a dull film", "negative"])
    t = mc.load_glue_style_task("SST2", path=str(sst))
    assert t.name == "sst-2" and t.examples[0].choices == ["positive", "negative"]
    assert [e.correct for e in t.examples] == [(0,), (1,)]
    assert t.examples[0].prompt == ("Question: Does the following sentence have a positive or negative sentiment? "
                                    "Sentence: a great film Answer:")
    boolq = write_jsonl(tmp_path / "boolq.jsonl", [{"passage": "Sky is blue.", "question": "is the sky blue", "answer": True}])
    t = mc.load_glue_style_task("boolq", path=boolq)
    assert t.examples[0].prompt == "Sky is blue. Question: is the sky blue Answer:" and t.examples[0].correct == (0,)
    paws = write_jsonl(tmp_path / "paws.jsonl", [{"sentence1": "a", "sentence2": "b", "label": 0}])
    assert mc.load_glue_style_task("paws-x", path=paws).examples[0].correct == (1,)  # not a paraphrase -> No
    cb = write_jsonl(tmp_path / "cb.jsonl", [{"premise": "p", "hypothesis": "h", "label": 2}])
    ex = mc.load_glue_style_task("cb", path=cb).examples[0]
    assert ex.choices == ["Yes", "No", "Maybe"] and ex.choices[ex.correct[0]] == "Maybe"  # neutral
    assert set(GLUE_STYLE_TASKS) == {"xnli", "rte", "cb", "paws-x", "boolq", "sst-2"}
    # the CLI-style specs
    # the command-line specs
    plain = write_jsonl(tmp_path / "plain.jsonl", [{"prompt": "p", "choices": ["a", "b"], "label": "b"}])
    bb = _bigbench_file(tmp_path / "bb.json", [{"input": "q", "target_scores": {"a": 1, "b": 0}}])
    tasks = mc.load_tasks([f"rte={rte}", f"jsonl:{plain}", f"bigbench:{bb}"])
    assert [t.name for t in tasks] == ["rte", "plain", "toy_task"] and len(tasks[0].examples) == 2
    assert tasks[2].kind == "bigbench"
    assert tasks[1].examples[0].correct == (1,) and tasks[1].kind == "jsonl"


def test_paper_average_counts_bigbench_once(tmp_path, model, tok):
    rows = [{"prompt": p, "choices": c, "label": 0} for p, c in PROMPTS]
    j = mc.load_jsonl_task(write_jsonl(tmp_path / "j.jsonl", rows), name="plain")
    b1 = mc.load_bigbench_task(_bigbench_file(tmp_path / "b1.json", [{"input": "x", "target_scores": {"Yes": 1, "No": 0}}], name="b1"))
    b2 = mc.load_bigbench_task(_bigbench_file(tmp_path / "b2.json", [{"input": "y", "target_scores": {"Yes": 0, "No": 1}}], name="b2"))
    res = mc.run_multiple_choice(model, tok, [j, b1, b2], progress=False)
    acc = res["accuracy"]
    assert res["bigbench_average"] == pytest.approx((acc["b1"] + acc["b2"]) / 2)
    assert res["average"] == pytest.approx((acc["plain"] + res["bigbench_average"]) / 2)
    assert res["macro_average"] == pytest.approx(sum(acc.values()) / 3)
    assert acc["b1"] + acc["b2"] == 1.0  # same prompt shape, opposite answers


# ---------------------------------------------------------------------------------------------- errors


def test_bad_bigbench_inputs_name_file_and_example(tmp_path):
    p = _bigbench_file(tmp_path / "task.json", [{"input": "ok", "target_scores": {"a": 1, "b": 0}},
                                                {"input": "no scores", "target": "a"}])
    with pytest.raises(InputError, match=r"task\.json:examples\[1\]: no 'target_scores'"):
        mc.load_bigbench_task(p)
    p = _bigbench_file(tmp_path / "one.json", [{"input": "q", "target_scores": {"a": 1}}])
    with pytest.raises(InputError, match=r"one\.json:examples\[0\]: 1 choice\(s\)"):
        mc.load_bigbench_task(p)
    p = _bigbench_file(tmp_path / "noinput.json", [{"input": "q", "target_scores": {"a": 1, "b": 0}},
                                                   {"target_scores": {"a": 1, "b": 0}}])
    with pytest.raises(InputError, match=r"noinput\.json:examples\[1\]: the prompt is missing"):
        mc.load_bigbench_task(p)
    p = _bigbench_file(tmp_path / "tie.json", [{"input": "q", "target_scores": {"a": 0, "b": 0}}])
    with pytest.raises(InputError, match=r"tie\.json:examples\[0\]: no correct choice"):
        mc.load_bigbench_task(p)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "task.json").write_text(json.dumps({"name": "empty"}))
    with pytest.raises(InputError, match="no 'examples' and no subtask"):
        mc.load_bigbench_task(str(tmp_path / "empty"))


@pytest.mark.parametrize("row, message", [
    ({"choices": ["a", "b"], "label": 0}, "the prompt is missing"),
    ({"prompt": "p", "choices": ["only"], "label": 0}, r"1 choice\(s\)"),
    ({"prompt": "p", "choices": ["a", "b"], "label": 2}, "label 2 is outside the choices"),
    ({"prompt": "p", "choices": ["a", "b"], "label": "c"}, "label 'c' is outside the choices"),
    ({"prompt": "p", "choices": ["a", "b"]}, "no 'label'"),
])
def test_bad_jsonl_rows_name_file_and_line(tmp_path, row, message):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "fine", "choices": ["x", "y"], "label": 1}, "", row])
    with pytest.raises(InputError, match=rf"bad\.jsonl:3: {message}"):
        mc.load_jsonl_task(path)


def test_bad_glue_rows_name_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "cb.jsonl", [{"premise": "p", "hypothesis": "h", "label": 0},
                                               {"premise": "p", "hypothesis": "h", "label": 3}])
    with pytest.raises(InputError, match=r"cb\.jsonl:2: label 3 is outside cb's label ids 0-2"):
        mc.load_glue_style_task("cb", path=path)
    sst = tmp_path / "sst.csv"
    sst.write_text("sentence,label\ngood,1\n,0\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"sst\.csv:3: column 'sentence' \(part of the prompt\) is missing"):
        mc.load_glue_style_task("sst-2", path=str(sst))
    path = write_jsonl(tmp_path / "rte.jsonl", [{"premise": "p", "hypothesis": "h", "label": "maybe"}])
    with pytest.raises(InputError, match=r"rte\.jsonl:1: label 'maybe' is not one of rte's labels"):
        mc.load_glue_style_task("rte", path=path)
    with pytest.raises(InputError, match="unknown task 'mnli'"):
        mc.load_glue_style_task("mnli", path=path)


def test_bad_cache_row_is_named(tmp_path, model, tok):
    task = mc.load_jsonl_task(write_jsonl(tmp_path / "t.jsonl", [{"prompt": "p", "choices": ["a", "b"], "label": 0}]))
    cache = tmp_path / "c.jsonl"
    cache.write_text('not json\n{"task": "t", "index": 0}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"c\.jsonl:1: not a cache row"):
        mc.run_multiple_choice(model, tok, [task], cache_path=str(cache), progress=False)


# ---------------------------------------------------------------------------------------------- task list, fetch


def test_committed_bigbench_list_states_rule_and_count():
    text = open(BIGBENCH_TASK_LIST, encoding="utf-8").read()
    names = mc.bigbench_task_names()
    assert len(names) == len(set(names)) and names == sorted(names)
    assert f"# count: {len(names)}" in text
    assert "preferred_score" in text and "target_scores" in text and "73" in text
    # the paper's five largest tasks (its reduced set, Appendix A.3) are all selected
    for t in ("movie_dialog_same_or_different", "formal_fallacies_syllogisms_negation",
              "play_dialog_same_or_different", "vitaminc_fact_verification", "winowhy"):
        assert t in names


def test_selection_rule(tmp_path):
    root = tmp_path / "tasks"
    for name, data in {
        "mc": {"preferred_score": "multiple_choice_grade", "metrics": ["multiple_choice_grade"],
               "examples": [{"input": "q", "target_scores": {"a": 1, "b": 0}}]},
        "gen": {"preferred_score": "exact_str_match", "metrics": ["exact_str_match"],
                "examples": [{"input": "q", "target": "a"}]},
        "mixed": {"preferred_score": "multiple_choice_grade", "metrics": ["multiple_choice_grade"],
                  "examples": [{"input": "q", "target_scores": {"a": 1, "b": 0}}, {"input": "q", "target": "a"}]},
    }.items():
        (root / name).mkdir(parents=True)
        (root / name / "task.json").write_text(json.dumps({"name": name, **data}))
    (root / "programmatic").mkdir()
    assert mc.select_bigbench_tasks(str(root)) == ["mc"]


def test_fetch_script_extracts_task_json_only_and_is_idempotent(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("fetch_bigbench", os.path.join(REPO, "scripts", "fetch_bigbench.py"))
    fetch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fetch)
    sdist = tmp_path / "bigbench-1.0.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name, body in {"bigbench-1.0.0/bigbench/benchmark_tasks/a/task.json": b'{"name": "a"}',
                           "bigbench-1.0.0/bigbench/benchmark_tasks/b/sub/task.json": b'{"name": "sub"}',
                           "bigbench-1.0.0/bigbench/benchmark_tasks/a/README.md": b"readme",
                           "bigbench-1.0.0/bigbench/api/json_task.py": b"code"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    cache = tmp_path / "cache"
    assert fetch.main(["--sdist", str(sdist), "--cache_dir", str(cache)]) == 0
    assert sorted(os.path.relpath(os.path.join(d, f), cache) for d, _, fs in os.walk(cache) for f in fs) == \
        ["MANIFEST.json", "a/task.json", "b/sub/task.json"]
    assert fetch.main(["--sdist", str(sdist), "--cache_dir", str(cache)]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_bigbench_empty_candidate_is_dropped_and_noted(tmp_path):
    p = _bigbench_file(tmp_path / "task.json", [
        {"input": "one", "target_scores": {"right": 1, "": 0}},  # nothing left to compare: skipped
        {"input": "two", "target_scores": {"a": 0, " ": 0, "b": 1}},  # the empty candidate is dropped
    ])
    task = mc.load_bigbench_task(p)
    assert len(task.examples) == 1
    assert task.examples[0].choices == ["a", "b"] and task.examples[0].correct == (1,)
    assert len(task.info["notes"]) == 2
    assert "examples[0]: example skipped" in task.info["notes"][0] and "examples[1]: empty candidate" in task.info["notes"][1]


def test_logits_to_keep_shortcut_matches_full_logits(tmp_path, model, tok):
    class FullLogits(torch.nn.Module):  # a causal LM whose forward has no logits_to_keep
        def __init__(self, inner):
            super().__init__()
            self.inner, self.config = inner, inner.config

        def forward(self, input_ids, attention_mask=None):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask)

    assert mc._accepts_logits_to_keep(model) and not mc._accepts_logits_to_keep(FullLogits(model))
    rows = [{"prompt": p, "choices": c, "label": 0} for p, c in PROMPTS]
    task = mc.load_jsonl_task(write_jsonl(tmp_path / "t.jsonl", rows))
    a = mc.run_multiple_choice(model, tok, [task], batch_size=3, progress=True, return_details=True, scoring="full")
    b = mc.run_multiple_choice(FullLogits(model), tok, [task], batch_size=3, progress=False, return_details=True,
                               scoring="full")
    for x, y in zip(a["details"][task.name], b["details"][task.name]):
        assert x["scores"] == pytest.approx(y["scores"], abs=1e-6)
