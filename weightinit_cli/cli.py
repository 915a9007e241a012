"""The `winit` command: parse options -> config -> experiment -> render. Thin.

Only typer is imported at module level; every command imports what it needs, so
`winit --help`, `winit methods` and `winit schema` import neither torch nor pydantic
(benchmarks/README.md has the start-up times).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from . import __version__

# Typer 0.29 bundles its own click; its UsageError is BadParameter's parent.
UsageError = typer.BadParameter.__mro__[1]


def _light_coercion(params: Any) -> None:
    """Give plain `str` parameters and bool flags a coercion that needs no pydantic.

    Typer 0.29 coerces every parameter through a pydantic TypeAdapter built on first use,
    which imports pydantic (~90 ms) even for `winit methods` (its --help flag, its NAME).
    For a str, or a flag click has already made a bool, the adapter only checks the type,
    as typer's own pass-through does. Purely a start-up optimization: on a typer without
    these internals nothing changes.
    """
    try:
        from typer._coercion import PassThroughRuntimeParam
    except ImportError:
        return
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", False) is not None:
            continue
        plain = descriptor.annotation is str or (
            descriptor.annotation is bool and getattr(param, "is_flag", False)
        )
        if (
            plain
            and descriptor.file_annotation is None
            and descriptor.parameter_info.parser is None
        ):
            param._runtime_param = PassThroughRuntimeParam(
                parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
            )


class OneLineErrors(typer.core.TyperGroup):
    """Command-line mistakes (unknown option, bad value, typo'd command) as one Error line,
    like every other user error, instead of click's boxed usage message."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _light_coercion(self.get_params(ctx))
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            _light_coercion(command.get_params(ctx))
        return name, command, rest

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """One line per command: its whole first sentence, not click's 45-character cut."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=200)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def _fail(self, err: Exception) -> None:
        if type(err).__name__ == "NoArgsIsHelpError":
            raise err
        ctx = getattr(err, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        fail(" ".join(err.format_message().split()) + hint, err.exit_code)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except UsageError as err:
            self._fail(err)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as err:
            self._fail(err)


app = typer.Typer(
    cls=OneLineErrors,
    name="winit",
    help="See what a weight-initialization method does to your network.",
    no_args_is_help=True,
    add_completion=False,
    # Help as wide as the terminal, up to 120 columns (click stops at 80): a command's
    # description then fits on its line.
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
    # Plain click help and tracebacks: typer's Rich help imports rich.markdown, pygments
    # and more (~70 ms on every `winit --help`), and users never see a traceback.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error for a user's mistake and exit; never a traceback."""
    typer.echo(f"Error: {' '.join(message.splitlines())}", err=True)
    raise typer.Exit(code)


def user_errors(fn: F) -> F:
    """Turn WinitError raised anywhere below a command into `Error: ...` and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .errors import WinitError

        try:
            return fn(*args, **kwargs)
        except WinitError as err:
            fail(str(err), err.exit_code)

    return wrapper  # type: ignore[return-value]


def invocation(ctx: typer.Context) -> str:
    """The running command as a command line, rebuilt from what was parsed."""
    import shlex

    parts = [ctx.command_path]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if value is None or value is False or value == () or value == []:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        if param.param_type_name == "argument":
            parts += [shlex.quote(str(v)) for v in values]
        elif getattr(param, "is_flag", False):
            parts.append(param.opts[0])
        else:
            for v in values:
                parts += [param.opts[0], shlex.quote(str(v))]
    return " ".join(parts)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _skip_final_collections() -> None:
    """Registered with atexit: move every object to the GC's permanent generation, so the
    interpreter's last collections do not walk the million objects torch (its compiler
    stack comes with the optimizers) and matplotlib leave behind: about 0.4 s off the end
    of every `winit train`. Objects are still freed by reference counting; the files winit
    writes are all closed by then."""
    import gc

    gc.freeze()


_exit_registered = False


def _version(value: bool) -> None:
    if value:
        typer.echo(f"winit {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """See what a weight-initialization method does to your network."""
    global _exit_registered
    if not _exit_registered:
        import atexit

        atexit.register(_skip_final_collections)
        _exit_registered = True


@app.command()
@user_errors
def methods(
    name: Annotated[
        str | None, typer.Argument(help="Show one method in detail (a name or alias).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the init methods: formula, aliases, what they suit, the paper."""
    from .methods import METHODS, get_method

    chosen = [get_method(name)] if name else list(METHODS.values())
    if as_json:
        data = [m.to_dict() for m in chosen]
        print_json(data[0] if name else data)
        return
    from rich.console import Console

    from .render import method_detail, methods_table

    Console().print(method_detail(chosen[0]) if name else methods_table(chosen))


