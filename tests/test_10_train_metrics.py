"""Metrics and Dice loss on small hand-computed masks (including empty ones)."""

from __future__ import annotations

import numpy as np
import pytest

from sarflow.metrics import Confusion, binary_scores, dice_coefficient, scores


def test_scores_of_hand_computed_masks():
    truth = np.array([[1, 1, 0], [0, 1, 0]])
    prob = np.array([[0.9, 0.4, 0.6], [0.1, 0.5, 0.2]])  # 0.5 counts as landslide
    s = binary_scores(truth, prob, 0.5)
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (2, 1, 1, 2)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 / 3)
    assert s["iou"] == pytest.approx(0.5)


def test_scores_asymmetric_case():
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    pred = np.array([1, 1, 1, 0, 1, 1, 0, 0])
    s = binary_scores(truth, pred)
    assert s["precision"] == pytest.approx(3 / 5)
    assert s["recall"] == pytest.approx(3 / 4)
    assert s["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert s["iou"] == pytest.approx(3 / 6)


def test_empty_masks():
    z = np.zeros((4, 4))
    both_empty = binary_scores(z, z)
    assert [both_empty[k] for k in ("precision", "recall", "f1", "iou")] == [1.0] * 4
    one = z.copy()
    one[1, 1] = 1
    missed = binary_scores(one, z)
    assert [missed[k] for k in ("precision", "recall", "f1", "iou")] == [0.0] * 4
    false_alarm = binary_scores(z, one)
    assert [false_alarm[k] for k in ("precision", "recall", "f1", "iou")] == [0.0] * 4


def test_scores_accumulate_over_the_split_not_per_batch():
    conf = Confusion()
    conf.add(np.array([1, 0]), np.array([0.9, 0.1]))          # batch F1 = 1
    conf.add(np.array([1, 1, 1, 0]), np.array([0, 0, 0, 0.8]))  # batch F1 = 0
    assert (conf.tp, conf.fp, conf.fn) == (1, 1, 3)
    assert conf.scores()["f1"] == pytest.approx(2 / 6)        # not the batch mean 0.5


def test_valid_mask_excludes_pixels():
    s = binary_scores(np.array([1, 0, 1]), np.array([1, 1, 0]), valid=np.array([1, 0, 1]))
    assert (s["tp"], s["fp"], s["fn"]) == (1, 0, 1)
    assert scores(0, 0, 0)["f1"] == 1.0


def test_dice_loss_matches_hand_values():
    from sarflow.nets import DiceLoss

    loss = DiceLoss()
    assert loss.smooth == 1.0
    cases = [  # (truth, prediction, expected loss)
        ([1, 1, 0, 0], [1, 0, 1, 0], 1 - (2 * 1 + 1) / (2 + 2 + 1)),   # 0.4
        ([1, 1, 0, 0], [1, 1, 0, 0], 0.0),
        ([0, 0, 0, 0], [0, 0, 0, 0], 0.0),                             # both empty
        ([0, 0, 0, 0], [1, 1, 1, 1], 1 - 1 / (4 + 1)),                 # 0.8
        ([1, 0, 0, 0], [0.5, 0.5, 0.5, 0.5], 1 - (1 + 1) / (1 + 2 + 1)),  # 0.5
    ]
    for truth, pred, expected in cases:
        y = np.array(truth, np.float32).reshape(1, 2, 2, 1)
        p = np.array(pred, np.float32).reshape(1, 2, 2, 1)
        assert float(loss(y, p)) == pytest.approx(expected, abs=1e-6)
        assert 1 - dice_coefficient(y, p) == pytest.approx(expected, abs=1e-12)


def test_dice_loss_sums_over_the_whole_batch():
    from sarflow.nets import DiceLoss

    y = np.array([[1, 0], [0, 0]], np.float32).reshape(2, 2, 1, 1)
    p = np.array([[1, 0], [1, 0]], np.float32).reshape(2, 2, 1, 1)
    # whole batch: inter 1, sums 1 + 2 -> 1 - 3/4; per-image means would give 1 - (1 + 1/2)/2
    assert float(DiceLoss()(y, p)) == pytest.approx(0.25, abs=1e-6)
    assert float(DiceLoss(smooth=0.0)(y, p)) == pytest.approx(1 - 2 / 3, abs=1e-6)
