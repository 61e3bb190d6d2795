"""Which forms a study names, and the options it passes each: asked of the form's declared capabilities
(``Form.chance_option``, ``needs_chance``, ``option_names``), never of its name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scaling.core.direction import direction
from scaling.errors import FitError, ScalingError
from scaling.forms import Form, get_form, list_forms, use_form


def form_options(form: str, *, metric: str | None, kind: str, chance: float | None = None,
                 huber_delta: float | None = None, alpha_max: float | None = None) -> dict[str, Any]:
    """The options a study passes to ``form``: what the form derives from the data (``Form.default_options``,
    e.g. the chance error of a chance ceiling from the metric), and the user's ``chance``, ``huber_delta``
    and ``alpha_max`` where the form takes them (a form that does not ignores them)."""
    info = get_form(form)
    if info.requires_fraction and not direction(kind).is_fraction:
        raise ScalingError(f"form {form!r} models a fraction (an accuracy or an error rate, kind 'accuracy' or "
                           f"'error'); a {kind} is not one, whatever its values")
    if info.kind is not None and kind != info.kind:
        raise FitError(f"form {form!r} is a law of a {info.kind}: fit it with kind={info.kind!r}")
    options: dict[str, Any] = {}
    if huber_delta is not None and "huber_delta" in info.option_names:
        options["huber_delta"] = huber_delta
    if alpha_max is not None and "alpha_max" in info.option_names:
        options["alpha_max"] = alpha_max
    options |= info.default_options(metric=metric, kind=kind)
    if chance is not None:
        if direction(kind).is_fraction and not 0.0 < chance <= 1.0:
            raise ScalingError(f"a chance-level error of an accuracy is in (0, 1]; got {chance:g}")
        if chance <= 0.0:
            raise ScalingError(f"a chance level must be positive; got {chance:g}")
        if info.chance_option is not None:
            options[info.chance_option] = chance
    if info.needs_chance and info.chance_option not in options:
        what = f"metric {metric!r}" if metric else f"a {kind} table that is not a top-k accuracy of the run database"
        raise ScalingError(f"form {form!r} needs a chance-level error (--chance, chance=) for {what}")
    return options


def form_names(forms: Sequence[str | Form] | str | Form | None) -> list[str]:
    """The forms named (a list, a comma-separated string, 'all' or None for every registered form; a list may
    hold ``Form`` objects, used without registering them), each checked to exist (one-line error naming the
    known forms)."""
    if forms is None or (isinstance(forms, str) and forms.strip().lower() == "all"):
        return [f.name for f in list_forms()]
    if isinstance(forms, Form):
        forms = [forms]
    names = [f.strip() for f in forms.split(",")] if isinstance(forms, str) else \
        [use_form(f).strip() for f in forms]
    names = [n for n in names if n]
    if not names:
        raise ScalingError("name at least one form (or 'all')")
    for n in names:
        get_form(n)
    return names
