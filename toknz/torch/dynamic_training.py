"""Train a :class:`~toknz.torch.dynamic_embedding.MergedTokenHypernet` through a frozen model.

The objective is **self-distillation at aligned positions**. Each training batch of texts is
encoded, merged with :func:`toknz.dynamic.merge_batch` (as in use: whole batches, on the base
tokenizer's boundaries) and run twice through the frozen ``transformers`` causal LM:

- the teacher: the unmerged ids, the model's own embeddings, no gradient;
- the student: the merged ids, the merged tokens embedded by the hypernetwork.

Every student position ``j`` (a token covering base positions ``[start, stop)``) has seen the
same text as the teacher at base position ``stop - 1``, and both predict the same next base
token. The loss is ``KL(teacher || student)`` of the next-token distributions over the base
vocabulary, averaged over the positions from each row's first merged token on (before it the
two inputs are identical).

Why this and not the language-modelling loss of the merged input: it targets exactly what
dynamic tokenization must preserve, the unmerged model's predictions (the evaluation compares
losses at these positions); a full distribution is a lower-variance target than one sampled
next token, so a few CPU steps go further; it needs no labels and no output rows for the new
ids; and its optimum is known (zero: the merged input behaves as the unmerged one), so the
loss reads directly as the damage merging does. It costs one extra forward pass (the teacher)
per step. ZeTT trains with the LM loss of the target tokenization plus an auxiliary loss
towards the source embeddings; here the hypernetwork starts *at* the mean embedding (zero
output projection), which plays the role of that auxiliary anchor.

    >>> HypernetTrainOptions(steps=None, minutes=10, batch_size=32).positions
    'compact'

See ``tests/test_dynamic_embedding.py`` for a run on a tiny random Llama and
``benchmarks/dynamic_lm.py`` for SmolLM2-135M.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from toknz.dynamic import RULES, DynamicBatch, boundaries_for, merge_batch, unmerge
from toknz.errors import UsageError
from toknz.formats._io import atomic_write
from toknz.torch.dynamic_embedding import (
    POSITIONS,
    DynamicEmbedding,
    MergedTokenHypernet,
    hidden_at,
    lm_inputs,
)
from toknz.torch.lm_training import lr_factor

if TYPE_CHECKING:
    from toknz.tokenizer import Tokenizer

LOG_NAME = "train_log.json"


@dataclass
class HypernetTrainOptions:
    """Settings of :func:`train_hypernet`.

    Length: ``steps`` and/or ``minutes`` (whichever ends first; at least one). Batches:
    ``batch_size`` texts merged together (``budget``, ``min_count``, ``boundary`` as in
    :class:`toknz.dynamic.DynamicOptions`), each text cut to its first ``max_tokens`` base
    tokens; ``prefix`` ids go before every row (a document separator; never merged);
    ``positions`` as in :func:`~toknz.torch.dynamic_embedding.lm_inputs`. Optimiser: AdamW
    with ``lr``, ``warmup_steps`` then cosine to a tenth, ``weight_decay``, ``grad_clip``
    (0: none). ``seed`` fixes the batch order and the initialisation; ``checkpoint_every``
    saves every that many steps (0: at the end only). ``autocast``: run the model's forward
    and backward under ``torch.autocast`` in ``"bfloat16"`` (or ``"float16"``) on the
    embedding's device, about twice as fast on CPUs with bf16 instructions; the
    hypernetwork's weights and the loss stay float32. ``rows_per_step``: run the model on
    that many randomly chosen texts of each merged batch only (the merges still come from
    the whole batch, as in use): cheaper steps with the same merge statistics.
    """

    steps: int | None = 100
    minutes: float | None = None
    batch_size: int = 32
    budget: int | None = None
    min_count: int = 2
    boundary: str = "pretoken"
    max_tokens: int = 128
    prefix: tuple[int, ...] = ()
    positions: str = "compact"
    lr: float = 1e-3
    warmup_steps: int = 10
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 0
    autocast: str | None = None
    rows_per_step: int | None = None
    hidden_weight: float = 0.0
    hidden_layers: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.autocast not in (None, "bfloat16", "float16"):
            raise UsageError(
                f"autocast must be None, 'bfloat16' or 'float16', not {self.autocast!r}"
            )
        if self.steps is None and self.minutes is None:
            raise UsageError("give steps or minutes (or both)")
        if (self.steps is not None and self.steps < 0) or (
            self.minutes is not None and self.minutes < 0
        ):
            raise UsageError("steps and minutes must not be negative")
        if self.batch_size < 1 or self.max_tokens < 1:
            raise UsageError("batch_size and max_tokens must be at least 1")
        if self.boundary not in RULES:
            raise UsageError(f"boundary must be one of {', '.join(RULES)}, not {self.boundary!r}")
        if self.positions not in POSITIONS:
            raise UsageError(f"positions must be one of {', '.join(POSITIONS)}")
        self.prefix = tuple(self.prefix)
        self.hidden_layers = tuple(self.hidden_layers)
        if self.hidden_weight < 0 or not math.isfinite(self.hidden_weight):
            raise UsageError(
                f"hidden_weight must be a non-negative number, not {self.hidden_weight}"
            )
        if self.hidden_weight > 0 and not self.hidden_layers:
            raise UsageError("hidden_weight needs hidden_layers (which hidden states to match)")


@dataclass
class TrainHypernetResult:
    """What :func:`train_hypernet` did: the ``embedding`` (its hypernetwork trained), the
    ``steps`` taken, training ``seconds``, the loss of every step and the merged batches'
    total ``positions`` (aligned positions the loss averaged over)."""

    embedding: DynamicEmbedding
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    positions: int = 0


def prepare_texts(
    tokenizer: Tokenizer,
    texts: Sequence[str],
    *,
    boundary: str = "pretoken",
    max_tokens: int | None = None,
) -> tuple[list[list[int]], list[np.ndarray]]:
    """The base ids of ``texts``, each cut to ``max_tokens``, and their segment starts.

    The boundaries are :func:`toknz.dynamic.boundaries_for` of the whole texts, kept where
    they fall before the cut; feed both to :func:`toknz.dynamic.merge_batch`.
    """
    ids = tokenizer.encode_batch(list(texts))
    bounds = boundaries_for(tokenizer, texts, boundary, ids=ids)  # type: ignore[arg-type]
    if max_tokens is not None:
        ids = [row[:max_tokens] for row in ids]
        bounds = [b[b < max_tokens] for b in bounds]
    return ids, bounds


def merge_texts(
    tokenizer: Tokenizer,
    texts: Sequence[str],
    *,
    first_new_id: int,
    budget: int | None = None,
    min_count: int = 2,
    boundary: str = "pretoken",
    max_tokens: int | None = None,
) -> DynamicBatch:
    """Encode ``texts``, cut each to ``max_tokens`` base tokens, merge them as one batch.

    Like ``tokenizer.encode_batch(texts, dynamic=...)`` plus the cut (see
    :func:`prepare_texts`). ``first_new_id`` must be at least the model's embedding rows
    (``DynamicEmbedding.n_base``), so new ids never collide with rows the model has.
    """
    if first_new_id < tokenizer.n_vocab:
        raise UsageError(
            f"first_new_id {first_new_id} is inside the tokenizer's vocabulary "
            f"({tokenizer.n_vocab} ids)"
        )
    ids, bounds = prepare_texts(tokenizer, texts, boundary=boundary, max_tokens=max_tokens)
    return merge_batch(ids, bounds, budget=budget, min_count=min_count, first_new_id=first_new_id)


def aligned_positions(
    batch: DynamicBatch, prefix: int = 0, *, from_first_merge: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows, merged-input positions and unmerged-input positions that predict the same token.

    Position ``j`` of row ``i`` of the merged input (plus ``prefix``) holds a token spanning
    base positions ``[start, stop)``; it has read the same text as base position
    ``stop - 1``. With ``from_first_merge`` only positions from the row's first new id on are
    listed (before it the two inputs are the same). Out: three int64 tensors of equal length.

    >>> from toknz.dynamic import merge_batch
    >>> b = merge_batch([[1, 2, 3, 1, 2]], first_new_id=10)
    >>> [t.tolist() for t in aligned_positions(b, prefix=1)]
    [[0, 0, 0], [1, 2, 3], [2, 3, 5]]
    """
    rows: list[np.ndarray] = []
    dyn: list[np.ndarray] = []
    base: list[np.ndarray] = []
    for i, (ids, spans) in enumerate(zip(batch.ids, batch.spans, strict=True)):
        ids = np.asarray(ids)
        start = 0
        if from_first_merge:
            hit = np.flatnonzero(ids >= batch.first_new_id)
            if hit.size == 0:
                continue
            start = int(hit[0])
        j = np.arange(start, ids.shape[0], dtype=np.int64)
        rows.append(np.full(j.shape[0], i, dtype=np.int64))
        dyn.append(prefix + j)
        base.append(prefix + spans[start:, 1] - 1)
    if not rows:
        empty = torch.zeros(0, dtype=torch.int64)
        return empty, empty.clone(), empty.clone()
    return (
        torch.from_numpy(np.concatenate(rows)),
        torch.from_numpy(np.concatenate(dyn)),
        torch.from_numpy(np.concatenate(base)),
    )


