"""The LLM side of LSR-MWF: rationale digging and selection, and basic reading (BRD).

* :mod:`.prompts` - prompts and bounded JSON schemas; :mod:`.parsing` - tolerant answer parsing;
* :mod:`.client` - async requests over OpenAI-compatible endpoints (the openai client's retries);
* :mod:`.store` - the resumable JSONL output with cache keys;
* :mod:`.selection` - ROUGE scores and the keep rule; :mod:`.pipeline` - the generation loop;
* :mod:`.server` - a local ``llama-server`` (:class:`LlamaServer`); :mod:`.cli` - ``generate_rationales.py``.
"""

from .client import GenerationParams, LLMClient
from .pipeline import RationaleTask, ReadingTask, Selection, run_task
from .server import LlamaServer

__all__ = ["GenerationParams", "LLMClient", "LlamaServer", "RationaleTask", "ReadingTask", "Selection", "run_task"]
