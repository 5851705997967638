"""Cosine similarity and the similarity table's shading, on vectors worked out by hand."""

import math

import pytest

from playground.similarity import cosine_similarity, shade, similarity_matrix


def test_cosine_of_known_vectors():
    assert cosine_similarity([1, 0], [0, 1]) == 0.0
    assert cosine_similarity([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert cosine_similarity([1, 0], [-1, 0]) == -1.0
    assert cosine_similarity([1, 1], [1, 0]) == pytest.approx(1 / math.sqrt(2))
    # Length does not matter, only direction.
    assert cosine_similarity([3, 4], [30, 40]) == pytest.approx(1.0)


def test_cosine_of_a_zero_vector_is_zero_and_lengths_must_match():
    assert cosine_similarity([0, 0], [1, 2]) == 0.0
    with pytest.raises(ValueError, match="different lengths"):
        cosine_similarity([1, 2], [1, 2, 3])


def test_rounding_never_leaves_minus_one_to_one():
    vector = [0.1] * 1000
    assert cosine_similarity(vector, vector) <= 1.0
    assert similarity_matrix([vector, vector])[0][1] <= 1.0


def test_matrix_is_symmetric_with_ones_on_the_diagonal():
    vectors = [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 5.0], [0.0, 0.0, 0.0]]
    matrix = similarity_matrix(vectors)
    assert [matrix[i][i] for i in range(3)] == [1.0, 1.0, 1.0]
    assert matrix[3] == [0.0, 0.0, 0.0, 0.0]  # a zero vector is like nothing, even to itself
    assert matrix[0][1] == matrix[1][0] == pytest.approx(1 / math.sqrt(2))
    assert matrix[0][2] == matrix[2][0] == 0.0
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if i != j and 3 not in (i, j):
                assert value == pytest.approx(cosine_similarity(vectors[i], vectors[j]))


def test_matrix_of_no_vectors_and_of_mixed_lengths():
    assert similarity_matrix([]) == []
    with pytest.raises(ValueError):
        similarity_matrix([[1.0, 2.0], [1.0]])


@pytest.mark.parametrize(
    ("value", "css_class"),
    [
        (1.0, "sim-10"),
        (0.96, "sim-10"),
        (0.94, "sim-9"),
        (0.5, "sim-5"),
        (0.04, "sim-0"),
        (0.0, "sim-0"),
        (-0.004, "sim-0"),
        (-0.04, "sim-0"),  # a little below zero: unrelated, not opposed
        (-0.06, "sim-neg"),
        (-0.2, "sim-neg"),
        (-1.0, "sim-neg"),
    ],
)
def test_shades_follow_the_value_in_tenths(value, css_class):
    assert shade(value) == css_class
