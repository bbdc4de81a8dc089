"""The domain corpora shipped in corpora/legal and corpora/financial (built by corpora/build.py).

The MANIFEST rows match the files, train and held-out share no paragraph (exactly or nearly),
the files are clean UTF-8, and the text is what its name says.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
MANIFEST = CORPORA / "MANIFEST"
DOMAINS = ("legal", "financial")
SPLITS = ("train", "heldout")
FILES = [f"{d}/{s}.txt" for d in DOMAINS for s in SPLITS]


def _rows() -> dict[str, dict[str, str]]:
    lines = [ln for ln in MANIFEST.read_text(encoding="utf-8").splitlines() if ln and ln[0] != "#"]
    header = lines[0].split("\t")
    return {
        r["path"]: r for r in (dict(zip(header, ln.split("\t"), strict=True)) for ln in lines[1:])
    }


ROWS = _rows()


def _text(rel: str) -> str:
    return (CORPORA / rel).read_bytes().decode("utf-8")


def _paragraphs(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


# the definitions of "the same paragraph", written out here independently of corpora/build.py


def _key(para: str) -> str:
    return " ".join(re.findall(r"\w+", para.casefold()))


def _shingles(key: str, n: int = 5) -> set[str]:
    words = key.split()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def _overlaps(train: str, heldout: str) -> list[str]:
    """Held-out paragraphs whose words repeat a train paragraph, or half of whose word
    5-grams occur in train."""
    keys: set[str] = set()
    grams: set[str] = set()
    for p in _paragraphs(train):
        k = _key(p)
        keys.add(k)
        grams |= _shingles(k)
    bad = []
    for p in _paragraphs(heldout):
        k = _key(p)
        sh = _shingles(k)
        if k in keys or (sh and len(sh & grams) >= 0.5 * len(sh)):
            bad.append(p)
    return bad


@pytest.mark.parametrize("rel", FILES)
def test_file_matches_manifest(rel: str) -> None:
    row = ROWS.get(rel)
    assert row is not None, f"{rel} has no MANIFEST row"
    data = (CORPORA / rel).read_bytes()
    assert len(data) == int(row["bytes"])
    assert hashlib.sha256(data).hexdigest() == row["sha256"]
    assert row["category"] == rel.split("/")[0]
    assert row["language"] == "en"
    for col in ("source", "version", "license", "extraction"):
        assert row[col].strip(), f"{rel}: empty {col}"
    # every source named has a version, and the split is said
    assert len(row["source"].split(", ")) == len(row["version"].split(", "))
    assert rel.split("/")[1].removesuffix(".txt") + " split" in row["extraction"]


def test_package_files_are_recorded() -> None:
    """The sha256 of each PyPI/Debian package file the domain text came from is in MANIFEST."""
    recorded = {
        m.group(1)
        for m in re.finditer(r"^# package file (\S+): \S+ sha256 [0-9a-f]{64}$",
                             MANIFEST.read_text(encoding="utf-8"), re.M)
    }  # fmt: skip
    sources = {s for rel in FILES for s in ROWS[rel]["source"].split(", ")}
    wanted = {s for s in sources if s.startswith(("pypi:", "deb:"))}
    assert wanted and wanted <= recorded, wanted - recorded


@pytest.mark.parametrize("rel", FILES)
def test_file_is_clean_nonempty_utf8(rel: str) -> None:
    data = (CORPORA / rel).read_bytes()
    text = data.decode("utf-8")  # raises on invalid UTF-8
    assert len(data) >= 20_000
    assert "\r" not in text and "\ufeff" not in text
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text), "control characters"
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert not re.search(r"<(p|div|td|para|span|a)\b[^>]*>", text), "markup left in the text"
    paras = _paragraphs(text)
    assert len(paras) >= 100
    assert len(paras) == len(set(paras)), "a paragraph repeats within the file"


def test_total_size_is_small() -> None:
    total = sum((CORPORA / rel).stat().st_size for rel in FILES)
    assert total <= 1_500_000
    for d in DOMAINS:
        train = (CORPORA / f"{d}/train.txt").stat().st_size
        held = (CORPORA / f"{d}/heldout.txt").stat().st_size
        assert 0.05 <= held / (train + held) <= 0.4, d


@pytest.mark.parametrize("domain", DOMAINS)
def test_train_and_heldout_share_no_paragraph(domain: str) -> None:
    train = _text(f"{domain}/train.txt")
    heldout = _text(f"{domain}/heldout.txt")
    assert not set(_paragraphs(train)) & set(_paragraphs(heldout))
    bad = _overlaps(train, heldout)
    assert not bad, f"{len(bad)} held-out paragraphs repeat train text, e.g. {bad[0][:100]!r}"


def test_overlap_check_catches_copies() -> None:
    """The check above fails on a held-out text that copies train text, even re-punctuated."""
    train = _text("legal/train.txt")
    paras = _paragraphs(train)
    long_para = next(p for p in paras if len(p.split()) > 30)
    assert _overlaps(train, long_para.upper().replace(",", " ;") + "\n")
    words = long_para.split()
    assert _overlaps(train, " ".join(words[: len(words) * 3 // 4]) + " entirely new words here\n")
    assert not _overlaps(train, "A sentence that no license, statute or court ever wrote.\n")


def _rate(text: str, words: set[str]) -> float:
    """Occurrences of ``words`` per 1,000 words of ``text``."""
    tokens = re.findall(r"[a-z]+", text.lower())
    return 1000 * sum(t in words for t in tokens) / len(tokens)


LEGAL_WORDS = {
    "shall", "court", "courts", "license", "licensee", "licensor", "law", "laws", "rights",
    "liability", "liable", "warranty", "warranties", "hereby", "pursuant", "agreement",
    "provisions", "terms", "copyright", "damages", "jurisdiction", "statutes", "code",
}  # fmt: skip
FINANCIAL_WORDS = {
    "financial", "income", "assets", "asset", "liabilities", "equity", "revenue", "tax",
    "taxes", "cash", "net", "sales", "account", "accounts", "interest", "stock", "fair",
    "loan", "expense", "expenses", "balance", "capital", "company", "investment", "debt",
}  # fmt: skip


@pytest.mark.parametrize("split", SPLITS)
def test_legal_text_looks_legal(split: str) -> None:
    text = _text(f"legal/{split}.txt")
    rate = _rate(text, LEGAL_WORDS)
    prose = _rate(_text("en/austen_emma.txt"), LEGAL_WORDS)
    assert rate >= 25, f"only {rate:.1f} legal words per 1,000"
    assert rate >= 8 * prose
    lower = text.lower()
    for word in ("shall", "court", "license", "warranty", "liability"):
        assert _rate(lower, {word}) >= 0.3, word
    assert _rate(text, FINANCIAL_WORDS) < rate / 2


@pytest.mark.parametrize("split", SPLITS)
def test_financial_text_looks_financial(split: str) -> None:
    text = _text(f"financial/{split}.txt")
    rate = _rate(text, FINANCIAL_WORDS)
    assert rate >= 25, f"only {rate:.1f} financial words per 1,000"
    assert rate >= 8 * _rate(_text("en/austen_emma.txt"), FINANCIAL_WORDS)
    assert _rate(text, LEGAL_WORDS) < rate
    assert re.search(r"\$ ?[\d,.]+", text) or split == "heldout"  # amounts in the filing notes


def test_no_code_in_domain_text() -> None:
    """Code masquerading as legal or financial text would show its syntax."""
    for rel in FILES:
        text = _text(rel)
        code_lines = sum(
            bool(re.search(r"(^\s*(def|import|class|function|#include)\b)|[{}]\s*$|=>|::", ln))
            for ln in _paragraphs(text)
        )
        assert code_lines / len(_paragraphs(text)) < 0.02, rel


@pytest.fixture(scope="module")
def build() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location(
        "toknz_corpora_build_domain", CORPORA / "build.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_builder_split_rule_and_check(build: ModuleType) -> None:
    """The builder's own check agrees with the one here, and its split is by document name."""
    for d in DOMAINS:
        assert build.check_domain_split(_text(f"{d}/train.txt"), _text(f"{d}/heldout.txt")) == []
    assert build.check_domain_split(
        "The Licensee shall pay the fee.\n", "the licensee SHALL pay, the fee\n"
    )
    names = [f"doc{i}" for i in range(2000)]
    held = sum(build.doc_split(n) == "heldout" for n in names)
    assert 0.1 * len(names) < held < 0.2 * len(names)
    assert all(build.doc_split(n) == build.doc_split(n) for n in names[:50])


def test_builder_paragraph_helpers(build: ModuleType) -> None:
    assert build.text_paragraphs(
        "Section 1.\n  The party\n shall pay.\n\n----\n\nEnd of\nterms\n"
    ) == [
        "Section 1. The party shall pay.",
        "End of terms",
    ]
    xml = (
        "<chapter><sect1 id='s1'><title>Loans</title><para>A loan is a liability.</para>"
        "<para>Click <guibutton>OK</guibutton> to save.</para>"
        "<glossentry><glossterm>Equity</glossterm><glossdef><para>Ownership.</para></glossdef>"
        "</glossentry></sect1></chapter>"
    )
    parser = build._DocBook()
    parser.feed(xml)
    parser.close()
    parser.flush()
    assert [s for s in parser.sections if s[1]] == [
        ("s1", ["A loan is a liability.", "Equity: Ownership."])
    ]
    html = (
        "<div><p>Notes</p><table><tr><td><div>Cash</div></td><td>$</td><td>1,234</td></tr>"
        "<tr><td>2018</td></tr></table></div>"
    )
    assert build._filing_paragraphs(html) == ["Notes", "Cash $ 1,234"]
