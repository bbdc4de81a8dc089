"""toknz_core: the hot kernels of toknz, Numba over flat NumPy arrays.

Imports numpy, numba and the standard library only. Modules:

- :mod:`toknz_core.encode`: BPE merging of words in CSR layout with a pair hash table.
- :mod:`toknz_core.ranks`: hashing a vocabulary of byte strings; splits of tokens into token pairs.
"""