# Options shared by the experiment commands. Each short option is a `--set` in disguise.
ConfigArg = Annotated[
    Path | None, typer.Argument(help="A YAML experiment config (see configs/).", show_default=False)
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="The same, as an option.", show_default=False)
]
MethodOpt = Annotated[
    str | None, typer.Option("--method", "-m", help="Init method or alias (winit methods).")
]
BackendOpt = Annotated[str | None, typer.Option(help="scratch (NumPy) or torch (torch.nn.init).")]
ActivationOpt = Annotated[
    str | None, typer.Option(help="linear relu leaky_relu tanh sigmoid selu gelu elu silu.")
]
LayerOpt = Annotated[
    str | None,
    typer.Option("--layer", help="dense, conv2d or conv3d stack (with a fitting input and data)."),
]
DepthOpt = Annotated[int | None, typer.Option(help="Hidden layers.")]
WidthOpt = Annotated[int | None, typer.Option(help="Units (dense) or channels (conv) per layer.")]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed (same seed, same numbers).")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="Examples per batch.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Any config field: --set model.depth=30 (repeatable)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (the schema in README).")]
SppOpt = Annotated[
    bool,
    typer.Option("--spp", help="Signal propagation of conv layers (Brock et al. 2021)."),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Also write CSV, config, JSON and plots into this new directory."),
]


def load(
    command: str,
    config: Path | None,
    config_opt: Path | None,
    sets: list[str] | None,
    layer: str | None = None,
    **shortcuts: Any,
):
    """The config for a command: file (argument or --config), shortcuts, then --set."""
    from .config import load_config

    return load_config(
        one_config(config, config_opt), shortcut_sets(sets, **shortcuts), command, layer
    )


def one_config(config: Path | None, config_opt: Path | None) -> Path | None:
    if config is not None and config_opt is not None:
        fail("give the config either as an argument or with --config, not both")
    return config or config_opt


# The config field behind each shortcut option.
SHORTCUTS = {
    "method": "init.method",
    "backend": "init.backend",
    "activation": "model.activation",
    "depth": "model.depth",
    "width": "model.width",
    "seed": "seed",
    "batch_size": "train.batch_size",
    "steps": "train.steps",
}


def shortcut_sets(sets: list[str] | None, **shortcuts: Any) -> list[str]:
    """The shortcut options as `--set`s, before the explicit ones (which win)."""
    return [f"{SHORTCUTS[k]}={v}" for k, v in shortcuts.items() if v is not None] + (sets or [])


