import pytest
import torch

from mmgraph.errors import InputError
from mmgraph.eval import (average_precision, best_threshold, classification_metrics, ranking_metrics,
                          ranks_from_scores, ranks_to_metrics, roc_auc)


def test_contract_example_and_tie_rule_by_hand():
    scores = torch.tensor([[0.9, 0.5, 0.5, 0.1],
                           [0.1, 0.2, 0.3, 0.3],
                           [0.7, 0.7, 0.7, 0.7]])
    targets = torch.tensor([1, 2, 0])
    # q0: 1 strictly higher (0.9), 1 tie (col 2) -> optimistic 2, pessimistic 3 -> 2.5
    # q1: 0 higher, 1 tie -> 1 and 2 -> 1.5;  q2: all 3 others tie -> 1 and 4 -> 2.5
    assert ranks_from_scores(scores, targets).tolist() == [2.5, 1.5, 2.5]
    m = ranking_metrics(scores, targets)
    assert m["mrr"] == pytest.approx((1 / 2.5 + 1 / 1.5 + 1 / 2.5) / 3)
    assert m["hits@1"] == 0.0 and m["hits@3"] == 1.0 and m["hits@10"] == 1.0


def test_filter_removes_candidates_but_never_the_target():
    scores = torch.tensor([[0.9, 0.5, 0.8, 0.5]])
    mask = torch.tensor([[True, True, False, False]])       # True on the target is ignored
    # left: col 2 (higher) and col 3 (tie) -> optimistic 2, pessimistic 3
    assert ranks_from_scores(scores, torch.tensor([1]), mask).tolist() == [2.5]
    everything = torch.ones(1, 4, dtype=torch.bool)
    assert ranks_from_scores(scores, torch.tensor([1]), everything).tolist() == [1.0]


def _ogb_lists(y_pos, y_neg):
    from ogb.linkproppred import Evaluator

    return Evaluator(name="ogbl-citation2").eval({"y_pred_pos": y_pos, "y_pred_neg": y_neg})


@pytest.mark.parametrize("with_ties", [False, True])
def test_matches_ogb_evaluator(with_ties):
    g = torch.Generator().manual_seed(0)
    q, c = 64, 30
    scores = torch.randn(q, c, generator=g)
    if with_ties:   # few distinct values: OGB takes the same mean of optimistic and pessimistic rank
        scores = torch.randint(0, 4, (q, c), generator=g).float()
    targets = torch.randint(0, c, (q,), generator=g)
    others = torch.ones(q, c, dtype=torch.bool)
    others[torch.arange(q), targets] = False
    y_pos = scores[torch.arange(q), targets]
    y_neg = scores[others].view(q, c - 1)
    theirs = _ogb_lists(y_pos, y_neg)
    ours = ranking_metrics(scores, targets)
    assert ours["mrr"] == pytest.approx(theirs["mrr_list"].double().mean().item(), abs=1e-6)
    for k in (1, 3, 10):
        assert ours[f"hits@{k}"] == pytest.approx(theirs[f"hits@{k}_list"].double().mean().item())


def test_filtered_ranks_match_ogb_on_the_unfiltered_candidates():
    g = torch.Generator().manual_seed(1)
    q, c, kept = 16, 12, 8
    scores = torch.randn(q, c, generator=g)
    targets = torch.zeros(q, dtype=torch.long)
    mask = torch.zeros(q, c, dtype=torch.bool)
    mask[:, kept + 1:] = True                       # remove the same number of columns from each row
    theirs = _ogb_lists(scores[:, 0], scores[:, 1:kept + 1])
    assert ranking_metrics(scores, targets, mask)["mrr"] == pytest.approx(
        theirs["mrr_list"].double().mean().item(), abs=1e-6)


def test_ranks_to_metrics_and_bad_input():
    m = ranks_to_metrics(torch.tensor([1.0, 2.0, 4.0, 20.0]), ks=(1, 3))
    assert m == pytest.approx({"mrr": (1 + 0.5 + 0.25 + 0.05) / 4, "hits@1": 0.25, "hits@3": 0.5})
    with pytest.raises(InputError, match="no ranks"):
        ranks_to_metrics(torch.tensor([]))
    with pytest.raises(InputError, match="NaN"):
        ranking_metrics(torch.tensor([[float("nan"), 1.0]]), torch.tensor([0]))
    with pytest.raises(InputError, match="targets must lie"):
        ranking_metrics(torch.zeros(2, 3), torch.tensor([0, 3]))


def _sklearn_case(seed: int, ties: bool):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(40, generator=g) + 0.7
    neg = torch.randn(55, generator=g)
    if ties:
        pos, neg = pos.round(), neg.round()
    return pos, neg


@pytest.mark.parametrize("ties", [False, True])
def test_auc_and_ap_match_sklearn(ties):
    from sklearn.metrics import average_precision_score, roc_auc_score

    for seed in range(5):
        pos, neg = _sklearn_case(seed, ties)
        y = [1] * len(pos) + [0] * len(neg)
        s = torch.cat([pos, neg]).numpy()
        assert roc_auc(pos, neg) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert average_precision(pos, neg) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_precision_recall_f1_match_sklearn_at_the_threshold():
    from sklearn.metrics import f1_score, precision_score, recall_score

    pos, neg = _sklearn_case(3, ties=True)
    y = [1] * len(pos) + [0] * len(neg)
    for threshold in (-1.0, 0.0, 0.5, 1.0, 9.0):
        pred = (torch.cat([pos, neg]) >= threshold).long().tolist()
        m = classification_metrics(pos, neg, threshold=threshold)
        assert m["precision"] == pytest.approx(precision_score(y, pred, zero_division=0))
        assert m["recall"] == pytest.approx(recall_score(y, pred))
        assert m["f1"] == pytest.approx(f1_score(y, pred, zero_division=0))


@pytest.mark.parametrize("ties", [False, True])
def test_best_threshold_reaches_the_best_f1(ties):
    from sklearn.metrics import f1_score

    pos, neg = _sklearn_case(4, ties)
    y = [1] * len(pos) + [0] * len(neg)
    scores = torch.cat([pos, neg])
    best_possible = max(f1_score(y, (scores >= t).long().tolist()) for t in scores.unique().tolist())
    threshold = best_threshold(pos, neg)
    assert classification_metrics(pos, neg, threshold=threshold)["f1"] == pytest.approx(best_possible)


def test_best_threshold_lies_strictly_between_float32_neighbours():
    a = torch.tensor([1.0], dtype=torch.float32)
    b = torch.nextafter(a, torch.tensor([2.0]))          # the next float32 above 1.0
    t = best_threshold(b, a)                              # separate b (positive) from a (negative)
    assert 1.0 < t < float(b)
    assert classification_metrics(b, a, threshold=t)["f1"] == 1.0
