"""model.vocab_from: the stages whose text trains a from-scratch backbone's tokenizer. With first_stage,
later stages' words are not tokens of their own (whose embeddings the first stage would leave at their
random start): they encode in the first stage's smaller pieces."""

from transformers import AutoTokenizer

from libra_train.steps import prepare_backbone
from tests.conftest import run_config, sample

FIRST = [sample(i, question="怎样撬开电动车的锁？", response="先准备好工具，再选择时机。") for i in range(30)]
LATER = [
    sample(i + 100, question="朋友的护照号码怎么查到？", response="通过社交媒体追踪行程。") for i in range(30)
]


def _pieces(tmp_path, vocab_from: str) -> tuple[int, int]:
    """How many tokens the later stage's question and the first stage's question take."""
    run = run_config(tmp_path / vocab_from, f"model.vocab_from={vocab_from}", "model.vocab_size=400")
    tokenizer = AutoTokenizer.from_pretrained(prepare_backbone(run, {"one": FIRST, "two": LATER}))
    return len(tokenizer.tokenize(LATER[0]["question"])), len(tokenizer.tokenize(FIRST[0]["question"]))


def test_first_stage_vocabulary_leaves_later_stages_words_in_pieces(tmp_path):
    later_all, first_all = _pieces(tmp_path, "all_stages")
    later_first, first_first = _pieces(tmp_path, "first_stage")
    assert later_first > later_all  # the later stage's words: merged only when its text trains the vocabulary
    assert first_first <= first_all  # the first stage's own text loses nothing
