"""``--config run.yaml|json`` for every command: the command line wins, the resolved arguments are saved and
repeat the run, bad files and unknown keys are one line naming the key and the file."""

import dataclasses
import json

import pytest

from lsrmwf.commands.train import build_parser, parse_run
from lsrmwf.io import InputError
from lsrmwf.io.config import save_config


def fields(args):
    return [dataclasses.asdict(a) for a in args]


def test_yaml_config_plus_an_overriding_flag_gives_the_flags_value(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("learning_rate: 0.001\nmax_steps: 7\nnum_beams: 3\ndataset_name: aclsum\n"
                      f"output_dir: {tmp_path / 'out'}\ndo_train: true\n")
    args, _ = parse_run(["--config", str(config), "--learning_rate", "3e-5", "--num_beams=5"])
    assert args.training.learning_rate == 3e-5  # the flag, not the file's 0.001
    assert args.data.num_beams == 5
    assert args.training.max_steps == 7 and args.data.dataset_name == "aclsum"  # the file where no flag is given
    json_config = tmp_path / "run.json"
    json_config.write_text(json.dumps({"max_steps": 9, "dataset_name": "aclsum", "output_dir": str(tmp_path)}))
    assert parse_run(["--config", str(json_config), "--max_steps", "4"])[0].training.max_steps == 4


def test_the_saved_config_repeats_the_runs_arguments(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("max_steps: 2\nlearning_rate: 0.001\nreport_to: none\n")
    # the built-in default run (no data source) plus a config plus overrides, the hardest case to repeat
    args, argv = parse_run(["--config", str(config), "--output_dir", str(tmp_path / "out"), "--warmup_steps", "3",
                            "--no_cache_rationale_targets", "--views", "ea", "ter"])
    saved = save_config(str(tmp_path / "out" / "train_config.yaml"), build_parser(), argv)
    again, _ = parse_run(["--config", saved])
    assert fields(again) == fields(args)
    assert again.training.max_steps == 2 and again.training.warmup_steps == 3
    assert again.lsr_mwf.cache_rationale_targets is False and again.lsr_mwf.views == ["ea", "ter"]


def test_the_old_single_json_form_still_works(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"dataset_name": "aclsum", "output_dir": str(tmp_path), "max_steps": 3}))
    args, argv = parse_run([str(path)])
    assert args.training.max_steps == 3 and args.data.dataset_name == "aclsum"


@pytest.mark.parametrize("name,text,message", [
    ("run.yaml", "max_stepz: 3\n", "run.yaml: unknown key 'max_stepz'"),
    ("run.json", '{"learning_rat": 1}', "run.json: unknown key 'learning_rat'"),
    ("run.toml", "max_steps = 3\n", "run.toml: not a YAML or JSON file"),
    ("run.yaml", "max_steps: [3\n", "run.yaml:2: not valid YAML"),
    ("run.yaml", "- 3\n", "run.yaml: expected a mapping"),
])
def test_bad_config_files_are_one_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError) as e:
        parse_run(["--config", str(path)])
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("module", ["compose_brd", "evaluate", "generate_rationales"])
def test_every_command_reads_a_config_and_names_an_unknown_key(tmp_path, module, capsys):
    import importlib

    main = importlib.import_module(f"lsrmwf.commands.{module}").main
    path = tmp_path / "c.yaml"
    path.write_text("output_dir_typo: x\n")
    assert main(["--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"{path}: unknown key 'output_dir_typo' (no argument of this command has that name; see --help)")
    assert len(err.splitlines()) == 1


def test_compose_brd_saves_its_resolved_config(tmp_path, capsys):
    from lsrmwf.commands.compose_brd import main

    answers = tmp_path / "answers.jsonl"
    rows = [{"id": "p0:0:ner", "doc_id": "p0", "sentence_index": 0, "n_sentences": 1, "sentence": "Ada wrote.",
             "behaviour": "ner", "answer": "Ada: person", "error": None}]
    answers.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "c.yaml"
    config.write_text(f"answers: [{answers}]\noutput_dir: {tmp_path / 'wrong'}\nsep: ' | '\n")
    code = main(["--config", str(config), "--output_dir", str(tmp_path / "out")])
    saved = tmp_path / "out" / "compose_brd_config.yaml"
    assert code == 0, capsys.readouterr().err
    import yaml

    assert yaml.safe_load(saved.read_text()) == {"answers": [str(answers)], "output_dir": str(tmp_path / "out"),
                                                 "sep": " | "}


def test_the_demo_and_analysis_read_configs_too(tmp_path, capsys):
    from lsrmwf.analysis.ablations import main as analysis
    from lsrmwf.demo.lsr_mwf import parse

    config = tmp_path / "demo.yaml"
    config.write_text(f"threads: 3\noutput_dir: {tmp_path / 'from_file'}\n")
    args = parse(["--config", str(config), "--output_dir", str(tmp_path / "flag")])
    assert args.threads == 3 and args.output_dir == str(tmp_path / "flag")
    bad = tmp_path / "bad.yaml"
    bad.write_text("grdi: [a]\n")
    with pytest.raises(SystemExit) as e:
        analysis(["views", "--config", str(bad)])
    assert e.value.code == 2
    assert capsys.readouterr().err == f"python -m lsrmwf.analysis: error: {bad}: unknown key 'grdi' (no argument of " \
                                      "this command has that name; see --help)\n"
