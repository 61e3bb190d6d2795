"""One validator per command-line option, shared by every command that takes it.

Each is a Typer callback (``typer.Option(callback=...)``, wired in ``scaling.cli.options`` and wherever a
command declares the option): it checks the value when Click parses it, before any data are read, with the
library's rule for the same argument (``scaling.core.checks``, named by the flag), and a bad value is one
line on stderr and exit 1 (``fail``). A value Click cannot parse at all (``--seed abc``) stays a usage error
(exit 2). What needs the data (``--at`` naming exactly the table's axes, a cost over the bounds) is checked
by the library, with the same rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NoReturn

import typer

from scaling.cli.render import printable, stderr_console
from scaling.core import checks
from scaling.defaults import COST_MAX_CHARS, MAX_WORKERS
from scaling.errors import ScalingError


def fail(message: str) -> NoReturn:
    """One line on stderr (control characters escaped) and exit 1."""
    text = message.strip().splitlines()[0] if message.strip() else "invalid input"
    stderr_console().print(f"error: {printable(text)}", markup=False, soft_wrap=True)
    raise typer.Exit(1)


def _callback(rule: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A Typer callback applying ``rule`` to a given value (None: not given, left as is)."""

    def callback(value: Any) -> Any:
        if value is None:
            return None
        try:
            rule(value)
        except ScalingError as exc:
            fail(str(exc))
        return value

    return callback


def _each(rule: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``rule`` on every value of a repeatable option."""
    return lambda values: [rule(v) for v in values]


def _assignments(flag: str, *, low_high: bool = False) -> Callable[[str], None]:
    """NAME=VALUE,... (or NAME=LOW:HIGH,... with ``low_high``): at least one, names distinct, values positive."""

    def rule(text: str) -> None:
        seen: set[str] = set()
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or not name:
                form = "AXIS=LOW:HIGH" if low_high else "NAME=VALUE"
                raise ScalingError(f"{flag}: expected {form}, got {part!r}")
            if name in seen:
                raise ScalingError(f"{flag} names {name!r} twice")
            seen.add(name)
            if low_high:
                lo, colon, hi = value.partition(":")
                if not colon:
                    raise ScalingError(f"{flag}: expected AXIS=LOW:HIGH, got {part!r}")
                checks.box({name: (lo, hi)}, [name], flag)
            else:
                checks.positive(value, f"{flag} {name}")
        if not seen:
            raise ScalingError(f"{flag} names no axis (expected {'AXIS=LOW:HIGH' if low_high else 'NAME=VALUE'},...)")

    return rule


def _budget(flag: str) -> Callable[[Any], float]:
    return lambda v: checks.positive(v, flag)


def _cost(text: str) -> None:
    """Only the length here (a huge expression fails before anything is read); the axes check the rest."""
    if len(text) > COST_MAX_CHARS:
        raise ScalingError(f"--cost is {len(text):,} characters long; a cost expression has at most {COST_MAX_CHARS:,}")


def _axes(text: str) -> None:
    names = [a.strip() for a in text.split(",") if a.strip()]
    if len(set(names)) < len(names):
        twice = next(a for a in names if names.count(a) > 1)
        raise ScalingError(f"--axes names {twice!r} twice")


def _map_axes(text: str) -> None:
    names = [a.strip() for a in text.split(",") if a.strip()]
    if len(names) != 2 or names[0] == names[1]:
        raise ScalingError(f"--map-axes names two different axes, ACROSS,UP (e.g. tokens,params); got {text!r}")


def _mask_ratio(v: float) -> None:
    if not (math.isfinite(v) and 0.0 <= v < 1.0):
        raise ScalingError(f"--mask-ratio must be in [0, 1); got {v:g}")


# The validators, by option. Commands pass them as ``callback=``; ``scaling.cli.options`` does for the shared ones.
seed = _callback(lambda v: checks.seed(v, "--seed"))
subset_seed = _callback(lambda v: checks.seed(v, "--seed"))
bootstrap = _callback(lambda v: checks.count(v, "--bootstrap", minimum=0))
outcomes = _callback(lambda v: checks.count(v, "--outcomes"))
workers = _callback(lambda v: checks.count(v, "--workers", maximum=MAX_WORKERS))
top = _callback(lambda v: checks.count(v, "--top"))
frontier_rows = _callback(lambda v: checks.count(v, "--frontier-rows", minimum=0))
alpha_max = _callback(lambda v: checks.alpha_max(v, "--alpha-max"))
huber_delta = _callback(lambda v: checks.positive(v, "--huber-delta"))
level_tol = _callback(lambda v: checks.level_tol(v, "--level-tol"))
level = _callback(lambda v: checks.fraction(v, "--level"))
levels = _callback(_each(lambda v: checks.fraction(v, "--level")))
passes = _callback(lambda v: checks.positive(v, "--passes"))
dpi = _callback(lambda v: checks.positive(v, "--dpi"))
at = _callback(_assignments("--at"))
where = _callback(_assignments("--where"))
hold = _callback(_assignments("--hold"))
map_axes = _callback(_map_axes)
exponents = _callback(_assignments("--exponents"))
bounds = _callback(_assignments("--bounds", low_high=True))
budget = _callback(_budget("--budget"))
cost = _callback(_cost)
axes = _callback(_axes)
image_px = _callback(lambda v: checks.positive(v, "--image-px"))
# `scaling plan`: sizes, prices and MFU finite and positive (a price may be 0), counts at least 1.
gpus = _callback(lambda v: checks.count(v, "--gpus"))
batch = _callback(lambda v: checks.count(v, "--batch"))
params = _callback(lambda v: checks.positive(v, "--params"))
px = _callback(lambda v: checks.positive(v, "--px"))
hours = _callback(lambda v: checks.positive(v, "--hours"))
mfu = _callback(lambda v: checks.fraction(v, "--mfu", closed=True))
peak_tflops = _callback(lambda v: checks.positive(v, "--peak-tflops"))
usd_per_gpu_hour = _callback(lambda v: checks.non_negative(v, "--usd-per-gpu-hour"))
mask_ratio = _callback(_mask_ratio)
fraction = _callback(lambda v: checks.fraction(v, "--fraction", closed=True))