@app.command()
@user_errors
def stats(
    ctx: typer.Context,
    config: ConfigArg = None,
    config_opt: ConfigOpt = None,
    method: MethodOpt = None,
    backend: BackendOpt = None,
    activation: ActivationOpt = None,
    layer: LayerOpt = None,
    depth: DepthOpt = None,
    width: WidthOpt = None,
    seed: SeedOpt = None,
    batch_size: BatchOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    spp: SppOpt = False,
) -> None:
    """Per-layer weight, activation and gradient statistics beside theory."""
    cfg = load(
        "stats",
        config,
        config_opt,
        set_,
        layer,
        method=method,
        backend=backend,
        activation=activation,
        depth=depth,
        width=width,
        seed=seed,
        batch_size=batch_size,
    )
    from .experiments import run_stats
    from .report import stats_json

    result = run_stats(cfg, spp=spp)
    if out is not None:
        from .outputs import write_stats

        write_stats(out, cfg, result, invocation(ctx))
    if as_json:
        print_json(stats_json(result))
        return
    from rich.console import Console

    from .render import stats_view

    console = Console()
    console.print(stats_view(result, console.width))
    if out is not None:
        console.print(f"[dim]wrote {out}/[/]")


@app.command()
@user_errors
def schema() -> None:
    """Print the config JSON Schema (draft-7), for editor autocompletion."""
    # The schema ships with the package, generated from config.json_schema() (a test
    # checks they are equal), so printing it imports no pydantic.
    sys.stdout.write((Path(__file__).parent / "schema.json").read_text(encoding="utf-8"))


StepsOpt = Annotated[int | None, typer.Option(help="Training steps (0: statistics only).")]
RunsDirOpt = Annotated[
    Path | None,
    typer.Option("--runs-dir", help="Where run directories go (default $WINIT_RUNS_DIR or runs/)."),
]


@app.command()
@user_errors
def train(
    ctx: typer.Context,
    config: ConfigArg = None,
    config_opt: ConfigOpt = None,
    method: MethodOpt = None,
    backend: BackendOpt = None,
    activation: ActivationOpt = None,
    layer: LayerOpt = None,
    depth: DepthOpt = None,
    width: WidthOpt = None,
    seed: SeedOpt = None,
    batch_size: BatchOpt = None,
    steps: StepsOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
    runs_dir: RunsDirOpt = None,
) -> None:
    """Train one init method on a small task and save the run under runs/."""
    sets = [*([f"train.steps={steps}"] if steps is not None else []), *(set_ or [])]
    cfg = load(
        "train",
        config,
        config_opt,
        sets,
        layer,
        method=method,
        backend=backend,
        activation=activation,
        depth=depth,
        width=width,
        seed=seed,
        batch_size=batch_size,
    )
    from .outputs import recorded_train

    recorded = recorded_train(cfg, runs_dir=runs_dir, progress=not as_json, command=invocation(ctx))
    show_train(recorded, as_json)


def show_train(recorded: Any, as_json: bool) -> None:
    """Print a recorded training run; exit as a stop signal or a divergence asks."""
    from rich.console import Console

    from .render import train_view
    from .report import train_json

    result = recorded.result
    if as_json:
        print_json(train_json(result, str(recorded.run_dir)))
    else:
        Console().print(train_view(result, str(recorded.run_dir)))
    if recorded.exit_code:
        raise typer.Exit(recorded.exit_code)
    history = result.history
    if history.status == "diverged":
        where = (
            f"the first inf/nan came out of layer {history.diverged_layer}"
            if history.diverged_layer
            else "the loss overflowed"
        )
        fail(
            f"training diverged at step {history.diverged_at} ({where}); lower train.lr, "
            "or pick an init that keeps the signal finite",
            1,
        )


