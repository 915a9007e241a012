"""TensorBoard: a run's scalars, per-layer histograms and hparams as event files, written
with torch.utils.tensorboard (which needs the tensorboard package).

One TensorBoard run (a directory of event files) per label: a train or stats run is the
directory itself; compare gets one per method under it, so that TensorBoard's run selector
groups them. Tags: loss, accuracy, test_loss, grad_norm, grad_std/<layer>, the weight
metrics (spectral_norm/<layer>, stable_rank/<layer>, alpha/<layer>), and the histograms
weights/<layer>, activations/<layer> and gradients/<layer> at every log step (step 0: at
init); the resolved config as hparams beside the final metrics.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..experiments import StatsResult
    from ..histograms import Histogram, LayerHistograms
    from ..train import LogPoint

SCALARS = ("loss", "accuracy", "test_loss", "grad_norm")
WEIGHT_METRICS = ("spectral_norm", "stable_rank", "alpha")


class TensorBoardTracker:
    name = "tensorboard"

    def __init__(self, base: Path, labels: list[str], params: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._params = params
        many = len(labels) > 1
        self._writers = {
            label: SummaryWriter(log_dir=str(base / label if many else base)) for label in labels
        }
        self.paths = {label: Path(w.log_dir) for label, w in self._writers.items()}

    def _histogram(self, label: str, tag: str, histogram: Histogram, step: int) -> None:
        self._writers[label].add_histogram_raw(
            tag,
            min=histogram.min,
            max=histogram.max,
            num=histogram.num,
            sum=histogram.sum,
            sum_squares=histogram.sum_squares,
            bucket_limits=histogram.limits,
            bucket_counts=histogram.counts,
            global_step=step,
        )

    def _layers(self, label: str, layers: list[LayerHistograms], step: int) -> None:
        for layer in layers:
            self._histogram(label, f"weights/{layer.name}", layer.weight, step)
            if layer.activation is not None:
                self._histogram(label, f"activations/{layer.name}", layer.activation, step)
            if layer.grad is not None:
                self._histogram(label, f"gradients/{layer.name}", layer.grad, step)

    def log_point(self, label: str, point: LogPoint, layer_names: list[str]) -> None:
        writer, step = self._writers[label], point.step
        for tag in SCALARS:
            writer.add_scalar(tag, getattr(point, tag), step)
        for name, std in zip(layer_names, point.layer_grad_std, strict=True):
            writer.add_scalar(f"grad_std/{name}", std, step)
        for name, metrics in zip(layer_names, point.layer_weights, strict=False):
            for metric in WEIGHT_METRICS:
                value = getattr(metrics, metric)
                if math.isfinite(value):
                    writer.add_scalar(f"{metric}/{name}", value, step)
        self._layers(label, point.layer_histograms, step)

    def log_stats(self, label: str, stats: StatsResult) -> None:
        writer = self._writers[label]
        writer.add_scalar("loss", stats.loss, 0)
        for layer in stats.layers:
            writer.add_scalar(f"activation_std/{layer.name}", layer.activation.std, 0)
            writer.add_scalar(f"grad_std/{layer.name}", layer.grad.std, 0)
        self._layers(label, stats.histograms, 0)

    def finish(self, label: str, status: str, final: dict[str, float]) -> None:
        from torch.utils.tensorboard.summary import hparams

        writer = self._writers[label]
        metrics = {f"hparam/{k}": v for k, v in final.items()}
        # the hparams plugin's three summaries, in this run's own event file
        # the method is the label's (compare's are the runs' own, not the config's)
        chosen = {**self._params, "init.method": label, "status": status}
        for summary in hparams(chosen, metrics):
            writer.file_writer.add_summary(summary)
        for tag, value in metrics.items():
            writer.add_scalar(tag, value)
        writer.flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
