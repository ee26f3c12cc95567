"""train.label_smoothing: the stage's loss spreads that share of each target token's probability over
the vocabulary (the Trainer's label smoothing), checked against the loss computed by hand."""

import pytest
import torch

from libra_train.tracking import NullTracker
from libra_train.train.stage import build_trainer
from tests.conftest import run_config, sample


def _by_hand(model, batch, epsilon: float) -> torch.Tensor:
    """(1 − ε) × the mean NLL of the supervised tokens + ε × their mean −log p over the vocabulary."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    log_p = torch.log_softmax(model(**inputs).logits[:, :-1].float(), dim=-1)
    labels = batch["labels"][:, 1:]
    kept = labels != -100
    nll = -log_p[kept].gather(-1, labels[kept].unsqueeze(-1)).squeeze(-1)
    uniform = -log_p[kept].mean(dim=-1)
    return (1 - epsilon) * nll.mean() + epsilon * uniform.mean()


@pytest.mark.parametrize("epsilon", [0.0, 0.2])
def test_a_stage_smooths_its_target_by_the_share_asked(tiny_backbone, tmp_path, epsilon):
    records = [sample(i, label=("安全", "不安全")[i % 2], analyze="理由。") for i in range(8)]
    run = run_config(tmp_path, f"train.label_smoothing={epsilon}", "train.batch_size=4")
    stage_dir = tmp_path / "s"
    trainer, *_ = build_trainer(run.stages[0], records, str(tiny_backbone), stage_dir, run, NullTracker())
    assert trainer.args.label_smoothing_factor == epsilon
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.eval()  # no dropout: the two computations see one model
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, dict(batch))
        expected = _by_hand(trainer.model, batch, epsilon)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    if epsilon:  # and it is not the plain loss
        assert abs(loss.item() - _by_hand(trainer.model, batch, 0.0).item()) > 1e-3
