"""A label-first guard as a sequence classifier: the backbone's `*ForSequenceClassification`, whose
two-row head is the LM head's rows for the two label tokens.

Label mode reads the next-token logits of 安全 and 不安全 after the prompt and the target opening, at the
first token where the two labels' tokenizations part, and takes the softmax over those two. The
classifier reads the same hidden state (its input is that same text, ending at that token) through the
same two rows, so its softmax is label mode's p(unsafe). Engines that serve a sequence classifier
(vLLM's classify task, TEI, transformers' text-classification pipeline) then give a guard's score with
no libra-train code; they are fed `classifier_input(record)` (libra-infer mode=prompts writes it).
"""

from __future__ import annotations

from libra_train.data.formats import FormatConfig, render_prompt
from libra_train.data.schema import SAFE, UNSAFE
from libra_train.errors import ConfigError
from libra_train.eval.scoring import record_label_query

ID2LABEL = {0: SAFE, 1: UNSAFE}
PROBE = {"id": "probe", "question": "问题", "response": "回答"}  # any record: the opening is fixed


def check_classifiable(fmt: FormatConfig, tokenizer) -> None:
    """A classifier needs the label at one fixed token after one fixed text, and two verdicts."""
    from libra_train.data.formats import label_words

    if not fmt.label_first:
        raise ConfigError(
            "classifier",
            f"format (prompt={fmt.prompt}, critic={fmt.critic}) writes its verdict after generated text: "
            "label mode has no fixed position to read, so there is no classifier to make",
        )
    words = label_words(fmt, PROBE)
    if len(words) != 2:
        raise ConfigError(
            "classifier",
            f"format.prompt={fmt.prompt} has {len(words)} verdicts ({', '.join(words)}); a two-row "
            "classifier holds 安全 and 不安全 only",
        )
    try:
        record_label_query(PROBE, tokenizer, fmt)
    except ValueError as err:
        raise ConfigError("classifier", str(err)) from None


