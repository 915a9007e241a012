"""The experiment config: its schema and every default, checked by pydantic.

The field defaults are the `train` / `compare` defaults; command_defaults.py holds what
other commands change. Validation plans the network once (`ModelConfig.plan`) and
resolves the init once (`InitConfig.spec`); both travel with the config. Reading YAML,
`--set` overrides, error messages, writing a config back as YAML and its hash are in
loading.py; the layers of `model.layers` and the shared field types in layer_specs.py. No
torch.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from .data_defaults import check_classes, check_tokens, fill_from_dataset
from .errors import ShapeError, WinitError
from .initspec import InitSpec, InitSpecError, InitSpecErrors
from .layer_specs import LAYER_TYPES as LAYER_TYPES  # what loading.py and the tests read here
from .layer_specs import (
    MAX_DEPTH,
    MAX_SAMPLES,
    MAX_SIZE,
    ActivationLayer,
    ActivationName,
    BatchNormLayer,
    ConvLayer,
    DatasetName,
    DenseLayer,
    Float32,
    Kernel,
    LayerNormLayer,
    LayerSpec,
    PoolLayer,
    ResidualLayer,
    Section,
    Size,
    choice_or_number,
    invalid,
    located,
    transformer_fields_fit,
    transformer_layers,
    within_float32,
)
from .limits import clip, excerpt
from .memory import memory_problem
from .methods import canonical_name
from .plan import INPUT_FORMS, NetworkPlan, plan_network

# The fields that describe a stack winit builds; a model.module decides them itself.
STACK_FIELDS = (
    "type", "depth", "width", "kernel_size", "padding", "activation", "negative_slope", "bias",
    "block", "norm", "residual", "branch_depth", "heads", "mlp_ratio", "norm_position",
    "vocab_size", "layers",
)  # fmt: skip
# The fields that only a model.module has.
MODULE_FIELDS = ("module", "args", "width_arg", "readout")
DEFAULT_WIDTH_ARG = "width"  # the model.args entry taken for a module's width


def width_argument_fits(model: ModelConfig, parametrization: str) -> None:
    """A module under ntk or mup names a whole-number width among its arguments."""
    arg = model.width_argument
    if arg is None:
        raise located(
            f"init.parametrization: {parametrization} varies a model.module's width through "
            f"one of model.args: pass it (--model-arg {DEFAULT_WIDTH_ARG}=64), and name it with "
            f"model.width_arg where it is not `{DEFAULT_WIDTH_ARG}`",
            blame="init.parametrization model.width_arg model.args",
        )
    if arg not in model.args:
        raise located(
            f"model.width_arg: {excerpt(arg)} is not in model.args; pass it (--model-arg {arg}=64)",
            blame="model.width_arg model.args",
        )
    value = model.args[arg]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIZE:
        raise located(
            f"model.args.{arg}: is the module's width, a whole number 1 .. {MAX_SIZE:,}; "
            f"got {excerpt(value)}",
            blame="model.args model.width_arg",
        )


# Stack fields added after configs were first saved: left out of a resolved config at their
# defaults, so that the configs of before keep their hash (loading.config_data).
LATER_FIELDS = {
    "block": "plain", "norm": "none", "residual": "pre", "branch_depth": 2,
    "heads": 4, "mlp_ratio": 4, "norm_position": "pre", "vocab_size": None, "base_width": None,
    "width_arg": None, "readout": None,
}  # fmt: skip
# The same for init fields.
LATER_INIT_FIELDS = {
    "branch_scale": "none", "parametrization": "sp", "readout": "default", "query": "default",
}  # fmt: skip
# And for train fields.
LATER_TRAIN_FIELDS = {"weight_spectra": True}
# Top-level fields that say where a run is also shown, never what it computes: left out at
# their defaults, and out of the config hash always (loading.config_hash).
TRACKER_FIELDS = {"log": [], "log_dir": None}
TRACKERS = ("tensorboard", "mlflow")
TRACKED_COMMANDS = ("train", "compare", "stats", "sweep")


class ModelConfig(Section):
    module: str | None = Field(None, max_length=1000)
    """your own nn.Module: path/to/file.py:NAME or package.module:NAME (its code is run)"""
    args: dict[str, Any] = {}
    """keyword arguments for model.module's NAME"""
    type: Literal["dense", "conv2d", "conv3d", "transformer"] = "dense"
    """the stack: depth x (layer, activation), then a dense head (conv: global pool first;
    transformer: an embedding, depth blocks of attention and MLP, the first token's readout)"""
    input_shape: list[Size] = Field([2], min_length=1)
    """dense [features]; conv2d [C, H, W]; conv3d [C, D, H, W]; transformer [T] (tokens)"""
    depth: int = Field(20, ge=1, le=MAX_DEPTH)
    """hidden layers (transformer: blocks of attention and MLP)"""
    width: Size = 64
    """units (dense), channels (conv) per hidden layer, or the model dimension (transformer)"""
    kernel_size: Kernel = 3
    padding: Literal["same", "valid"] = "same"
    activation: ActivationName = "relu"
    negative_slope: Float32 = 0.01
    """slope for x < 0 (leaky_relu only)"""
    bias: bool = True
    num_classes: int = Field(3, ge=2, le=MAX_SIZE)
    """outputs; with `layers` or `module`, taken from the network when not given"""
    block: Literal["plain", "residual"] = "plain"
    """plain: depth x (layer, norm, activation); residual: a stem, depth residual blocks"""
    norm: Literal["none", "batchnorm", "layernorm"] = "none"
    """a normalization after each layer (plain, post) or before each activation (pre)"""
    residual: Literal["pre", "post"] = "pre"
    """pre: x + F(act(norm(x))) (He et al. 2016b); post: act(x + F(x)) (He et al. 2016a)"""
    branch_depth: int = Field(2, ge=1, le=100)
    """weighted layers per residual branch"""
    heads: Size = 4
    """transformer: attention heads; they must divide the width"""
    mlp_ratio: int = Field(4, ge=1, le=64)
    """transformer: the MLP's hidden units per unit of width"""
    norm_position: Literal["pre", "post"] = "pre"
    """transformer: pre: x + F(LN(x)) (GPT-2; Xiong et al. 2020); post: LN(x + F(x))
    (Vaswani et al. 2017)"""
    vocab_size: Size | None = None
    """transformer: the token ids it reads, 0 .. vocab_size - 1; default: what data.name needs"""
    layers: list[LayerSpec] | None = Field(None, min_length=1)
    """the whole network, layer by layer; replaces the stack (type, depth, width, ...)"""
    base_width: Size | None = None
    """init.parametrization ntk or mup: the width its multipliers are relative to
    (width / base_width); default: the width itself"""
    width_arg: str | None = Field(None, max_length=100)
    """model.module under ntk or mup: the model.args entry that sets its width; default width"""
    readout: str | None = Field(None, max_length=1000)
    """model.module: the name of its readout layer (default: the one Linear whose fan_in
    grows with the width and whose fan_out does not; for init.readout zero, the last layer)"""

    @property
    def width_argument(self) -> str | None:
        """The model.args entry that sets a module's width (None for a stack, or where the
        module has none): model.width_arg, else `width` where model.args has it."""
        if self.module is None:
            return None
        if self.width_arg is not None:
            return self.width_arg
        return DEFAULT_WIDTH_ARG if DEFAULT_WIDTH_ARG in self.args else None

    @property
    def is_stack(self) -> bool:
        """Whether this is the stack of type, depth, width and activation (not `layers`, not
        a module)."""
        return self.layers is None and self.module is None

    def layer_specs(self) -> list[tuple[str | None, LayerSpec]]:
        """The layers in order, each with a fixed name or None (numbered per type): `layers`
        as given, or the stack spelt out."""
        if self.layers is not None:
            return [(None, spec) for spec in self.layers]
        if self.type == "transformer":
            return transformer_layers(self)
        hidden: LayerSpec
        if self.type == "dense":
            hidden = DenseLayer(type="dense", units=self.width, bias=self.bias)
        else:
            hidden = ConvLayer(
                type=self.type,
                channels=self.width,
                kernel_size=self.kernel_size,
                padding=self.padding,
                bias=self.bias,
            )
        act = None
        if self.activation != "linear":
            act = ActivationLayer(
                type="activation", fn=self.activation, negative_slope=self.negative_slope
            )
        norm = {"none": None, "batchnorm": BatchNormLayer, "layernorm": LayerNormLayer}[self.norm]
        specs = self._blocks(hidden, norm(type=self.norm) if norm else None, act)
        if self.type != "dense":
            specs.append(
                ("pool", PoolLayer.model_validate({"type": "pool", "kind": "avg", "global": True}))
            )
        specs.append(("head", DenseLayer(type="dense", units=self.num_classes, bias=self.bias)))
        return specs

    def _blocks(
        self, hidden: LayerSpec, norm: LayerSpec | None, act: LayerSpec | None
    ) -> list[tuple[str | None, LayerSpec]]:
        """The stack's body: depth plain blocks, or a stem and depth residual blocks."""

        def unnamed(*specs: LayerSpec | None) -> list[tuple[str | None, LayerSpec]]:
            return [(None, spec) for spec in specs if spec is not None]

        if self.block == "plain":
            return unnamed(hidden, norm, act) * self.depth
        if self.residual == "pre":  # x + F(act(norm(x))), and a last norm and act
            branch = [s for _, s in unnamed(norm, act, hidden)] * self.branch_depth
            block = ResidualLayer(type="residual", branch=branch)
            return [("stem", hidden), *unnamed(block) * self.depth, *unnamed(norm, act)]
        inner = [s for _, s in unnamed(hidden, norm, act)] * (self.branch_depth - 1)
        block = ResidualLayer(
            type="residual", branch=[*inner, *(s for _, s in unnamed(hidden, norm))]
        )
        return [("stem", hidden), *unnamed(norm, act), *unnamed(block, act) * self.depth]

    @cached_property
    def plan(self) -> NetworkPlan:
        """The network: every layer's shapes, weights and fans (planned while validating;
        a model.module is built and traced for it)."""
        if self.module is not None:
            from .user_model import plan_of

            return plan_of(self.module, self.args, self.input_shape)
        if self.layers is None:
            rank = {"dense": 1, "conv2d": 3, "conv3d": 4, "transformer": 1}[self.type]
            if len(self.input_shape) != rank:
                form = "[T], its sequence length" if self.type == "transformer" else None
                raise ShapeError(
                    f"model.input_shape: {self.type} needs {form or INPUT_FORMS[rank]}; "
                    f"got {list(self.input_shape)}"
                )
        listed = self.layers is not None
        return plan_network(
            self.input_shape,
            self.layer_specs(),
            lambda i: f"model.layers.{i}" if listed else f"model: layer {i}",
        )

    @model_validator(mode="after")
    def _shapes_fit(self) -> ModelConfig:
        transformer_fields_fit(self)
        if self.block == "plain":
            given = [f for f in ("residual", "branch_depth") if f in self.model_fields_set]
            if given:
                raise located(
                    f"model.{given[0]}: shapes residual blocks; it needs model.block: residual"
                )
        if self.args and self.module is None:
            raise located(
                "model.args: are the arguments of a model.module (--model), and none is given"
            )
        if self.module is not None:
            stack = [f for f in STACK_FIELDS if f in self.model_fields_set]
            if stack:
                raise located(
                    f"model.{stack[0]}: describes a stack winit builds; with model.module your "
                    "module decides it (remove it, or pass it as --model-arg)",
                    blame=f"model.{stack[0]} model.module",
                )
        try:
            outputs = self.plan.outputs
        except (ShapeError, WinitError) as exc:
            own = str(exc).startswith(("model.module", "model.args"))
            raise located(str(exc), blame="model.module" if own else "model") from None
        if self.layers is not None or self.module is not None:
            what = "layers" if self.module is None else "module"
            verb = "output" if self.module is None else "outputs"
            if "num_classes" in self.model_fields_set and self.num_classes != outputs:
                raise located(
                    f"model.num_classes: is {self.num_classes} but the {what} {verb} {outputs} "
                    "values; make them agree or leave num_classes out"
                )
            if outputs < 2:
                raise located(
                    f"model.{what}: the network outputs {outputs} value; "
                    "a classifier needs at least 2 classes"
                )
            self.num_classes = outputs
        return self