def _method_params(methods: list[str], params: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """[(canonical method, its params)] from --methods and --param METHOD.KEY=VALUE."""
    from .config import parse_value
    from .errors import WinitError
    from .methods import canonical_name, resolve_params

    def named(option: str, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except WinitError as err:
            raise WinitError(f"{option}: {err}") from None

    canonical = [named(f"--methods {m}", canonical_name, m) for m in methods]
    repeated = sorted({m for m in canonical if canonical.count(m) > 1})
    if repeated:
        raise WinitError(f"--methods names {', '.join(repeated)} more than once")
    by_method: dict[str, dict[str, Any]] = {m: {} for m in canonical}
    for text in params:
        key, sep, value = text.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise WinitError(f"--param needs METHOD.KEY=VALUE, e.g. he.mode=fan_out; got {text!r}")
        target = named(f"--param {text}", canonical_name, method)
        if target not in by_method:
            raise WinitError(f"--param {text}: {target} is not one of --methods")
        by_method[target][name] = named(f"--param {text}", parse_value, value)
        named(f"--param {text}", resolve_params, target, {name: by_method[target][name]})
    for method, values in by_method.items():
        resolve_params(method, values)
    return list(by_method.items())


@app.command()
@user_errors
def compare(
    ctx: typer.Context,
    methods: Annotated[
        list[str] | None,
        typer.Option("--methods", help="Methods to compare (default: xavier he zero)."),
    ] = None,
    extra: Annotated[
        list[str] | None, typer.Argument(help="More methods after --methods.", show_default=False)
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="A method's parameter: --param he.mode=fan_out."),
    ] = None,
    config_opt: ConfigOpt = None,
    backend: BackendOpt = None,
    activation: ActivationOpt = None,
    layer: LayerOpt = None,
    depth: DepthOpt = None,
    width: WidthOpt = None,
    seed: SeedOpt = None,
    batch_size: BatchOpt = None,
    steps: StepsOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    spp: SppOpt = False,
    runs_dir: RunsDirOpt = None,
    jobs: Annotated[
        int | None,
        typer.Option(min=1, help="Methods run at once, one torch thread each (default: cores)."),
    ] = None,
) -> None:
    """The same model, data and seed under several inits, side by side."""
    sets = [*([f"train.steps={steps}"] if steps is not None else []), *(set_ or [])]
    cfg = load(
        "compare",
        None,
        config_opt,
        sets,
        layer,
        backend=backend,
        activation=activation,
        depth=depth,
        width=width,
        seed=seed,
        batch_size=batch_size,
    )
    chosen = [*(methods or []), *(extra or [])]
    if methods is not None and not chosen:
        fail("--methods needs at least one method")
    pairs = _method_params(chosen or ["xavier", "he", "zero"], param or [])
    from .outputs import recorded_compare

    recorded = recorded_compare(
        cfg,
        pairs,
        runs_dir=runs_dir,
        out=out,
        progress=not as_json,
        command=invocation(ctx),
        jobs=jobs,
        spp=spp,
    )
    show_compare(recorded, as_json)


def show_compare(recorded: Any, as_json: bool) -> None:
    from rich.console import Console

    from .render import compare_view
    from .report import compare_json

    if as_json:
        print_json({**compare_json(recorded.result), "run_dir": str(recorded.run_dir)})
    else:
        console = Console()
        console.print(compare_view(recorded.result, str(recorded.run_dir), console.width))
    if recorded.exit_code:
        raise typer.Exit(recorded.exit_code)


@app.command()
@user_errors
def rerun(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by winit.")],
    runs_dir: RunsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Repeat a saved run from its config and say whether the numbers match."""
    from rich.console import Console

    from .outputs import recorded_compare, recorded_stats, recorded_train
    from .rerun import load_saved_run, match_runs

    saved = load_saved_run(run_dir)
    cfg, experiment = saved.config, saved.experiment
    # a sweep's trial: beside the sweep (<root>/sweep-.../trials/<trial>), not among its trials
    home = saved.path.parent.parent.parent if "sweep" in experiment else saved.path.parent
    root = runs_dir or home
    command = invocation(ctx)
    if experiment["command"] == "train":
        from contextlib import nullcontext

        from .parallel import one_torch_thread

        # conv kernels round differently with another thread count: run as the original did
        threads = one_torch_thread() if experiment.get("threads") == 1 else nullcontext()
        with threads:
            recorded = recorded_train(cfg, runs_dir=root, progress=not as_json, command=command)
    elif experiment["command"] == "compare":
        methods = [(m["method"], m["params"]) for m in experiment["methods"]]
        recorded = recorded_compare(
            cfg, methods, runs_dir=root, progress=not as_json, command=command
        )
    else:
        recorded = recorded_stats(cfg, runs_dir=root, command=command)
    match = match_runs(saved.path, recorded.run_dir)
    if as_json:
        print_json({"original": str(saved.path), "rerun": str(recorded.run_dir), **match.to_dict()})
    else:
        from .render import rerun_view

        Console().print(rerun_view(str(saved.path), str(recorded.run_dir), match))
    if recorded.exit_code:
        raise typer.Exit(recorded.exit_code)
    if not match.identical:
        raise typer.Exit(1)


@app.command()
@user_errors
def reproduce(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="A reproduction (see --list), or all.", show_default=False)
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the reproductions.")] = False,
    full: Annotated[
        bool, typer.Option("--full", help="The full-size version (slower) instead of the fast one.")
    ] = False,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
    runs_dir: RunsDirOpt = None,
) -> None:
    """Reproduce a classic init result: the paper's claim beside winit's measurement."""
    from rich.console import Console

    from .reproduce import REPRODUCTIONS, get_reproduction

    console = Console()
    if list_ or name is None:
        if as_json:
            print_json(
                [
                    {"name": r.name, "paper": r.paper, "claim": r.claim}
                    for r in REPRODUCTIONS.values()
                ]
            )
            return
        from .render import reproductions_table

        console.print(reproductions_table(list(REPRODUCTIONS.values())))
        if name is None and not list_:
            raise typer.Exit(2)
        return
    chosen = list(REPRODUCTIONS.values()) if name == "all" else [get_reproduction(name)]
    configs = [r.config(set_ or []) for r in chosen]  # every config checked before any run
    from .outputs import write_finding
    from .render import finding_view, findings_table

    findings, out = [], []
    for repro, cfg in zip(chosen, configs, strict=True):
        finding = repro.run(cfg, not full)
        run_dir = write_finding(cfg, finding, runs_dir=runs_dir, command=invocation(ctx))
        findings.append(finding)
        out.append({**finding.to_dict(), "run_dir": str(run_dir)})
        if not as_json:
            console.print(finding_view(finding, str(run_dir)))
    if as_json:
        print_json(out if name == "all" else out[0])
    elif len(findings) > 1:
        console.print(findings_table(findings))
    if not all(f.agree for f in findings):
        raise typer.Exit(1)


@app.command()
@user_errors
def sweep(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Argument(
            help="A sweep file: a config plus grid: (field paths to lists).", show_default=False
        ),
    ] = None,
    config_opt: ConfigOpt = None,
    grid: Annotated[
        list[str] | None,
        typer.Option("--grid", "-g", help="An axis: --grid model.depth=5,10,20 (repeatable)."),
    ] = None,
    seeds: Annotated[
        int | None,
        typer.Option(min=1, help="Seeds per grid point (--seed, +1, ...), for mean ± std."),
    ] = None,
    method: MethodOpt = None,
    activation: ActivationOpt = None,
    layer: LayerOpt = None,
    depth: DepthOpt = None,
    width: WidthOpt = None,
    seed: SeedOpt = None,
    batch_size: BatchOpt = None,
    steps: Annotated[int | None, typer.Option(help="Training steps of each trial.")] = None,
    set_: SetOpt = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j", min=1, help="Trials at once (default: the cores, or Ray's CPUs)."
        ),
    ] = None,
    backend: Annotated[
        str,
        typer.Option(help="local (worker processes) or ray (pip install 'weightinit-cli[ray]')."),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="The Ray cluster to join (default $RAY_ADDRESS, else a local Ray)."),
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start a new sweep directory instead of resuming.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the grid and where it would run; run nothing.")
    ] = False,
    as_json: JsonOpt = False,
    runs_dir: RunsDirOpt = None,
) -> None:
    """Train a grid of experiments in parallel (here or on Ray); resumes if run again."""
    from .grid import load_sweep

    if address is not None and backend != "ray":
        fail("--address is the Ray cluster to join; it needs --backend ray")
    shortcuts = dict(
        method=method,
        activation=activation,
        depth=depth,
        width=width,
        seed=seed,
        batch_size=batch_size,
        steps=steps,
    )
    spec = load_sweep(
        one_config(config, config_opt), grid or [], shortcut_sets(set_, **shortcuts), layer, seeds
    )
    if dry_run:
        show_sweep_plan(spec, runs_dir, fresh, as_json, backend)
        return
    from .sweep_outputs import run_sweep

    result, exit_code = run_sweep(
        spec,
        runs_dir=runs_dir,
        backend=backend,
        jobs=jobs,
        address=address,
        fresh=fresh,
        progress=not as_json,
        command=invocation(ctx),
    )
    if as_json:
        from .report import sweep_json

        print_json(sweep_json(result))
    else:
        from rich.console import Console

        from .render_sweep import sweep_view

        Console().print(sweep_view(result))
    if exit_code:
        raise typer.Exit(exit_code)
    failed = result.failed()
    if failed:
        first = failed[0]
        fail(
            f"{len(failed)} of {len(result.results)} trials failed (first: {first.trial.dirname}: "
            f"{first.error}); the others' results are saved: run the same command again to "
            "retry the failed ones",
            1,
        )


def show_sweep_plan(
    spec: Any, runs_dir: Path | None, fresh: bool, as_json: bool, backend: str
) -> None:
    """`winit sweep --dry-run`: the grid, and which directory it would resume, if any,
    after the checks a run makes first (devices, data, Ray installed)."""
    from .runs import runs_root
    from .sweep_outputs import find_sweep_dir, finished_trials, prepare

    prepare(spec, backend)

    found = None if fresh else find_sweep_dir(runs_root(runs_dir), spec)
    finished = len(finished_trials(spec, found / "trials")) if found is not None else 0
    if as_json:
        from .grid import point_text

        print_json(
            {
                "name": spec.name,
                "grid": {axis.key: list(axis.values) for axis in spec.axes},
                "trials": [
                    {"trial": t.dirname, "point": point_text(t.point)} for t in spec.trials
                ],
                "resumes": str(found) if found is not None else None,
                "finished": finished,
            }
        )
        return
    from rich.console import Console

    from .render_sweep import sweep_plan

    Console().print(sweep_plan(spec, str(found) if found is not None else None, finished))


@app.command()
@user_errors
def critical(
    activation: Annotated[str, typer.Option(help="The activation.")] = "tanh",
    bias_var: Annotated[
        float, typer.Option("--bias-var", min=0.0, help="Bias variance σ_b².")
    ] = 0.05,
    weight_var: Annotated[
        float | None, typer.Option("--weight-var", min=0.0, help="Also describe this σ_w².")
    ] = None,
    negative_slope: Annotated[float, typer.Option(help="leaky_relu's slope.")] = 0.01,
    as_json: JsonOpt = False,
) -> None:
    """The order-to-chaos critical line of an activation (mean-field theory)."""
    from dataclasses import asdict

    from .critical import around_the_line, criticality

    line = criticality(activation, bias_var, negative_slope=negative_slope)
    sweep = around_the_line(activation, bias_var, negative_slope=negative_slope)
    chosen = (
        criticality(activation, bias_var, weight_var, negative_slope)
        if weight_var is not None
        else None
    )
    if as_json:
        from .report import json_safe

        data = {"critical": asdict(line), "around": [asdict(s) for s in sweep]}
        if chosen is not None:
            data["chosen"] = {**asdict(chosen), "phase": chosen.phase()}
        print_json(json_safe(data))
        return
    from rich.console import Console

    from .render import critical_view

    Console().print(critical_view(line, sweep, chosen))