def classifier_input(record: dict, tokenizer, fmt: FormatConfig, label_ids: tuple | None = None) -> str:
    """The text a classifier export reads for one record: the rendered prompt and the target opening,
    up to the token where the two labels part (decoded from exactly the ids label mode reads). With
    `label_ids`, the record's label tokens must be those (the classifier's head rows)."""
    context, *ids = record_label_query(record, tokenizer, fmt)
    if label_ids is not None and tuple(ids) != tuple(label_ids):
        raise ConfigError(
            "classifier",
            f"record {record.get('id')!r}: label mode reads tokens {ids} here, the classifier's head "
            f"holds {list(label_ids)}",
        )
    text = tokenizer.decode(context, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    if tokenizer(text, add_special_tokens=False)["input_ids"] != context:
        opening = text[len(render_prompt(record, tokenizer, fmt)) :]
        raise ConfigError(
            "classifier",
            f"record {record.get('id')!r}: the text up to the label ({opening!r} after the prompt) does "
            "not tokenize back to the ids label mode reads",
        )
    return text


def label_token_ids(tokenizer, fmt: FormatConfig) -> tuple[int, int]:
    """The (安全, 不安全) token ids label mode compares after the fixed opening (check_classifiable);
    classifier_input checks that each record reads the same two."""
    _, safe_id, unsafe_id = record_label_query(PROBE, tokenizer, fmt)
    return safe_id, unsafe_id


def to_sequence_classifier(model, tokenizer, fmt: FormatConfig, decision):
    """The causal LM `model` as its architecture's sequence classifier with a two-row head: the LM head's
    two label rows divided by the guard's temperature, so that the head's softmax is the tempered
    p(unsafe) its threshold (decision.threshold) was chosen on."""
    import torch
    from transformers import AutoModelForSequenceClassification

    check_classifiable(fmt, tokenizer)
    rows = list(label_token_ids(tokenizer, fmt))
    config = model.config.__class__.from_dict(model.config.to_dict())
    config.num_labels, config.id2label = 2, dict(ID2LABEL)
    config.label2id = {v: k for k, v in ID2LABEL.items()}
    config.pad_token_id = tokenizer.pad_token_id
    config.guard_threshold = float(decision.threshold)
    config.guard_temperature = float(decision.temperature)
    config.guard_label_token_ids = list(rows)
    config.tie_word_embeddings = False  # the head is two rows of its own, not the embeddings
    classifier = AutoModelForSequenceClassification.from_config(config, dtype=model.dtype)
    body = type(model).base_model_prefix
    getattr(classifier, body).load_state_dict(getattr(model, body).state_dict())
    with torch.no_grad():
        classifier.score.weight.copy_(model.get_output_embeddings().weight[rows] / decision.temperature)
    return classifier.eval()


QUESTION, RESPONSE = "\x00LIBRA_QUESTION\x00", "\x00LIBRA_RESPONSE\x00"
UNTRAINED = {
    "response": "this guard was trained to judge responses (format.task=response): give the question and "
    "the response as [user, assistant] messages",
    "prompt": "this guard was trained to judge questions alone (format.task=prompt): give one user message",
}


def _literal(text: str) -> str:
    """A Jinja string literal for `text` (Jinja decodes escapes in its literals as Python does)."""
    return '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


def classifier_template(tokenizer, fmt: FormatConfig) -> str:
    """A chat template that renders classifier_input from plain messages, so an engine (or transformers'
    apply_chat_template) builds the classifier's input with no libra-train code: [user] judges the
    question alone, [user, assistant] the response. The fixed text around them is the guard's prompt
    rendered with placeholders; it is checked against classifier_input on a sample record."""
    pair = classifier_input({"id": "t", "question": QUESTION, "response": RESPONSE}, tokenizer, fmt)
    alone = classifier_input({"id": "t", "question": QUESTION}, tokenizer, fmt)
    before, rest = pair.split(QUESTION)
    between, after = rest.split(RESPONSE)
    alone_before, alone_after = alone.split(QUESTION)
    user, assistant = "{{ messages[0]['content'] }}", "{{ messages[1]['content'] }}"
    text = lambda part: "{{ " + _literal(part) + " }}"  # noqa: E731
    pair = text(before) + user + text(between) + assistant + text(after)
    alone = text(alone_before) + user + text(alone_after)
    # A guard judges what it was trained to judge (format.task): the other kind of input is refused, as
    # libra-infer and libra-serve refuse it, rather than scored by a guard that never learnt it.
    if fmt.task == "response":
        alone = "{{ raise_exception(" + _literal(UNTRAINED["response"]) + ") }}"
    if fmt.task == "prompt":
        pair = "{{ raise_exception(" + _literal(UNTRAINED["prompt"]) + ") }}"
    template = "{% if messages | length > 1 %}" + pair + "{% else %}" + alone + "{% endif %}"
    probe = {"id": "probe", "question": PROBE["question"]}
    if fmt.task != "prompt":
        probe["response"] = PROBE["response"]
    messages = [{"role": "user", "content": probe["question"]}]
    messages += [{"role": "assistant", "content": probe["response"]}] if "response" in probe else []
    rendered = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False)
    if rendered != classifier_input(probe, tokenizer, fmt):
        raise ConfigError("classifier", f"format.prompt={fmt.prompt}: no chat template reproduces its input")
    return template


def write_classifier_inputs(records: list[dict], tokenizer, fmt: FormatConfig, path, out_path):
    """libra-infer mode=prompts on a classifier export: the exact text the classifier reads, one line
    per view (`id`, `prompt`, and `task` where the format judges both)."""
    import json
    from pathlib import Path

    from libra_train.data.formats import eval_views, refuse_untrained_task
    from libra_train.data.io import atomic_write_text, to_jsonl
    from libra_train.data.recorded_format import trained_task

    label_ids = json.loads((Path(str(path)) / "config.json").read_text()).get("guard_label_token_ids")
    views = eval_views(records, fmt.task)[0]
    refuse_untrained_task(views, fmt, trained_task(path), str(path))
    rows = [
        {"id": view["id"], "task": view["task"], "prompt": classifier_input(view, tokenizer, fmt, label_ids)}
        for view in views
    ]
    atomic_write_text(out_path, to_jsonl(rows))
    return out_path
