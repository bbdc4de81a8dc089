"""Loading real causal LMs for byte-level use, and streaming samples from them.

:func:`load_model` turns a path or a short name into a :class:`LoadedModel`:
a ``transformers`` causal LM wrapped as an :class:`~toknz.bytelevel.HFCausalLM`
(prefix KV cache), the toknz :class:`~toknz.Tokenizer` whose ids it scores,
the token every text starts with (BOS) and the tokens that end a text. It
accepts

- a ``transformers`` folder: ``config.json``, weights (``model.safetensors``
  or ``pytorch_model.bin``) and ``tokenizer.json`` (toknz reads only
  ``tokenizer.json``);
- a GGUF file (read through ``transformers``, which needs the ``gguf``
  package; the weights are dequantized on loading, which takes a minute or
  more for a few hundred MB: convert once to a folder for a fast start);
- the short name of a model of :mod:`toknz.models` (:data:`KNOWN_MODELS`),
  fetched and converted by ``toknz fetch NAME``: found in
  ``$TOKNZ_CACHE/models/<name>/hf`` (default ``~/.cache/toknz``), or its
  ``model.gguf`` (checked against its pinned sha256) when the folder is missing.

:func:`stream_sample` (defined in :mod:`toknz.bytelevel.sampling`, re-exported here) is the
sampling loop of :func:`toknz.bytelevel.sampling.sample_bytes` one byte at a time (same draws
for the same seed) for any model with ``next_byte_logprobs``; ``toknz sample`` prints from it
as bytes arrive.

torch and transformers are imported only inside :func:`load_model` (the
``bytelm`` extra installs them). Units: bytes for texts and prompts, token
ids for ``bos_id`` and ``stop_ids``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toknz.bytelevel.bytelm import ByteLM
from toknz.bytelevel.lm import HFCausalLM
from toknz.bytelevel.sampling import stream_sample
from toknz.errors import InputError, UsageError
from toknz.models import cached_model, model_dir, model_names, not_fetched, verify_gguf

__all__ = [
    "DTYPES",
    "KNOWN_MODELS",
    "LoadedModel",
    "load_model",
    "model_cache_dir",
    "stream_sample",
]

#: Short names of the models ``toknz fetch`` fetches and converts (:data:`toknz.models.KNOWN_MODELS`).
KNOWN_MODELS: tuple[str, ...] = tuple(model_names())

#: Accepted ``dtype`` values: float32 (default), bfloat16, or the checkpoint's own ("auto").
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "auto")

#: Special tokens that end a text, when the tokenizer has them (besides the config's eos ids).
END_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|end|>",
    "<end_of_turn>",
    "<eos>",
    "</s>",
)

# GGUF architectures (llama.cpp's names) that are not causal LMs.
_GGUF_ENCODERS = frozenset(
    {
        "bert",
        "nomic-bert",
        "nomic-bert-moe",
        "neo-bert",
        "jina-bert-v2",
        "jina-bert-v3",
        "modern-bert",
        "roberta",
        "xlm-roberta",
        "t5encoder",
    }
)
_GGUF_ENCODER_DECODERS = frozenset({"t5", "umt5"})


def model_cache_dir(name: str) -> Path:
    """``$TOKNZ_CACHE/models/<name>`` (default ``~/.cache/toknz/models/<name>``); may not exist."""
    return model_dir(name)


@dataclass
class LoadedModel:
    """A causal LM ready for :class:`~toknz.bytelevel.ByteLM`.

    ``token_lm``: the model as an :class:`~toknz.bytelevel.HFCausalLM`, which
    puts ``bos_id`` before every prefix; ``tokenizer``: the toknz tokenizer of
    its ids; ``bos_id``: the token a text starts with (None when the model
    has none: then only prompts with a context, such as FIM, can be scored);
    ``stop_ids``: the tokens that end a text; ``name``: a label;
    ``source``: the folder or GGUF file it came from; ``always_bos``: whether
    the tokenizer puts ``bos_id`` before every encoding (its post-processor
    does), so that prompts with their own context (FIM) keep it too.
    """

    name: str
    token_lm: HFCausalLM
    tokenizer: Any
    bos_id: int | None
    stop_ids: tuple[int, ...]
    source: Path
    always_bos: bool = False
    _context_lm: HFCausalLM | None = field(default=None, repr=False, compare=False)

    @property
    def model(self) -> Any:
        """The ``transformers`` model itself."""
        inner = self.token_lm.model
        return getattr(inner, "wrapped", inner)

    @property
    def context_lm(self) -> HFCausalLM:
        """The model for prompts that carry their own context (a FIM prompt).

        :attr:`token_lm` when the tokenizer puts a BOS before every encoding,
        else the same model without a BOS (FIM prompts start with their
        sentinel, as the model saw them in training).
        """
        if self.always_bos or self.bos_id is None:
            return self.token_lm
        if self._context_lm is None:
            lm = self.token_lm
            self._context_lm = HFCausalLM(
                lm.model,
                bos_id=None,
                max_states=lm.max_states,
                batch=lm.batch,
                max_batch=lm.max_batch,
                pad=lm.pad,
                max_row_bytes=lm.max_row_bytes,
            )
        return self._context_lm

    def byte_lm(self, **options: Any) -> ByteLM:
        """A :class:`~toknz.bytelevel.ByteLM` over this model, ``stop_ids`` ending the text.

        ``options`` go to ByteLM (``mode``, ``context``, ``stop_ids``,
        ``max_nodes``...). With a non-empty ``context`` the model is
        :attr:`context_lm` (the BOS only where the tokenizer always adds it),
        else :attr:`token_lm`. Raises UsageError when the model has no BOS
        token and no ``context`` is given (the first token then has nothing
        to be predicted from).
        """
        with_context = bool(options.get("context"))
        if self.bos_id is None and not with_context:
            raise UsageError(
                f"{self.name}: the model has no BOS token (none in tokenizer.json's "
                "post-processor or config.json), so it cannot score a text from its start"
            )
        options.setdefault("stop_ids", self.stop_ids)
        lm = self.context_lm if with_context else self.token_lm
        return ByteLM(lm, self.tokenizer, **options)

    @property
    def n_evals(self) -> int:
        """Token positions run through the model so far (both adapters)."""
        lms = {id(lm): lm for lm in (self.token_lm, self._context_lm) if lm is not None}
        return sum(lm.n_evals for lm in lms.values())

    @property
    def n_calls(self) -> int:
        """Forward passes run so far (both adapters)."""
        lms = {id(lm): lm for lm in (self.token_lm, self._context_lm) if lm is not None}
        return sum(lm.n_calls for lm in lms.values())


class _OnDevice:
    """A model whose inputs are moved to its device (HFCausalLM builds them on the CPU)."""

    def __init__(self, model: Any, device: Any) -> None:
        self.wrapped = model
        self.device = device

    def eval(self) -> _OnDevice:
        self.wrapped.eval()
        return self

    def __call__(self, input_ids: Any, **kwargs: Any) -> Any:
        return self.wrapped(input_ids=input_ids.to(self.device), **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


# --------------------------------------------------------------------- resolving


def _resolve(path_or_name: str | os.PathLike[str]) -> tuple[str, Path, str]:
    """``(kind, path, name)`` with kind ``"folder"`` or ``"gguf"``; UsageError when nothing matches."""
    key = os.fspath(path_or_name)
    p = Path(key).expanduser()
    if p.is_dir():
        name = p.parent.name if p.name == "hf" and p.parent.name else p.name
        return "folder", p, name or key
    if p.is_file():
        with open(p, "rb") as f:
            magic = f.read(4)
        if magic != b"GGUF":
            raise UsageError(
                f"{p}: not a GGUF file (no GGUF magic); give a GGUF file, a transformers folder "
                f"(config.json, weights, tokenizer.json) or a name ({', '.join(KNOWN_MODELS)})"
            )
        return "gguf", p, (p.parent.name if p.stem == "model" and p.parent.name else p.stem)
    if key in KNOWN_MODELS:
        cached = cached_model(key)
        if cached is None:
            raise UsageError(f"{not_fetched(key)}, or give a transformers folder or a GGUF file")
        if cached.is_dir():
            return "folder", cached, key
        verify_gguf(key, cached)
        return "gguf", cached, key
    raise UsageError(
        f"{key}: no such file or folder, and not a known model name ({', '.join(KNOWN_MODELS)})"
    )


def _check_causal(config: Any, where: str) -> None:
    """UsageError unless ``config`` is a decoder-only causal LM's."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", None)
    if getattr(config, "is_encoder_decoder", False):
        raise UsageError(
            f"{where}: {model_type!r} is an encoder-decoder model, not a causal LM; "
            "sampling needs a decoder-only model (GPT-2, Llama, Qwen2, Gemma...)"
        )
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise UsageError(
            f"{where}: {model_type!r} is not a causal LM that transformers knows; "
            "sampling needs a decoder-only model (GPT-2, Llama, Qwen2, Gemma...)"
        )
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False):
        raise UsageError(
            f"{where}: {model_type!r} is an encoder (masked LM) model, not a causal LM; "
            "sampling needs a decoder-only model (GPT-2, Llama, Qwen2, Gemma...)"
        )


