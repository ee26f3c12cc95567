"""A local transformers model as responder or judge (greedy decoding, batched, cached). On a GPU node
the weights are spread over the GPUs present (`device_map=auto`) and each batch runs there."""

from __future__ import annotations

from libra_train.chat.cache import CompletionCache, request_key
from libra_train.progress import progress


class HFChat:
    def __init__(
        self,
        model_path: str,
        max_new_tokens: int = 256,
        batch_size: int = 8,
        cache_path=None,
        trust_remote_code: bool = False,
        name: str | None = None,
        device_map: str | None = "auto",
        dtype: str = "auto",
    ):
        import torch

        from libra_train.model import load_model_and_tokenizer

        # device_map needs a GPU to mean anything; on a CPU the model simply stays where it loads
        placement = device_map if torch.cuda.is_available() else None
        self.model, self.tokenizer = load_model_and_tokenizer(
            model_path, trust_remote_code=trust_remote_code, dtype=dtype, device_map=placement
        )
        self.tokenizer.padding_side = "left"
        self.model.eval()
        self.max_new_tokens, self.batch_size, self.name = max_new_tokens, batch_size, name or str(model_path)
        self.cache = CompletionCache(cache_path)
        self.params = {"max_new_tokens": max_new_tokens, "greedy": True}

    def complete_many(self, conversations: list[list[dict]]) -> list[str]:

        keys = [request_key(self.name, c, self.params) for c in conversations]
        out = {k: self.cache.get(k) for k in keys}
        todo = [(k, c) for k, c in zip(keys, conversations) if out[k] is None]
        with progress(f"{self.name}: generations", len(todo), unit="generations") as advance:
            for start in range(0, len(todo), self.batch_size):
                self._generate(todo[start : start + self.batch_size], out)
                advance(len(todo[start : start + self.batch_size]))
        return [out[k] for k in keys]

    def _generate(self, batch: list[tuple], out: dict) -> None:
        """One batch of greedy generations, into `out` and the cache."""
        import torch

        texts = [
            self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
            for _, c in batch
        ]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(self.model.device)  # the first device of a model spread by device_map
        with torch.no_grad():
            gen = self.model.generate(
                **enc,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        for (key, _), row in zip(batch, gen[:, enc["input_ids"].shape[1] :]):
            out[key] = self.tokenizer.decode(row, skip_special_tokens=True)
            self.cache.put(key, out[key])
