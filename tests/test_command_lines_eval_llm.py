"""Every ``evaluate.py`` and ``generate_rationales.py`` command line that the README, the demos and the
analysis command use parses with the command's own parser, and each flag lands on the value typed.

The README's lines are read from its code blocks (so a new one is covered without editing this file);
the demos' and the analysis' lines are written out here as they build them (paths and counts are
placeholders). The check is by flag name over all the parser's dataclasses, so it holds whichever
dataclass a flag lives in."""

import dataclasses
import pathlib
import re
import shlex

import pytest

from lsrmwf.commands import evaluate, generate_rationales

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
PARSERS = {"evaluate.py": evaluate.build_parser, "generate_rationales.py": generate_rationales.build_parser}


def readme_command_lines():
    """(script, argv) for every ``python <script> ...`` line inside the README's fenced code blocks."""
    found, in_block, pending = [], False, ""
    for raw in README.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("```"):
            in_block, pending = not in_block, ""
            continue
        if not in_block:
            continue
        pending += " " + line
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        text, pending = pending.strip(), ""
        if not any(text.startswith(f"python {script}") for script in PARSERS):
            continue
        text = re.sub(r"\$\([^)]*\)", "X", text)  # $(basename $m) -> one word
        words = shlex.split(text, comments=True)
        for script in PARSERS:
            if words[:2] == ["python", script]:
                found.append((script, words[2:]))
    return found


SERVER = ["--base_url", "http://127.0.0.1:8080/v1", "--model"]
DEMO_LINES = [
    # lsrmwf/demo/lsr_mwf.py, steps 2 and 2b
    ("generate_rationales.py", [*SERVER, "gemma", "--dataset_name", "aclsum", "--split", "train", "--preset", "cnndm",
                                "--max_examples", "40", "--max_document_words", "300", "--concurrency", "1",
                                "--max_tokens", "1024", "--output", "out/rationales.jsonl", "--score_threshold", "1.0",
                                "--max_failed_fraction", "1.0"]),
    ("generate_rationales.py", [*SERVER, "gemma", "--dataset_name", "aclsum", "--split", "test", "--preset", "cnndm",
                                "--max_examples", "3", "--max_document_words", "300", "--concurrency", "1",
                                "--max_tokens", "1024", "--output", "out/test_rationales.jsonl",
                                "--score_threshold", "1.0", "--max_failed_fraction", "1.0"]),
    # lsrmwf/demo/lsr_mwf.py, step 4
    ("evaluate.py", ["--output_dir", "out/evaluation", "--overwrite_output_dir", "--predictions", "a/predictions.jsonl",
                     "b/predictions.jsonl", "--system_names", "LSR-MWF", "BART", "--references", "a/predictions.jsonl",
                     "--baseline", "BART", "--dataset_name", "aclsum", "--split", "test", "--gates_file",
                     "a/gates.jsonl", "--case_ids", "P17-1001", "--rationale_file", "out/test_rationales.jsonl"]),
    # lsrmwf/demo/causal.py
    ("generate_rationales.py", ["--task", "teacher_logprobs", "--logprobs_api", "completions", "--top_logprobs", "5",
                                "--max_tokens", "48", "--data_file", "out/train.jsonl", "--id_column", "id",
                                *SERVER, "gemma-3-270m", "--concurrency", "2", "--output", "out/teacher.jsonl",
                                "--no_progress"]),
    ("evaluate.py", ["--model_name_or_path", "out/student_kd", "--model_system_name", "student (white-box KD)",
                     "--output_dir", "out/eval_student_kd", "--overwrite_output_dir", "--data_file", "out/test.jsonl",
                     "--id_column", "id", "--num_beams", "1", "--min_length", "8", "--max_length", "48",
                     "--max_source_length", "256", "--no_repeat_ngram_size", "3", "--batch_size", "1",
                     "--bertscore", "false", "--bootstrap_resamples", "200", "--no_progress"]),
    ("evaluate.py", ["--predictions", "t.jsonl", "s.jsonl", "--system_names", "teacher", "student (CE only)",
                     "--baseline", "teacher", "--teacher_system", "teacher", "--output_dir", "out/compare",
                     "--bertscore", "true", "--bootstrap_resamples", "200", "--no_progress"]),
    # lsrmwf/demo/brd.py
    ("generate_rationales.py", ["--task", "basic_reading", "--brd_behaviours", "ner,qra", "--brd_api", "completions",
                                "--data_file", "out/corpus.txt", "--txt_passages", "line", *SERVER, "gemma",
                                "--temperature", "0", "--max_tokens", "96", "--concurrency", "2",
                                "--output", "out/answers.jsonl", "--max_failed_fraction", "1.0", "--no_progress"]),
    ("evaluate.py", ["--task", "multiple_choice", "--model_name_or_path", "out/student_brd", "--mc_tasks",
                     "bigbench:strategyqa", "bigbench:logical_deduction", "--max_examples", "20", "--batch_size", "8",
                     "--output_dir", "out/mc_student_brd", "--no_progress", "--bigbench_dir", "bb"]),
    # lsrmwf/analysis/ablations.py: llm_rows (README's example after `--`)
    ("evaluate.py", ["--predictions", "o/llm_stol.jsonl", "o/system1.jsonl", "o/system2.jsonl", "--system_names",
                     "LLM S^tol", "LSR-MWF", "BART", "--references", "o/references.jsonl", "--output_dir", "o",
                     "--bertscore_model", "roberta-large", "--baseline", "LSR-MWF"]),
]
# values the lines do not type but rely on
DEFAULTS = {"evaluate.py": {"task": "summarization"}, "generate_rationales.py": {"task": "rationales"}}


