"""Post-processors: add BOS/EOS-style special tokens around encoded ids.

Only the effect on ids is modelled (offsets and type ids are not returned).
``ByteLevel`` post-processing changes offsets only, so it is a no-op here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from toknz.errors import FormatError, UnsupportedFeatureError


class PostProcessor(Protocol):
    def process(self, ids: list[int], pair: list[int] | None = None) -> list[int]: ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class NoPostProcess:
    raw: Any = None

    def process(self, ids: list[int], pair: list[int] | None = None) -> list[int]:
        return ids + (pair or [])

    def to_json(self) -> dict[str, Any]:
        return (
            self.raw
            if isinstance(self.raw, dict)
            else {
                "type": "ByteLevel",
                "add_prefix_space": True,
                "trim_offsets": True,
                "use_regex": True,
            }
        )


@dataclass(frozen=True)
class Template:
    """``TemplateProcessing``: pieces are either a special token's ids or sequence A/B."""

    single: tuple[tuple[str, str], ...]  # ("special", name) or ("seq", "A"/"B")
    pair: tuple[tuple[str, str], ...]
    special_ids: tuple[tuple[str, tuple[int, ...]], ...]
    raw: Any = None

    def _fill(self, template: tuple[tuple[str, str], ...], a: list[int], b: list[int]) -> list[int]:
        specials = dict(self.special_ids)
        out: list[int] = []
        for kind, name in template:
            if kind == "special":
                out.extend(specials[name])
            else:
                out.extend(a if name == "A" else b)
        return out

    def process(self, ids: list[int], pair: list[int] | None = None) -> list[int]:
        if pair is None:
            return self._fill(self.single, ids, [])
        return self._fill(self.pair, ids, pair)

    def to_json(self) -> dict[str, Any]:
        return self.raw


@dataclass(frozen=True)
class ClsSep:
    """``RobertaProcessing`` / ``BertProcessing``: ``cls A sep`` (pairs: ``cls A sep [sep] B sep``)."""

    cls_id: int
    sep_id: int
    double_sep: bool
    raw: Any = None

    def process(self, ids: list[int], pair: list[int] | None = None) -> list[int]:
        out = [self.cls_id, *ids, self.sep_id]
        if pair is not None:
            if self.double_sep:
                out.append(self.sep_id)
            out.extend([*pair, self.sep_id])
        return out

    def to_json(self) -> dict[str, Any]:
        return self.raw


@dataclass(frozen=True)
class PostSequence:
    steps: tuple[PostProcessor, ...]
    raw: Any = None

    def process(self, ids: list[int], pair: list[int] | None = None) -> list[int]:
        # Within a Sequence only one step adds tokens in practice; the
        # byte-level steps are no-ops on ids.
        for s in self.steps:
            if not isinstance(s, NoPostProcess):
                return s.process(ids, pair)
        return ids + (pair or [])

    def to_json(self) -> dict[str, Any]:
        return self.raw


def _template(items: Any, where: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    if not isinstance(items, list):
        raise FormatError(f"{where}: expected a list")
    for i, it in enumerate(items):
        if isinstance(it, dict) and "SpecialToken" in it:
            out.append(("special", str(it["SpecialToken"]["id"])))
        elif isinstance(it, dict) and "Sequence" in it:
            out.append(("seq", str(it["Sequence"]["id"])))
        else:
            raise FormatError(f"{where}[{i}]: expected SpecialToken or Sequence, got {it!r}")
    return tuple(out)


def postprocessor_from_json(obj: Any, where: str = "post_processor") -> PostProcessor:
    """Build a post-processor from ``tokenizer.json``; unknown types are refused."""
    if obj is None:
        return NoPostProcess(None)
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise FormatError(f"{where}: expected an object with a 'type', got {obj!r}")
    kind = obj["type"]
    try:
        if kind == "ByteLevel":
            return NoPostProcess(obj)
        if kind == "TemplateProcessing":
            specials = tuple(
                (str(name), tuple(int(x) for x in spec["ids"]))
                for name, spec in obj.get("special_tokens", {}).items()
            )
            single = _template(obj["single"], f"{where}.single")
            pair = _template(obj["pair"], f"{where}.pair")
            names = dict(specials)
            for _kind, name in single + pair:
                if _kind == "special" and name not in names:
                    raise FormatError(
                        f"{where}: template uses special token {name!r} missing from special_tokens"
                    )
            return Template(single, pair, specials, obj)
        if kind in ("RobertaProcessing", "BertProcessing"):
            return ClsSep(int(obj["cls"][1]), int(obj["sep"][1]), kind == "RobertaProcessing", obj)
        if kind == "Sequence":
            steps = tuple(
                postprocessor_from_json(o, f"{where}.processors[{i}]")
                for i, o in enumerate(obj["processors"])
            )
            if sum(not isinstance(s, NoPostProcess) for s in steps) > 1:
                raise UnsupportedFeatureError(
                    f"{where}: a Sequence with several token-adding processors is not supported"
                )
            return PostSequence(steps, obj)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise FormatError(f"{where}: malformed {kind} post-processor ({exc})") from None
    raise UnsupportedFeatureError(
        f"{where}: the {kind!r} post-processor is not supported by toknz "
        "(supported: TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, Sequence)"
    )
