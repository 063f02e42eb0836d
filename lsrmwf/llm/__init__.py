"""The LLM side: rationale digging and selection (LSR-MWF), basic reading (BRD) and a served
teacher's top-K log-probs (sparse logit KD), over any OpenAI-compatible endpoint.

* :mod:`.registry` and :mod:`.tasks` - ``generate_rationales.py --task``: each task's arguments, documents
  and builder, registered by name; :mod:`.arguments` - the shared arguments (documents, endpoint) and the
  client, failure policy and output check they build;
* :mod:`.pipeline` - the resumable generation loop (:func:`run_task`), the rationale and reading tasks,
  the run summary; :mod:`.teacher_logprobs` - the teacher log-prob task;
* :mod:`.prompts` and :mod:`.brd_prompts` (+ ``brd_fewshot.json``) - prompts and bounded JSON schemas;
  :mod:`.parsing` - tolerant answer parsing;
* :mod:`.client` - async requests over OpenAI-compatible endpoints (the openai client's retries), key
  redaction; :mod:`.selection` - ROUGE scores, the keep rule and the score report;
* :mod:`.server` - a local ``llama-server`` (:class:`LlamaServer`). Rows are stored by :mod:`lsrmwf.io.store`.
"""

from .client import GenerationParams, LLMClient
from .pipeline import RationaleTask, ReadingTask, Selection, run_task
from .server import LlamaServer

__all__ = ["GenerationParams", "LLMClient", "LlamaServer", "RationaleTask", "ReadingTask", "Selection", "run_task"]
