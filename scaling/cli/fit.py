"""``scaling forms | targets | fit``: the forms and targets there are, and a named form fitted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from scaling.cli.common import domain_errors, emit_json, split_csv
from scaling.cli.options import (
    DEFAULT_AXES,
    AllowLargeOpt,
    AlphaMaxOpt,
    AxesOpt,
    BootstrapOpt,
    ChanceOpt,
    DataOpt,
    EvalSetOpt,
    FormOpt,
    GroupOpt,
    HuberOpt,
    JsonOpt,
    KindOpt,
    LevelOpt,
    ProtocolOpt,
    SeedOpt,
    SelectionOpt,
    WorkersOpt,
    YOpt,
    cli_group,
    cli_levels,
    load_table,
)
from scaling.cli.progress import progress_bar
from scaling.cli.render import (
    fmt_estimate,
    fmt_number,
    fmt_percent,
    fmt_stderr,
    print_json,
    render_bootstrap,
    stderr_console,
    stdout_console,
    table,
)
from scaling.core.targets import default_target_for, list_targets
from scaling.defaults import DEFAULT_FORM, DEFAULT_METRIC

if TYPE_CHECKING:
    from scaling.forms.result import FitResult


def register(app: typer.Typer) -> None:
    app.command("forms")(forms_cmd)
    app.command("targets")(targets_cmd)
    app.command("fit")(fit_cmd)


@domain_errors
def forms_cmd(as_json: JsonOpt = False) -> None:
    """List the functional forms, each with its source.

    [bold]Examples[/bold]

      scaling forms
      scaling forms --json
    """
    from scaling.forms import list_forms  # lazy: keeps `scaling --help` fast

    forms = list_forms()
    if as_json:
        emit_json("scaling.forms/v1", {"forms": [f.to_dict() for f in forms]})
        return
    rows = [(f.name, f.family, f.description, f.source) for f in forms]
    stdout_console().print(table("Functional forms", ["name", "family", "description", "source"], rows))


@domain_errors
def targets_cmd(
    eval_set: Annotated[str | None, typer.Option(
        help="Only the targets on this eval set, e.g. mvh-sketch; the default is the one a projection on it "
             "aims at.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the named projection targets, each with its citation.

    Human top-5 on ImageNet (the default), and human 16-class accuracy on the 17 out-of-distribution
    sets of Geirhos et al. 2021 (human-ood-SET on eval set mvh-SET) and their mean (human-ood-mean on
    mvh-mean), computed from the trials of the model-vs-human repository, file and commit cited. A
    projection on one of those eval sets (`scaling project --eval-set mvh-sketch`) aims at its human
    target. Any number is a target too: `--target 0.8` or `--target 80%` with `--metric`.

    [bold]Examples[/bold]

      scaling targets
      scaling targets --eval-set mvh-mean --json
      scaling project --target 80% --metric top1
      scaling project --eval-set mvh-sketch --form logit1
    """
    targets = list_targets(eval_set)
    default = default_target_for(eval_set)
    if as_json:
        emit_json("scaling.targets/v1", {"default": default, "targets": [t.to_dict() for t in targets]})
        return
    rows = [(t.name, fmt_percent(t.value), t.metric, t.eval_set, t.protocol, t.description, t.source)
            for t in targets]
    cols = ["name", "value", "metric", "eval set", "protocol", "description", "source"]
    title = f"Targets{'' if eval_set is None else f' on {eval_set}'} (default: {default})"
    stdout_console().print(table(title, cols, rows))


# Table labels of FitResult.stats (the JSON keys stay); "n_params" there counts the form's free parameters,
# not the axis of that name.
STAT_LABELS = {"rmse": "RMSE", "mae": "mean |residual|", "max_abs": "max |residual|", "r2": "R^2",
               "loglik": "log-likelihood", "aicc": "AICc", "bic": "BIC", "n_params": "free parameters"}


def _render_fit(result: FitResult) -> None:
    console = stdout_console()
    source = result.source
    rows = []
    for name, value in result.params.items():
        se = (result.stderr or {}).get(str(name))
        rows.append((name, fmt_estimate(value, se), fmt_stderr(se), "yes" if name in result.at_bound else ""))
    where = ", ".join(f"{k}={v}" for k, v in source.items())
    console.print(table(f"Fit {result.form}: {result.y} ~ {', '.join(result.axes)} ({result.kind})",
                        ["parameter", "value", "std. error", "at bound"], rows, caption=where))
    s = result.stats
    stat_rows = [(STAT_LABELS.get(k, k), fmt_number(v)) for k, v in s.items()]
    limit = "none" if result.ceiling is None else fmt_number(result.ceiling)
    stat_rows += [("points fitted", str(result.n_points)), ("converged", "yes" if result.converged else "no"),
                  (f"{result.direction.limit_name} as every axis grows", limit)]
    console.print(table(None, ["statistic", "value"], stat_rows,
                        caption="values rounded to their standard error's second digit; --json has them unrounded"))
    for note in result.notes:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)


@domain_errors
def fit_cmd(
    ctx: typer.Context,
    form: FormOpt = DEFAULT_FORM,
    metric: Annotated[
        str, typer.Option(help="Metric to fit: top1 or top5 (default: that of the default target, human-top5).")
    ] = DEFAULT_METRIC,
    eval_set: EvalSetOpt = None,
    protocol: ProtocolOpt = None,
    selection: SelectionOpt = "best-epoch",
    axes: AxesOpt = DEFAULT_AXES,
    data: DataOpt = None,
    y: YOpt = None,
    kind: KindOpt = "accuracy",
    chance: ChanceOpt = None,
    huber_delta: HuberOpt = None,
    alpha_max: AlphaMaxOpt = None,
    n_bootstrap: BootstrapOpt = 0,
    seed: SeedOpt = 0,
    level: LevelOpt = None,
    group: GroupOpt = None,
    workers: WorkersOpt = 1,
    allow_large_work: AllowLargeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Fit a named functional form to the run database (or to a CSV table).

    Parameters are printed rounded to the precision of their standard errors (--json: unrounded), with
    residual statistics, AICc/BIC on the response scale, convergence and any parameter at a bound.
    --bootstrap N adds percentile intervals on every parameter and on the ceiling (or floor), from N
    resamples of whole runs (--group), refitted (a progress bar on stderr); the table says how many
    resamples each interval uses.

    [bold]Examples[/bold]

      scaling fit
      scaling fit --form poly1 --metric top5 --json
      scaling fit --form logit2 --selection last-epoch
      scaling fit --data chinchilla.csv --y loss --axes n_params,tokens \\
          --kind loss
      scaling fit --form powerlaw --bootstrap 1000 --seed 1 --level 0.9 \\
          --workers 2
      scaling fit --bootstrap 1000 --group data_fraction,subset_seed
    """
    import scaling  # lazy: keeps `scaling --help` fast

    frame = load_table(ctx, data=data, y=y, protocol=protocol, eval_set=eval_set, metric=metric, selection=selection)
    with progress_bar() as update:
        result = scaling.fit(frame, form, metric=metric, y=y, axes=split_csv(axes), kind=kind, chance=chance,
                             huber_delta=huber_delta, alpha_max=alpha_max,
                             n_boot=n_bootstrap, seed=seed, levels=cli_levels(level),
                             group=cli_group(group), workers=workers, progress=update)
    if as_json:
        print_json(result.to_dict())
        return
    _render_fit(result)
    if result.bootstrap is not None:
        render_bootstrap(result.bootstrap, result.bootstrap.params, f"Bootstrap intervals ({result.form})",
                         limit_name=result.direction.limit_name)
