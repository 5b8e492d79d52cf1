"""Groups of items linked by pairs: the connected components of a graph given by its edges."""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def linked_groups(count: int, first: np.ndarray, second: np.ndarray) -> list[np.ndarray]:
    """The members of each group of items 0..count-1 that the pairs (first[k], second[k]) link, in order.

    >>> [group.tolist() for group in linked_groups(4, np.array([0, 2]), np.array([2, 0]))]
    [[0, 2], [1], [3]]
    """
    graph = coo_matrix((np.ones(len(first), dtype=np.int8), (first, second)), shape=(count, count))
    _, label = connected_components(graph, directed=False)
    order = np.argsort(label, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(label[order])) + 1)
