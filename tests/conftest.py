import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def aclsum_train():
    """Real documents shipped by the ``aclsum`` package (id/document/summary)."""
    from lsrmwf.data.loading import load_documents

    return load_documents("aclsum", split="train")


@pytest.fixture(scope="session")
def tiny_tokenizer(aclsum_train, tmp_path_factory):
    """A real byte-level BPE (512 tokens) trained on aclsum text, saved and reloaded."""
    from transformers import AutoTokenizer

    from lsrmwf.data.tokenization import train_bpe_tokenizer

    tok = train_bpe_tokenizer(list(aclsum_train["document"][:20]) + list(aclsum_train["summary"]), vocab_size=512)
    path = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(path)
    return AutoTokenizer.from_pretrained(path)


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``CI=true`` a skipped test is a failure: a CI machine without llama-server or DeepSpeed
    must say so, not pass quietly. (xfail marks are unaffected.)"""
    outcome = yield
    report = outcome.get_result()
    if _ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must run every test: {reason}"


_CUDA_DESELECTED = pytest.StashKey[int]()


def pytest_collection_modifyitems(config, items):
    """Under ``CI=true`` on a machine without CUDA the ``cuda`` tests are deselected: skipped they would
    fail CI (above) although no CPU machine can run them, and they must not count as passed either.
    The terminal summary says how many; scripts/gpu_check.sh runs them on a GPU machine."""
    cuda_items = [item for item in items if item.get_closest_marker("cuda")]
    if not _ci() or not cuda_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    config.hook.pytest_deselected(items=cuda_items)
    items[:] = [item for item in items if not item.get_closest_marker("cuda")]
    config.stash[_CUDA_DESELECTED] = len(cuda_items)


def pytest_terminal_summary(terminalreporter, config):
    n = config.stash.get(_CUDA_DESELECTED, 0)
    if n:
        terminalreporter.write_line(f"{n} cuda-marked tests deselected: CI=true and no CUDA GPU on this machine "
                                    "(not run, not passed; bash scripts/gpu_check.sh OUTDIR runs them on a GPU)")
