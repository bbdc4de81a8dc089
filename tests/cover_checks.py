"""A shared check for ByteLM's streaming covers: the true encoding is never dropped."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def assert_true_cover_stays_open(
    blm, ids: Sequence[int], max_bytes: int | None = None, label: object = None
) -> list[int]:
    """Read the bytes of ``ids`` into ``blm`` one at a time; at each byte the true cover is open.

    The true cover after ``n`` bytes: the tokens of ``ids`` that end before
    byte ``n``, followed by the token that holds byte ``n``. It must be a
    node of the state, with that next token in its trie range and allowed.
    ``max_bytes`` cuts the text; ``label`` goes into failure messages.
    Returns the number of open nodes after each byte.
    """
    tb = blm.canon.token_bytes
    data = b"".join(tb[i] for i in ids)[:max_bytes]
    ends = np.cumsum([len(tb[i]) for i in ids])
    sizes = []
    for n in range(1, len(data) + 1):
        state = blm.state(data[:n])
        k = int(np.sum(ends < n))  # tokens that end before byte n
        nodes = [node for node in state.nodes if node.tokens == tuple(ids[:k])]
        assert nodes, (label, data, n)
        node = nodes[0]
        pos = np.nonzero(blm.trie.ids[node.lo : node.hi] == ids[k])[0]
        assert pos.size == 1, (label, data, n)
        at = node.lo + int(pos[0])
        assert state.allowed(node, at, at + 1)[0], (label, data, n)
        sizes.append(len(state.nodes))
    return sizes
