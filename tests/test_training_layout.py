"""The training package's shape: method trainers are siblings on DistillTrainer, the core imports no method,
no training module of a method imports another's, and train.py's --help groups flags by method (the
package-wide method map and the cycle check are in test_architecture.py)."""

from test_architecture import import_graph

from lsrmwf.training.base import DistillTrainer
from lsrmwf.training.basic_reading import CausalLMTrainer
from lsrmwf.training.logit_kd import LogitKDTrainer
from lsrmwf.training.lsr_mwf import LsrMwfTrainer

METHODS = ("lsr_mwf", "logit_kd", "basic_reading")


def test_method_trainers_are_siblings_on_the_base():
    for trainer in (LsrMwfTrainer, LogitKDTrainer, CausalLMTrainer):
        assert trainer.__bases__ == (DistillTrainer,), trainer


def test_core_imports_no_method_and_methods_import_no_other_method():
    g = import_graph()
    method_modules = {f"lsrmwf.training.{m}": m for m in METHODS} | {f"lsrmwf.training.recipes.{m}": m for m in METHODS}
    for shared in ("lsrmwf.training.core", "lsrmwf.training.base", "lsrmwf.training.arguments"):
        assert not g[shared] & set(method_modules), shared
    for module, method in method_modules.items():
        others = {m for m, meth in method_modules.items() if meth != method}
        assert not g[module] & others, f"{module} imports {sorted(g[module] & others)}"


def test_help_groups_the_flags_by_method():
    from lsrmwf.commands.train import build_parser

    groups = {g.title: {a.dest for a in g._group_actions} for g in build_parser()._action_groups}
    lsr = next(v for k, v in groups.items() if k.startswith("LSR-MWF"))
    kd = next(v for k, v in groups.items() if k.startswith("Logit KD"))
    brd = next(v for k, v in groups.items() if k.startswith("Basic Reading"))
    assert {"views", "gate_init", "gamma_ce", "rationale_file"} <= lsr and "kd_alpha" not in lsr
    assert {"kd_alpha", "teacher_logprobs_file", "prompt_template"} <= kd and "views" not in kd
    assert {"stage", "brd_mix", "block_size", "basic_reading_file"} <= brd and "learning_rate" not in brd
