"""toknz_core: the hot kernels of toknz, Numba over flat NumPy arrays.

Imports numpy, numba and the standard library only. Modules:

- :mod:`toknz_core.encode`: BPE merging of words in CSR layout with a pair hash table.
- :mod:`toknz_core.ranks`: hashing a vocabulary of byte strings; splits of tokens into token pairs.
- :mod:`toknz_core.train`: the BPE training merge loop.
- :mod:`toknz_core.wordcount`: counting distinct words in a flat hash table.
- :mod:`toknz_core.pretok`: compiled split-pattern scanners over UTF-8 bytes.
- :mod:`toknz_core.unicode_classes`: UTF-8 decoding and per-code-point class lookups.

On import, compiled kernels cached for other sources are dropped
(:mod:`toknz_core.cache_guard`).
"""

from pathlib import Path as _Path

from toknz_core.cache_guard import drop_stale_kernels as _drop_stale_kernels

_drop_stale_kernels(_Path(__file__).parent)
