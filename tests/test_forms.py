"""The form registry: built-ins, lookups and duplicate names."""

from __future__ import annotations

import pytest

from scaling.errors import FitError, ScalingError
from scaling.forms import FormInfo, get_fitter, get_form, list_forms, register_form

BUILTINS = {"poly1", "poly2", "logit1", "logit2", "powerlaw", "powerlaw_chance"}


def test_builtins_are_registered_with_description_and_source() -> None:
    forms = {f.name: f for f in list_forms()}
    assert BUILTINS <= set(forms)
    for name in BUILTINS:
        info = forms[name]
        assert info.description and "\n" not in info.description
        assert info.source
        assert info.family == ("powerlaw" if name.startswith("powerlaw") else "linear")
    assert "reconstructed" in forms["poly2"].source
    assert (
        "Rosenfeld" in forms["powerlaw_chance"].source
        and "our parametrisation" in forms["powerlaw_chance"].source
    )


def test_get_form_and_unknown_form() -> None:
    assert get_form("powerlaw").name == "powerlaw"
    assert callable(get_fitter("poly1"))
    with pytest.raises(FitError, match=r"unknown form 'nope'; known: .*powerlaw"):
        get_form("nope")


def test_reregistering_a_name_is_an_error() -> None:
    info = get_form("poly1")
    with pytest.raises(ScalingError, match="already registered"):
        register_form(info, get_fitter("poly1"))
    with pytest.raises(ValueError, match="already registered"):
        register_form(FormInfo("poly1", "x", "y", "linear"), lambda data: None)


def test_registering_a_new_form_is_listed() -> None:
    from scaling.forms import _REGISTRY

    name = "test_dummy_form"
    register_form(FormInfo(name, "a dummy", "this test", "linear"), lambda data, **kw: None)
    try:
        assert name in {f.name for f in list_forms()}
    finally:
        _REGISTRY.pop(name)
    with pytest.raises(ValueError, match="family"):
        register_form(FormInfo("test_bad_family", "x", "y", "spline"), lambda data: None)
