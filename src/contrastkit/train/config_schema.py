"""The machinery behind :func:`contrastkit.train.config.load_config`: typed schemas built from constructor
signatures, OmegaConf merging with errors that name the key (and the closest valid one), and the value checks that
run before any data is read."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import typing
from dataclasses import field
from typing import Any, Optional


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the key, the problem and what would be valid."""


def hint(value: str, valid: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(str(value), list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_range(key: str, value: float, low: float | None = None, high: float | None = None, strict=False) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, got {value}")
    if low is not None and (value <= low if strict else value < low):
        raise ConfigError(f"{key} must be {'>' if strict else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ConfigError(f"{key} must be <= {high}, got {value}")


def component_schema(section: str, name_key: str, name: str, cls: type, skip: tuple[str, ...] = ()) -> type:
    """A dataclass typed like ``cls.__init__`` (its annotated parameters with defaults) plus the ``name_key`` field.

    Parameters without a default or with a type OmegaConf cannot check are left out (so they cannot be set from
    a config); tuples become fixed-length lists, checked again by :func:`to_kwargs`.
    """
    hints = typing.get_type_hints(cls.__init__)
    fields_: list[tuple[str, Any, Any]] = [(name_key, str, field(default=name))]
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name in ("self", *skip) or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        if p.default is inspect.Parameter.empty:
            continue
        annotation = hints.get(p.name, Any)
        default = p.default
        if isinstance(default, (list, tuple, dict)):
            default = field(default_factory=lambda d=default: list(d) if not isinstance(d, dict) else dict(d))
        fields_.append((p.name, _omegaconf_type(annotation), default))
    return dataclasses.make_dataclass(f"{section.capitalize()}Config_{name}", fields_)


def _omegaconf_type(annotation: Any) -> Any:
    """The nearest type OmegaConf validates: X | None -> Optional[X], tuple[X, ...] -> list[X], else Any."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (int, float, bool, str):
        return annotation
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(rest) < len(args):
            inner = _omegaconf_type(rest[0])
            return Optional[inner] if inner is not Any else Any  # noqa: UP045  (a runtime type for OmegaConf)
        return Any
    if origin in (tuple, list, typing.Sequence, __import__("collections.abc").abc.Sequence):
        element = args[0] if args else Any
        return list[_omegaconf_type(element)] if element in (int, float, bool, str) else Any
    return Any


def to_kwargs(section: str, values: dict[str, Any], cls: type, skip: tuple[str, ...]) -> dict[str, Any]:
    """Constructor keyword arguments from a validated section: lists back to tuples, tuple lengths checked."""
    hints = typing.get_type_hints(cls.__init__)
    kwargs = {}
    for key, value in values.items():
        annotation = hints.get(key)
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is tuple and isinstance(value, list):
            fixed = args and args[-1] is not Ellipsis
            if fixed and len(value) != len(args):
                raise ConfigError(f"{section}.{key} must have {len(args)} values, got {len(value)}: {value}")
            value = tuple(value)
        kwargs[key] = value
    return kwargs


# --------------------------------------------------------------------------------------------- loading


def _schema_keys(schema: type, parts: list[str]) -> list[str]:
    """The valid keys at ``parts`` inside the dataclass ``schema``."""
    for part in parts:
        types = {f.name: f.type for f in dataclasses.fields(schema)}
        hints = typing.get_type_hints(schema)
        schema = hints.get(part, types.get(part))
        if not dataclasses.is_dataclass(schema):
            return []
    return [f.name for f in dataclasses.fields(schema)]


def merge(section: str, schema: type, values: Any) -> Any:
    """``values`` merged onto the structured ``schema``, OmegaConf errors rewritten as :class:`ConfigError`."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

    prefix = f"{section}." if section else ""
    if values is not None and not isinstance(values, dict):
        raise ConfigError(f"{section or 'the config'} must be a mapping of keys to values, got {values!r}")
    try:
        merged = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values or {}))
    except ConfigKeyError as e:
        parts = str(e.full_key).split(".")
        valid = _schema_keys(schema, parts[:-1])
        where = ".".join(parts[:-1])
        full = [prefix + where + ("." if where else "") + k for k in valid]
        raise ConfigError(
            f"unknown key {prefix + str(e.full_key)!r}{hint(prefix + str(e.full_key), full)}; valid keys"
            f"{' in ' + prefix + where if where else (' in ' + section if section else '')}: {', '.join(valid)}"
        ) from None
    except ValidationError as e:
        parts = str(e.full_key).split(".")
        expected = _expected_type(schema, parts)
        raise ConfigError(f"{prefix + str(e.full_key)}: expected {expected}; {e.msg.splitlines()[0]}") from None
    except OmegaConfBaseException as e:
        raise ConfigError(f"{section or 'config'}: {e.msg.splitlines()[0] if hasattr(e, 'msg') else e}") from None
    _check_finite(section, merged)
    return merged


def _check_finite(key: str, value: Any) -> None:
    """No NaN or infinity anywhere in a config (a probability, scale, momentum or temperature of NaN runs and
    silently trains nothing): the first one found is refused with its key."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, got {value}")
    children = (
        vars(value).items() if dataclasses.is_dataclass(value)
        else value.items() if isinstance(value, dict)
        else ((f"[{i}]", v) for i, v in enumerate(value)) if isinstance(value, (list, tuple))
        else ()
    )  # fmt: skip
    for name, child in children:
        _check_finite(f"{key}{name}" if str(name).startswith("[") else f"{key}.{name}" if key else str(name), child)


def _expected_type(schema: type, parts: list[str]) -> str:
    for part in parts[:-1]:
        schema = typing.get_type_hints(schema).get(part, Any)
    annotation = typing.get_type_hints(schema).get(parts[-1], Any) if dataclasses.is_dataclass(schema) else Any
    text = repr(annotation).replace("typing.", "")
    return getattr(annotation, "__name__", text) if annotation in (int, float, bool, str) else text


def check_method_values(method: dict[str, Any]) -> None:
    """The ranges every method shares by name, checked before any data is read: temperatures are > 0 (a logit
    divisor), sizes (``*_dim``) are >= 1; the method's own constructor checks the rest when it is built."""
    for key, value in method.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if "temperature" in key:
            check_range(f"method.{key}", float(value), low=0.0, strict=True)
        elif key.endswith("_dim"):
            check_range(f"method.{key}", value, low=1)


def check_pretrained(path: str) -> None:
    """``backbone.pretrained`` names a readable image (or contrastkit image-text) encoder file."""
    from contrastkit.backbones.encoder_file import read_encoder_info

    try:
        info = read_encoder_info(path)
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError(f"backbone.pretrained: {e}") from None
    if "backbone" not in info:
        raise ConfigError(
            f"backbone.pretrained: {path} is a {info.get('kind', 'image')} encoder without an image backbone to "
            "train (an image encoder, or the image tower of a contrastkit clip run)"
        )


def check_guide(path: str) -> None:
    """``method.guide`` names a readable encoder file that embeds text (``kind: text`` or ``dual``)."""
    from contrastkit.backbones.encoder_file import read_encoder_info

    try:
        info = read_encoder_info(path)
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError(f"method.guide: {e}") from None
    if info.get("kind", "image") not in ("text", "dual"):
        raise ConfigError(f"method.guide: {path} is an {info.get('kind', 'image')} encoder; a guide must embed text")
