"""The `winit` command: options -> config -> session -> render. Thin, on Typer's public API.

Only typer is imported at module level; every command imports what it needs, so
`winit --help` imports neither torch nor pydantic (benchmarks/README.md has the times).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from . import __version__
from . import options as opts
from .options import ConfigOptions, config_options, invocation
from .terminal import (
    OneLineCommand,
    OneLineErrors,
    console,
    fail,
    json_only_on_stdout,
    print_json,
    show,
    user_errors,
    warn,
    write_out,
)

app = typer.Typer(
    cls=OneLineErrors,
    name="winit",
    help="See what a weight-initialization method does to your network.",
    invoke_without_command=True,
    add_completion=False,
    # Help as wide as the terminal, up to 120 columns (click stops at 80): a command's
    # description then fits on its line.
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
    # Plain click help and errors: typer's Rich help imports rich.markdown, pygments and
    # more (~70 ms on every `winit --help`), and users never see a traceback.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        write_out(f"winit {__version__}\n")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """See what a weight-initialization method does to your network."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help(), err=True)
        raise typer.Exit(2)


@app.command(cls=OneLineCommand)
@user_errors
def methods(
    name: opts.MethodNameArg = None,
    as_json: opts.TableJsonOpt = False,
) -> None:
    """List the init methods: formula, aliases, what they suit, the paper."""
    from .methods import METHODS, get_method

    chosen = [get_method(name)] if name else list(METHODS.values())
    if as_json:
        data = [m.to_dict() for m in chosen]
        print_json(data[0] if name else data)
        return
    from .render.reference import method_detail, methods_table

    show(method_detail(chosen[0]) if name else methods_table(chosen))


@app.command(cls=OneLineCommand)
@user_errors
@config_options(without=("steps",))
def stats(
    ctx: typer.Context,
    config: opts.ConfigArg = None,
    options: ConfigOptions = None,  # type: ignore[assignment]
    as_json: opts.JsonOpt = False,
    out: opts.OutOpt = None,
    spp: opts.SppOpt = False,
    log: opts.LogOpt = None,
    log_dir: opts.LogDirOpt = None,
) -> None:
    """Per-layer weight, activation and gradient statistics beside theory."""
    from . import session

    with json_only_on_stdout(as_json):
        cfg = options.load("stats", config, opts.log_sets(log, log_dir))
        recorded = session.stats(cfg, spp=spp, out=out, command=invocation(ctx))
    result = recorded.result
    if as_json:
        from .serialize import stats_json

        print_json(stats_json(result))
    else:
        from .render import literal
        from .render.results import stats_view

        shown = console()
        show(stats_view(result, shown.width), shown)
        if recorded.run_dir is not None:
            show(literal(f"wrote {recorded.run_dir}/", "dim"), shown)
    warn(recorded.warnings)


@app.command(cls=OneLineCommand)
@user_errors
def schema() -> None:
    """Print the config JSON Schema (draft-7), for editor autocompletion."""
    # The schema ships with the package, generated from schema.json_schema() (a test
    # checks they are equal), so printing it imports no pydantic.
    write_out((Path(__file__).parent / "schema.json").read_text(encoding="utf-8"))


def _progress(as_json: bool) -> Any:
    """The live display for training runs (none with --json)."""
    if as_json:
        return None
    from .render.progress import TrainProgress

    return TrainProgress


@app.command(cls=OneLineCommand)
@user_errors
@config_options()
def train(
    ctx: typer.Context,
    config: opts.ConfigArg = None,
    options: ConfigOptions = None,  # type: ignore[assignment]
    as_json: opts.JsonOpt = False,
    runs_dir: opts.RunsDirOpt = None,
    log: opts.LogOpt = None,
    log_dir: opts.LogDirOpt = None,
) -> None:
    """Train one init method on a small task and save the run under runs/."""
    from . import session

    with json_only_on_stdout(as_json):
        cfg = options.load("train", config, opts.log_sets(log, log_dir))
        recorded = session.train(
            cfg, runs_dir=runs_dir, progress=_progress(as_json), command=invocation(ctx)
        )
    show_train(recorded, as_json)


