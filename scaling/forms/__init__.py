"""Registry of named functional forms for scaling-law fits.

A form is an object (``scaling.forms.base.Form``): a name, a one-line description, a citation, a family,
and the methods that fit it, refit it for the bootstrap and allocate compute in closed form. Axes are
generic: a form never knows whether its columns are parameters, hours of video, image pixels or tokens.
The built-in forms live in ``scaling.forms.linear`` (polynomial/logit surfaces) and
``scaling.forms.powerlaw`` (additive power laws); they are imported and registered on the first use of the
registry so that importing this module stays cheap and cycle-free.

A form object can also be used without registering it: ``scaling.fit(data, form=law)`` (and ``backtest``,
``compare``) take the object, and from then on its name finds it (``get_form``) for the rest of the session,
as the fit's bootstrap, projections and backtests ask; it is not listed by ``list_forms``. Using another
object of the same name replaces it (a notebook cell run again); a registered form of that name is never
shadowed (``register_form(form, replace=True)`` replaces a registered one, built-in names excepted).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from scaling.errors import FitError
from scaling.forms.base import Form, Refit, Replicate, check_resample

__all__ = [
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
    "use_form",
]


class DuplicateFormError(FitError, ValueError):
    """A form name was registered twice (a programming error, but also a one-line ScalingError)."""


_REGISTRY: dict[str, Form] = {}
_KNOWN: dict[str, Form] = {}  # forms used as objects without registering (``use_form``), by name
_BUILTIN: set[str] = set()
_builtins_loaded = False


def _check(form: Form) -> None:
    if not isinstance(form, Form):
        raise TypeError(f"a form must be a scaling.forms.Form; got {type(form).__name__}")
    name = getattr(form, "name", "")
    description = getattr(form, "description", "")
    if not isinstance(name, str) or not name or not isinstance(description, str) or "\n" in description:
        raise ValueError("a form needs a non-empty name and a one-line description")
    if not isinstance(getattr(form, "source", None), str) or not isinstance(getattr(form, "family", None), str):
        raise ValueError(f"form {name!r} needs a source (citation) and a family, both strings")


def _add(form: Form) -> None:
    _check(form)
    if form.name in _REGISTRY:
        raise DuplicateFormError(f"form {form.name!r} is already registered (register_form(form, replace=True) "
                                 "replaces it)")
    _REGISTRY[form.name] = form


def _load_builtins() -> None:
    # Imported here, not at module top: the built-in modules import scaling.forms.result, which imports this one.
    # They are registered in a fixed order (``scaling forms`` lists registration order) whichever of them
    # was imported first.
    global _builtins_loaded
    if not _builtins_loaded:
        from scaling.forms import bnsl, linear, m4, powerlaw  # lazy: the built-in forms import this module

        for form in [*linear.FORMS, *powerlaw.FORMS, *m4.FORMS, *bnsl.FORMS]:
            _add(form)
            _BUILTIN.add(form.name)
        _builtins_loaded = True


def register_form(form: Form, *, replace: bool = False) -> None:
    """Add a form. A name is registered once (``DuplicateFormError``), unless ``replace=True`` (a notebook
    cell run again); a built-in form is never replaced."""
    _load_builtins()
    _check(form)
    if replace and form.name in _REGISTRY and _REGISTRY[form.name] is not form:
        if form.name in _BUILTIN:
            raise DuplicateFormError(f"form {form.name!r} is built in and cannot be replaced; give yours another name")
        del _REGISTRY[form.name]
    if not (replace and _REGISTRY.get(form.name) is form):
        _add(form)
    _KNOWN.pop(form.name, None)


def use_form(form: Form | str) -> str:
    """The name of ``form``: a name as it is, or a ``Form`` object, which its name then finds without
    registering it (see the module docstring). FitError for another registered form of the same name."""
    if isinstance(form, str):
        return form
    try:
        _check(form)
    except (TypeError, ValueError) as exc:
        raise FitError(str(exc)) from None
    _load_builtins()
    registered = _REGISTRY.get(form.name)
    if registered is not None and registered is not form:
        raise FitError(f"another form is registered as {form.name!r}: give yours another name (name=...), or "
                       "replace it with scaling.register_form(form, replace=True)")
    if registered is None:
        _KNOWN[form.name] = form
    return form.name


def unregister_form(name: str) -> Form:
    """Remove the form called ``name`` and return it; ``FitError`` naming the known forms otherwise."""
    form = get_form(name)
    _REGISTRY.pop(name, None)
    _KNOWN.pop(name, None)
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
    """The form called ``name`` (registered, or used as an object this session); ``FitError`` naming the
    known forms otherwise."""
    _load_builtins()
    form = _REGISTRY.get(name) or _KNOWN.get(name)
    if form is None:
        known = ", ".join([*_REGISTRY, *_KNOWN])
        raise FitError(f"unknown form {name!r}; known: {known}")
    return form
