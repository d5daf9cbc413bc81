"""The bottle video's hand labels (benchmarks.anomaly): ordered spans inside the video, the training frames before
the first anomaly, and every later frame either anomalous, a changed scene or one of the hand's shadow frames."""

from __future__ import annotations

from itertools import pairwise

import cv2

from benchmarks.anomaly import BOTTLE, BOTTLE_ANOMALOUS, BOTTLE_MOVED, BOTTLE_TRAIN
from tests.helpers import shared


def test_bottle_label_spans_are_ordered_and_inside_the_video() -> None:
    shared("videos/" + BOTTLE.name)
    cap = cv2.VideoCapture(str(BOTTLE))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert n == 1189
    spans = sorted(BOTTLE_ANOMALOUS + BOTTLE_MOVED)
    assert sorted(BOTTLE_ANOMALOUS) == BOTTLE_ANOMALOUS
    assert sorted(BOTTLE_MOVED) == BOTTLE_MOVED
    for lo, hi in spans:
        assert 0 <= lo <= hi < n
    for (_, hi), (lo, _) in pairwise(spans):
        assert hi < lo  # disjoint
    assert BOTTLE_TRAIN[0] == 0 and BOTTLE_TRAIN[1] < BOTTLE_ANOMALOUS[0][0]
    covered = {i for lo, hi in spans for i in range(lo, hi + 1)}
    # after the training frames, only the hand's shadow before it first enters (167-170) is unlabelled
    assert set(range(BOTTLE_TRAIN[1] + 1, n)) - covered == set(range(167, 171))
