"""Registry of named functional forms for scaling-law fits.

A form is a name, a one-line description, a citation and a fitter. Axes are generic: a form never knows
whether its columns are parameters, hours of video, image pixels or tokens. The built-in forms live in
``scaling.forms.linear`` (polynomial/logit surfaces) and ``scaling.forms.powerlaw`` (additive power laws);
they are imported lazily on the first lookup so that importing this module stays cheap and cycle-free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scaling.errors import FitError

FAMILIES = ("linear", "powerlaw")


@dataclass(frozen=True)
class FormInfo:
    """What a form is and where it comes from."""

    name: str
    description: str  # one line
    source: str  # citation
    family: str  # 'linear' | 'powerlaw'


class DuplicateFormError(FitError, ValueError):
    """A form name was registered twice (a programming error, but also a one-line ScalingError)."""


_REGISTRY: dict[str, tuple[FormInfo, Callable[..., Any]]] = {}
_builtins_loaded = False


def register_form(info: FormInfo, fitter: Callable[..., Any]) -> None:
    """Add a form. ``fitter(data: FitData, **options) -> FitResult``; a name can be registered once."""
    if info.name in _REGISTRY:
        raise DuplicateFormError(f"form {info.name!r} is already registered")
    if not info.name or "\n" in info.description:
        raise ValueError("a form needs a non-empty name and a one-line description")
    if info.family not in FAMILIES:
        raise ValueError(f"form family must be one of {FAMILIES}; got {info.family!r}")
    _REGISTRY[info.name] = (info, fitter)


def _load_builtins() -> None:
    # Imported here, not at module top: the built-in modules import this one to register themselves.
    global _builtins_loaded
    if not _builtins_loaded:
        import scaling.forms.linear
        import scaling.forms.powerlaw  # noqa: F401

        _builtins_loaded = True


def list_forms() -> list[FormInfo]:
    """All registered forms, in registration order."""
    _load_builtins()
    return [info for info, _ in _REGISTRY.values()]


def get_form(name: str) -> FormInfo:
    """The form called ``name``; ``FitError`` naming the known forms otherwise."""
    return _lookup(name)[0]


def get_fitter(name: str) -> Callable[..., Any]:
    """The fitter of form ``name``."""
    return _lookup(name)[1]


def _lookup(name: str) -> tuple[FormInfo, Callable[..., Any]]:
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise FitError(f"unknown form {name!r}; known: {known}") from None
