"""The stages of a tokenizer, in the order text flows through them.

``Tokenizer`` (:mod:`toknz.tokenizer`) chains them:

1. :mod:`~toknz.pipeline.added_tokens` — special and added tokens are cut out first;
2. :mod:`~toknz.pipeline.normalizers` — NFC/NFKC, lowercase, replace, prepend...;
3. :mod:`~toknz.pipeline.pretokenize` — split into pieces (``regex``), with the compiled
   scanners of :mod:`~toknz.pipeline.fast_pretokenize` for the known GPT/Llama/Qwen patterns,
   :mod:`~toknz.pipeline.regex_dialect` (Oniguruma <-> Python ``regex``) and
   :mod:`~toknz.pipeline.unicode_tables` (the scanners' character classes);
4. :mod:`~toknz.pipeline.bpe` — the model: pieces to ids (merge list or ranks), with
   :mod:`~toknz.pipeline.bpe_reference` (the merge in plain Python, the kernels' twin);
5. :mod:`~toknz.pipeline.postprocess` — BOS/EOS templates around the ids;
6. :mod:`~toknz.pipeline.decoders` — ids back to bytes and text.

:mod:`~toknz.pipeline.byte_alphabet` is the GPT-2 byte <-> printable-character map that the
byte-level stages share. The stages import nothing of toknz but each other,
:mod:`toknz.errors` and :mod:`toknz.validate`; the kernels they call live in
``rust-free-core/toknz_core/``.
"""