def show_train(recorded: Any, as_json: bool) -> None:
    """Print a recorded training run; exit as a stop signal or a divergence asks."""
    from .serialize import train_json

    result = recorded.result
    if as_json:
        print_json(train_json(result, str(recorded.run_dir)))
    else:
        from .render.results import train_view

        shown = console()
        show(train_view(result, str(recorded.run_dir), shown.width), shown)
    warn(recorded.warnings)
    if recorded.exit_code:
        raise typer.Exit(recorded.exit_code)
    if result.history.status == "diverged":
        from .render.results import divergence_error

        fail(divergence_error(result.history), 1)


@app.command(cls=OneLineCommand)
@user_errors
@config_options(without=("method",))
def compare(
    ctx: typer.Context,
    methods: opts.MethodsOpt = None,
    extra: opts.ExtraMethodsArg = None,
    param: opts.ParamOpt = None,
    options: ConfigOptions = None,  # type: ignore[assignment]
    as_json: opts.JsonOpt = False,
    out: opts.OutOpt = None,
    spp: opts.SppOpt = False,
    runs_dir: opts.RunsDirOpt = None,
    jobs: opts.CompareJobsOpt = None,
    log: opts.LogOpt = None,
    log_dir: opts.LogDirOpt = None,
) -> None:
    """The same model, data and seed under several inits, side by side."""
    from . import session
    from .options import method_specs

    chosen = [*(methods or []), *(extra or [])]
    if methods is not None and not chosen:
        fail("--methods needs at least one method")
    with json_only_on_stdout(as_json):
        cfg = options.load("compare", None, opts.log_sets(log, log_dir))
        specs = method_specs(cfg, chosen or ["xavier", "he", "zero"], param or [])
        recorded = session.compare(
            cfg,
            specs,
            runs_dir=runs_dir,
            out=out,
            progress=_progress(as_json),
            command=invocation(ctx),
            jobs=jobs,
            spp=spp,
        )
    if as_json:
        from .serialize import compare_json

        print_json({**compare_json(recorded.result), "run_dir": str(recorded.run_dir)})
    else:
        from .render.results import compare_view

        shown = console()
        show(compare_view(recorded.result, str(recorded.run_dir), shown.width), shown)
    warn(recorded.warnings)
    if recorded.exit_code:
        raise typer.Exit(recorded.exit_code)


@app.command(cls=OneLineCommand)
@user_errors
def rerun(
    ctx: typer.Context,
    run_dir: opts.RunDirArg,
    runs_dir: opts.RunsDirOpt = None,
    as_json: opts.JsonOpt = False,
) -> None:
    """Repeat a saved run from its config and say whether the numbers match."""
    from .rerun import rerun as repeat

    with json_only_on_stdout(as_json):
        saved, recorded, match = repeat(
            run_dir, runs_dir=runs_dir, progress=_progress(as_json), command=invocation(ctx)
        )
    if as_json:
        print_json({"original": str(saved.path), "rerun": str(recorded.run_dir), **match.to_dict()})
    else:
        from .render.reference import rerun_view

        show(rerun_view(str(saved.path), str(recorded.run_dir), match))
    if recorded.exit_code:
        raise typer.Exit(recorded.exit_code)
    if not match.identical:
        raise typer.Exit(1)


@app.command(cls=OneLineCommand)
@user_errors
def reproduce(
    ctx: typer.Context,
    name: opts.ReproductionArg = None,
    list_: opts.ListOpt = False,
    full: opts.FullOpt = False,
    set_: opts.SetOpt = None,
    as_json: opts.JsonOpt = False,
    runs_dir: opts.RunsDirOpt = None,
) -> None:
    """Reproduce a classic init result: the paper's claim beside winit's measurement."""
    from .reproduce import REPRODUCTIONS, get_reproduction

    if list_ or name is None:
        if as_json:
            print_json([r.to_dict() for r in REPRODUCTIONS.values()])
            return
        from .render.reference import reproductions_table

        show(reproductions_table(list(REPRODUCTIONS.values())))
        if name is None and not list_:
            raise typer.Exit(2)
        return
    from . import session
    from .render.reference import finding_view, findings_table

    chosen = list(REPRODUCTIONS.values()) if name == "all" else [get_reproduction(name)]
    configs = [r.config(set_ or []) for r in chosen]  # every config checked before any run
    shown, findings, out = console(), [], []
    for repro, cfg in zip(chosen, configs, strict=True):
        finding, run_dir = session.reproduce(
            repro, cfg, fast=not full, runs_dir=runs_dir, command=invocation(ctx)
        )
        findings.append(finding)
        out.append({**finding.to_dict(), "run_dir": str(run_dir)})
        if not as_json:
            show(finding_view(finding, str(run_dir), shown.width), shown)
    if as_json:
        print_json(out if name == "all" else out[0])
    elif len(findings) > 1:
        show(findings_table(findings), shown)
    if not all(f.agree for f in findings):
        raise typer.Exit(1)


