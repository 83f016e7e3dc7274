"""Active-learning scores on hand-checked numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from curate.loop.strategies import diverse_pick, novelty, random_pick, uncertainty

PROBS = np.array(
    [
        [1.0, 0.0, 0.0],  # certain
        [0.5, 0.3, 0.2],
        [0.4, 0.4, 0.2],  # a tie at the top
        [1 / 3, 1 / 3, 1 / 3],  # uniform
    ]
)


def test_least_confidence_is_one_minus_the_top_probability() -> None:
    np.testing.assert_allclose(uncertainty(PROBS, "least_confidence"), [0.0, 0.5, 0.6, 2 / 3])


def test_margin_is_one_minus_the_gap_between_the_two_top_probabilities() -> None:
    np.testing.assert_allclose(uncertainty(PROBS, "margin"), [0.0, 0.8, 1.0, 1.0])


def test_entropy_is_in_nats_and_treats_zero_probabilities_as_zero() -> None:
    expected = [
        0.0,
        -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2)),  # 1.0297
        -(2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2)),  # 1.0549
        math.log(3),
    ]
    np.testing.assert_allclose(uncertainty(PROBS, "entropy"), expected)


def test_margin_of_a_single_class_is_zero() -> None:
    np.testing.assert_allclose(uncertainty(np.ones((2, 1)), "margin"), [0.0, 0.0])


def test_uncertainty_rejects_an_unknown_kind_and_a_vector() -> None:
    with pytest.raises(ValueError, match="unknown uncertainty kind 'confidence'; use one of least_confidence"):
        uncertainty(PROBS, "confidence")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"got shape \(3,\)"):
        uncertainty(np.array([0.2, 0.3, 0.5]), "entropy")


def test_novelty_is_one_minus_the_best_cosine_to_the_reference() -> None:
    reference = np.array([[1.0, 0.0], [0.0, 2.0]])
    rows = np.array([[3.0, 0.0], [1.0, 1.0], [-1.0, 0.0], [-1.0, -1.0]])
    # cosines to the closest reference: 1, 1/sqrt(2), 0 (to [0, 2]), -1/sqrt(2)
    expected = [0.0, 1 - 1 / math.sqrt(2), 1.0, 1 + 1 / math.sqrt(2)]
    np.testing.assert_allclose(novelty(rows, reference), expected, atol=1e-6)
    np.testing.assert_allclose(novelty(rows, reference, block=1), expected, atol=1e-6)


def test_novelty_against_an_empty_reference_is_one_everywhere() -> None:
    np.testing.assert_allclose(novelty(np.eye(3), np.empty((0, 3))), [1.0, 1.0, 1.0])


def test_novelty_rejects_vectors_of_different_sizes() -> None:
    with pytest.raises(ValueError, match="got 2 and 3 dimensions"):
        novelty(np.eye(2), np.eye(3))


def _blobs() -> tuple[np.ndarray, np.ndarray]:
    # three tight, far-apart groups of 4 points; group 0 holds the 4 highest scores
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    embeddings = np.repeat(centers, 4, axis=0) + rng.normal(scale=0.1, size=(12, 2))
    scores = np.array([0.9, 0.95, 0.8, 0.85, 0.1, 0.5, 0.2, 0.3, 0.4, 0.05, 0.6, 0.15])
    return embeddings, scores


def test_diverse_pick_takes_the_best_row_of_each_cluster_best_cluster_first() -> None:
    embeddings, scores = _blobs()
    # top-3 by score would be rows 1, 0, 3 (all in group 0); one per group instead
    assert diverse_pick(embeddings, scores, 3, seed=0) == [1, 10, 5]


def test_diverse_pick_is_deterministic_for_a_seed_and_returns_distinct_rows() -> None:
    rng = np.random.default_rng(1)
    embeddings, scores = rng.normal(size=(200, 8)), rng.random(200)
    picks = diverse_pick(embeddings, scores, 20, seed=7)
    assert picks == diverse_pick(embeddings, scores, 20, seed=7)
    assert len(set(picks)) == 20


def test_diverse_pick_fills_k_when_rows_are_duplicates() -> None:
    embeddings = np.zeros((6, 2))  # one point: k-means finds a single non-empty cluster
    scores = np.array([0.1, 0.6, 0.3, 0.5, 0.2, 0.4])
    assert sorted(diverse_pick(embeddings, scores, 3, seed=0)) == [1, 3, 5]


def test_diverse_pick_with_k_at_least_the_rows_returns_all_best_first() -> None:
    embeddings, scores = _blobs()
    assert diverse_pick(embeddings, scores, 50, seed=0) == np.argsort(-scores).tolist()
    assert diverse_pick(embeddings, scores, 0, seed=0) == []


def test_random_pick_is_distinct_seeded_and_capped_at_n() -> None:
    assert random_pick(10, 4, seed=3) == random_pick(10, 4, seed=3)
    assert random_pick(10, 4, seed=3) != random_pick(10, 4, seed=4)
    assert sorted(random_pick(5, 9, seed=0)) == [0, 1, 2, 3, 4]
    assert len(set(random_pick(1000, 100, seed=0))) == 100
