"""BIG-bench's JSON tasks, offline, from the ``bigbench`` source distribution on PyPI.

The sdist (``pip download --no-deps --no-binary :all: bigbench==1.0.0``, about 358 MB) carries every
task of the benchmark under ``bigbench/benchmark_tasks/``. :func:`fetch` keeps only the ``task.json``
files (about 1,000, subtasks included) at ``<cache_dir>/<task>/task.json`` and
``<cache_dir>/<task>/<subtask>/task.json``, the benchmark's own layout, and deletes the archive.

Idempotent: a finished fetch writes ``<cache_dir>/MANIFEST.json`` (version, archive hash, file list);
a second call with the same version finds it and does nothing. An interrupted fetch leaves no
manifest and starts again from the download. Needs PyPI only (no model hub). The command line is
``python scripts/fetch_bigbench.py``; the BRD demo calls :func:`fetch` before its first step.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

DEFAULT_VERSION = "1.0.0"
FALLBACK_PIP = "25.0.1"  # the last pip line that still downloads bigbench 1.0.0 (see download_sdist)
DEFAULT_BIGBENCH_DIR = os.path.join(os.path.expanduser("~"), ".cache", "lsrmwf", "bigbench")
TASKS_DIR = "bigbench/benchmark_tasks/"
MANIFEST = "MANIFEST.json"


class FetchError(RuntimeError):
    """The download or the archive failed; the message says which and where."""


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

    pip 26 and later refuse the download (after downloading the archive and preparing its metadata):
    they reject any PyPI distribution that declares a direct URL dependency, and bigbench 1.0.0
    declares ``bleurt @ file://...``. So with pip >= 26 installed, or when the installed pip fails,
    the download runs with pip ``FALLBACK_PIP`` (fetched from PyPI as a wheel with the installed pip,
    and run from that wheel; nothing is installed).
    """
    from importlib.metadata import version as installed

    started = time.time()
    pip_version = installed("pip")
    try:
        if int(pip_version.split(".")[0]) >= 26:
            print(f"pip {pip_version} rejects bigbench's direct URL dependency on bleurt: downloading with pip "
                  f"{FALLBACK_PIP} run from its wheel", flush=True)
            _download_with_old_pip(version, dest)
        else:
            try:
                _pip_download([sys.executable, "-m", "pip"], version, dest)
            except subprocess.CalledProcessError:
                print(f"pip {pip_version} could not download bigbench=={version}; retrying with pip {FALLBACK_PIP} "
                      "run from its wheel", flush=True)
                for f in os.listdir(dest):
                    os.remove(os.path.join(dest, f))
                _download_with_old_pip(version, dest)
    except subprocess.CalledProcessError as e:
        raise FetchError(f"pip could not download bigbench=={version} from the package index "
                         f"(exit {e.returncode}; its log is above)") from None
    archives = [f for f in os.listdir(dest) if f.startswith("bigbench-") and f.endswith((".tar.gz", ".zip"))]
    if len(archives) != 1:
        raise FetchError(f"expected one bigbench archive in {dest}, found {archives}")
    print(f"downloaded {archives[0]} in {time.time() - started:.0f} s", flush=True)
    return os.path.join(dest, archives[0])


def _download_with_old_pip(version: str, dest: str) -> None:
    pip_dir = tempfile.mkdtemp(prefix="pip-wheel-")
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", f"pip=={FALLBACK_PIP}", "-d", pip_dir],
                       check=True)
        wheels = [f for f in os.listdir(pip_dir) if f.endswith(".whl")]
        if len(wheels) != 1:
            raise FetchError(f"expected one pip wheel in {pip_dir}, found {wheels}")
        _pip_download([sys.executable, os.path.join(pip_dir, wheels[0], "pip")], version, dest)
    finally:
        shutil.rmtree(pip_dir, ignore_errors=True)


def extract_tasks(sdist: str, cache_dir: str) -> List[str]:
    """Copy every ``benchmark_tasks/**/task.json`` of ``sdist`` to ``cache_dir``; return the relative paths."""
    import tarfile

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


def fetched_files(cache_dir: str, version: str = DEFAULT_VERSION) -> Optional[List[str]]:
    """The task files a finished fetch of ``version`` left in ``cache_dir``, or None if there is none."""
    path = os.path.join(cache_dir, MANIFEST)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    return manifest.get("files", []) if manifest.get("version") == version else None


def fetch(cache_dir: str = DEFAULT_BIGBENCH_DIR, version: str = DEFAULT_VERSION, sdist: Optional[str] = None,
          keep_sdist: Optional[str] = None, force: bool = False) -> List[str]:
    """Fetch (or find, unless ``force``) BIG-bench ``version``'s task files in ``cache_dir``; return their
    relative paths. ``sdist``: an archive already downloaded; ``keep_sdist``: a folder to keep the download in."""
    files = None if force else fetched_files(cache_dir, version)
    if files is not None:
        return files
    os.makedirs(cache_dir, exist_ok=True)
    tmp_dir = None
    try:
        if not sdist:
            if keep_sdist:
                os.makedirs(keep_sdist, exist_ok=True)
            tmp_dir = tempfile.mkdtemp(prefix="bigbench-sdist-", dir=keep_sdist)
            sdist = download_sdist(version, tmp_dir)
        digest = _sha256(sdist)
        files = extract_tasks(sdist, cache_dir)
        if not files:
            raise FetchError(f"{sdist}: no {TASKS_DIR}**/task.json inside; is this the bigbench sdist?")
        manifest = {"version": version, "sdist": os.path.basename(sdist), "sha256": digest, "files": files}
        path = os.path.join(cache_dir, MANIFEST)
        with open(path + ".part", "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")
        os.replace(path + ".part", path)
        if keep_sdist and tmp_dir:
            kept = os.path.join(keep_sdist, os.path.basename(sdist))
            os.replace(sdist, kept)
            print(f"kept the archive at {kept}", flush=True)
    finally:
        if tmp_dir:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return files
