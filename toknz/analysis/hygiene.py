"""Vocabulary hygiene: entries a tokenizer can never produce, bytes it cannot encode, fillers.

:func:`check_vocabulary` inspects any tokenizer toknz loads (``tokenizer.json``
BPE, byte-level or SentencePiece-style; tiktoken rank files) and returns a
:class:`HygieneReport`. What it counts, exactly:

- **holes**: ids in ``0 .. n_vocab - 1`` held by neither a model token nor an
  added token (gaps in the id range).
- **padding**: added or model tokens whose name is a numbered filler:
  ``<pad_12>``, ``<unused3>``, ``[unused7]``, ``<|reserved_special_token_5|>``,
  ``<extra_id_0>``, ``<|extra_4|>``, ``<placeholder_9>``, ``<dummy_1>`` (see
  :data:`PADDING_NAME`; the match is case-insensitive).
- **duplicates**: groups of two or more ids whose tokens decode to the same
  bytes (added tokens included; an added token that *is* a model token, same
  id, counts once). A SentencePiece byte-fallback token ``<0xNN>`` that
  duplicates a one-character token is expected and only counted
  (``fallback_duplicates``).
- **unencodable bytes**: byte values ``0..255`` that the model cannot encode
  alone: for a byte-level model, bytes without a token of their own (a byte
  from input could only be dropped or become the unknown token); for a
  character model, bytes with no ``<0xNN>`` byte-fallback token (or
  ``byte_fallback`` off) and, for ASCII, no one-character token either.
- **lost bytes**: ASCII characters (``0..127``) that do not survive
  ``decode(encode(chr(b)))`` through the whole pipeline (normalizer,
  pre-tokenizer, model, decoder). An uncased (lower-casing) tokenizer loses
  the upper-case letters by design; a loss of a control character is the
  defect KL3M has ("ctrl\\x18char" decodes as "ctrlchar").
- **unreachable**: model tokens longer than one initial symbol (one byte, or
  one character for character models) that are not added tokens, and that no
  input can produce. BPE is context-free in this sense: a token appears in the
  encoding of some pre-token only if the pre-token made of its own bytes
  encodes to exactly that token (merges inside its span happen in the same
  order with or without neighbours). So a token is unreachable when
  encoding its own bytes as one pre-token with the merge list gives anything
  else. The reason is recorded:

  * ``no-merge``: no merge of the model makes it;
  * ``shadowed``: merges make it, but its bytes merge differently first
    (``encodes_as`` holds what they become);
  * ``unencodable-byte``: it holds a byte the model cannot encode;
  * ``invalid-utf8``: its bytes occur in no valid UTF-8 text (an impossible
    byte such as ``0xC0`` or ``0xFF``, or a broken sequence), so no text input
    produces it (only raw bytes could).

  Models with a whole-piece shortcut (tiktoken rank files; ``tokenizers``'
  ``ignore_merges``, e.g. Llama 3) encode a pre-token that is itself a token
  to that token without merging. For them a token that merging does not
  reach is still reachable when some text pre-tokenizes to exactly its
  bytes; this is tested on the token's own text (valid UTF-8, pre-tokenized
  alone), and a token split by the pre-tokenizer is reported with reason
  ``split-by-pretokenizer``. Reachability through a longer text whose
  pre-tokenization would cut exactly these bytes out is not searched; such a
  token is reported, so this category is an upper bound. Tokens reached only
  this way (not by merging) are counted in ``whole_piece_only``.

Models with a ``continuing_subword_prefix`` or an ``end_of_word_suffix``
(tokens spelled by their place in a word) are not checked for unreachable
entries: ``unreachable_checked`` is false.

Single bytes and single characters are the alphabet: never reported as
unreachable (the 13 bytes ``0xC0``, ``0xC1``, ``0xF5``-``0xFF`` occur in no
UTF-8 text, but a byte-level alphabet keeps them for decoding and raw input).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from toknz.pipeline.byte_alphabet import bytes_to_chars

if TYPE_CHECKING:
    from toknz.tokenizer import Tokenizer

__all__ = [
    "PADDING_NAME",
    "HygieneReport",
    "UnreachableToken",
    "check_vocabulary",
    "format_hygiene",
]

#: A numbered filler name (case-insensitive): ``<pad_12>``, ``<unused3>``, ``[unused7]``...
PADDING_NAME = re.compile(
    r"^(?:<\|?|\[)\s*(?:pad|padding|unused|reserved|reserved_special_token|extra_id|extra"
    r"|placeholder|dummy|filler|special|added|spare)[_\- ]?\d+\s*(?:\|?>|\])$",
    re.IGNORECASE,
)

_FALLBACK = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")

#: Reasons an entry is unreachable, in the order they are tried.
REASONS = ("unencodable-byte", "invalid-utf8", "no-merge", "shadowed", "split-by-pretokenizer")


@dataclass(frozen=True)
class UnreachableToken:
    """One model entry no input produces: its id, spelling (as in the file), bytes, and why."""

    id: int
    token: str
    reason: str
    encodes_as: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "token": self.token,
            "reason": self.reason,
            "encodes_as": list(self.encodes_as),
        }


@dataclass
class HygieneReport:
    """What :func:`check_vocabulary` found; every count is of ids (tokens).

    ``ok`` is true when there is no hole, duplicate, unencodable byte, lost
    byte or unreachable entry (padding names alone do not make a report bad).
    """

    name: str
    n_vocab: int
    model_tokens: int
    added_tokens: int
    byte_level: bool
    whole_piece_shortcut: bool
    holes: list[int] = field(default_factory=list)
    padding: list[tuple[int, str]] = field(default_factory=list)
    duplicates: list[list[int]] = field(default_factory=list)
    fallback_duplicates: int = 0
    unencodable_bytes: list[int] = field(default_factory=list)
    lost_bytes: list[int] = field(default_factory=list)
    unreachable: list[UnreachableToken] = field(default_factory=list)
    whole_piece_only: int = 0
    unreachable_checked: bool = True

    @property
    def ok(self) -> bool:
        return not (
            self.holes
            or self.duplicates
            or self.unencodable_bytes
            or self.lost_bytes
            or self.unreachable
        )

    def unreachable_by_reason(self) -> dict[str, int]:
        counts = dict.fromkeys(REASONS, 0)
        for u in self.unreachable:
            counts[u.reason] += 1
        return {k: v for k, v in counts.items() if v}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["unreachable"] = [u.to_dict() for u in self.unreachable]
        out["padding"] = [[i, name] for i, name in self.padding]
        out["unreachable_by_reason"] = self.unreachable_by_reason()
        out["ok"] = self.ok
        return out


def _valid_in_utf8_text(raw: bytes) -> bool:
    """True when ``raw`` is a substring of some valid UTF-8 text."""
    start = 0
    while start < len(raw) and start < 3 and (raw[start] & 0xC0) == 0x80:
        start += 1
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(raw[start:], final=False)
    except UnicodeDecodeError:
        return False
    if start:
        # Continuation bytes at the start need a lead byte that allows them.
        for lead in (b"\xc2", b"\xe0", b"\xe1", b"\xed", b"\xf0", b"\xf1", b"\xf4"):
            need = {b"\xc2": 1, b"\xe0": 2, b"\xe1": 2, b"\xed": 2}.get(lead, 3)
            if need < start:
                continue
            probe = lead + b"\x80" * (need - start) + raw[: min(len(raw), start + 4)]
            try:
                codecs.getincrementaldecoder("utf-8")().decode(probe, final=False)
                return True
            except UnicodeDecodeError:
                continue
        return False
    return True


def _merge_only(tok: Tokenizer, pieces: list[bytes | str]) -> list[tuple[int, ...]]:
    """Encode each piece with the merge list alone (no whole-piece shortcut).

    ``pieces`` are raw bytes for byte-level models and model-space strings
    for character models.
    """
    from toknz.pipeline.bpe import _kernels

    model = tok.model
    if not pieces:
        return []
    words: list[np.ndarray] = []
    if model.byte_level:
        byte_ids = np.array(
            [model.vocab.get(c, -1) for c in (bytes_to_chars(bytes([b])) for b in range(256))],
            dtype=np.int32,
        )
        for p in pieces:
            assert isinstance(p, bytes)
            words.append(byte_ids[np.frombuffer(p, dtype=np.uint8)])
    else:
        for p in pieces:
            assert isinstance(p, str)
            words.append(np.array(model._initial_symbols(p), dtype=np.int32))
    lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
    offsets = np.zeros(len(words) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    symbols = np.concatenate(words).astype(np.int32) if words else np.empty(0, np.int32)
    merged, out_offsets = _kernels().merge_words(symbols, offsets, *model.table)
    flat = merged.tolist()
    bounds = out_offsets.tolist()
    return [tuple(flat[bounds[w] : bounds[w + 1]]) for w in range(len(words))]


def check_vocabulary(tok: Tokenizer) -> HygieneReport:
    """Check ``tok``'s vocabulary; see the module docstring for what each finding means.

    Never raises on a loadable tokenizer; takes about a second per 100K tokens.

    >>> import toknz
    >>> report = check_vocabulary(toknz.load("gpt2"))
    >>> report.holes, report.unencodable_bytes
    ([], [])
    """
    from toknz.pipeline.pretokenize import pre_tokenize

    model = tok.model
    added = {t.id: t for t in tok.added_tokens}
    n_vocab = tok.n_vocab
    shortcut = model.merge_rule == "ranks" or bool(model.ignore_merges)
    report = HygieneReport(
        name=tok.name,
        n_vocab=n_vocab,
        model_tokens=sum(1 for t in model.id_to_token if t is not None),
        added_tokens=len(added),
        byte_level=model.byte_level,
        whole_piece_shortcut=shortcut,
    )

    # Holes and padding names.
    spelled: dict[int, str] = {}
    for i, t in enumerate(model.id_to_token):
        if t is not None:
            spelled[i] = t
    for i, a in added.items():
        spelled[i] = a.content
    report.holes = [i for i in range(n_vocab) if i not in spelled]
    report.padding = [(i, s) for i, s in sorted(spelled.items()) if PADDING_NAME.match(s)]

    # Duplicate byte strings (after the per-token decoder).
    ids = sorted(spelled)
    decoded = tok.decode_tokens_bytes(ids)
    by_bytes: dict[bytes, list[int]] = defaultdict(list)
    for i, raw in zip(ids, decoded, strict=True):
        by_bytes[raw].append(i)
    for group in by_bytes.values():
        if len(group) < 2:
            continue
        plain = [i for i in group if not _FALLBACK.match(spelled[i])]
        report.fallback_duplicates += len(group) - len(plain)
        if len(plain) >= 2:
            report.duplicates.append(plain)
    report.duplicates.sort()

    # Bytes the model cannot encode alone.
    vocab = model.vocab
    fallback = bool(model.byte_fallback)
    missing: set[int] = set()
    for b in range(256):
        if model.byte_level:
            ok = bytes_to_chars(bytes([b])) in vocab
        else:
            ok = fallback and f"<0x{b:02X}>" in vocab
            if not ok and b < 0x80:
                ok = chr(b) in vocab
        if not ok:
            missing.add(b)
    report.unencodable_bytes = sorted(missing)

    # ASCII characters lost on the way through the whole pipeline.
    for b in range(128):
        text = chr(b)
        try:
            back = tok.decode(tok.encode_ordinary(text))
        except Exception:  # noqa: BLE001 - any failure is a loss
            back = None
        if back != text:
            report.lost_bytes.append(b)

    # Unreachable model entries. Models with a continuing-subword prefix or an
    # end-of-word suffix spell tokens by their position in a word; not checked.
    if model.continuing_subword_prefix or model.end_of_word_suffix:
        report.unreachable_checked = False
        return report
    candidates: list[int] = []
    pieces: list[bytes | str] = []
    for i, t in enumerate(model.id_to_token):
        if t is None or i in added:
            continue
        if model.byte_level:
            raw = model.token_bytes(i) or b""
            if len(raw) < 2:
                continue
            if any(b in missing for b in raw):
                report.unreachable.append(UnreachableToken(i, t, "unencodable-byte"))
                continue
            if not _valid_in_utf8_text(raw):
                report.unreachable.append(UnreachableToken(i, t, "invalid-utf8"))
                continue
            pieces.append(raw)
        else:
            if len(t) < 2 or _FALLBACK.match(t):
                continue
            pieces.append(t)
        candidates.append(i)
    made = set(model.pair_arrays()[3].tolist())
    for i, got in zip(candidates, _merge_only(tok, pieces), strict=True):
        if got == (i,):
            continue
        t = spelled[i]
        if shortcut:
            text = (model.token_bytes(i) or b"").decode("utf-8", "replace")
            if pre_tokenize(tok.pre_tokenizer, text, False) == [text]:
                report.whole_piece_only += 1
                continue
            report.unreachable.append(UnreachableToken(i, t, "split-by-pretokenizer", got))
        elif i not in made:
            report.unreachable.append(UnreachableToken(i, t, "no-merge", got))
        else:
            report.unreachable.append(UnreachableToken(i, t, "shadowed", got))
    report.unreachable.sort(key=lambda u: u.id)
    return report


def _show(token: str, limit: int = 24) -> str:
    text = repr(token)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_hygiene(report: HygieneReport, *, examples: int = 5) -> str:
    """A terminal table of ``report``: one row per check with its count and a few examples."""
    rows: list[tuple[str, int, str]] = []
    rows.append(
        (
            "holes (ids with no token)",
            len(report.holes),
            ", ".join(map(str, report.holes[:examples])),
        )
    )
    rows.append(
        (
            "padding names",
            len(report.padding),
            ", ".join(f"{i}:{_show(s)}" for i, s in report.padding[:examples]),
        )
    )
    rows.append(
        (
            "duplicate byte strings (groups)",
            len(report.duplicates),
            "; ".join("=".join(str(i) for i in g) for g in report.duplicates[:examples]),
        )
    )
    rows.append(("byte-fallback duplicates", report.fallback_duplicates, ""))
    rows.append(
        (
            "unencodable bytes",
            len(report.unencodable_bytes),
            " ".join(f"0x{b:02X}" for b in report.unencodable_bytes[:examples]),
        )
    )
    rows.append(
        (
            "ASCII lost in decode(encode(c))",
            len(report.lost_bytes),
            " ".join(f"0x{b:02X}" for b in report.lost_bytes[:examples]),
        )
    )
    by_reason = report.unreachable_by_reason()
    if report.whole_piece_shortcut:
        rows.append(("reached only as a whole pre-token", report.whole_piece_only, ""))
    rows.append(
        (
            "unreachable tokens",
            len(report.unreachable),
            "" if report.unreachable_checked else "not checked (subword prefix/suffix model)",
        )
    )
    for reason, n in by_reason.items():
        shown = [u for u in report.unreachable if u.reason == reason][:examples]
        rows.append((f"  {reason}", n, ", ".join(f"{u.id}:{_show(u.token)}" for u in shown)))
    width = max(len(r[0]) for r in rows)
    lines = [
        f"{report.name}: {report.n_vocab:,} ids ({report.model_tokens:,} model tokens, "
        f"{report.added_tokens:,} added; {'byte-level' if report.byte_level else 'character'} BPE"
        f"{', whole-piece shortcut' if report.whole_piece_shortcut else ''})",
        f"{'check':<{width}}  {'count':>7}  examples",
    ]
    for label, n, ex in rows:
        lines.append(f"{label:<{width}}  {n:>7,}  {ex}")
    lines.append("verdict: " + ("clean" if report.ok else "defects found"))
    return "\n".join(lines)
