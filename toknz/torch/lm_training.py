"""Train toknz's language models (hierarchical, BPE, bytes) on the same text, comparably.

``toknz train-lm`` is a thin layer over this module. Three parts:

**Data** (:func:`load_corpus`). Files and folders are read with toknz's corpus readers
(:func:`toknz.train.inputs.iter_chunks`: plain text, ``.jsonl``/``.parquet`` with a text
field, ``.gz``/``.zst``). Each document (a whole text file, or one record) is cut into
*windows* of at most ``seq_bytes`` UTF-8 bytes, cut only at character starts. The held-out
split is **the last ``heldout`` fraction of each file's windows** (rounded up; a file of one
window is all training): a contiguous tail of every file that no training window overlaps, the
same for every architecture, so their bits per byte compare.

**Sizing** (:func:`size_for`). Each architecture's default config is scaled in width (every
transformer in it keeps its share of the widest one's ``dim``; depths stay) until its trainable
parameter count is nearest the target; counts are exact (the model is built on the ``meta``
device).

**Training** (:func:`train_lm`). AdamW, linear warmup then cosine decay to a tenth of the
learning rate, gradient clipping; it stops after ``steps`` optimizer steps or ``minutes`` of
training time (the time spent in steps: evaluation and checkpoints are not counted), whichever
comes first. Held-out bits per byte is ``sum(nll) / sum(bytes) / ln 2`` over every held-out
window (exact, not a mean of batch means), every ``eval_every`` steps and at the end. The
output folder holds:

- ``checkpoint/``: a ``save_pretrained`` folder (load it with the architecture's
  ``from_pretrained``) plus ``trainer_state.pt`` (optimizer, step, training seconds, RNG
  states, data position, log). Written into a temporary folder and renamed, so a killed run
  leaves the previous checkpoint whole; ``resume=True`` continues from it, and gives the
  weights an uninterrupted run of the same steps gives;
- ``log.json``: the run's settings, parameter count and one entry per evaluation (step,
  training seconds, mean training loss since the previous entry, held-out bits per byte),
  rewritten atomically at each evaluation.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("hello world, " * 40)
    >>> corpus = load_corpus([folder / "a.txt"], seq_bytes=64, heldout=0.25)
    >>> len(corpus.train), len(corpus.heldout), corpus.heldout_bytes
    (6, 3, 136)
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from toknz.errors import InputError, UsageError
from toknz.formats._io import atomic_write
from toknz.torch.layers import TransformerConfig
from toknz.torch.saving import CONFIG_NAME, PretrainedModule

ARCHS = ("hierarchical", "bpe", "bytes")
CHECKPOINT = "checkpoint"
STATE_NAME = "trainer_state.pt"
LOG_NAME = "log.json"
_DOCUMENT_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet")


# ----------------------------------------------------------------------------------- data


@dataclass
class Corpus:
    """Training and held-out windows (``str``, at most ``seq_bytes`` UTF-8 bytes each)."""

    train: list[str]
    heldout: list[str]
    files: list[str]
    seq_bytes: int
    heldout_fraction: float

    @property
    def train_bytes(self) -> int:
        """UTF-8 bytes of the training windows."""
        return sum(len(w.encode("utf-8", "surrogatepass")) for w in self.train)

    @property
    def heldout_bytes(self) -> int:
        """UTF-8 bytes of the held-out windows."""
        return sum(len(w.encode("utf-8", "surrogatepass")) for w in self.heldout)

    def fingerprint(self) -> str:
        """A hash of every window and its side (a resumed run checks the data is the same)."""
        h = hashlib.sha256()
        for side, windows in ((b"T", self.train), (b"H", self.heldout)):
            for w in windows:
                data = w.encode("utf-8", "surrogatepass")
                h.update(side + len(data).to_bytes(8, "little") + data)
        return h.hexdigest()


def cut_windows(text: str, seq_bytes: int) -> list[str]:
    """``text`` cut into consecutive pieces of at most ``seq_bytes`` UTF-8 bytes, each ending at
    a character boundary (a character longer than ``seq_bytes`` makes a piece of its own).

    >>> cut_windows("añb añb", 3)
    ['añ', 'b a', 'ñb']
    """
    if seq_bytes < 1:
        raise UsageError(f"seq_bytes must be at least 1, not {seq_bytes}")
    data = text.encode("utf-8", "surrogatepass")
    out: list[str] = []
    pos = 0
    while pos < len(data):
        end = min(pos + seq_bytes, len(data))
        while end < len(data) and end > pos and (data[end] & 0xC0) == 0x80:
            end -= 1
        if end == pos:  # one character longer than seq_bytes
            end = pos + 1
            while end < len(data) and (data[end] & 0xC0) == 0x80:
                end += 1
        out.append(data[pos:end].decode("utf-8", "surrogatepass"))
        pos = end
    return out


def _documents(path: str, field_name: str | None) -> list[str]:
    from toknz.train.inputs import _logical_name, iter_chunks

    chunks = iter_chunks([path], field_name=field_name)
    if _logical_name(path).endswith(_DOCUMENT_SUFFIXES):
        return [c for c in chunks if c]
    text = "".join(chunks)
    return [text] if text else []


def load_corpus(
    paths: Sequence[str | os.PathLike[str]],
    *,
    seq_bytes: int = 512,
    heldout: float = 0.1,
    glob: str | None = None,
    field_name: str | None = None,
    exclude: str | os.PathLike[str] | None = None,
) -> Corpus:
    """Read files/folders into training and held-out windows (see the module docstring).

    In: paths (folders are searched recursively for files matching ``glob``), ``seq_bytes``
    (UTF-8 bytes per window), ``heldout`` (the fraction of each file's windows, from its end,
    held out; ``0 < heldout < 1``), ``field_name`` for ``.jsonl``/``.parquet``, ``exclude``
    a folder whose files are skipped (a run's own output inside a corpus folder). Out: a
    :class:`Corpus`. Raises :class:`~toknz.errors.InputError` for a missing or unreadable file
    (with its offset), an empty corpus or one too small to hold anything out.
    """
    from toknz.train.inputs import expand_paths

    if not 0.0 < heldout < 1.0:
        raise UsageError(f"heldout must be a fraction between 0 and 1 (exclusive), not {heldout}")
    if seq_bytes < 1:
        raise UsageError(f"seq_bytes must be at least 1, not {seq_bytes}")
    names = [str(p) for p in paths]
    if "-" in names:
        raise UsageError("train-lm reads files, not standard input (a resumed run reads it again)")
    files = expand_paths(names, glob)
    if exclude is not None:
        skip = Path(exclude).resolve()
        files = [f for f in files if not Path(f).resolve().is_relative_to(skip)]
        if not files:
            raise InputError(f"{', '.join(names)}: no files besides the output folder {exclude}")
    train: list[str] = []
    held: list[str] = []
    for path in files:
        windows = [w for doc in _documents(path, field_name) for w in cut_windows(doc, seq_bytes)]
        n_held = math.ceil(len(windows) * heldout) if len(windows) > 1 else 0
        n_held = min(n_held, len(windows) - 1) if windows else 0
        train.extend(windows[: len(windows) - n_held])
        held.extend(windows[len(windows) - n_held :])
    where = ", ".join(files[:3]) + ("..." if len(files) > 3 else "")
    if not train:
        raise InputError(f"{where}: the corpus holds no text to train on")
    if not held:
        raise InputError(
            f"{where}: too little text to hold out {heldout:.0%} (every file is one window of "
            f"{seq_bytes} bytes or less); add text or lower --seq-bytes"
        )
    return Corpus(
        train=train, heldout=held, files=files, seq_bytes=seq_bytes, heldout_fraction=heldout
    )


# ----------------------------------------------------------------------------------- models


def model_class(arch: str) -> type[PretrainedModule]:
    """The model class of ``arch`` (``hierarchical``, ``bpe`` or ``bytes``), imported lazily."""
    if arch == "hierarchical":
        from toknz.torch.hierarchical import HierarchicalLM

        return HierarchicalLM
    if arch == "bpe":
        from toknz.torch.token_lm import TokenLevelLM

        return TokenLevelLM
    if arch == "bytes":
        try:
            from toknz.torch import byte_lm
        except ImportError as exc:
            raise UsageError(f"the bytes architecture is not available ({exc})") from None
        return byte_lm.ByteLevelLM  # type: ignore[no-any-return]
    raise UsageError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHS)}")


def _default_config(
    arch: str, vocab_size: int | None, overrides: Mapping[str, Any] | None = None
) -> Any:
    cls = model_class(arch)
    if arch == "bpe":
        if not vocab_size:
            raise UsageError("sizing the bpe architecture needs its vocab_size")
        config = cls.config_class(vocab_size=vocab_size)
    else:
        config = cls.config_class()
    return dataclasses.replace(config, **overrides) if overrides else config


def _transformer_fields(config: Any) -> list[str]:
    return [
        f.name
        for f in dataclasses.fields(config)
        if isinstance(getattr(config, f.name), TransformerConfig)
    ]


def _scaled(config: Any, width: int) -> Any:
    """``config`` with its widest transformer ``width`` wide and the others in proportion."""
    names = _transformer_fields(config)
    widest = max(getattr(config, n).dim for n in names)
    changes = {}
    for name in names:
        t = getattr(config, name)
        want = max(1.0, width * t.dim / widest)
        heads = max(1, min(t.heads, int(want) // 16))
        step = 2 * heads
        dim = max(step, round(want / step) * step)
        changes[name] = dataclasses.replace(t, dim=dim, heads=heads)
    return dataclasses.replace(config, **changes)


def _build(arch: str, config: Any, tokenizer: Any = None) -> PretrainedModule:
    cls = model_class(arch)
    if arch == "bpe":
        return cls(config, tokenizer)  # type: ignore[call-arg]
    return cls(config)  # type: ignore[call-arg]


def count_parameters(arch: str, config: Any) -> int:
    """Trainable parameters of ``arch`` built from ``config`` (on the meta device: no memory)."""
    with torch.device("meta"):
        model = _build(arch, config)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass
class Sizing:
    """What :func:`size_for` chose: the config and its exact trainable parameter count."""

    arch: str
    config: Any
    params: int


def size_for(
    arch: str,
    target_params: int,
    *,
    vocab_size: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Sizing:
    """The config of ``arch`` whose trainable parameter count is nearest ``target_params``.

    The architecture's default config, with ``overrides`` (other config fields, such as a
    byte model's ``gate_layer``) applied, is scaled in width (:func:`_scaled`); depths stay.
    The ``bpe`` architecture needs ``vocab_size`` (its tokenizer's ``n_vocab``).

    >>> s = size_for("hierarchical", 500_000)
    >>> abs(s.params - 500_000) / 500_000 < 0.1
    True
    """
    if target_params < 1:
        raise UsageError(f"the parameter target must be positive, not {target_params}")
    base = _default_config(arch, vocab_size, overrides)
    if not _transformer_fields(base):
        raise UsageError(f"cannot size {arch}: its config has no TransformerConfig to widen")
    best: Sizing | None = None
    lo, hi = 2, 8192
    # params grow with width: bisect, then look at the neighbours for the nearest.
    while hi - lo > 2:
        mid = (lo + hi) // 2
        if count_parameters(arch, _scaled(base, mid)) < target_params:
            lo = mid
        else:
            hi = mid
    seen: set[str] = set()
    for width in range(max(2, lo - 32), hi + 33, 2):
        config = _scaled(base, width)
        key = repr(config)
        if key in seen:
            continue
        seen.add(key)
        params = count_parameters(arch, config)
        if best is None or abs(params - target_params) < abs(best.params - target_params):
            best = Sizing(arch, config, params)
    assert best is not None
    return best


# ----------------------------------------------------------------------------------- training


@dataclass
class TrainLMOptions:
    """Settings of a :func:`train_lm` run.

    ``params``: the trainable parameter target (``None``: the architecture's default config);
    ``steps`` / ``minutes``: stop after this many optimizer steps / minutes of training
    (counted over resumes; at least one must be given); ``batch_size`` windows of
    ``seq_bytes`` UTF-8 bytes a step; ``lr`` the peak learning rate, reached after
    ``warmup_steps``; ``eval_every`` / ``checkpoint_every`` in steps (0: only at the end);
    ``heldout`` the fraction of each file held out; ``vocab_size`` of the BPE tokenizer the
    ``bpe`` architecture trains on the training windows; ``backbone`` a ``transformers``
    folder whose first ``backbone_layers`` blocks become the hierarchical model's backbone;
    ``device`` ``cpu``, ``cuda`` or ``auto``; ``eval_windows`` caps the held-out windows
    evaluated (the first ones; ``None``: all). ``gate_layer`` and ``target_deletion`` give the
    ``bytes`` architecture an MrT5 delete gate after that many layers, held at that deletion
    rate (:class:`~toknz.torch.byte_lm.ByteLMConfig`); the model is sized with its gate.
    ``symmetric_controller`` lets that rate's controller pull the deletion rate down too.
    """

    arch: str = "hierarchical"
    params: int | None = None
    steps: int | None = None
    minutes: float | None = None
    batch_size: int = 16
    seq_bytes: int = 512
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 200
    checkpoint_every: int = 500
    heldout: float = 0.1
    vocab_size: int = 4096
    backbone: str | None = None
    backbone_layers: int | None = None
    device: str = "auto"
    seed: int = 0
    compile: bool = False
    eval_windows: int | None = None
    glob: str | None = None
    field_name: str | None = None
    gate_layer: int | None = None
    target_deletion: float | None = None
    symmetric_controller: bool = False

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise UsageError(
                f"unknown architecture {self.arch!r}; expected one of {', '.join(ARCHS)}"
            )
        if self.steps is None and self.minutes is None:
            raise UsageError("give a stop: steps or minutes (or both)")
        if self.steps is not None and self.steps < 1:
            raise UsageError(f"steps must be at least 1, not {self.steps}")
        if self.minutes is not None and not self.minutes > 0:
            raise UsageError(f"minutes must be positive, not {self.minutes}")
        for name in ("batch_size", "seq_bytes"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.backbone is not None and self.arch != "hierarchical":
            raise UsageError("a pretrained backbone is for the hierarchical architecture only")
        if self.backbone_layers is not None and self.backbone is None:
            raise UsageError("backbone_layers cuts a pretrained backbone: give backbone too")
        if self.backbone is not None and self.params is not None:
            raise UsageError("a pretrained backbone fixes the model's size: drop params")
        gated = self.gate_layer is not None or self.target_deletion is not None
        if (gated or self.symmetric_controller) and self.arch != "bytes":
            raise UsageError("a delete gate is for the bytes architecture only")

    def model_overrides(self) -> dict[str, Any]:
        """The config fields these options set beyond the architecture's defaults."""
        gate = {
            "gate_layer": self.gate_layer,
            "target_deletion": self.target_deletion,
            "controller_symmetric": self.symmetric_controller or None,
        }
        return {k: v for k, v in gate.items() if v is not None}


#: The settings a resumed run must share with the run it continues.
_DATA_SETTINGS = ("arch", "batch_size", "seq_bytes", "heldout", "seed", "glob", "field_name")


@dataclass
class TrainLMResult:
    """What :func:`train_lm` did: the model, its parameter count, the step reached, training
    seconds, the final held-out bits per byte and every log entry."""

    model: nn.Module
    params: int
    step: int
    seconds: float
    heldout_bpb: float
    log: list[dict[str, float]] = field(default_factory=list)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {name!r}: CUDA is not available here (use --device cpu)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; expected cpu, cuda or auto") from None


def _train_tokenizer(windows: list[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained (``toknz.train.train``) on the training windows."""
    from toknz.train import train

    with tempfile.TemporaryDirectory(prefix="toknz-train-lm-") as tmp:
        path = Path(tmp) / "train.txt"
        path.write_text("".join(windows), encoding="utf-8", errors="surrogatepass")
        return train([str(path)], vocab_size=vocab_size, threads=1)


def _new_model(options: TrainLMOptions, corpus: Corpus) -> PretrainedModule:
    arch = options.arch
    if options.backbone is not None:
        from toknz.torch.hierarchical import HierarchicalLM

        return HierarchicalLM.with_backbone(options.backbone, layers=options.backbone_layers)
    tokenizer = None
    vocab = None
    if arch == "bpe":
        tokenizer = _train_tokenizer(corpus.train, options.vocab_size)
        vocab = tokenizer.n_vocab
    overrides = options.model_overrides()
    if options.params is not None:
        config = size_for(arch, options.params, vocab_size=vocab, overrides=overrides).config
    else:
        config = _default_config(arch, vocab, overrides)
    return _build(arch, config, tokenizer)


def lr_factor(step: int, progress: float, warmup: int) -> float:
    """Warmup over ``warmup`` steps, then cosine from 1 to 0.1 over ``progress`` in [0, 1]."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def _progress(step: int, seconds: float, options: TrainLMOptions) -> float:
    parts = []
    if options.steps is not None:
        parts.append(step / options.steps)
    if options.minutes is not None:
        parts.append(seconds / (options.minutes * 60))
    return max(parts)


def _batch_indices(n: int, batch: int, position: int, seed: int) -> tuple[list[int], int]:
    """The window indices of the batch at data ``position`` (epoch-wise shuffles, seeded)."""
    batch = min(batch, n)
    per_epoch = n // batch
    epoch, k = divmod(position, per_epoch)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=gen)
    return order[k * batch : (k + 1) * batch].tolist(), position + 1


@torch.no_grad()
def evaluate_bpb(
    model: nn.Module,
    windows: Sequence[str],
    *,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
) -> float:
    """Held-out bits per byte of ``model`` on ``windows`` (texts): the summed nats of every
    window (each byte and its end of text) over their summed UTF-8 bytes, over ``ln 2``.

    >>> import torch
    >>> from toknz.torch.hierarchical import HierarchicalConfig, HierarchicalLM
    >>> from toknz.torch.layers import TransformerConfig
    >>> t = TransformerConfig(dim=16, depth=1, heads=2)
    >>> model = HierarchicalLM(HierarchicalConfig(encoder=t, backbone=t, decoder=t))
    >>> 4 < evaluate_bpb(model, ["some text", "more"]) < 20
    True
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    batcher = model.batcher()  # type: ignore[operator]
    nll = 0.0
    n_bytes = 0
    try:
        for i in range(0, len(windows), batch_size):
            batch = batcher(list(windows[i : i + batch_size])).to(device)
            with _autocast(device):
                out = model(batch)
            nll += float(out.nll_sum)
            n_bytes += int(out.n_bytes)
    finally:
        model.train(was_training)
    return nll / (n_bytes * math.log(2)) if n_bytes else math.nan


def _autocast(device: torch.device) -> Any:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _checkpoint_folder(out: Path) -> Path | None:
    """The checkpoint to resume from (the previous one if a save was cut between renames)."""
    for name in (CHECKPOINT, CHECKPOINT + ".old"):
        folder = out / name
        if (folder / STATE_NAME).is_file() and (folder / CONFIG_NAME).is_file():
            return folder
    return None


def _save_checkpoint(out: Path, model: PretrainedModule, state: dict[str, Any]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{CHECKPOINT}.", suffix=".tmp", dir=out))
    try:
        tmp.chmod(0o755)  # mkdtemp's folder is private; a checkpoint is an ordinary folder
        model.save_pretrained(tmp)
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write(tmp / STATE_NAME, buf.getvalue())
        final, old = out / CHECKPOINT, out / (CHECKPOINT + ".old")
        # At every moment one whole checkpoint is on disk (see _checkpoint_folder).
        if final.exists():
            if old.exists():
                shutil.rmtree(old)
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_log(out: Path, header: dict[str, Any], entries: list[dict[str, float]]) -> None:
    data = dict(header, evals=entries)
    atomic_write(out / LOG_NAME, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def _describe(config: Any) -> Any:
    from toknz.torch.saving import _config_dict

    return _config_dict(config)


def train_lm(
    paths: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    options: TrainLMOptions,
    *,
    resume: bool = False,
    progress: bool = False,
    on_step: Callable[[int, float], None] | None = None,
    on_start: Callable[[dict[str, Any]], None] | None = None,
    corpus: Corpus | None = None,
) -> TrainLMResult:
    """Train ``options.arch`` on the text of ``paths``, writing into the folder ``output``.

    In: corpus files/folders (see :func:`load_corpus`), an output folder, the settings. Out: a
    :class:`TrainLMResult` (its ``heldout_bpb`` in bits per UTF-8 byte of the held-out
    windows). ``resume`` continues from ``output/checkpoint`` (an error when there is none, or
    it is another architecture or other data settings); without it an existing checkpoint is
    an error (nothing is overwritten). ``progress`` shows a tqdm bar; ``on_start(info)`` is
    called once the model is built, with the log's header (``params``, ``device``, window
    counts...); ``on_step(step, loss)`` after every step (and its checkpoint). ``corpus``
    skips reading ``paths``.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("the cat sat on the mat. " * 50)
    >>> opts = TrainLMOptions(arch="hierarchical", params=30_000, steps=2, batch_size=4,
    ...                       seq_bytes=64, warmup_steps=1, eval_every=0)
    >>> result = train_lm([folder / "a.txt"], folder / "run", opts)
    >>> result.step, sorted(p.name for p in (folder / "run").iterdir())
    (2, ['checkpoint', 'log.json'])
    """
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    found = _checkpoint_folder(out) if out.is_dir() else None
    if resume and found is None:
        raise UsageError(f"{out}: no checkpoint to resume from ({out / CHECKPOINT} is missing)")
    if not resume and found is not None:
        raise UsageError(
            f"{out}: holds a checkpoint already; pass --resume to continue it or choose "
            "another output folder"
        )
    state: dict[str, Any] | None = None
    if found is not None:
        state = _load_state(found)
        saved = state["settings"]
        for name in _DATA_SETTINGS:
            if saved.get(name) != getattr(options, name):
                raise UsageError(
                    f"{found}: was trained with {name}={saved.get(name)!r}, not "
                    f"{getattr(options, name)!r}; resume with the same setting"
                )
    if corpus is None:
        corpus = load_corpus(
            paths,
            seq_bytes=options.seq_bytes,
            heldout=options.heldout,
            glob=options.glob,
            field_name=options.field_name,
            exclude=out,
        )
    fingerprint = corpus.fingerprint()
    if state is not None and state["corpus"] != fingerprint:
        raise UsageError(f"{found}: the corpus differs from the one this checkpoint trained on")
    device = _device(options.device)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f".{CHECKPOINT}.*.tmp"):  # a save cut short by a kill
        shutil.rmtree(stale, ignore_errors=True)

    torch.manual_seed(options.seed)
    random.seed(options.seed)
    if state is not None and found is not None:
        model = model_class(options.arch).from_pretrained(found)
    else:
        model = _new_model(options, corpus)
    model.to(device).train()
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": options.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=options.lr,
        betas=(0.9, 0.95),
    )
    step, seconds, position = 0, 0.0, 0
    entries: list[dict[str, float]] = []
    loss_sum, loss_count = 0.0, 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        step, seconds, position = state["step"], state["seconds"], state["position"]
        entries = list(state["log"])
        loss_sum, loss_count = state["loss_sum"], state["loss_count"]
        _set_rng_state(state["rng"])

    header = {
        "arch": options.arch,
        "model_class": type(model).__name__,
        "params": params,
        "config": _describe(model.config),
        "settings": dataclasses.asdict(options),
        "device": str(device),
        "files": corpus.files,
        "train_windows": len(corpus.train),
        "train_bytes": corpus.train_bytes,
        "heldout_windows": len(corpus.heldout),
        "heldout_bytes": corpus.heldout_bytes,
        "heldout_split": "the last heldout fraction of each file's windows",
    }
    if on_start is not None:
        on_start(header)
    heldout = corpus.heldout[: options.eval_windows] if options.eval_windows else corpus.heldout
    forward: Callable[[Any], Any] = torch.compile(model) if options.compile else model  # type: ignore[assignment]
    batcher = model.batcher()  # type: ignore[operator]

    def snapshot() -> dict[str, Any]:
        return {
            "settings": dataclasses.asdict(options),
            "corpus": fingerprint,
            "optimizer": optimizer.state_dict(),
            "step": step,
            "seconds": seconds,
            "position": position,
            "log": entries,
            "loss_sum": loss_sum,
            "loss_count": loss_count,
            "rng": _rng_state(),
        }

    def run_eval() -> float:
        nonlocal loss_sum, loss_count
        bpb = evaluate_bpb(model, heldout, batch_size=options.batch_size, device=device)
        entry = {
            "step": step,
            "seconds": round(seconds, 3),
            "train_loss": loss_sum / loss_count if loss_count else math.nan,
            "heldout_bpb": bpb,
        }
        if entries and entries[-1]["step"] == step:
            entries[-1] = entry
        else:
            entries.append(entry)
        loss_sum, loss_count = 0.0, 0
        _write_log(out, header, entries)
        return bpb

    def done() -> bool:
        if options.steps is not None and step >= options.steps:
            return True
        return options.minutes is not None and seconds >= options.minutes * 60

    bar = _bar(options, step, seconds) if progress else None
    last_bpb = entries[-1]["heldout_bpb"] if entries else math.nan
    try:
        while not done():
            t0 = time.perf_counter()
            factor = lr_factor(step, _progress(step, seconds, options), options.warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = options.lr * factor
            indices, position = _batch_indices(
                len(corpus.train), options.batch_size, position, options.seed
            )
            batch = batcher([corpus.train[i] for i in indices]).to(device)
            with _autocast(device):
                result = forward(batch)
            optimizer.zero_grad(set_to_none=True)
            result.loss.backward()
            if options.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), options.grad_clip)
            optimizer.step()
            loss = float(result.loss.detach())
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds += time.perf_counter() - t0
            step += 1
            loss_sum += loss
            loss_count += 1
            if options.eval_every and step % options.eval_every == 0 and not done():
                last_bpb = run_eval()
            if options.checkpoint_every and step % options.checkpoint_every == 0 and not done():
                _save_checkpoint(out, model, snapshot())
            if bar is not None:
                _bar_update(bar, options, step, seconds, loss, last_bpb)
            if on_step is not None:
                on_step(step, loss)
    finally:
        if bar is not None:
            bar.close()
    last_bpb = run_eval()
    _save_checkpoint(out, model, snapshot())
    return TrainLMResult(
        model=model, params=params, step=step, seconds=seconds, heldout_bpb=last_bpb, log=entries
    )


def _load_state(folder: Path) -> dict[str, Any]:
    path = folder / STATE_NAME
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        from toknz.errors import FormatError

        raise FormatError(f"{path}: cannot read the trainer state ({exc})") from None
    return state  # type: ignore[no-any-return]


def _bar(options: TrainLMOptions, step: int, seconds: float) -> Any:
    from tqdm import tqdm

    if options.steps is not None:
        return tqdm(total=options.steps, initial=step, desc=options.arch, unit="step", disable=None)
    assert options.minutes is not None
    return tqdm(
        total=round(options.minutes * 60),
        initial=round(seconds),
        desc=options.arch,
        unit="s",
        bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} s [{elapsed}<{remaining}{postfix}]",
        disable=None,
    )


def _bar_update(
    bar: Any, options: TrainLMOptions, step: int, seconds: float, loss: float, bpb: float
) -> None:
    bar.set_postfix(step=step, loss=f"{loss:.3f}", bpb=f"{bpb:.3f}", refresh=False)
    if options.steps is not None:
        bar.update(step - bar.n)
    else:
        bar.update(min(seconds, bar.total) - bar.n)