class InitConfig(Section):
    method: str = "he_normal"
    """a method or alias from `winit methods`; stored by its canonical name"""
    backend: Literal["scratch", "torch"] = "scratch"
    mode: Literal["fan_in", "fan_out", "fan_avg"] | None = None
    """the fan to scale by, for methods that take one; default: the method's own"""
    gain: Annotated[
        Literal["default", "auto"] | Annotated[float, Field(ge=0)],
        choice_or_number(("default", "auto"), (int, float)),
    ] = "default"
    """default: the method's own; auto: calculate_gain of the activation after each layer"""
    bias: Literal["zeros", "torch_default"] = "zeros"
    params: dict[str, Any] = {}
    """extra method parameters, e.g. {std: 0.02} for normal"""
    branch_scale: Annotated[
        Literal["none", "sqrt_depth", "gpt2"] | Annotated[float, Field(gt=0)],
        choice_or_number(("none", "sqrt_depth", "gpt2"), (int, float)),
    ] = "none"
    """each residual branch's last layer times 1/√L (sqrt_depth), 1/√(2L) (gpt2) or a number"""
    parametrization: Literal["sp", "ntk", "mup"] = "sp"
    """sp: the init as drawn, one learning rate; ntk: the neural tangent parametrization in SP
    form (per-layer learning rates / fan_in); mup: µP (Yang et al. 2021) as the mup package
    does it; both against model.base_width (`winit parametrizations` shows the table)"""
    readout: Literal["default", "zero"] = "default"
    """zero: the readout's weight and bias start at 0 (MuReadout readout_zero_init)"""
    query: Literal["default", "zero"] = "default"
    """transformer: zero: every attention's query weight and bias start at 0, so each head
    attends uniformly at init (µP's advice; mup's examples/Transformer --query_zero_init)"""

    def branch_factor(self, blocks: int, attention_blocks: int = 0) -> float:
        """What `branch_scale` multiplies a branch's last layer by, in a net of `blocks`
        residual blocks, `attention_blocks` of them with attention in their branch."""
        if self.branch_scale == "none" or blocks == 0:
            return 1.0
        if self.branch_scale == "sqrt_depth":
            return blocks**-0.5
        if self.branch_scale == "gpt2":
            # GPT-2 (nanoGPT): 0.02/√(2·n_layer), n_layer transformer layers of an attention
            # and an MLP block each; in a stack without attention, L blocks count as L layers
            layers = attention_blocks or blocks
            return (2 * layers) ** -0.5
        return float(self.branch_scale)

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        try:
            return canonical_name(method)
        except WinitError as exc:
            raise invalid(str(exc)) from None

    @cached_property
    def spec(self) -> InitSpec:
        """The init, resolved once (checked while validating)."""
        return InitSpec.create(
            self.method,
            self.params,
            mode=self.mode,
            gain=self.gain,
            bias=self.bias,
            backend=self.backend,
        )

    def spec_for(self, method: str, params: dict[str, Any]) -> InitSpec:
        """Another method (compare's, a reproduction's) with this config's bias and backend,
        and its gain unless `params` has one."""
        rest = dict(params)
        gain = rest.pop("gain", self.gain)
        spec = InitSpec.create(method, rest, gain=gain, bias=self.bias, backend=self.backend)
        return replace(spec, given=MappingProxyType(dict(params)))

    @model_validator(mode="after")
    def _resolves(self) -> InitConfig:
        try:
            _ = self.spec  # resolved once, here; cached for everyone after
        except InitSpecError as exc:
            problems = exc.problems if isinstance(exc, InitSpecErrors) else [exc]
            raise ValidationError.from_exception_data(
                "InitConfig",
                [
                    InitErrorDetails(type=invalid(str(p)), loc=(p.field,), input=None)
                    for p in problems
                ],
            ) from None
        return self