def _last_and_layers(
    picked: torch.Tensor, layers: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Split :func:`~toknz.torch.dynamic_embedding.hidden_at`'s output into the last hidden
    states ``[P, D]`` and, with ``layers``, the chosen layers' states ``[P, K, D]`` (float32)."""
    if not layers:
        return picked, None
    return picked[:, 0], picked[:, 1:].float()


def distillation_loss(
    model: nn.Module,
    embedding: DynamicEmbedding,
    batch: DynamicBatch,
    *,
    prefix: Sequence[int] = (),
    positions: str = "compact",
    tokens_per_call: int = 4096,
    hidden_weight: float = 0.0,
    hidden_layers: Sequence[int] = (),
    parts: dict[str, float] | None = None,
) -> tuple[torch.Tensor, int]:
    """Mean ``KL(unmerged || merged)`` of next-token distributions at aligned positions.

    In: a ``transformers`` causal LM, the :class:`DynamicEmbedding` of its input table, a
    merged batch. Out: the loss (a scalar with a gradient to the hypernetwork when one is
    recorded; ``0`` when the batch has no new ids) and the number of positions. The model
    runs on groups of similar-length rows of at most ``tokens_per_call`` padded positions
    (:func:`~toknz.torch.dynamic_embedding.hidden_at`). See the module docstring for the
    objective.

    With ``hidden_weight > 0`` the loss adds, times that weight, the mean over
    ``hidden_layers`` (indices into the model's hidden states) of the squared distance between
    the student's and the teacher's states at the aligned positions, relative to the
    teacher's squared norm: a denser signal than the next-token distribution alone.
    ``parts``, when given, receives the two terms as floats (``"kl"``, ``"hidden"``).
    """
    layers = tuple(hidden_layers) if hidden_weight > 0 else ()
    if hidden_weight > 0 and not layers:
        raise UsageError("hidden_weight needs hidden_layers")
    rows, dyn_pos, base_pos = aligned_positions(batch, len(prefix))
    device = embedding.embedding.weight.device
    if rows.numel() == 0:
        return torch.zeros((), device=device), 0
    head = model.get_output_embeddings()  # type: ignore[operator]
    teacher_in = lm_inputs([np.asarray(r) for r in unmerge(batch)], prefix=prefix)
    with torch.no_grad():
        t_hidden = hidden_at(
            model,
            lambda ids: embedding.embedding(ids.to(device)),
            teacher_in,
            rows,
            base_pos,
            tokens_per_call=tokens_per_call,
            layers=layers,
        )
        t_hidden, t_states = _last_and_layers(t_hidden, layers)
        t_logp = F.log_softmax(head(t_hidden).float(), dim=-1)
    student_in = lm_inputs(batch, prefix=prefix, positions=positions)
    s_hidden = hidden_at(
        model,
        lambda ids: embedding(ids.to(device), batch),
        student_in,
        rows,
        dyn_pos,
        tokens_per_call=tokens_per_call,
        layers=layers,
    )
    s_hidden, s_states = _last_and_layers(s_hidden, layers)
    s_logp = F.log_softmax(head(s_hidden).float(), dim=-1)
    kl = F.kl_div(s_logp, t_logp, log_target=True, reduction="none").sum(-1).mean()
    loss = kl
    hidden_term = torch.zeros((), device=kl.device)
    if s_states is not None and t_states is not None:
        dist = (s_states - t_states).pow(2).sum(-1)
        hidden_term = (dist / t_states.pow(2).sum(-1).clamp(min=1e-6)).mean()
        loss = kl + hidden_weight * hidden_term
    if parts is not None:
        parts["kl"] = float(kl.detach())
        parts["hidden"] = float(hidden_term.detach())
    return loss, int(rows.numel())


def _subset(batch: DynamicBatch, rows: list[int]) -> DynamicBatch:
    """The rows ``rows`` of ``batch``, with all of its definitions."""
    return DynamicBatch(
        ids=[batch.ids[i] for i in rows],
        spans=[batch.spans[i] for i in rows],
        def_ids=batch.def_ids,
        def_off=batch.def_off,
        merges=batch.merges,
        merge_counts=batch.merge_counts,
        first_new_id=batch.first_new_id,
        n_before=sum(int(batch.spans[i][-1, 1]) if len(batch.spans[i]) else 0 for i in rows),
    )


def _batches(
    texts: Sequence[str] | Mapping[str, Sequence[str]], size: int, seed: int
) -> Iterator[list[str]]:
    """Endless batches of ``size`` texts: epoch-wise seeded shuffles, each batch from one
    group when ``texts`` is a mapping (group -> texts); the last short batch of a group is
    kept."""
    groups = list(texts.values()) if isinstance(texts, Mapping) else [texts]
    if not any(len(g) for g in groups):
        raise UsageError("no training texts")
    epoch = 0
    while True:
        rng = random.Random(seed * 1_000_003 + epoch)
        chunks: list[list[str]] = []
        for group in groups:
            order = list(range(len(group)))
            rng.shuffle(order)
            chunks += [[group[k] for k in order[i : i + size]] for i in range(0, len(order), size)]
        rng.shuffle(chunks)
        yield from chunks
        epoch += 1


def train_hypernet(
    model: nn.Module,
    tokenizer: Tokenizer,
    texts: Sequence[str] | Mapping[str, Sequence[str]],
    options: HypernetTrainOptions,
    *,
    embedding: DynamicEmbedding | None = None,
    output: str | os.PathLike[str] | None = None,
    progress: bool = False,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainHypernetResult:
    """Train the hypernetwork of ``embedding`` on ``texts`` through the frozen ``model``.

    In: a ``transformers`` causal LM (frozen here: ``requires_grad_(False)``, eval mode), its
    toknz ``tokenizer``, the training texts (a list, or a mapping group -> list whose batches
    each come from one group, e.g. one language: batches are merged as a whole, and merges
    within a language are those used in practice), the settings. ``embedding``: a
    ``mode="hypernet"`` :class:`DynamicEmbedding` of ``model.get_input_embeddings()`` (built
    with the default hypernetwork when ``None``). ``output``: a folder the hypernetwork is
    saved into (``save_pretrained``, plus ``train_log.json``) every ``checkpoint_every``
    steps and at the end. ``progress``: a tqdm bar (shown on a terminal only);
    ``on_step(step, loss)`` after every step. Batches without any merge are skipped (no step).
    Out: :class:`TrainHypernetResult`. Keep the evaluation texts out of ``texts``.
    """
    torch.manual_seed(options.seed)
    if embedding is None:
        embedding = DynamicEmbedding(model.get_input_embeddings(), mode="hypernet")  # type: ignore[operator]
    if embedding.hypernet is None:
        raise UsageError('train_hypernet needs a DynamicEmbedding with mode="hypernet"')
    hypernet: MergedTokenHypernet = embedding.hypernet
    model.requires_grad_(False)
    model.eval()
    embedding.train()
    params = embedding.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)
    first_new = max(embedding.n_base, tokenizer.n_vocab)
    batches = _batches(texts, options.batch_size, options.seed)
    result = TrainHypernetResult(embedding=embedding, steps=0, seconds=0.0)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=options.steps, desc="hypernet", unit="step", disable=None)

    def done() -> bool:
        if options.steps is not None and result.steps >= options.steps:
            return True
        return options.minutes is not None and result.seconds >= options.minutes * 60

    def save() -> None:
        if output is None:
            return
        hypernet.save_pretrained(output)
        log = {
            "options": dataclasses.asdict(options),
            "steps": result.steps,
            "seconds": round(result.seconds, 3),
            "positions": result.positions,
            "losses": [round(x, 6) for x in result.losses],
            "objective": "KL(unmerged || merged) at aligned positions",
        }
        atomic_write(Path(output) / LOG_NAME, (json.dumps(log, indent=1) + "\n").encode())

    device_type = embedding.embedding.weight.device.type

    def ctx() -> Any:
        if options.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type, dtype=getattr(torch, options.autocast))

    picker = random.Random(options.seed)
    parts: dict[str, float] = {}
    skipped = 0
    try:
        while not done():
            t0 = time.perf_counter()
            texts_now = next(batches)
            batch = merge_texts(
                tokenizer,
                texts_now,
                first_new_id=first_new,
                budget=options.budget,
                min_count=options.min_count,
                boundary=options.boundary,
                max_tokens=options.max_tokens,
            )
            if batch.n_new == 0:
                skipped += 1
                if skipped > 1000:
                    raise UsageError("1000 batches in a row without a merge: nothing to train")
                continue
            skipped = 0
            if options.rows_per_step is not None and options.rows_per_step < len(batch.ids):
                batch = _subset(
                    batch, sorted(picker.sample(range(len(batch.ids)), options.rows_per_step))
                )
            if options.minutes is not None and options.steps is None:
                progress_frac = result.seconds / (options.minutes * 60)
            else:
                assert options.steps is not None
                progress_frac = result.steps / max(options.steps, 1)
            factor = lr_factor(result.steps, progress_frac, options.warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = options.lr * factor
            with ctx():
                loss, n = distillation_loss(
                    model,
                    embedding,
                    batch,
                    prefix=options.prefix,
                    positions=options.positions,
                    hidden_weight=options.hidden_weight,
                    hidden_layers=options.hidden_layers,
                    parts=parts,
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            if options.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, options.grad_clip)
            optimizer.step()
            total = float(loss.detach())
            if not math.isfinite(total):
                raise UsageError(f"the loss became {total} at step {result.steps}; lower lr")
            value = parts["kl"]
            result.seconds += time.perf_counter() - t0
            result.steps += 1
            result.losses.append(value)
            result.positions += n
            if bar is not None:
                bar.set_postfix(kl=f"{value:.4f}", refresh=False)
                bar.update(1)
            if on_step is not None:
                on_step(result.steps, value)
            if options.checkpoint_every and result.steps % options.checkpoint_every == 0:
                save()
    finally:
        if bar is not None:
            bar.close()
    embedding.eval()
    save()
    return result
