"""Registry of named functional forms for scaling-law fits.

A form is an object (``scaling.forms.base.Form``): a name, a one-line description, a citation, a family,
and the methods that fit it, refit it for the bootstrap and allocate compute in closed form. Axes are
generic: a form never knows whether its columns are parameters, hours of video, image pixels or tokens.
The built-in forms live in ``scaling.forms.linear`` (polynomial/logit surfaces) and
``scaling.forms.powerlaw`` (additive power laws); they are imported and registered on the first use of the
registry so that importing this module stays cheap and cycle-free.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from scaling.errors import FitError
from scaling.forms.base import BatchRefit, Form, Refit, Replicate, check_resample

__all__ = [
    "BatchRefit",
    "DuplicateFormError",
    "Form",
    "Refit",
    "Replicate",
    "check_resample",
    "get_form",
    "list_forms",
    "register_form",
    "registered",
    "unregister_form",
]


class DuplicateFormError(FitError, ValueError):
    """A form name was registered twice (a programming error, but also a one-line ScalingError)."""


_REGISTRY: dict[str, Form] = {}
_builtins_loaded = False


def _add(form: Form) -> None:
    if not isinstance(form, Form):
        raise TypeError(f"a form must be a scaling.forms.Form; got {type(form).__name__}")
    name = getattr(form, "name", "")
    description = getattr(form, "description", "")
    if not isinstance(name, str) or not name or not isinstance(description, str) or "\n" in description:
        raise ValueError("a form needs a non-empty name and a one-line description")
    if not isinstance(getattr(form, "source", None), str) or not isinstance(getattr(form, "family", None), str):
        raise ValueError(f"form {name!r} needs a source (citation) and a family, both strings")
    if name in _REGISTRY:
        raise DuplicateFormError(f"form {name!r} is already registered")
    _REGISTRY[name] = form


def _load_builtins() -> None:
    # Imported here, not at module top: the built-in modules import scaling.forms.result, which imports this one.
    # They are registered in a fixed order (``scaling forms`` lists registration order) whichever of them
    # was imported first.
    global _builtins_loaded
    if not _builtins_loaded:
        from scaling.forms import bnsl, linear, m4, powerlaw  # lazy: the built-in forms import this module

        for form in [*linear.FORMS, *powerlaw.FORMS, *m4.FORMS, *bnsl.FORMS]:
            _add(form)
        _builtins_loaded = True


def register_form(form: Form) -> None:
    """Add a form; a name can be registered once (``DuplicateFormError``, built-in names included)."""
    _load_builtins()
    _add(form)


def unregister_form(name: str) -> Form:
    """Remove the form called ``name`` and return it; ``FitError`` naming the known forms otherwise."""
    form = get_form(name)
    del _REGISTRY[name]
    return form


@contextmanager
def registered(form: Form) -> Iterator[Form]:
    """Register ``form`` for the duration of a ``with`` block (tests, notebooks); always unregistered."""
    register_form(form)
    try:
        yield form
    finally:
        _REGISTRY.pop(form.name, None)


def list_forms() -> list[Form]:
    """All registered forms, in registration order."""
    _load_builtins()
    return list(_REGISTRY.values())


def get_form(name: str) -> Form:
    """The form called ``name``; ``FitError`` naming the known forms otherwise."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise FitError(f"unknown form {name!r}; known: {known}") from None
