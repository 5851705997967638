"""Cosine similarity between embedding vectors, and the shade a value gets in the page's table."""

import math
from collections.abc import Sequence
from operator import mul

SHADES = 10  # the table's cells use classes sim-0 … sim-10 (and sim-neg below zero)


def norm(vector: Sequence[float]) -> float:
    return math.sqrt(sum(value * value for value in vector))


def cosine_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """cos(a, b) in [-1, 1]; 0.0 when either vector is all zeros. Lengths must match."""
    if len(a) != len(b):
        raise ValueError(f"vectors of different lengths ({len(a)} and {len(b)})")
    length = norm(a) * norm(b)
    if length == 0:
        return 0.0
    return _clamp(sum(map(mul, a, b)) / length)


def similarity_matrix(vectors: Sequence[Sequence[float]]) -> list[list[float]]:
    """Every pair's cosine similarity: a symmetric n-by-n matrix, 1.0 on the diagonal (0.0 for
    a zero vector). Each vector is normalised once, so n vectors cost n²/2 dot products."""
    count = len(vectors)
    if any(len(vector) != len(vectors[0]) for vector in vectors):
        raise ValueError("vectors of different lengths")
    units = []
    for vector in vectors:
        length = norm(vector)
        units.append([value / length for value in vector] if length else None)
    matrix = [[0.0] * count for _ in range(count)]
    for i in range(count):
        unit = units[i]
        if unit is None:
            continue
        matrix[i][i] = 1.0
        for j in range(i + 1, count):
            other = units[j]
            if other is not None:
                matrix[i][j] = matrix[j][i] = _clamp(sum(map(mul, unit, other)))
    return matrix


def shade(value: float) -> str:
    """The CSS class of a similarity: sim-0 (< 0.05) … sim-10 (≥ 0.95), and sim-neg for
    texts that point clearly apart (below -0.05; a little below zero is just "unrelated")."""
    if value < -0.05:
        return "sim-neg"
    return f"sim-{max(0, min(SHADES, round(value * SHADES)))}"


def _clamp(value: float) -> float:
    # Rounding can push a dot product of unit vectors a hair past ±1.
    return max(-1.0, min(1.0, value))
