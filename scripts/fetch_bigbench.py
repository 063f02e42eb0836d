#!/usr/bin/env python
"""Fetch BIG-bench's JSON tasks offline from the ``bigbench`` source distribution on PyPI.

    python scripts/fetch_bigbench.py                     # into ~/.cache/lsrmwf/bigbench
    python scripts/fetch_bigbench.py --cache_dir DIR     # elsewhere
    python scripts/fetch_bigbench.py --sdist bigbench-1.0.0.tar.gz   # from a file already downloaded

The work is :func:`lsrmwf.evaluation.bigbench_fetch.fetch` (the BRD demo calls it too): the sdist
(about 358 MB; downloaded with pip 25.0.1 when the installed pip is 26 or later) gives about 1,000
``task.json`` files, kept at ``<cache_dir>/<task>[/<subtask>]/task.json``; the archive is deleted
unless ``--keep_sdist`` is given. A finished fetch writes ``MANIFEST.json``, so a second run does nothing.

The multiple-choice task list that ``lsrmwf.evaluation.multiple_choice`` evaluates
(``lsrmwf/evaluation/bigbench_mc_tasks.txt``) was built from this cache with
``python -m lsrmwf.evaluation.multiple_choice select-bigbench <cache_dir>``.
"""

import argparse
import sys

from lsrmwf.evaluation.bigbench_fetch import DEFAULT_BIGBENCH_DIR, DEFAULT_VERSION, FetchError, fetch, fetched_files


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="fetch_bigbench.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--cache_dir", default=DEFAULT_BIGBENCH_DIR,
                   help=f"where the task.json files go (default {DEFAULT_BIGBENCH_DIR})")
    p.add_argument("--version", default=DEFAULT_VERSION, help="bigbench version on PyPI (default %(default)s)")
    p.add_argument("--sdist", default=None, help="use this already downloaded archive instead of pip download")
    p.add_argument("--keep_sdist", default=None, metavar="DIR", help="keep the downloaded archive in DIR")
    p.add_argument("--force", action="store_true", help="fetch again even if the manifest says it is done")
    args = p.parse_args(argv)
    if not args.force and fetched_files(args.cache_dir, args.version) is not None:
        print(f"{args.cache_dir}: bigbench {args.version} already fetched "
              f"({len(fetched_files(args.cache_dir, args.version))} task.json files); nothing to do")
        return 0
    try:
        files = fetch(args.cache_dir, args.version, args.sdist, args.keep_sdist, args.force)
    except (FetchError, OSError) as e:
        print(f"fetch_bigbench.py: error: {e}", file=sys.stderr)
        return 2
    print(f"{args.cache_dir}: {len(files)} task.json files from bigbench {args.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
