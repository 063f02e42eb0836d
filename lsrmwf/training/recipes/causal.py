"""What the two causal-student recipes (:mod:`.logit_kd`, :mod:`.basic_reading`) share: loading a decoder-only
student and refusing the flags that describe BART students."""

from ...data.causal import check_template
from ...io import InputError


def refuse_bart_flags(args) -> None:
    """A causal student has no views and reads no rationale file; its prompt template must be usable."""
    check_template(args.logit_kd.prompt_template)
    if args.lsr_mwf.rationale_file:
        raise InputError("--rationale_file: LSR-MWF's views need a BART student; a causal student trains on documents "
                         "and summaries (for LLM summaries as targets use --teacher_logprobs_file)")
    if args.lsr_mwf.views is not None or args.lsr_mwf.baseline:
        raise InputError("--views/--baseline describe BART students; leave them out for a causal student")


def load_causal_student(model_args):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hub = dict(cache_dir=model_args.cache_dir, revision=model_args.model_revision)
    path = model_args.model_name_or_path
    tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or path, **hub)
    model = AutoModelForCausalLM.from_pretrained(path, **hub)
    if tokenizer.pad_token_id is None:  # padding is masked everywhere; eos is a safe stand-in
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if len(tokenizer) > model.config.vocab_size:
        raise InputError(f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary "
                         f"only {model.config.vocab_size}")
    return model, tokenizer
