"""Pixel metrics of a binary landslide map: precision, recall, F1 and IoU.

Scores are computed from confusion counts accumulated over a whole split or area (never
averaged per batch or per patch), as in Pan & Shi 2023.  Pure numpy, no TensorFlow.

Conventions for empty masks (a zero denominator): a score is 1.0 when there is nothing to
get wrong (no landslide in the truth and none predicted) and 0.0 otherwise.  So an empty
truth with an empty prediction scores P = R = F1 = IoU = 1; a missed landslide scores
P = R = F1 = IoU = 0; a false alarm on an empty truth scores P = R = F1 = IoU = 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Confusion:
    """Pixel counts of true positives, false positives, false negatives, true negatives."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, truth: np.ndarray, probability: np.ndarray, threshold: float = 0.5,
            valid: np.ndarray | None = None) -> "Confusion":
        """Accumulate the counts of one batch (``probability >= threshold`` is a landslide);
        pixels where ``valid`` is False are ignored."""
        t = np.asarray(truth).reshape(-1) > 0.5
        p = np.asarray(probability).reshape(-1) >= threshold
        if valid is not None:
            keep = np.asarray(valid).reshape(-1).astype(bool)
            t, p = t[keep], p[keep]
        self.tp += int(np.count_nonzero(t & p))
        self.fp += int(np.count_nonzero(~t & p))
        self.fn += int(np.count_nonzero(t & ~p))
        self.tn += int(np.count_nonzero(~t & ~p))
        return self

    def scores(self) -> dict[str, float]:
        """Precision, recall, F1 and IoU of the accumulated counts."""
        return scores(self.tp, self.fp, self.fn)

    def as_dict(self) -> dict:
        """Scores and counts together (for JSON results)."""
        return {**self.scores(), **asdict(self)}


def _ratio(num: int, den: int, perfect: bool) -> float:
    if den > 0:
        return num / den
    return 1.0 if perfect else 0.0


def scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall, F1 and IoU from confusion counts (empty-mask rules above)."""
    return {
        "precision": _ratio(tp, tp + fp, fn == 0),
        "recall": _ratio(tp, tp + fn, fp == 0),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, True),
        "iou": _ratio(tp, tp + fp + fn, True),
    }


def binary_scores(truth: np.ndarray, probability: np.ndarray, threshold: float = 0.5,
                  valid: np.ndarray | None = None) -> dict:
    """Scores and counts of one whole map."""
    return Confusion().add(truth, probability, threshold, valid).as_dict()


def dice_coefficient(truth: np.ndarray, probability: np.ndarray, smooth: float = 1.0) -> float:
    """Soft Dice ``(2 * sum(y p) + s) / (sum(y) + sum(p) + s)`` (numpy reference of the loss)."""
    y = np.asarray(truth, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    return float((2 * np.sum(y * p) + smooth) / (np.sum(y) + np.sum(p) + smooth))
