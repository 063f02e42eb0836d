"""Every train.py output directory gets a model card; --push_to_hub sends card, code and weights (the hub client
replaced by a recorder: no network)."""

import json
import os

import pytest
from test_train_script import TINY, write_rationales

from lsrmwf.commands.train import main, parse_args
from lsrmwf.training.model_card import model_card


@pytest.fixture
def hub_recorder(monkeypatch):
    from types import SimpleNamespace

    from huggingface_hub import HfApi

    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))
        return SimpleNamespace(repo_id=repo_id)

    def upload_folder(self, *, repo_id, folder_path, ignore_patterns=None, **kwargs):
        from huggingface_hub.utils import filter_repo_objects

        names = [os.path.relpath(os.path.join(d, f), folder_path) for d, _, fs in os.walk(folder_path) for f in fs]
        sent = sorted(filter_repo_objects(names, ignore_patterns=ignore_patterns))
        calls.append(("upload_folder", repo_id, sent))

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_lsrmwf_run_writes_a_card_and_pushes_card_code_and_weights(aclsum_train, tmp_path, hub_recorder):
    rationales = write_rationales(tmp_path / "r.jsonl", aclsum_train, 6, keep_false=(1,))
    out = tmp_path / "run"
    main(["--dataset_name", "aclsum", "--max_train_samples", "6", "--max_eval_samples", "2", "--max_predict_samples",
          "2", "--rationale_file", rationales, "--output_dir", str(out), "--do_train", "--do_predict",
          "--max_steps", "2", "--save_steps", "1", "--push_to_hub", "--hub_model_id", "someone/lsrmwf-tiny", *TINY])
    card = (out / "README.md").read_text()
    assert "- method: LSR-MWF" in card and "built from a BART config" in card
    assert f"- rationales: `{rationales}`" in card
    assert "6 documents: 5 with rationales, 1 rejected by selection" in card
    assert "- selection: score1 ≥ threshold 0.85" in card
    assert "## Preset `cnndm`" in card and "| gate_init | 0.02 | 0.02 | paper |" in card
    assert "| num_beams | 4 | 2 | BRIO |" in card  # the command line's value is what was used
    gates = [json.loads(line) for line in open(out / "gates.jsonl")][-1]
    assert f"## Final gates (step {gates['step']})" in card and f"{gates['gates'][1][2]:.4f}" in card
    summary = json.loads((out / "run_summary.json").read_text())
    assert f"| predict_rouge1 | {round(summary['metrics']['predict_rouge1'], 4)} |" in card
    assert 'from_pretrained("someone/lsrmwf-tiny", trust_remote_code=True)' in card
    assert "AAAI 2025" in card

    (create, repo, kwargs), (upload, up_repo, sent) = hub_recorder
    assert (create, repo, upload, up_repo) == ("create_repo", "someone/lsrmwf-tiny", "upload_folder",
                                               "someone/lsrmwf-tiny")
    assert {"README.md", "config.json", "model.safetensors", "configuration_lsrmwf.py", "modeling_lsrmwf.py",
            "tokenizer.json", "train_config.yaml", "run_summary.json"} <= set(sent)
    assert os.path.isdir(out / "checkpoint-2") and not [f for f in sent if f.startswith("checkpoint-")]
    assert json.loads((out / "config.json").read_text())["auto_map"]["AutoModelForSeq2SeqLM"]


def test_kd_and_brd_cards_name_teacher_loss_and_mix(tmp_path):
    kd = parse_args(["--dataset_name", "aclsum", "--output_dir", str(tmp_path), "--do_train",
                     "--teacher_model_name_or_path", "teachers/bart-large", "--kd_alpha", "0.3", "--kd_temperature", "4"])
    card = model_card(str(tmp_path), kd, "lsr_mwf", summary={})
    assert "Task-specific logit distillation on an LSR-MWF student" in card
    assert "- teacher: teachers/bart-large" in card and "0.3·CE + 0.7·T²·KL(teacher_T ‖ student_T), T = 4.0" in card
    assert "Task-Specific Knowledge Distillation" in card

    passages = tmp_path / "passages"
    passages.mkdir()
    brd = parse_args(["--stage", "basic_reading", "--model_name_or_path", "facebook/xglm-564M", "--brd_passages_dir",
                      str(passages), "--output_dir", str(tmp_path), "--do_train"])
    card = model_card(str(tmp_path), brd, "basic_reading", summary={"brd": {"rows": {"ori": 3}}})
    assert "- method: Basic Reading Distillation" in card and "base_model: facebook/xglm-564M" in card
    assert f"- mix: `ori=1,ner=1,qra=1` of `{passages}`" in card and "## Preset `brd`" in card
    assert "| learning_rate | 0.0003 | 0.0003 | BRD paper |" in card and "AutoModelForCausalLM" in card