def typed_flags(argv):
    """{flag name: the words after it} in the order typed."""
    flags, name = {}, None
    for word in argv:
        if word.startswith("--"):
            name = word[2:]
            flags[name] = []
        else:
            flags[name].append(word)
    return flags


def parsed_values(script, argv):
    parser = PARSERS[script]()
    parsed = parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False)
    values = {}
    for obj in parsed:
        for f in dataclasses.fields(obj):
            assert f.name not in values, f"{f.name} is in two of {script}'s argument dataclasses"
            values[f.name] = getattr(obj, f.name)
    return values


def as_typed(value, words):
    """``value`` as the words a user typed for it; None where it is not what they would give."""
    if isinstance(value, bool):
        return words == [] if value else words in (["false"], ["False"])
    if isinstance(value, list):
        return [str(v) for v in value] == words
    return len(words) == 1 and value == type(value)(words[0])


CASES = [(s, a, "README") for s, a in readme_command_lines()] + [(s, a, "demo/analysis") for s, a in DEMO_LINES]


def test_readme_lines_are_found():
    scripts = [s for s, _ in readme_command_lines()]
    assert scripts.count("evaluate.py") >= 5 and scripts.count("generate_rationales.py") >= 8, scripts


@pytest.mark.parametrize("script,argv,source", CASES, ids=[f"{src}:{s}:{i}" for i, (s, _, src) in enumerate(CASES)])
def test_command_line_parses_to_the_typed_values(script, argv, source):
    values = parsed_values(script, argv)
    for name, words in typed_flags(argv).items():
        if name.startswith("no_") and name not in values and isinstance(values.get(name[3:]), bool):
            assert values[name[3:]] is False and not words, f"{source}: --{name} left --{name[3:]} on"
            continue  # HfArgumentParser's --no_X for a field X that defaults to True
        assert name in values, f"{source}: {script} has no --{name}"
        value = values[name]
        if isinstance(value, bool) and words and words[0] in ("true", "True"):
            assert value is True
            continue
        assert as_typed(value, words), f"{source}: --{name} {' '.join(words)} parsed as {value!r}"
    for name, value in DEFAULTS[script].items():
        if name not in typed_flags(argv):
            assert values[name] == value


def test_a_misspelt_flag_is_refused():
    """The check above can fail: an unknown flag does not parse."""
    with pytest.raises(ValueError, match="predictons"):
        parsed_values("evaluate.py", ["--output_dir", "o", "--predictons", "p.jsonl"])
