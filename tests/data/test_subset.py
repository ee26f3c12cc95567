from collections import Counter

import pytest

from libra_train.data.subset import stratified_subset
from libra_train.errors import ConfigError


def _pool():
    cats = ["违法犯罪", "偏见歧视", "隐私财产"]
    return [
        {"id": i, "category_name": cats[i % 3], "label": "安全" if i % 7 < 3 else "不安全"}
        for i in range(600)
    ]


def test_subsets_are_nested_stratified_and_deterministic():
    pool = _pool()
    sizes = [30, 60, 150, 0.5, 599]
    subsets = [{r["id"] for r in stratified_subset(pool, s, seed=3)} for s in sizes]
    assert [len(s) for s in subsets] == [30, 60, 150, 300, 599]
    for small, large in zip(subsets, subsets[1:]):
        assert small <= large
    assert subsets[2] == {r["id"] for r in stratified_subset(pool, 150, seed=3)}
    assert subsets[2] != {r["id"] for r in stratified_subset(pool, 150, seed=4)}
    full = Counter((r["category_name"], r["label"]) for r in pool)
    part = Counter((r["category_name"], r["label"]) for r in stratified_subset(pool, 150, seed=3))
    for cell, n in full.items():
        assert abs(part[cell] - n * 150 / 600) <= 1


def test_bad_limits_name_the_key():
    with pytest.raises(ConfigError, match="data.stage1.limit"):
        stratified_subset(_pool(), 1.5, seed=0, key="data.stage1.limit")
    with pytest.raises(ConfigError, match="count ≥ 1"):
        stratified_subset(_pool(), 0, seed=0)


@pytest.mark.parametrize(
    "limit, size", [(1.0, 600), ("0.5", 300), ("1", 1), (1, 1), (0.0001, 1), (600, 600), (5000, 600)]
)
def test_limit_forms_and_their_boundaries(limit, size):
    assert len(stratified_subset(_pool(), limit, seed=0)) == size


@pytest.mark.parametrize("limit", [0.0, "0", "1.5", "01", "abc", True, -2])
def test_bad_limits_are_refused(limit):
    with pytest.raises(ConfigError, match="data.limit"):
        stratified_subset(_pool(), limit, seed=0)


def test_samples_without_a_category_form_their_own_cell():
    pool = [{"id": i, "label": "安全" if i % 2 else "不安全"} for i in range(20)]  # no category_name at all
    pool += [{"id": 100 + i, "category_name": "违法犯罪", "label": "不安全"} for i in range(20)]
    chosen = stratified_subset(pool, 0.5, seed=1)
    assert sum(r["id"] < 100 for r in chosen) == 10 and sum(r["id"] >= 100 for r in chosen) == 10


def test_unequal_cells_keep_their_shares():
    pool = [{"id": f"a{i}", "category_name": "A", "label": "安全"} for i in range(10)]
    pool += [{"id": f"b{i}", "category_name": "B", "label": "安全"} for i in range(90)]
    chosen = stratified_subset(pool, 10, seed=0)
    assert sum(r["category_name"] == "A" for r in chosen) == 1


def test_the_seed_orders_each_cell_and_copies_give_the_same_subset():
    import copy

    one_cell = [{"id": i, "category_name": "A", "label": "安全"} for i in range(50)]
    picks = {tuple(r["id"] for r in stratified_subset(one_cell, 5, seed=s)) for s in range(4)}
    assert len(picks) == 4  # within a cell, the seed decides the order
    pool = _pool()
    first = [r["id"] for r in stratified_subset(pool, 77, seed=2)]
    assert [r["id"] for r in stratified_subset(copy.deepcopy(pool), 77, seed=2)] == first  # not by object id


def test_the_seed_breaks_ties_between_cells():
    pool = [
        {"id": "a", "category_name": "A", "label": "安全"},
        {"id": "b", "category_name": "B", "label": "安全"},
    ]
    picks = {stratified_subset(pool, 1, seed=s)[0]["id"] for s in range(10)}
    assert picks == {"a", "b"}
