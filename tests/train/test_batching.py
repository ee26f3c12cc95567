import torch

from libra_train.train.batching import BucketedSampler, bucketed_order


def _batches(order, size):
    return [order[i : i + size] for i in range(0, len(order), size)]


def test_each_batch_is_a_run_of_its_megabatch_sorted_by_length():
    # 12 samples, batches of 2, megabatches of 3 batches: the first 6 drawn indices form one megabatch
    lengths = [50, 10, 40, 20, 60, 30, 5, 55, 15, 45, 25, 35]
    gen = torch.Generator().manual_seed(0)
    drawn = torch.randperm(12, generator=gen).tolist()
    order = bucketed_order(lengths, batch_size=2, buckets=3, generator=torch.Generator().manual_seed(0))
    assert sorted(order) == list(range(12))
    expected = []
    for start in (0, 6):
        ranked = sorted(drawn[start : start + 6], key=lengths.__getitem__)
        expected += [ranked[0:2], ranked[2:4], ranked[4:6]]
    got = _batches(order, 2)
    assert sorted(map(sorted, got)) == sorted(map(sorted, expected))


def test_bucketed_batches_pad_less_than_shuffled_ones():
    lengths = [(i * 37) % 300 + 20 for i in range(640)]
    gen = torch.Generator().manual_seed(1)

    def padded(order):
        return sum(max(lengths[i] for i in b) * len(b) for b in _batches(order, 16))

    bucketed = padded(bucketed_order(lengths, 16, 8, gen))
    shuffled = padded(torch.randperm(640, generator=gen).tolist())
    assert bucketed < 0.7 * shuffled
    assert bucketed >= sum(lengths)


def test_batches_are_dealt_in_a_random_order_not_longest_first():
    # the Trainer's length grouping walks each megabatch from its longest batch to its shortest: here the
    # batch lengths must not fall (or rise) in runs, whatever the seed
    lengths = list(range(1, 513))
    for seed in range(3):
        order = bucketed_order(lengths, 8, 64, torch.Generator().manual_seed(seed))
        means = [sum(lengths[i] for i in b) / len(b) for b in _batches(order, 8)]
        falls = sum(a > b for a, b in zip(means, means[1:]))
        assert 0.3 < falls / (len(means) - 1) < 0.7, seed


def test_sampler_repeats_an_epoch_and_changes_between_epochs():
    lengths = [(i * 7) % 50 + 1 for i in range(100)]
    sampler = BucketedSampler(lengths, batch_size=4, buckets=5, seed=3)
    first = list(sampler)
    assert list(sampler) == first  # a resumed run redraws the batches it skips
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(second) == list(range(100)) and second != first
    assert len(sampler) == 100
    assert list(BucketedSampler(lengths, 4, 5, seed=4)) != first


def test_with_labels_each_batch_takes_the_labels_in_proportion_at_like_length_ranks():
    # label a: lengths 10 20 30 40 (rank quantiles 1/8 3/8 5/8 7/8); label b: 100 200 (1/4 3/4).
    # Sorted by quantile: a10 b100 a20 a30 b200 a40; plain length order would pair b100 with b200.
    lengths = [10, 20, 30, 40, 100, 200]
    labels = ["a", "a", "a", "a", "b", "b"]
    order = bucketed_order(lengths, 2, 3, torch.Generator().manual_seed(0), labels)
    assert sorted(map(sorted, _batches(order, 2))) == [[0, 4], [1, 2], [3, 5]]
    plain = bucketed_order(lengths, 2, 3, torch.Generator().manual_seed(0))
    assert [4, 5] in map(sorted, _batches(plain, 2))