@app.command(cls=OneLineCommand)
@user_errors
@config_options(without=("backend",), steps_help="Training steps of each trial.")
def sweep(
    ctx: typer.Context,
    config: opts.SweepFileArg = None,
    options: ConfigOptions = None,  # type: ignore[assignment]
    grid: opts.GridOpt = None,
    seeds: opts.SeedsOpt = None,
    jobs: opts.SweepJobsOpt = None,
    backend: opts.SweepBackendOpt = "local",
    address: opts.AddressOpt = None,
    fresh: opts.FreshOpt = False,
    full_trials: opts.FullTrialsOpt = False,
    dry_run: opts.DryRunOpt = False,
    as_json: opts.JsonOpt = False,
    runs_dir: opts.RunsDirOpt = None,
    log: opts.LogOpt = None,
    log_dir: opts.LogDirOpt = None,
) -> None:
    """Train a grid of experiments in parallel (here or on Ray); resumes if run again."""
    from .sweep.grid import load_sweep

    if address is not None and backend != "ray":
        fail("--address is the Ray cluster to join; it needs --backend ray")
    sets = [*opts.log_sets(log, log_dir), *options.sets]
    with json_only_on_stdout(as_json):
        spec = load_sweep(options.path(config), grid or [], sets, options.layer, seeds)
    if dry_run:
        from .sweep.outputs import plan_sweep

        planned = plan_sweep(spec, runs_dir, fresh, backend)
        if as_json:
            from .serialize import sweep_plan_json

            print_json(sweep_plan_json(planned))
        else:
            from .sweep.view import sweep_plan

            show(sweep_plan(planned))
        return
    from .sweep.outputs import run_sweep
    from .sweep.view import SweepProgress

    with json_only_on_stdout(as_json):
        result, exit_code = run_sweep(
            spec,
            runs_dir=runs_dir,
            backend=backend,
            jobs=jobs,
            address=address,
            fresh=fresh,
            progress=None if as_json else SweepProgress,
            command=invocation(ctx),
            full_trials=full_trials,
        )
    if as_json:
        from .serialize import sweep_json

        print_json(sweep_json(result))
    else:
        from .sweep.view import sweep_view

        shown = console()
        show(sweep_view(result, shown.width), shown)
    warn(result.warnings)
    if exit_code:
        raise typer.Exit(exit_code)
    if result.failed():
        from .sweep.view import failures_error

        fail(failures_error(result), 1)


@app.command(cls=OneLineCommand)
@user_errors
def critical(
    activation: opts.CriticalActivationOpt = "tanh",
    bias_var: opts.BiasVarOpt = 0.05,
    weight_var: opts.WeightVarOpt = None,
    negative_slope: opts.SlopeOpt = 0.01,
    as_json: opts.JsonOpt = False,
) -> None:
    """The order-to-chaos critical line of an activation (mean-field theory)."""
    from .meanfield import around_the_line, criticality

    line = criticality(activation, bias_var, negative_slope=negative_slope)
    around = around_the_line(activation, bias_var, negative_slope=negative_slope, line=line)
    chosen = None
    if weight_var is not None:
        known = {"critical_weight_var": line.critical_weight_var}
        chosen = criticality(activation, bias_var, weight_var, negative_slope, **known)
    if as_json:
        from .serialize import critical_json

        print_json(critical_json(line, around, chosen))
        return
    from .render.reference import critical_view

    show(critical_view(line, around, chosen))


from .cli_spectra import spectra_app  # noqa: E402 (their commands come after the ones above)
from .cli_width import width_app  # noqa: E402

app.add_typer(width_app)
app.add_typer(spectra_app)