def _torch_dtype(dtype: str) -> Any:
    import torch

    if dtype not in DTYPES:
        raise UsageError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "auto": "auto"}[dtype]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _require_transformers() -> Any:
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UsageError(
            "loading a model needs torch and transformers: pip install 'toknz[bytelm]'"
        ) from exc
    return transformers


def _load_folder(folder: Path, dtype: str) -> tuple[Any, Any, dict[str, Any]]:
    """``(model, toknz tokenizer, generation config dict)`` from a transformers folder."""
    transformers = _require_transformers()
    from toknz.tokenizer import Tokenizer

    config_path = folder / "config.json"
    if not config_path.is_file():
        raise InputError(
            f"{folder}: no config.json; expected a transformers folder (config.json, "
            "weights, tokenizer.json) or a GGUF file"
        )
    tok_path = folder / "tokenizer.json"
    if not tok_path.is_file():
        raise InputError(
            f"{folder}: no tokenizer.json (toknz reads the tokenizer from it); write one with "
            "transformers: AutoTokenizer.from_pretrained(folder).save_pretrained(folder)"
        )
    try:
        config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(
            f"{config_path}: transformers cannot read it ({_first_line(exc)})"
        ) from None
    _check_causal(config, str(config_path))
    tokenizer = Tokenizer.from_file(tok_path)
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(folder), config=config, dtype=_torch_dtype(dtype), local_files_only=True
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise InputError(
            f"{folder}: transformers cannot load the weights ({_first_line(exc)})"
        ) from None
    gen: dict[str, Any] = {}
    gen_path = folder / "generation_config.json"
    if gen_path.is_file():
        try:
            loaded = json.loads(gen_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            loaded = {}
        gen = loaded if isinstance(loaded, dict) else {}
    return model, tokenizer, gen


def _gguf_architecture(path: Path) -> str:
    try:
        import gguf
    except ImportError:
        raise UsageError(
            f"{path}: reading GGUF files needs the gguf package (pip install gguf), or convert "
            "the model once to a transformers folder (`toknz fetch NAME` does it for "
            f"{', '.join(KNOWN_MODELS)})"
        ) from None
    try:
        reader = gguf.GGUFReader(str(path))
        field = reader.fields.get("general.architecture")
        arch = field.contents() if field is not None else None
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise InputError(f"{path}: not a readable GGUF file ({_first_line(exc)})") from None
    if not isinstance(arch, str) or not arch:
        raise InputError(f"{path}: the GGUF file has no general.architecture")
    return arch


def _load_gguf(path: Path, dtype: str) -> tuple[Any, Any, dict[str, Any]]:
    """``(model, toknz tokenizer, generation config dict)`` from a GGUF file."""
    arch = _gguf_architecture(path)
    if arch in _GGUF_ENCODERS:
        raise UsageError(
            f"{path}: GGUF architecture {arch!r} is an encoder, not a causal LM; "
            "sampling needs a decoder-only model"
        )
    if arch in _GGUF_ENCODER_DECODERS:
        raise UsageError(
            f"{path}: GGUF architecture {arch!r} is an encoder-decoder model, not a causal LM; "
            "sampling needs a decoder-only model"
        )
    transformers = _require_transformers()
    supported: list[str] | None
    try:
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

        supported = [a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer")]
    except ImportError:  # pragma: no cover - depends on the transformers version
        supported = None
    if supported is not None and arch not in supported:
        raise UsageError(
            f"{path}: transformers cannot load GGUF files of architecture {arch!r} "
            f"(it reads {', '.join(supported)})"
        )
    from toknz.tokenizer import Tokenizer

    folder, name = str(path.parent), path.name
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=_torch_dtype(dtype), local_files_only=True
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise InputError(f"{path}: transformers cannot load it ({_first_line(exc)})") from None
    _check_causal(model.config, str(path))
    try:
        hf_tok = transformers.AutoTokenizer.from_pretrained(
            folder, gguf_file=name, local_files_only=True
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise InputError(
            f"{path}: transformers cannot read its tokenizer ({_first_line(exc)})"
        ) from None
    backend = getattr(hf_tok, "backend_tokenizer", None)
    if backend is None:
        raise InputError(f"{path}: transformers gave no tokenizer.json-style tokenizer for it")
    with tempfile.TemporaryDirectory(prefix="toknz-gguf-") as tmp:
        tok_path = Path(tmp) / "tokenizer.json"
        backend.save(str(tok_path))
        tokenizer = Tokenizer.from_file(tok_path, name=path.stem)
    gen = getattr(model, "generation_config", None)
    return model, tokenizer, (gen.to_dict() if gen is not None else {})


# --------------------------------------------------------------------- special ids


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, list | tuple):
        return [int(v) for v in value if isinstance(v, int) and not isinstance(v, bool)]
    return []


def _special_ids(
    tokenizer: Any, config: Any, gen: dict[str, Any], n_vocab: int
) -> tuple[int | None, tuple[int, ...]]:
    """``(bos_id, stop_ids)``: see :func:`load_model`."""

    def ok(i: int) -> bool:
        return 0 <= i < n_vocab

    bos: int | None = None
    added = [i for i in tokenizer.post_processor.process([]) if ok(i)]
    if added:
        bos = int(added[0])
    elif "<|endoftext|>" in tokenizer.special_tokens:
        bos = int(tokenizer.special_tokens["<|endoftext|>"])
    else:
        for i in _ids(getattr(config, "bos_token_id", None)) + _ids(gen.get("bos_token_id")):
            if ok(i):
                bos = i
                break
    stops: dict[int, None] = {}
    for i in _ids(getattr(config, "eos_token_id", None)) + _ids(gen.get("eos_token_id")):
        if ok(i):
            stops[i] = None
    for spelling in END_TOKENS:
        i = tokenizer.special_tokens.get(spelling)
        if i is not None and ok(i):
            stops[int(i)] = None
    if bos is None and stops:
        bos = next(iter(stops))
    return bos, tuple(stops)


# --------------------------------------------------------------------- loading


def load_model(
    path_or_name: str | os.PathLike[str],
    *,
    dtype: str = "float32",
    device: str = "cpu",
    bos_id: int | None = None,
    stop_ids: Sequence[int] | None = None,
    max_states: int = 128,
) -> LoadedModel:
    """Load a causal LM and its tokenizer from a folder, a GGUF file or a short name.

    ``path_or_name``: a ``transformers`` folder (``config.json``, weights,
    ``tokenizer.json``), a GGUF file, or one of :data:`KNOWN_MODELS` (see
    the module doc). ``dtype``: ``"float32"`` (default), ``"bfloat16"`` or
    ``"auto"`` (the checkpoint's); log-probabilities are computed in float64
    either way. ``device``: a torch device (``"cpu"``, ``"cuda"``...).
    ``max_states``: how many KV caches :class:`~toknz.bytelevel.HFCausalLM`
    keeps (each holds a prefix's keys and values: memory grows with it).

    ``bos_id`` (default): the token ``tokenizer.json``'s post-processor puts
    first, else ``<|endoftext|>`` when the tokenizer has it (the document
    separator of GPT-2-style vocabularies), else ``config.json``'s
    ``bos_token_id``, else the first stop id. ``stop_ids`` (default): the
    eos ids of ``config.json`` and ``generation_config.json`` plus the
    special tokens of :data:`END_TOKENS` the tokenizer has. Ids outside the
    tokenizer's vocabulary are ignored.

    Raises :class:`~toknz.errors.UsageError` for a path that does not exist
    and is not a known name, a known name not in the cache, a model that is
    not a decoder-only causal LM (an encoder such as BERT, an encoder-decoder
    such as T5, in a folder or a GGUF file), an unknown dtype or device, or a
    tokenizer with more ids than the model scores; and
    :class:`~toknz.errors.InputError` for a folder without ``config.json`` or
    ``tokenizer.json``, or files ``transformers`` cannot read; and
    :class:`~toknz.errors.FetchError` for a known name whose cached GGUF file is not
    the pinned one.
    """
    kind, path, name = _resolve(path_or_name)
    if dtype not in DTYPES:
        raise UsageError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if kind == "folder":
        model, tokenizer, gen = _load_folder(path, dtype)
    else:
        model, tokenizer, gen = _load_gguf(path, dtype)
    tokenizer.name = name
    import torch

    head = model.get_output_embeddings()
    n_scored = (
        int(head.weight.shape[0])
        if head is not None and getattr(head, "weight", None) is not None
        else int(model.config.get_text_config().vocab_size)
    )
    if tokenizer.n_vocab > n_scored:
        raise UsageError(
            f"{path}: the tokenizer has {tokenizer.n_vocab} ids but the model scores only "
            f"{n_scored} tokens: they do not belong together"
        )
    default_bos, default_stops = _special_ids(tokenizer, model.config, gen, tokenizer.n_vocab)
    first = tokenizer.post_processor.process([])
    for what, ids in (("bos_id", [bos_id] if bos_id is not None else []), ("stop_ids", stop_ids)):
        for i in ids or ():
            if isinstance(i, bool) or not 0 <= int(i) < tokenizer.n_vocab:
                raise UsageError(
                    f"{what}: {i!r} is outside the vocabulary (0..{tokenizer.n_vocab - 1})"
                )
    bos = int(bos_id) if bos_id is not None else default_bos
    stops = tuple(int(i) for i in stop_ids) if stop_ids is not None else default_stops
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise UsageError(f"device {device!r}: {_first_line(exc)}") from None
    runner: Any = model
    if dev.type != "cpu":
        try:
            model = model.to(dev)
        except (RuntimeError, AssertionError, ValueError) as exc:
            raise UsageError(f"device {device!r} is not usable: {_first_line(exc)}") from None
        runner = _OnDevice(model, dev)
    token_lm = HFCausalLM(runner, bos_id=bos, max_states=max_states)
    always = bool(first) and bos is not None and int(first[0]) == bos
    return LoadedModel(name, token_lm, tokenizer, bos, stops, path, always)
