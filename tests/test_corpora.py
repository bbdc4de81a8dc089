"""The corpora shipped in corpora/: the MANIFEST matches the files, and the files are clean text."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import unicodedata
from pathlib import Path

import pytest

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
MANIFEST = CORPORA / "MANIFEST"
COLUMNS = ["path", "category", "language", "bytes", "sha256", "source", "version", "license",
           "extraction"]  # fmt: skip


def _rows() -> list[dict[str, str]]:
    lines = [ln for ln in MANIFEST.read_text(encoding="utf-8").splitlines() if ln and ln[0] != "#"]
    assert lines[0].split("\t") == COLUMNS
    rows = []
    for ln in lines[1:]:
        cells = ln.split("\t")
        assert len(cells) == len(COLUMNS), ln
        rows.append(dict(zip(COLUMNS, cells, strict=True)))
    return rows


ROWS = _rows()


def _by_path(path: str) -> dict[str, str]:
    return next(r for r in ROWS if r["path"] == path)


@pytest.mark.parametrize("row", ROWS, ids=[r["path"] for r in ROWS])
def test_file_matches_manifest(row: dict[str, str]) -> None:
    path = CORPORA / row["path"]
    assert path.is_file(), f"{row['path']} is listed in MANIFEST but missing"
    data = path.read_bytes()
    assert len(data) == int(row["bytes"])
    assert hashlib.sha256(data).hexdigest() == row["sha256"]
    assert len(data) <= 1_100_000, "each shipped corpus file stays near 1 MB or less"
    for col in ("source", "version", "license", "extraction"):
        assert row[col].strip(), f"{row['path']}: empty {col}"


@pytest.mark.parametrize("row", ROWS, ids=[r["path"] for r in ROWS])
def test_file_is_clean_utf8_text(row: dict[str, str]) -> None:
    data = (CORPORA / row["path"]).read_bytes()
    text = data.decode("utf-8")  # raises on invalid UTF-8
    assert "\r" not in text
    assert "\ufeff" not in text
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text), "control characters"
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert "\n" in text[:2000], "text has line structure"


def test_every_corpus_file_is_listed() -> None:
    listed = {r["path"] for r in ROWS}
    on_disk = {
        p.relative_to(CORPORA).as_posix()
        for p in CORPORA.rglob("*.txt")
        if not p.name.startswith(".")
    }
    assert on_disk == listed
    assert len(listed) == len(ROWS), "duplicate MANIFEST rows"


def test_categories_and_sizes() -> None:
    by_cat: dict[str, list[dict[str, str]]] = {}
    for r in ROWS:
        by_cat.setdefault(r["category"], []).append(r)
    assert set(by_cat) == {"prose", "code", "multilingual", "legal", "financial"}
    total = sum(int(r["bytes"]) for r in ROWS)
    assert 3_000_000 <= total <= 6_500_000
    assert sum(int(r["bytes"]) for r in by_cat["prose"]) >= 800_000
    code_langs = {r["language"] for r in by_cat["code"]}
    assert {"python", "c", "go", "rust", "javascript", "typescript"} <= code_langs
    nat_langs = {r["language"] for r in by_cat["multilingual"]}
    assert {"de", "fr", "es", "ru", "ja", "zh-cn"} <= nat_langs
    for r in by_cat["code"] + by_cat["multilingual"]:
        assert int(r["bytes"]) >= 100_000, r["path"]


def _letters(text: str) -> list[str]:
    return [c for c in text if c.isalpha()]


def _script_share(path: str, pred) -> float:  # type: ignore[no-untyped-def]
    letters = _letters((CORPORA / path).read_text(encoding="utf-8"))
    return sum(map(pred, letters)) / len(letters)


@pytest.mark.parametrize(
    ("path", "pattern", "minimum"),
    [
        ("multi/ru.txt", r"[\u0400-\u04ff]", 0.85),
        ("multi/el.txt", r"[\u0370-\u03ff\u1f00-\u1fff]", 0.85),
        ("multi/ja.txt", r"[\u3040-\u30ff\u4e00-\u9fff]", 0.85),
        ("multi/zh-cn.txt", r"[\u4e00-\u9fff]", 0.85),
        ("multi/ko.txt", r"[\uac00-\ud7af]", 0.85),
        ("multi/hi.txt", r"[\u0900-\u097f]", 0.85),
    ],
)
def test_non_latin_languages_are_really_translated(path: str, pattern: str, minimum: float) -> None:
    rx = re.compile(pattern)
    share = _script_share(path, lambda c: bool(rx.match(c)))
    assert share >= minimum, f"{path}: only {share:.0%} of letters in the expected script"


def test_japanese_has_kana() -> None:
    text = (CORPORA / "multi/ja.txt").read_text(encoding="utf-8")
    kana = len(re.findall(r"[\u3040-\u30ff]", text))
    assert kana / len(_letters(text)) > 0.3  # Japanese, not Chinese


@pytest.mark.parametrize(("path", "marker"), [("multi/de.txt", "äöüß"), ("multi/fr.txt", "éèàç"),
                                              ("multi/es.txt", "ñáéíó")])  # fmt: skip
def test_latin_languages_have_their_letters(path: str, marker: str) -> None:
    text = (CORPORA / path).read_text(encoding="utf-8")
    letters = _letters(text)
    accented = sum(c in marker for c in text.lower())
    assert accented / len(letters) > 0.005
    # untranslated LibreOffice help would leave common English words behind
    words = re.findall(r"[a-z]+", text.lower())
    english = sum(w in {"the", "and", "you", "this", "with"} for w in words)
    assert english / len(words) < 0.01


def test_english_prose_is_emma() -> None:
    text = (CORPORA / "en/austen_emma.txt").read_text(encoding="utf-8")
    assert text.startswith("EMMA\n")
    assert "Emma Woodhouse, handsome, clever, and rich" in text
    assert unicodedata.is_normalized("NFC", text)
    assert _by_path("en/austen_emma.txt")["category"] == "prose"


def test_code_files_look_like_their_language() -> None:
    checks = {
        "code/python_stdlib.txt": r"(?m)^def \w+\(",
        "code/c_libxcrypt.txt": r"(?m)^#include [<\"]",
        "code/go_stdlib.txt": r"(?m)^func \w+",
        "code/rust_core.txt": r"(?m)^\s*pub fn \w+",
        "code/javascript_typescript.txt": r"(?m)^function \w+\(",
        "code/typescript_effect.txt": r"(?m)^export (const|type|interface) \w+",
    }
    for path, pattern in checks.items():
        text = (CORPORA / path).read_text(encoding="utf-8")
        assert len(re.findall(pattern, text)) >= 20, path
    assert ": " in (CORPORA / "code/typescript_effect.txt").read_text()  # type annotations


def test_builder_helpers() -> None:
    """The builder's text cleaning and USFM stripping, on small inputs."""
    spec = importlib.util.spec_from_file_location("toknz_corpora_build", CORPORA / "build.py")
    assert spec and spec.loader
    build = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build
    try:
        spec.loader.exec_module(build)
        assert build.clean("\ufeffa\r\nb\rc\x00\n\n\n") == "a\nb\nc\n"
        assert build.clean("\n\n") == ""
        usfm = (
            "\\id GEN World English Bible\n\\c 1\n\\p\n\\v 1 In the beginning, God\\f + \\fr 1:1 "
            "\\ft a note\\f* created.\n\\v 2 The \\wj earth\\wj* was.\n\\q1 A line\n"
        )
        assert build.usfm_to_text(usfm) == "In the beginning, God created. The earth was.\nA line\n"
        paras = build.html_paragraphs(
            "<html><head><title>t</title></head><body><div>out</div>"
            "<div id='A'><h1>Title</h1><p>one <b>two</b></p><div><p>three</p></div></div>"
            "<p>after</p></body></html>",
            area_id="A",
        )
        assert paras == ["Title", "one two", "three"]
        assert build._in_script("Выберите Сервис - Options", "ru")
        assert not build._in_script("Choose Tools - Options", "ru")
        assert build.hash_order(["b", "a", "c"]) == build.hash_order(["c", "b", "a"])
        with pytest.raises(SystemExit) as exc:
            build.main(["--help"])
        assert exc.value.code == 0
    finally:
        sys.modules.pop(spec.name, None)


