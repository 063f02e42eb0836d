#!/usr/bin/env python
"""Fetch BIG-bench's JSON tasks offline from the ``bigbench`` source distribution on PyPI.

    python scripts/fetch_bigbench.py                     # into ~/.cache/lsrmwf/bigbench
    python scripts/fetch_bigbench.py --cache_dir DIR     # elsewhere
    python scripts/fetch_bigbench.py --sdist bigbench-1.0.0.tar.gz   # from a file already downloaded

The sdist (``pip download --no-deps --no-binary :all: bigbench==1.0.0``, about 358 MB; with pip >= 26
the script falls back to pip 25.0.1, see ``download_sdist``) carries every
task of the benchmark under ``bigbench/benchmark_tasks/``. Only the ``task.json`` files are kept
(about 1,000 of them, subtasks included), at ``<cache_dir>/<task>/task.json`` and
``<cache_dir>/<task>/<subtask>/task.json``, mirroring the benchmark's own layout. The downloaded
archive is deleted afterwards unless ``--keep_sdist`` is given.

Idempotent: a finished fetch writes ``<cache_dir>/MANIFEST.json`` (version, archive hash, file
list); a second run with the same version finds it and does nothing. An interrupted run leaves no
manifest and starts again from the download. Needs network access to PyPI only (no model hub).

The multiple-choice task list that ``lsrmwf.evaluation.multiple_choice`` evaluates
(``lsrmwf/evaluation/bigbench_mc_tasks.txt``) was built from this cache with
``python -m lsrmwf.evaluation.multiple_choice select-bigbench <cache_dir>``.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

DEFAULT_VERSION = "1.0.0"
FALLBACK_PIP = "25.0.1"  # the last pip line that still downloads bigbench 1.0.0 (see download_sdist)
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "lsrmwf", "bigbench")
TASKS_DIR = "bigbench/benchmark_tasks/"


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pip_download(pip: list, version: str, dest: str) -> None:
    cmd = pip + ["download", "--no-deps", "--no-binary", ":all:", f"bigbench=={version}", "-d", dest]
    print("running:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def download_sdist(version: str, dest: str) -> str:
    """``pip download`` the sdist of ``bigbench==version`` into ``dest``; return the archive's path.

    pip 26 and later refuse the download outright: after preparing the sdist's metadata they reject
    any PyPI distribution that declares a direct URL dependency, and bigbench 1.0.0 declares
    ``bleurt @ file://...``. When the installed pip fails, the same download is retried with pip
    ``FALLBACK_PIP`` (fetched from PyPI as a wheel with the installed pip, and run from that wheel;
    nothing is installed).
    """
    started = time.time()
    try:
        _pip_download([sys.executable, "-m", "pip"], version, dest)
    except subprocess.CalledProcessError:
        print(f"the installed pip could not download bigbench=={version} (pip >= 26 rejects its direct URL "
              f"dependency on bleurt); retrying with pip {FALLBACK_PIP} run from its wheel", flush=True)
        for f in os.listdir(dest):
            os.remove(os.path.join(dest, f))
        pip_dir = tempfile.mkdtemp(prefix="pip-wheel-")
        try:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", f"pip=={FALLBACK_PIP}", "-d", pip_dir],
                           check=True)
            wheels = [f for f in os.listdir(pip_dir) if f.endswith(".whl")]
            if len(wheels) != 1:
                raise SystemExit(f"expected one pip wheel in {pip_dir}, found {wheels}")
            _pip_download([sys.executable, os.path.join(pip_dir, wheels[0], "pip")], version, dest)
        finally:
            shutil.rmtree(pip_dir, ignore_errors=True)
    archives = [f for f in os.listdir(dest) if f.startswith("bigbench-") and f.endswith((".tar.gz", ".zip"))]
    if len(archives) != 1:
        raise SystemExit(f"expected one bigbench archive in {dest}, found {archives}")
    print(f"downloaded {archives[0]} in {time.time() - started:.0f} s", flush=True)
    return os.path.join(dest, archives[0])


def extract_tasks(sdist: str, cache_dir: str) -> list:
    """Copy every ``benchmark_tasks/**/task.json`` of ``sdist`` to ``cache_dir``; return the relative paths."""
    written = []
    with tarfile.open(sdist, "r:*") as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith("/task.json"):
                continue
            at = member.name.find(TASKS_DIR)
            if at < 0:
                continue
            rel = member.name[at + len(TASKS_DIR):]
            parts = rel.split("/")
            if any(p in ("", ".", "..") for p in parts):
                continue  # never write outside cache_dir
            target = os.path.join(cache_dir, *parts)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            src = tar.extractfile(member)
            tmp = target + ".part"
            with open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)
            os.replace(tmp, target)
            written.append(rel)
    return sorted(written)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache_dir", default=DEFAULT_CACHE, help=f"where the task.json files go (default {DEFAULT_CACHE})")
    p.add_argument("--version", default=DEFAULT_VERSION, help="bigbench version on PyPI (default %(default)s)")
    p.add_argument("--sdist", default=None, help="use this already downloaded archive instead of pip download")
    p.add_argument("--keep_sdist", default=None, metavar="DIR", help="keep the downloaded archive in DIR")
    p.add_argument("--force", action="store_true", help="fetch again even if the manifest says it is done")
    args = p.parse_args(argv)

    manifest_path = os.path.join(args.cache_dir, "MANIFEST.json")
    if not args.force and os.path.exists(manifest_path):
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
        if manifest.get("version") == args.version:
            print(f"{args.cache_dir}: bigbench {args.version} already fetched "
                  f"({len(manifest.get('files', []))} task.json files); nothing to do")
            return 0
    os.makedirs(args.cache_dir, exist_ok=True)

    tmp_dir = None
    try:
        if args.sdist:
            sdist = args.sdist
        else:
            if args.keep_sdist:
                os.makedirs(args.keep_sdist, exist_ok=True)
            tmp_dir = tempfile.mkdtemp(prefix="bigbench-sdist-", dir=args.keep_sdist)
            sdist = download_sdist(args.version, tmp_dir)
        digest = _sha256(sdist)
        files = extract_tasks(sdist, args.cache_dir)
        if not files:
            raise SystemExit(f"{sdist}: no {TASKS_DIR}**/task.json inside; is this the bigbench sdist?")
        manifest = {"version": args.version, "sdist": os.path.basename(sdist), "sha256": digest, "files": files}
        tmp = manifest_path + ".part"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")
        os.replace(tmp, manifest_path)
        if args.keep_sdist and tmp_dir:
            kept = os.path.join(args.keep_sdist, os.path.basename(sdist))
            os.replace(sdist, kept)
            print(f"kept the archive at {kept}")
    finally:
        if tmp_dir:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    print(f"{args.cache_dir}: {len(files)} task.json files from bigbench {args.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
