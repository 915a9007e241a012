"""The spectra commands of `winit`: the input-output Jacobian's spectrum (dynamical
isometry). Registered on cli.app (cli.py adds this Typer); only typer at module level."""

from __future__ import annotations

import typer

from . import options as opts
from .options import ConfigOptions, config_options, invocation
from .terminal import OneLineCommand, console, json_only_on_stdout, print_json, show, user_errors

spectra_app = typer.Typer()


@spectra_app.command(
    cls=OneLineCommand,
    short_help="The input-output Jacobian's singular values at init, beside theory.",
)
@user_errors
@config_options(without=("steps",))
def spectrum(
    ctx: typer.Context,
    config: opts.ConfigArg = None,
    options: ConfigOptions = None,  # type: ignore[assignment]
    inputs: opts.SpectrumInputsOpt = 64,
    as_json: opts.JsonOpt = False,
    runs_dir: opts.RunsDirOpt = None,
) -> None:
    """Dynamical isometry (Pennington et al. 2017): the singular values of the Jacobian of
    the last hidden layer (or the logits) w.r.t. the input at init, per depth for dense
    stacks, with the mean and variance free probability predicts."""
    from . import session

    with json_only_on_stdout(as_json):
        cfg = options.load("spectrum", config)
        recorded = session.spectrum(cfg, inputs, runs_dir=runs_dir, command=invocation(ctx))
    result = recorded.result
    if as_json:
        print_json({**result.to_dict(), "run_dir": str(recorded.run_dir)})
        return
    from .render.spectrum import spectrum_view

    shown = console()
    show(spectrum_view(result, str(recorded.run_dir), shown.width), shown)