def test_r_reader_on_a_hand_made_stream() -> None:
    """R XDR serialization: a named character vector with an NA, as R writes it."""
    spec = importlib.util.spec_from_file_location("toknz_corpora_build2", CORPORA / "build.py")
    assert spec and spec.loader
    build = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build
    try:
        spec.loader.exec_module(build)

        def i32(v: int) -> bytes:
            return v.to_bytes(4, "big", signed=True)

        def charsxp(s: str | None) -> bytes:
            if s is None:
                return i32(9) + i32(-1)
            raw = s.encode()
            return i32(9 | (1 << 15)) + i32(len(raw)) + raw  # UTF8 flag in levels

        stream = (
            b"X\n" + i32(3) + i32(0x40201) + i32(0x30500) + i32(5) + b"UTF-8"
            + i32(16 | (1 << 9)) + i32(3) + charsxp("Emma") + charsxp("é") + charsxp(None)
            # attributes: pairlist (names = c("a","b","c"))
            + i32(2 | (1 << 10)) + i32(1) + charsxp("names")
            + i32(16) + i32(3) + charsxp("a") + charsxp("b") + charsxp("c")
            + i32(254)
        )  # fmt: skip
        value = build._RReader(stream).read()
        assert value.value == ["Emma", "é", None]
        assert value.attrs == {"names": ["a", "b", "c"]}
    finally:
        sys.modules.pop(spec.name, None)
