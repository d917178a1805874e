"""`wavenet bench-train`: training throughput (timesteps/s) by preset, XLA and precision.

Each configuration runs in its own process (the dtype policy and XLA are process-wide
choices) on one fixed in-memory batch, after warm-up steps, so the figure is the model's
cost alone. Timesteps are predicted samples: batch × target_length per step.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any, Callable

_CHILD = """
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras, numpy as np
preset, precision, jit, batch, target, steps = sys.argv[1], sys.argv[2], sys.argv[3] == "1", *map(int, sys.argv[4:7])
if precision != "float32":
    keras.mixed_precision.set_global_policy(precision)
from wavenet_tf.model import WaveNet
from wavenet_tf.train import compile_for_training, training_model
model = WaveNet.from_preset(preset)
trainer = compile_for_training(training_model(model), jit_compile=jit)
rng = np.random.default_rng(0)
x = {"audio": rng.integers(0, 256, (batch, model.receptive_field + target - 1)).astype("int32")}
y = rng.integers(0, 256, (batch, target)).astype("int32")
for _ in range(2):
    trainer.train_on_batch(x, y)
start = time.perf_counter()
for _ in range(steps):
    loss = trainer.train_on_batch(x, y)[0]
elapsed = time.perf_counter() - start
print(json.dumps({"timesteps_per_sec": steps * batch * target / elapsed, "sec_per_step": elapsed / steps,
                  "finite": bool(np.isfinite(loss))}))
"""


def measure(preset: str, precision: str, jit: bool, batch: int, target: int, steps: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _CHILD, preset, precision, "1" if jit else "0",
                          str(batch), str(target), str(steps)], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_bench_train(presets=("tiny", "small"), batch: int = 8, target: int = 2048, steps: int = 5,
                    log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    rows = []
    log(f"training throughput, batch {batch} × target {target} predicted samples per step, {steps} timed steps")
    log(f"  {'preset':<8}{'precision':<16}{'xla':<6}{'timesteps/s':>14}{'s/step':>10}")
    for preset in presets:
        for precision in ("float32", "mixed_bfloat16", "mixed_float16"):
            for jit in (False, True):
                started = time.perf_counter()
                result = measure(preset, precision, jit, batch, target, steps)
                row = {"preset": preset, "precision": precision, "jit_compile": jit, **result,
                       "wall_s": round(time.perf_counter() - started, 1)}
                rows.append(row)
                if "error" in result:
                    log(f"  {preset:<8}{precision:<16}{str(jit):<6}  failed: {result['error'][:60]}")
                else:
                    log(f"  {preset:<8}{precision:<16}{str(jit):<6}{result['timesteps_per_sec']:>14,.0f}"
                          f"{result['sec_per_step']:>10.3f}")
    return rows
