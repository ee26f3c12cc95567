"""Cost per token of streaming moderation: a StreamSession (each new token one cached step) against
scoring the whole prefix again at every token, at several response lengths, in one invocation on one
model. The per-token cost of the session should stay flat as the response grows; re-scoring grows with
it. Last line: `ratio_at_1024: X.X` (re-scoring ÷ session, per token at 1,024 tokens).

    python benchmarks/stream_cost.py [--lengths 32 256 1024] [--hidden 256] [--layers 4] [--repeats 16]
"""

import argparse
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from libra_train.qwen_vocab import qwen25_tokenizer
from libra_train.stream.head import StreamGuard, StreamHead, p_unsafe
from libra_train.stream.session import StreamSession


def build(hidden: int, layers: int) -> tuple[StreamGuard, object]:
    tokenizer = qwen25_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 3,
        num_hidden_layers=layers,
        num_attention_heads=max(hidden // 64, 2),
        num_key_value_heads=max(hidden // 128, 1),
        max_position_embeddings=4096,
    )
    torch.manual_seed(0)
    guard = StreamGuard(Qwen2ForCausalLM(config), StreamHead(hidden)).eval()
    return guard, tokenizer


def per_token_ms(guard, tokenizer, length: int, repeats: int) -> tuple[float, float, float]:
    """(session ms/token, re-scoring ms/token, max |Δp|) for the `repeats` tokens after `length - repeats`
    response tokens."""
    ids = torch.randint(1000, 100000, (length,), generator=torch.Generator().manual_seed(length)).tolist()
    session = StreamSession(guard, tokenizer, "怎么撬锁？")
    session.feed_ids(ids[: length - repeats])
    start = time.perf_counter()
    streamed = [session.feed_ids([t])[0] for t in ids[length - repeats :]]
    incremental = (time.perf_counter() - start) / repeats
    start = time.perf_counter()
    rescored = []
    with torch.no_grad():
        for end in range(length - repeats + 1, length + 1):
            logits = guard(torch.tensor([session.prefix + ids[:end]]))["risk_logits"][0, -1]
            rescored.append(float(p_unsafe(logits)))
    again = (time.perf_counter() - start) / repeats
    return incremental * 1000, again * 1000, max(abs(a - b) for a, b in zip(streamed, rescored))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=int, nargs="+", default=[32, 256, 1024])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=16)
    args = ap.parse_args()
    guard, tokenizer = build(args.hidden, args.layers)
    print("| response tokens | session ms/token | re-scoring ms/token | ratio | max abs Δp |")
    print("|---|---|---|---|---|")
    ratio = 0.0
    for length in args.lengths:
        session, again, delta = per_token_ms(guard, tokenizer, length, args.repeats)
        ratio = again / session
        print(f"| {length} | {session:.2f} | {again:.2f} | {ratio:.1f} | {delta:.1e} |")
    print(f"ratio_at_{args.lengths[-1]}: {ratio:.1f}")


if __name__ == "__main__":
    main()
