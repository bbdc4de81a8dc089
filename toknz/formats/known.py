"""Well-known tiktoken rank files, recognized by the sha256 of their bytes.

A rank file holds no split pattern and no special tokens, so toknz supplies
them for the files OpenAI published (the hashes tiktoken checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ENDOFTEXT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
ENDOFPROMPT = "<|endofprompt|>"


@dataclass(frozen=True)
class KnownRanks:
    name: str
    pattern: str  # a key of toknz.pipeline.pretokenize.PATTERNS
    special_tokens: dict[str, int] = field(default_factory=dict)


KNOWN_RANK_FILES: dict[str, KnownRanks] = {
    "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930": KnownRanks(
        "r50k_base", "r50k", {ENDOFTEXT: 50256}
    ),
    "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069": KnownRanks(
        "p50k_base", "p50k", {ENDOFTEXT: 50256}
    ),
    "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7": KnownRanks(
        "cl100k_base",
        "cl100k",
        {
            ENDOFTEXT: 100257,
            FIM_PREFIX: 100258,
            FIM_MIDDLE: 100259,
            FIM_SUFFIX: 100260,
            ENDOFPROMPT: 100276,
        },
    ),
    "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d": KnownRanks(
        "o200k_base", "o200k", {ENDOFTEXT: 199999, ENDOFPROMPT: 200018}
    ),
}