class DataConfig(Section):
    name: DatasetName = "spirals"
    samples: int = Field(2048, ge=8, le=MAX_SAMPLES)
    path: str | None = None
    """the .npz file to load (data.name npz)"""
    noise: Float32 = Field(0.1, ge=0)
    test_fraction: float = Field(0.2, gt=0, lt=1)

    # after the fields, so that the error blames whichever of name and path a --set changed
    @model_validator(mode="after")
    def _npz_needs_path(self) -> DataConfig:
        if self.path is None and self.name == "npz":
            raise located("data.path: required when data.name is npz: the .npz file to load")
        return self


class TrainConfig(Section):
    steps: int = Field(400, ge=0, le=10**9)
    batch_size: int = Field(128, ge=1, le=MAX_SAMPLES)
    optimizer: Literal["sgd", "adam"] = "sgd"
    # Plain SGD at 0.02 rather than momentum 0.9 at 0.01: with momentum a 20-layer He ReLU
    # net on spirals overshoots and climbs back to chance, and Xavier still trains (half the
    # chance loss by step 190), which hides the textbook contrast; at 0.05 He's loss spikes.
    lr: Float32 = Field(0.02, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    """sgd only"""
    weight_decay: Float32 = Field(0.0, ge=0)
    log_every: int = Field(10, ge=1)
    target_loss: Annotated[float, Field(gt=0), AfterValidator(within_float32)] | None = None
    """the loss whose first crossing compare reports; default half the chance loss ln(K)/2"""
    weight_spectra: bool = True
    """log each weighted layer's spectral norm, stable rank and power-law alpha at every log
    step (metrics.csv, layers.csv, spectra.png); false saves an SVD per layer and log step"""


class Config(Section):
    name: str | None = None
    """defaults to the config file's stem"""
    seed: int = Field(0, ge=0, le=2**32 - 1)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    model: ModelConfig = Field(default_factory=ModelConfig)
    init: InitConfig = Field(default_factory=InitConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    log: list[Literal["tensorboard", "mlflow"]] = Field([], max_length=len(TRACKERS))
    """trackers that also receive the run: tensorboard (scalars, histograms, hparams),
    mlflow (params, metrics, artifacts; where MLFLOW_TRACKING_URI says)"""
    log_dir: str | None = Field(None, min_length=1, max_length=4096)
    """where TensorBoard writes (a run per command under it); default: the run's tb/"""

    @field_validator("log")
    @classmethod
    def _each_tracker_once(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"names a tracker twice: {value}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _dataset_defaults(cls, raw: Any) -> Any:
        try:
            return fill_from_dataset(raw)
        except WinitError as exc:
            raise located(str(exc), blame="model.input_shape model.module data.name") from None

    @model_validator(mode="after")
    def _classes_fit(self) -> Config:
        try:
            check_classes(self.model.module, self.model.num_classes, self.data.name)
        except WinitError as exc:
            raise located(str(exc), blame="model.module model.args data.name") from None
        return self

    @model_validator(mode="after")
    def _tokens_fit(self) -> Config:
        m = self.model
        if m.module is None:  # a user's module reads what it likes
            vocab = "model.vocab_size" if m.layers is None else "model.layers.0.vocab_size"
            try:
                check_tokens(m.plan, m.num_classes, self.data.name, vocab)
            except WinitError as exc:
                raise located(str(exc), blame="model data.name") from None
        return self

    @model_validator(mode="after")
    def _fits_in_memory(self) -> Config:
        problem = memory_problem(self)
        if problem is not None:
            raise located(*problem)
        return self

    @model_validator(mode="after")
    def _branches_to_scale(self) -> Config:
        if self.init.branch_scale != "none" and not self.model.plan.has("residual"):
            raise located(
                "init.branch_scale: scales the branches of residual blocks, and this network "
                "has none (model.block: residual, or residual entries in model.layers)",
                blame="init.branch_scale",
            )
        try:
            self.init.spec.check_residual(self.model.plan, built=self.model.module is None)
        except WinitError as exc:
            blame = "init.method model.block model.layers model.module model.type"
            raise located(str(exc), blame=blame) from None
        if self.init.branch_scale != "none" and self.init.method == "fixup":
            raise located(
                "init.branch_scale: fixup scales its branches itself; leave branch_scale at none",
                blame="init.branch_scale init.method",
            )
        return self

    @model_validator(mode="after")
    def _parametrization_fits(self) -> Config:
        """What the parametrization needs of the fields; what it needs of a module's shapes
        (its readout, a width argument that changes them) loading checks once it is built."""
        m, name = self.model, self.init.parametrization
        given = [f for f in ("width_arg", "readout") if f in m.model_fields_set]
        if m.module is None and given:
            raise located(
                f"model.{given[0]}: belongs to a model.module (--model); a stack's width is "
                "model.width and its readout its last layer",
                blame=f"model.{given[0]} model.module",
            )
        if m.module is None and name != "sp" and m.layers is not None:
            raise located(
                f"init.parametrization: {name} scales a stack's width against "
                "model.base_width; model.layers has no width to scale (use model.type, depth "
                "and width)",
                blame="init.parametrization model.type model.layers",
            )
        if m.module is not None and m.readout is not None:
            names = [layer.name for layer in m.plan.weighted]
            if m.readout not in names:
                raise located(
                    f"model.readout: {excerpt(m.readout)} is no weighted layer of model.module; "
                    f"its weighted layers: {clip(', '.join(names), 200)}",
                    blame="model.readout model.module",
                )
        if m.module is not None and name != "sp":
            width_argument_fits(m, name)
        if self.init.query == "zero" and (m.module is not None or not m.plan.has("attention")):
            raise located(
                "init.query: zero sets the queries of winit's attention layers to 0, and this "
                "network has none (model.type: transformer, or attention in model.layers)",
                blame="init.query model.type model.layers model.module",
            )
        return self

    @model_validator(mode="after")
    def _method_fits_layers(self) -> Config:
        """An init that cannot apply to a layer (identity on a non-square one) is refused
        here, before any run directory exists."""
        try:
            self.init.spec.check_plan(self.model.plan)
        except ShapeError as exc:
            raise located(f"init.method: {exc}", blame="init.method model") from None
        return self
