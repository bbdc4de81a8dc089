"""``save_pretrained`` / ``from_pretrained`` for toknz's torch modules.

A saved model is a folder with ``config.json`` (the module's class name, the toknz version and
its config dataclass as JSON) and ``model.safetensors`` (the state dict). Both are written
atomically (temporary file, then rename), so an interrupted save leaves the old folder intact.

    >>> import tempfile, torch
    >>> from toknz.torch.layers import TransformerConfig
    >>> from toknz.torch.saving import PretrainedModule
    >>> class Tiny(PretrainedModule):
    ...     config_class = TransformerConfig
    ...     def __init__(self, config):
    ...         super().__init__()
    ...         self.config = config
    ...         self.proj = torch.nn.Linear(config.dim, config.dim)
    >>> folder = tempfile.mkdtemp()
    >>> Tiny(TransformerConfig(dim=8, heads=2)).save_pretrained(folder)
    >>> Tiny.from_pretrained(folder).config.dim
    8
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from toknz.errors import FormatError
from toknz.formats._io import atomic_write

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

M = TypeVar("M", bound="PretrainedModule")


def _config_dict(config: Any) -> dict[str, Any]:
    return {
        f.name: _config_dict(getattr(config, f.name))
        if dataclasses.is_dataclass(getattr(config, f.name))
        else getattr(config, f.name)
        for f in dataclasses.fields(config)
    }


def _config_from_dict(cls: Any, data: dict[str, Any]) -> Any:
    """Build config dataclass ``cls`` from JSON ``data`` (nested dataclasses, lists as tuples)."""
    types = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name not in names:
            raise FormatError(f"config field {name!r} is not a field of {cls.__name__}")
        kind = types.get(name)
        if isinstance(value, dict) and dataclasses.is_dataclass(kind):
            value = _config_from_dict(kind, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


class PretrainedModule(nn.Module):
    """An ``nn.Module`` whose ``self.config`` is a dataclass and that saves as a folder.

    Subclasses set ``config_class`` and take the config as their first constructor argument.
    A subclass that keeps more than weights (a tokenizer) writes it in :meth:`save_extra` and
    reads it back as constructor keyword arguments in :meth:`init_kwargs`.
    """

    config_class: ClassVar[type]
    config: Any

    def save_pretrained(self, folder: str | os.PathLike[str]) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created if missing)."""
        from safetensors.torch import save

        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "class": type(self).__name__,
            "toknz_version": _toknz_version(),
            "config": _config_dict(self.config),
        }
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        atomic_write(path / WEIGHTS_NAME, save(state))
        self.save_extra(path)
        atomic_write(path / CONFIG_NAME, (json.dumps(meta, indent=2) + "\n").encode())

    def save_extra(self, folder: Path) -> None:
        """Hook: write files other than the config and weights into ``folder`` (default: none)."""

    @classmethod
    def init_kwargs(cls, folder: Path) -> dict[str, Any]:
        """Hook: constructor keyword arguments besides the config, read from ``folder``."""
        return {}

    @classmethod
    def from_pretrained(
        cls: type[M], folder: str | os.PathLike[str], map_location: str | torch.device = "cpu"
    ) -> M:
        """Load a folder written by :meth:`save_pretrained`.

        Raises :class:`~toknz.errors.FormatError` naming the file when it is missing, holds
        another class, or its weights do not match the config.
        """
        from safetensors.torch import load_file

        path = Path(folder)
        config_path = path / CONFIG_NAME
        try:
            meta = json.loads(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FormatError(f"{config_path}: no such file (not a saved toknz model)") from None
        except (OSError, ValueError) as exc:
            raise FormatError(f"{config_path}: cannot read it ({exc})") from None
        if not isinstance(meta, dict) or meta.get("class") != cls.__name__:
            found = meta.get("class") if isinstance(meta, dict) else None
            raise FormatError(f"{config_path}: holds a {found!r}, not a {cls.__name__}")
        config = _config_from_dict(cls.config_class, meta.get("config", {}))
        model = cls(config, **cls.init_kwargs(path))  # type: ignore[call-arg]
        weights_path = path / WEIGHTS_NAME
        try:
            state = load_file(str(weights_path), device=str(map_location))
        except FileNotFoundError:
            raise FormatError(f"{weights_path}: no such file") from None
        except Exception as exc:  # safetensors raises its own error types
            raise FormatError(f"{weights_path}: cannot read it ({exc})") from None
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise FormatError(
                f"{weights_path}: weights do not match the config ({first})"
            ) from None
        return model.to(map_location)


def _toknz_version() -> str:
    from toknz import __version__

    return __version__
