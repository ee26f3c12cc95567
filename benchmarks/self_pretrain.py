"""Self-pretraining, round 8 of the COLD recipe (BENCHMARKS.md, "COLD recipe"): a causal-LM pass over the
comment text of the rows a stage trains on (no prompt, no label), before the guard's own SFT stage.

It starts from the untrained backbone an experiment=cold_tune run builds (`<run>/backbone`, Qwen's
vocabulary trimmed to COLD train) and writes a backbone folder that libra-train takes as a local model:

    OMP_NUM_THREADS=1 libra-train experiment=cold_tune data.cold_dir=data/cold paths.run_dir=runs/base \
        logger=none ensemble.members=1 '~data.eval_sets.cold_test'
    python benchmarks/self_pretrain.py --backbone runs/base/backbone --data data/cold/train.jsonl \
        --out runs/pretrained
    OMP_NUM_THREADS=1 libra-train experiment=cold_tune data.cold_dir=data/cold paths.run_dir=runs/pt \
        logger=none ensemble.members=1 '~data.eval_sets.cold_test' model.build=null \
        model.name_or_path=runs/pretrained model.trim_vocab=false

Only the positions followed by a real token go through the output layer: with a 21k-token vocabulary
that layer is most of a step, and padding is half of a shuffled batch of comments.
"""

from __future__ import annotations

import argparse
import math
import random
import time

import torch

from libra_train.data.io import load_records

MAX_TOKENS = 256  # the recipe's max_length: no COLD comment comes near it


def comment_ids(records: list[dict], tokenizer) -> list[list[int]]:
    texts = [r["question"] + (f"\n{r['response']}" if r.get("response") else "") for r in records]
    eos = tokenizer.eos_token_id
    return [tokenizer(t, add_special_tokens=False)["input_ids"][: MAX_TOKENS - 1] + [eos] for t in texts]


def cosine_with_warmup(optimizer, steps: int, warmup_ratio: float):
    warmup = max(1, int(warmup_ratio * steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def lm_loss(model, batch: list[list[int]], pad_id: int) -> torch.Tensor:
    length = max(map(len, batch))
    ids = torch.full((len(batch), length), pad_id)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(batch):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
    real_next = mask[:, 1:].bool()
    logits = model.lm_head(hidden[real_next])
    return torch.nn.functional.cross_entropy(logits, ids[:, 1:][real_next])


def pretrain(model, ids: list[list[int]], pad_id: int, args) -> None:
    steps = int(math.ceil(len(ids) / args.batch_size) * args.epochs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    schedule = cosine_with_warmup(optimizer, steps, args.warmup_ratio)
    model.train()
    start, step = time.time(), 0
    while step < steps:
        order = list(range(len(ids)))
        random.shuffle(order)
        for first in range(0, len(order), args.batch_size):
            if step >= steps:
                break
            loss = lm_loss(model, [ids[j] for j in order[first : first + args.batch_size]], pad_id)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step % 100 == 0 or step == steps:
                print(f"step {step}/{steps} loss {loss.item():.3f} {time.time() - start:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", required=True, help="the untrained backbone folder of a run")
    parser.add_argument("--data", required=True, help="the guard-schema JSONL whose text to pretrain on")
    parser.add_argument("--out", required=True, help="where to save the pretrained backbone")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup-ratio", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1, help="one, as each ensemble member trains")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.backbone)
    model = AutoModelForCausalLM.from_pretrained(args.backbone)
    ids = comment_ids(load_records(args.data), tokenizer)
    print(f"{len(ids)} texts, {sum(map(len, ids))} tokens")
    pretrain(model, ids, tokenizer.pad_token_id, args)
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)


if __name__ == "__main__":
    main()
