"""The width commands of `winit`: parametrizations, coordcheck and transfer (µP, NTK; Yang et
al. 2021). Registered on cli.app (cli.py adds this Typer), in the same style: only typer at
module level, every command importing what it needs.
"""

from __future__ import annotations

import typer

from . import options as opts
from .options import ConfigOptions, config_options, invocation
from .terminal import (
    OneLineCommand,
    console,
    fail,
    json_only_on_stdout,
    print_json,
    show,
    user_errors,
)

width_app = typer.Typer()


@width_app.command(
    cls=OneLineCommand,
    short_help="SP, NTK and µP by the role of a weight; a config's per-parameter table.",
)
@user_errors
@config_options(without=("steps",))
def parametrizations(
    config: opts.ConfigArg = None,
    options: ConfigOptions = None,  # type: ignore[assignment]
    as_json: opts.TableJsonOpt = False,
) -> None:
    """SP, NTK and µP by the role of a weight (Yang et al. 2021); given a config (a file,
    --layer or --set) under init.parametrization ntk or mup, its per-parameter table."""
    from .parametrization import PARAMETRIZATIONS, SCALING_NOTES, SCALING_TABLE

    rows, title = None, ""
    if config is not None or options.config is not None or options.layer or options.sets:
        from .errors import WinitError
        from .mup_shapes import parametrization_of
        from .parametrization import width_multipliers_table

        cfg = options.load("train", config)
        scaling = parametrization_of(cfg)
        if scaling is None:
            raise WinitError(
                "init.parametrization: the per-parameter table is NTK's or µP's; "
                "add --set init.parametrization=mup (or ntk; and model.base_width)"
            )
        rows = width_multipliers_table(scaling)
        title = (
            f"{cfg.name or 'config'} under {scaling.label}: width {scaling.width}, base width "
            f"{scaling.base_width}, "
            + (
                f"readout {scaling.readout} × {scaling.readout_multiplier:.4g}"
                if scaling.readout is not None
                else "no readout named"
            )
        )
    if as_json:
        table: dict[str, dict[str, dict[str, str]]] = {}
        for quantity, role, *cells in SCALING_TABLE:
            table.setdefault(quantity, {})[role] = dict(zip(PARAMETRIZATIONS, cells, strict=True))
        data: dict[str, object] = {
            "reference": "Yang et al. 2021, Tensor Programs V, Table 3 (µP); Tensor Programs "
            "IV, Table 1 (NTK)",
            "table": table,
            "notes": dict(SCALING_NOTES),
        }
        if rows is not None:
            data["parameters"] = rows
        print_json(data)
        return
    from .render.parametrizations import parametrizations_view

    shown = console()
    view = parametrizations_view(SCALING_TABLE, SCALING_NOTES, shown.width, rows, title)
    show(view, shown)


@width_app.command(
    cls=OneLineCommand,
    short_help="The coordinate check: each module's output size against width, pass or fail.",
)
@user_errors
@config_options(without=("steps", "width"))
def coordcheck(
    ctx: typer.Context,
    config: opts.ConfigArg = None,
    options: ConfigOptions = None,  # type: ignore[assignment]
    widths: opts.WidthsOpt = None,
    steps: opts.CoordStepsOpt = 4,
    seeds: opts.CoordSeedsOpt = 3,
    stat: opts.CoordStatOpt = "l1",
    parametrization: opts.ParametrizationOpt = None,
    jobs: opts.CoordcheckJobsOpt = None,
    as_json: opts.JsonOpt = False,
    runs_dir: opts.RunsDirOpt = None,
) -> None:
    """The coordinate check (µP, Yang et al. 2021): each module's output size against
    width over the first optimizer steps; exit 1 if a module's size changes with width."""
    from . import session
    from .coordcheck import STATISTICS, parse_widths
    from .layer_specs import MAX_SIZE

    ladder = parse_widths(widths, MAX_SIZE)
    if stat not in STATISTICS:
        fail(f"--stat: one of {', '.join(STATISTICS)}; got {stat}")
    with json_only_on_stdout(as_json):
        cfg = options.load("coordcheck", config, opts.parametrization_sets(parametrization))
        recorded = session.coordcheck(
            cfg,
            ladder,
            steps,
            seeds,
            statistic=stat,
            jobs=jobs,
            runs_dir=runs_dir,
            command=invocation(ctx),
        )
    result = recorded.result
    if as_json:
        print_json({**result.to_dict(), "run_dir": str(recorded.run_dir)})
    else:
        from .render.coordcheck import coordcheck_view

        shown = console()
        show(coordcheck_view(result, str(recorded.run_dir), shown.width), shown)
    if not result.passed:
        raise typer.Exit(1)


@width_app.command(
    cls=OneLineCommand,
    short_help="Learning-rate transfer over width: the optimal lr per width, SP or µP.",
)
@user_errors
@config_options(without=("width",), steps_help="Training steps of each trial.")
def transfer(
    ctx: typer.Context,
    config: opts.ConfigArg = None,
    options: ConfigOptions = None,  # type: ignore[assignment]
    widths: opts.TransferWidthsOpt = None,
    lrs: opts.LrsOpt = None,
    seeds: opts.TransferSeedsOpt = 1,
    parametrization: opts.ParametrizationOpt = None,
    jobs: opts.SweepJobsOpt = None,
    ray: opts.RayOpt = False,
    address: opts.AddressOpt = None,
    fresh: opts.FreshOpt = False,
    as_json: opts.JsonOpt = False,
    runs_dir: opts.RunsDirOpt = None,
) -> None:
    """Learning-rate transfer over width (µP, Yang et al. 2021): a width x lr sweep, the
    final loss against log2 lr per width and the optimal lr of each; resumes if run again."""
    from .coordcheck import parse_widths
    from .layer_specs import MAX_SIZE
    from .transfer import DEFAULT_WIDTHS, parse_lrs, transfer_sweep

    ladder = parse_widths(widths, MAX_SIZE) if widths is not None else list(DEFAULT_WIDTHS)
    rates = parse_lrs(lrs)
    if address is not None and not ray:
        fail("--address is the Ray cluster to join; it needs --ray")
    sets = [*opts.parametrization_sets(parametrization), *options.sets]  # a --set still wins
    with json_only_on_stdout(as_json):
        spec = transfer_sweep(options.path(config), ladder, rates, sets, options.layer, seeds)
        from .sweep.view import SweepProgress
        from .transfer_run import transfer as run_transfer

        recorded = run_transfer(
            spec,
            runs_dir=runs_dir,
            backend="ray" if ray else "local",
            jobs=jobs,
            address=address,
            fresh=fresh,
            progress=None if as_json else SweepProgress,
            command=invocation(ctx),
        )
    result = recorded.result
    if as_json:
        print_json(result.to_dict())
    else:
        from .render.transfer import transfer_view

        shown = console()
        show(transfer_view(result, shown.width), shown)
    if recorded.exit_code:
        raise typer.Exit(recorded.exit_code)
