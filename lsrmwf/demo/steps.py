"""Running one step of a demo as a real command line: printed first, timed, optionally stopped
when its time budget is up (SIGINT, like Ctrl-C, so the step saves what it finished)."""

import shlex
import signal
import subprocess
import time
from typing import List, Optional


def run_step(cmd: List[str], cwd: str, env: Optional[dict] = None, deadline_s: Optional[float] = None) -> int:
    """Run ``cmd`` in ``cwd``. With ``deadline_s`` it gets SIGINT when the time is up (then SIGKILL after
    60 s more) and its exit code is returned: whatever it finished is on disk. Otherwise a non-zero exit
    is a ``SystemExit`` naming the step. Ctrl-C or an error here kills the step too."""
    print("\n$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env)
    try:
        proc.wait(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        print(f"[demo] time budget of {deadline_s / 60:.1f} min reached: stopping it; finished rows are kept",
              flush=True)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        print(f"[{time.monotonic() - start:.0f}s]", flush=True)
        return proc.returncode
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise SystemExit(f"[demo] step failed with exit code {proc.returncode} after {time.monotonic() - start:.0f}s: "
                         f"{' '.join(cmd[1:3])}")
    print(f"[{time.monotonic() - start:.0f}s]", flush=True)
    return proc.returncode
