"""Peak memory of one forward+backward pass, plain or with winit's probe, in a fresh process.

    python benchmarks/probe_memory.py {dense|conv2d} {plain|probe}

prints one JSON line: {"layer", "pass", "peak_bytes", "before_bytes"}.

tracemalloc does not see torch's allocations and torch keeps no allocator statistics on
CPU, so this measures the process: the model and batch are built, one warm-up pass on 8
examples loads the kernels, then the kernel's peak-RSS mark is reset (writing 5 to
/proc/self/clear_refs) and the full pass runs; `peak_bytes` is the peak resident set
(VmHWM) during that pass minus the resident set before it: the activations, gradients
and temporaries the pass needed, whoever allocated them. Linux only.
"""

from __future__ import annotations

import gc
import json
import sys

from common import PASSES, stats_workload


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def main() -> None:
    layer, variant = sys.argv[1], sys.argv[2]
    run = PASSES[variant]
    model, x, y, plan = stats_workload(layer)
    run(model, x[:8], y[:8], plan)
    model.zero_grad(set_to_none=True)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    before = _status_kib("VmRSS")
    run(model, x, y, plan)
    peak = _status_kib("VmHWM")
    print(
        json.dumps(
            {
                "layer": layer,
                "pass": variant,
                "peak_bytes": (peak - before) * 1024,
                "before_bytes": before * 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
