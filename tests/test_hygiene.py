"""``toknz inspect --check``: planted defects are found, a clean trained tokenizer has none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import toknz
from toknz.analysis.hygiene import (
    PADDING_NAME,
    _valid_in_utf8_text,
    check_vocabulary,
    format_hygiene,
)
from toknz.cli import main
from toknz.pipeline.byte_alphabet import bytes_to_chars
from toknz.train import train

REPO = Path(__file__).resolve().parents[1]
EMMA = REPO / "corpora/en/austen_emma.txt"


@pytest.fixture(scope="module")
def clean_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("hyg") / "emma.txt"
    src.write_text(EMMA.read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    tok = train([src], vocab_size=700, special_tokens=["<|endoftext|>"], threads=1)
    out = src.with_name("clean.json")
    tok.save(out)
    return out


def _plant_defects(clean: Path, out: Path) -> dict[str, object]:
    """Write a copy of ``clean`` with known defects; return what was planted."""
    data = json.loads(clean.read_text(encoding="utf-8"))
    model = data["model"]
    vocab: dict[str, int] = model["vocab"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    n = max(vocab.values()) + 1

    # 1. A byte without its token (KL3M's 0x18): its id becomes a hole.
    gone = bytes_to_chars(b"\x18")
    assert not any(gone in a or gone in b for a, b in merges)
    gone_id = vocab.pop(gone)
    # 2. A token no merge makes.
    vocab["zqxjzq"] = n
    # 3. A shadowed token: (a, bc) appended, while (a, b) merges before (b, c).
    rank = {m: r for r, m in enumerate(merges)}
    shadow = None
    for (a, b), r1 in rank.items():
        if len(a) != 1 or len(b) != 1:
            continue
        for (b2, c), r2 in rank.items():
            if b2 == b and len(c) == 1 and r2 > r1 and a + b + c not in vocab:
                shadow = (a, b + c)
                break
        if shadow:
            break
    assert shadow is not None
    vocab[shadow[0] + shadow[1]] = n + 1
    merges.append(shadow)
    # 4. A duplicate byte string: a literal space beside the byte token "Ġ".
    vocab[" "] = n + 2
    # 5. A gap in the id range (n + 3) and numbered padding after it.
    pads = [f"<pad_{k}>" for k in range(3)]
    for k, p in enumerate(pads):
        vocab[p] = n + 4 + k
        data["added_tokens"].append(
            {
                "id": n + 4 + k,
                "content": p,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
        )
    model["merges"] = [list(m) for m in merges]
    out.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return {
        "holes": [gone_id, n + 3],
        "no_merge": n,
        "shadowed": n + 1,
        "duplicate": sorted([vocab[bytes_to_chars(b" ")], n + 2]),
        "padding": [(n + 4 + k, p) for k, p in enumerate(pads)],
    }


def test_clean_trained_tokenizer_has_no_defects(clean_file: Path) -> None:
    report = check_vocabulary(toknz.Tokenizer.from_file(clean_file))
    assert report.ok, format_hygiene(report)
    assert report.padding == [] and report.fallback_duplicates == 0
    assert report.n_vocab == 700
    assert CliRunner().invoke(main, ["inspect", "--check", str(clean_file)]).exit_code == 0


def test_planted_defects_are_found(clean_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    planted = _plant_defects(clean_file, bad)
    report = check_vocabulary(toknz.Tokenizer.from_file(bad))
    assert not report.ok
    assert report.holes == planted["holes"]
    assert report.unencodable_bytes == [0x18]
    assert report.lost_bytes == [0x18]  # "\x18" is dropped on encode: the byte is lost
    assert report.duplicates == [planted["duplicate"]]
    assert report.padding == planted["padding"]
    reasons = {u.id: u.reason for u in report.unreachable}
    assert reasons == {planted["no_merge"]: "no-merge", planted["shadowed"]: "shadowed"}
    shadowed = next(u for u in report.unreachable if u.reason == "shadowed")
    assert len(shadowed.encodes_as) == 2

    # The CLI prints the same as a table and as JSON.
    runner = CliRunner()
    table = runner.invoke(main, ["inspect", "--check", str(bad)])
    assert table.exit_code == 1, table.output
    assert "defects found" in table.output and "no-merge" in table.output
    as_json = runner.invoke(main, ["inspect", "--check", "--json", str(bad)])
    assert as_json.exit_code == 1, as_json.output
    parsed = json.loads(as_json.output)
    assert parsed["holes"] == planted["holes"]
    assert parsed["unreachable_by_reason"] == {"no-merge": 1, "shadowed": 1}
    assert parsed["ok"] is False


def test_invalid_utf8_and_missing_byte_tokens(clean_file: Path, tmp_path: Path) -> None:
    data = json.loads(clean_file.read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    n = max(vocab.values()) + 1
    vocab[bytes_to_chars(b"a\xff")] = n  # 0xFF occurs in no UTF-8 text
    vocab[bytes_to_chars(b"\xc3\xa9\xc3")] = n + 1  # a valid prefix: only "no-merge"
    path = tmp_path / "u.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    report = check_vocabulary(toknz.Tokenizer.from_file(path))
    assert {u.id: u.reason for u in report.unreachable} == {n: "invalid-utf8", n + 1: "no-merge"}


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        (b"abc", True),
        (b"\xa9abc", True),  # the tail of a character
        (b"\xe2\x80", True),  # the head of one
        (b"\xff", False),
        (b"\xc0\x80", False),
        (b"a\x80b", False),
        (b"\x80\x80\x80\x80", False),  # four continuation bytes: no character is that long
    ],
)
def test_valid_in_utf8_text(raw: bytes, ok: bool) -> None:
    assert _valid_in_utf8_text(raw) is ok


def test_padding_names() -> None:
    for name in (
        "<pad_123>",
        "<unused7>",
        "[unused12]",
        "<|reserved_special_token_5|>",
        "<extra_id_0>",
    ):
        assert PADDING_NAME.match(name), name
    for name in ("<pad>", "<|endoftext|>", "padding", "<unk>", "<0x41>"):
        assert not PADDING_NAME.match(name), name


def test_real_tokenizers_known_findings() -> None:
    from conftest import require_file

    require_file("cl100k_base")
    report = check_vocabulary(toknz.load("cl100k_base"))
    # tiktoken leaves 100256 and 100261..100275 unused between its special tokens.
    assert report.holes == [100256, *range(100261, 100276)]
    assert not report.unreachable and not report.unencodable_bytes and not report.duplicates
