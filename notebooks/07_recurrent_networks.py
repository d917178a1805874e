# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 7. Recurrent networks, measured against WaveNet
#
# Before WaveNet, the natural model of a sequence was a **recurrent neural network**
# (RNN): a network that reads the sequence one element at a time and carries what it
# has seen in a hidden *state*. Andrej Karpathy's essay
# ["The Unreasonable Effectiveness of Recurrent Neural Networks"](http://karpathy.github.io/2015/05/21/rnn-effectiveness/)
# and his char-rnn made the idea famous: read a text one character at a time, predict the
# next character with a softmax, sample it, feed it back — Shakespeare, LaTeX and Linux
# source code came out. Audio is the same game with 256 mu-law classes instead of
# characters. This notebook builds a small recurrent model of audio in Keras, trains it
# and a WaveNet of the same size on the same data for the same CPU budget, and measures
# both: held-out bits per sample, training speed, generation speed, and how far back each
# one can remember. The numbers are whatever this run gives; the text explains them.

# %%
import os
import shutil
import time
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np

from wavenet_tf.builtin_data import write_builtin_dataset
from wavenet_tf.core.config import DataConfig, TrainConfig
from wavenet_tf.core.presets import get_preset
from wavenet_tf.data import prepare, window_dataset
from wavenet_tf.model import WaveNet

QUICK = os.environ.get("WAVENET_NOTEBOOK_QUICK") == "1"
WORK = Path(os.environ.get("WAVENET_NOTEBOOK_WORK", "_work")) / "07_recurrent_networks"
# The budget each model trains for, in CPU-minutes of this process (every thread).
CPU_MINUTES = 0.04 if QUICK else 3.0
# Optimizer steps between two points of a learning curve (a validation pass each).
STEPS = 3 if QUICK else 20


def load_average() -> str:
    """This machine's 1-minute load average: a speed figure means little without it."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


# %% [markdown]
# ## A recurrent network in one line
#
# At every time step an RNN combines the new input `x_t` with its previous state
# `h_{t−1}` into a new state, and reads its prediction off that state:
#
# `h_t = f(h_{t−1}, x_t)`,  `logits_t = W · h_t + b`
#
# The state is a fixed-size vector — the network's whole memory of the past. Plain RNNs
# (`f = tanh(W_x x_t + W_h h_{t−1})`) forget quickly and are hard to train, because
# the gradient is multiplied by `W_h` once per step on its way back. The **LSTM** and the
# **GRU** add *gates* — sigmoids in (0, 1) that decide per unit how much of the old state
# to keep and how much of the new candidate to let in — the same idea as WaveNet's gated
# activation unit (notebook 3), applied across time instead of across layers. We use a
# GRU (gated recurrent unit):
#
# `z = σ(W_z x + U_z h + b_z)` (update gate), `r = σ(W_r x + U_r h + b_r)` (reset gate),
# `n = tanh(W_n x + r ⊙ (U_n h + b_n))`, `h_new = z ⊙ h + (1 − z) ⊙ n`.
#
# ## The data, the same for both
#
# The built-in melodies at 8 kHz, prepared once by the library: the same files, the same
# split (a quarter of the files held out), the same mu-law classes.

# %%
folder = WORK / "melodies"
write_builtin_dataset(folder, num_files=8 if QUICK else 16, seconds=1.0 if QUICK else 4.0, sample_rate=8000)
model_config = get_preset("tiny")
# Every setting spelled out, so this comparison does not move when a library default does.
data_config = DataConfig(target_length=128 if QUICK else 512, batch_size=4 if QUICK else 16, val_split=0.25, seed=0)
train_config = TrainConfig(epochs=10_000, steps_per_epoch=STEPS, learning_rate=3e-3, lr_schedule="constant",
                           warmup_steps=25, clip_norm=0.0, validation_steps=1 if QUICK else 8, audio_every=0,
                           max_cpu_minutes=CPU_MINUTES)
prepared = prepare(folder, model_config, data_config, cache_dir=WORK / "cache")
R = model_config.receptive_field
print(f"{len(prepared.train)} training files, {len(prepared.val)} held-out files; WaveNet `tiny`: receptive field {R}")

# %% [markdown]
# ## Two models of the same size
#
# WaveNet `tiny`: seven gated residual blocks, dilations 1…64. The recurrent model: a
# 16-wide embedding of the input class (a one-hot times a matrix, as WaveNet's first
# convolution is), one GRU layer and a dense layer to 256 logits. 56 GRU units make the
# parameter counts about equal.

# %%
UNITS, EMBEDDING = 56, 16


def recurrent_model(units: int, embedding: int, context: int, classes: int = 256):
    """Embedding -> GRU -> Dense logits. Returns (model, trainer): the trainer shares the model's
    weights and scores only the positions from ``context − 1`` on — the ones WaveNet's training view scores."""
    audio = keras.Input((None,), dtype="int32", name="audio")
    states = keras.layers.GRU(units, return_sequences=True, name="gru")(
        keras.layers.Embedding(classes, embedding, name="embedding")(audio))
    logits = keras.layers.Dense(classes, name="logits")(states)
    return (keras.Model({"audio": audio}, logits, name="gru_model"),
            keras.Model({"audio": audio}, logits[:, context - 1:], name="gru_trainer"))


keras.utils.set_random_seed(data_config.seed)
rnn, rnn_trainer = recurrent_model(UNITS, EMBEDDING, R)
print(f"WaveNet tiny: {WaveNet.from_model_config(model_config).count_params():,} parameters")
print(f"GRU model   : {rnn.count_params():,} parameters "
      f"({', '.join(f'{layer.name} {layer.count_params():,}' for layer in rnn.layers[1:])})")

# %% [markdown]
# ## Training both for the same CPU budget
#
# Both see the very same windows (`wavenet_tf.data.window_dataset`, same seed): 16
# windows a step, each `receptive_field − 1 + 512` input classes, scored on their last 512
# predictions — for WaveNet the positions with a full receptive field, for the GRU the same
# positions after it has read the same 128 samples of context from a zero state. Same
# loss, same optimizer (Adam, 3e-3, 25 warm-up steps: `wavenet_tf.recipe.make_optimizer`),
# same validation windows every `STEPS` steps. Each stops at the end of the epoch in which
# it reaches the budget of CPU time (`time.process_time()`: every thread of this process,
# validation included). On a shared machine that is a far fairer account than wall time,
# though not a perfect one: on a crowded machine every CPU-second gets a little less
# done, so the step counts of two runs differ, for both models alike.
#
# WaveNet trains with the library's `train` (its `max_cpu_minutes` is exactly this budget):

# %%
from wavenet_tf.train import compile_for_training, train

run = WORK / "wavenet-run"
shutil.rmtree(run, ignore_errors=True)
state = train(folder, run, model_config, data_config, train_config, cache_dir=WORK / "cache", verbose=0)
wavenet_history = state["history"]
print(f"WaveNet: {state['step']} steps in {wavenet_history[-1]['cpu_seconds']:.1f} CPU-seconds; "
      f"validation {wavenet_history[-1]['val_bits_per_sample']:.3f} bits/sample")

# %% [markdown]
# The GRU trains with `model.fit` on the same pipeline, compiled by the same function,
# and a small callback that keeps the same CPU account (and, like a run's `model_best`,
# the weights of its best validation):

# %%
from wavenet_tf.recipe import make_optimizer


class CpuBudget(keras.callbacks.Callback):
    """Counts this process's CPU seconds per epoch (as `train` does), stops at the budget, keeps the best weights."""

    def __init__(self, minutes: float):
        super().__init__()
        self.limit, self.used, self.history, self.best = 60.0 * minutes, 0.0, [], None

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.used += time.process_time() - self.started
        self.history.append({"epoch": epoch + 1, "cpu_seconds": self.used, **{k: float(v) for k, v in logs.items()}})
        if self.best is None or logs["val_loss"] < self.best[0]:
            self.best = (logs["val_loss"], self.model.get_weights())
        if self.used >= self.limit:
            self.model.stop_training = True


def windows(tracks, seed):
    return window_dataset(tracks, R, data_config.target_length, data_config.batch_size,
                          model_config.quantization_channels, seed=seed, input_noise=data_config.input_noise,
                          input_noise_fraction=data_config.input_noise_fraction)


compile_for_training(rnn_trainer, optimizer=make_optimizer(train_config))
budget = CpuBudget(CPU_MINUTES)
rnn_trainer.fit(windows(prepared.train, data_config.seed), epochs=train_config.epochs, steps_per_epoch=STEPS,
                validation_data=windows(prepared.val, data_config.seed + 1).take(train_config.validation_steps),
                callbacks=[budget], shuffle=False, verbose=0)
rnn_trainer.set_weights(budget.best[1])
rnn.save(WORK / "gru_model.keras")  # kept beside the WaveNet run, to look at again without training
rnn_steps = len(budget.history) * STEPS
print(f"GRU    : {rnn_steps} steps in {budget.used:.1f} CPU-seconds; "
      f"validation {budget.history[-1]['val_bits_per_sample']:.3f} bits/sample")

# %% [markdown]
# ## The GRU in NumPy
#
# The recurrent cell is a few lines of arithmetic. Written out in NumPy it is easy to
# read, it is the step generation will use, and it runs a long file much faster than
# Keras calling its cell once per sample. Teacher-forced over a held-out excerpt it must
# give the Keras model's logits:

# %%
from wavenet_tf.core.mu_law import mu_law_encode, silence_class
from wavenet_tf.core.sampling import sample_classes


def sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


class GruStep:
    """The GRU model in NumPy, with Keras' GRU arithmetic (gates z, r, n; ``reset_after``).

    ``step(class, h) -> (logits, h)`` advances one sample; ``run(classes) -> (states, logits)``
    reads a whole sequence from a zero state (teacher forcing).
    """

    def __init__(self, model):
        kernel, recurrent, bias = (w.numpy().astype(np.float64) for w in model.get_layer("gru").weights)
        # The embedding, the input kernel and the input bias fold into one table: a class in, 3 pre-activations out.
        self.table = model.get_layer("embedding").embeddings.numpy() @ kernel + bias[0]
        self.recurrent, self.recurrent_bias = recurrent, bias[1]
        self.dense_kernel, self.dense_bias = (w.numpy().astype(np.float64) for w in model.get_layer("logits").weights)
        self.units = recurrent.shape[0]

    def cell(self, x, h):
        """The new state from the input's pre-activations ``x`` (3 × units) and the state ``h``."""
        n, r_h = self.units, h @ self.recurrent + self.recurrent_bias
        z = sigmoid(x[:n] + r_h[:n])             # update gate: how much of the old state to keep
        r = sigmoid(x[n:2 * n] + r_h[n:2 * n])   # reset gate: how much of the old state the candidate sees
        return z * h + (1.0 - z) * np.tanh(x[2 * n:] + r * r_h[2 * n:])

    def step(self, cls, h):
        h = self.cell(self.table[cls], h)
        return h @ self.dense_kernel + self.dense_bias, h

    def run(self, classes):
        inputs, h = self.table[np.asarray(classes)], np.zeros(self.units)
        states = np.empty((len(inputs), self.units))
        for t, x in enumerate(inputs):  # the sequential part: step t needs h from step t − 1
            states[t] = h = self.cell(x, h)
        return states, states @ self.dense_kernel + self.dense_bias  # the read-out is parallel again

    def logits_fn(self, classes, global_id=None, mel=None):
        """An engine for `serving.evaluate`: classes ``(1, T)`` -> logits ``(1, T, 256)``."""
        return self.run(classes[0])[1][None]

    def generate(self, num_samples, seed=0, temperature=1.0):
        uniforms = np.random.default_rng(seed).random(num_samples)
        cls, h, out = silence_class(256), np.zeros(self.units), np.empty(num_samples, np.int32)
        for i in range(num_samples):
            logits, h = self.step(cls, h)
            cls = out[i] = sample_classes(logits[None], temperature, uniforms[i:i + 1])[0]
        return out


gru_step = GruStep(rnn)
probe = mu_law_encode(prepared.val[0].audio[: 100 if QUICK else 500], 256)
difference = np.abs(gru_step.run(probe)[1] - np.asarray(rnn({"audio": probe[None].astype(np.int32)}))[0]).max()
print(f"NumPy GRU vs Keras, {len(probe)} teacher-forced steps: max |Δ logits| = {difference:.1e}")
assert difference < 1e-3, "the NumPy cell must compute what Keras' GRU computes"

# %% [markdown]
# ## Learning curves on one axis
#
# Validation bits per sample against CPU seconds spent (left): how much each model learns
# for the same computing. The dashed line is the unigram baseline of the held-out audio
# (no context at all); 8 bits is a uniform guess. On the right the same curves against
# optimizer steps: whether a model is behind because it learns less from a batch, or
# because it gets through fewer batches in the budget.

# %%
from wavenet_tf.core.bits import unigram_bits

baseline = unigram_bits(np.concatenate([mu_law_encode(t.audio, 256) for t in prepared.val]))

fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for name, history in (("WaveNet tiny", wavenet_history), (f"GRU {UNITS}", budget.history)):
    bits = [8] + [r["val_bits_per_sample"] for r in history]
    axes[0].plot([0] + [r["cpu_seconds"] for r in history], bits, "o-", ms=2, label=name)
    axes[1].plot([0] + [STEPS * r["epoch"] for r in history], bits, "o-", ms=2, label=name)
for ax in axes:
    ax.axhline(baseline, color="k", ls="--", lw=1, label=f"unigram baseline {baseline:.2f}")
axes[0].set(xlabel="CPU seconds of training (validation included)", ylabel="validation bits per sample",
            title=f"Same data, same budget ({CPU_MINUTES:g} CPU-minutes each)", ylim=(0, 8.2))
axes[1].set(xlabel="optimizer steps (16 windows each)", title="The same runs against steps")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Held-out bits per sample
#
# The number to compare models by (`wavenet evaluate`'s function, notebook 4): every
# sample of every held-out file that has a full receptive field of WaveNet's, scored by the
# same code for both. The GRU reads each file from its start (in chunks of 16,384 samples
# that overlap by the receptive field), so it always has at least as much past as WaveNet.

# %%
from serving.evaluate import evaluate_tracks, keras_logits_fn
from wavenet_tf.run_dir import load_run_model

wavenet = load_run_model(run)  # its best validation, like the GRU's weights
held_out = {"WaveNet tiny": evaluate_tracks(keras_logits_fn(wavenet), prepared.val, R, 256),
            f"GRU {UNITS}": evaluate_tracks(gru_step.logits_fn, prepared.val, R, 256)}
for name, report in held_out.items():
    print(f"{name:13s} {report['bits_per_sample']:.3f} bits/sample over {report['num_samples']:,} held-out samples"
          f"  (unigram {report['unigram_bits']:.3f})")

# %% [markdown]
# ## Training speed: sequential steps vs one parallel convolution
#
# Under teacher forcing every target is known, so WaveNet computes all 512 predictions of
# a window at once: each layer is one convolution over all positions, and the longest
# chain of dependent operations is the depth of the network. The GRU cannot start step
# `t` before step `t − 1` has produced `h_{t−1}`: a window is that many small matrix
# products in a row, forward and again backward.

# %%
window = R - 1 + data_config.target_length
speeds = {}
for name, steps, cpu in (("WaveNet tiny", state["step"], wavenet_history[-1]["cpu_seconds"]),
                         (f"GRU {UNITS}", rnn_steps, budget.used)):
    predicted = steps * data_config.batch_size * data_config.target_length
    speeds[name] = predicted / cpu
    print(f"{name:13s} {predicted:>10,} predicted samples in {cpu:6.1f} CPU-s = {speeds[name]:>8,.0f} samples per CPU-second")
print(f"dependent steps through one {window}-sample window: WaveNet {1 + model_config.num_layers + 2} layers "
      f"(first convolution, {model_config.num_layers} blocks, 2 head layers); GRU {window} time steps")
print(f"WaveNet trains {speeds['WaveNet tiny'] / speeds[f'GRU {UNITS}']:.1f}x as many samples per CPU-second "
      f"(CPU time is fair under load; {load_average()})")

# %% [markdown]
# ## Generation: one step per sample, for both
#
# At generation time the future is not known, so WaveNet loses its advantage: it too
# produces one sample per step, and each step is a small amount of work — the ring buffer
# of notebooks 5 and 6 makes it one time step of every layer. The GRU's step is its cell
# applied once. The fair comparison is the same language: WaveNet's NumPy reference step
# (`wavenet_tf.core.numpy_step`, what `step.onnx` computes) against `GruStep` above, both
# drawing classes with the library's `sample_classes` from the same uniform numbers.
#
# The speeds: the two NumPy steps, and the engine this project serves WaveNet with
# (`serving`'s `StreamingSampler` on an exported bundle: the native step engine when it is
# built, otherwise the ONNX step graph). These are samples per second of wall time, the
# best of three rounds, on a machine shared with other work: read them beside the load
# average.

# %%
from export.bundle import export_run
from serving.bundle import load_bundle
from serving.streaming_sampler import StreamingSampler
from wavenet_tf.core.numpy_step import NumpyStep
from wavenet_tf.core.step_generator import StepGenerator
from wavenet_tf.step_weights import step_arrays

num = 200 if QUICK else 8000
numpy_wavenet = StepGenerator(NumpyStep(step_arrays(wavenet)), 1)
contenders = {
    f"GRU {UNITS}, NumPy step": lambda n: gru_step.generate(n, seed=0),
    "WaveNet tiny, NumPy step": lambda n: numpy_wavenet.generate(n, np.random.default_rng(0).random((1, n))),
}
if not QUICK:  # exporting takes a while; the quick run leaves it to notebooks 5 and 6
    export_run(run, WORK / "wavenet-bundle", log=lambda line: None)
    sampler = StreamingSampler(load_bundle(WORK / "wavenet-bundle"), seed=0)
    served = f"WaveNet tiny, serving ({sampler.engine})"
    contenders[served] = lambda n: sampler.generate_classes(n)
generation = {}
for name, generate in contenders.items():
    generate(50)  # untimed: first calls pay for allocation and the engine's warm-up
    seconds = []
    for _ in range(3):  # best of 3: other work on the machine only ever slows a round down
        started = time.perf_counter()
        generate(num)
        seconds.append(time.perf_counter() - started)
    generation[name] = num / min(seconds)
    print(f"{name:34s} {generation[name]:>9,.0f} samples/s, best of 3  ({load_average()})")

# Multiply-adds of one step: every kernel once, except the first layer's, which a one-hot or embedded input
# turns into a table lookup (the GRU's embedding and input kernel are folded into `GruStep.table`).
wavenet_macs = sum(int(np.prod(w.shape)) for w in wavenet.weights
                   if w.path.endswith("kernel") and not w.path.startswith("initial_conv"))
gru_macs = gru_step.recurrent.size + gru_step.dense_kernel.size
print(f"multiply-adds per generated sample: WaveNet tiny {wavenet_macs:,}, GRU {gru_macs:,}")

# %% [markdown]
# Generation does not inherit training's advantage. Per sample the two models do about
# the same arithmetic (the multiply-adds above), and both must wait for the previous
# sample. In NumPy, on matrices this small, time goes to the *number* of operations more
# than their size — every call costs about a microsecond whatever it computes — and
# WaveNet's reference step is several dozen small operations (a handful per layer, seven
# layers, the head, the ring buffer's bookkeeping) where the GRU's is about a dozen. What
# makes WaveNet fast to *serve* is the engineering the library does for it — the ring
# buffer, the exported step graph and the native engine, which computes a whole step in
# one call — not its architecture. At 8 kHz, real time is 8,000 samples/s.
#
# ## How far back can each one remember?
#
# WaveNet's memory is its receptive field: a sample more than `receptive_field − 1`
# steps in the past cannot change a prediction, by construction (notebook 2 proved it).
# The GRU's state can in principle carry information forever, but two things limit it:
# its state is 56 numbers that every step overwrites a little, and training never asked
# it to remember further than a window (**truncated backpropagation through time**: the
# gradient of a loss only flows back through the window's `R − 1 + 512` steps, so no
# weight was ever adjusted for a dependency longer than that). The measurement: change one
# input sample of a held-out melody and see how much each later prediction moves.

# %%
LAGS = 800
pokes = [R + 397 * k for k in range(2 if QUICK else 8)]  # several places, so no single note decides
melody = mu_law_encode(prepared.val[0].audio[: pokes[-1] + LAGS], 256)
engines = {"WaveNet tiny": lambda classes: np.asarray(wavenet({"audio": classes[None].astype(np.int32)}))[0],
           f"GRU {UNITS}": lambda classes: gru_step.run(classes)[1]}


def log_probs(logits):
    logits = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


fig, ax = plt.subplots(figsize=(7, 3.5))
reach = {}
for name, engine in engines.items():
    clean = log_probs(engine(melody))
    moved = []
    for poke in pokes:
        changed = melody.copy()
        changed[poke] = (int(changed[poke]) + 128) % 256  # the same sample, at the opposite end of the scale
        # The largest change of any class's log-probability, at every lag after the changed sample.
        moved.append(np.abs(log_probs(engine(changed)) - clean).max(-1)[poke:poke + LAGS])
    typical = np.median(moved, axis=0)
    reach[name] = int(np.nonzero(typical > 1e-6)[0].max(initial=0))
    ax.semilogy(np.arange(LAGS), np.maximum(typical, 1e-16), lw=0.8, label=name)
    print(f"{name:13s} median over {len(pokes)} changed samples: above 1e-6 up to lag {reach[name]}; "
          f"at lag {R - 1}: {typical[R - 1]:.1e}, at lag {R}: {typical[R]:.1e}, at lag {LAGS - 1}: {typical[-1]:.1e}")
ax.axvline(R - 1, color="k", ls=":", lw=1, label=f"receptive field − 1 = {R - 1}")
ax.axvline(window - 1, color="0.5", ls="--", lw=1, label=f"training window − 1 = {window - 1}")
ax.set(xlabel="lag after the changed sample", ylabel="max |Δ log p| of a later prediction",
       title="How long one changed sample is remembered (median)", ylim=(1e-16, 1e2))
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# WaveNet's curve stays high right up to its receptive field and then drops to exactly
# zero: a hard edge. The GRU's curve has no edge, but it falls fast — many orders of
# magnitude within about a hundred samples, down to the 1e-15 of float64 rounding (the
# printed lag is where it passes 1e-6). Its memory is unlimited in principle and, here,
# shorter than WaveNet's in practice: nothing in these melodies rewarded keeping more (the
# lowest bass note's period is about 120 samples), and truncated backpropagation could
# not have taught it a dependency longer than its 640-sample windows anyway. Trained on
# data with longer structure, over longer windows, gated recurrent networks do learn
# longer memories; this one had no reason to.
#
# ## The recurrent state over a melody
#
# What the GRU carries from step to step: its 56 state units while it reads a held-out
# melody — a second of it on the left, and on the right 30 ms around the start of a note,
# sample by sample. Each row is one unit, from −1 (blue) to +1 (red).

# %%
piece = prepared.val[0].audio[: 2 * model_config.sample_rate]
hidden = gru_step.run(mu_law_encode(piece, 256))[0]
rate = model_config.sample_rate
frames = np.sqrt((piece[: len(piece) // 80 * 80].reshape(-1, 80) ** 2).mean(1))  # 10 ms loudness
onset = 80 * (1 + int(np.argmax(frames[1:] / (frames[:-1] + 1e-3))))  # the sharpest rise: a pluck
zoom = slice(max(onset - 80, 0), onset + 160)
start = min(max(onset - rate // 2, 0), max(len(piece) - rate, 0))
overview = slice(start, start + rate)  # the second around that pluck
seconds = np.arange(len(piece)) / rate
fig, axes = plt.subplots(2, 2, figsize=(12, 5.5), sharex="col", gridspec_kw={"height_ratios": [1, 3]})
for column, part in enumerate((overview, zoom)):
    axes[0, column].plot(seconds[part], piece[part], "-o" if column else "-", ms=1.5, lw=0.5)
    axes[1, column].imshow(hidden[part].T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest",
                           extent=(seconds[part][0], seconds[part][-1], UNITS - 0.5, -0.5))
    axes[1, column].set(xlabel="seconds", ylabel="state unit")
axes[0, 0].set(ylabel="audio", title="A held-out melody and the GRU's state: one second")
axes[0, 1].set(title="30 ms around the start of a note")
axes[0, 0].axvspan(seconds[zoom][0], seconds[zoom][-1], color="C1", alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# Over a second the state is a blur, because most units swing with the waveform itself:
# zoomed in, they cycle once per period of the note, the network tracking where in the
# cycle it is — the information it needs to predict the next sample. At the pluck the
# pattern breaks and a new cycle, with a new period, takes over within a few periods.

# %% [markdown]
# ## What the numbers say
#
# The table gathers this run's figures. Read them with their conditions: `tiny`-sized
# models, 8 kHz plucked melodies, a few CPU-minutes on a shared 2-core machine.

# %%
names = ("WaveNet tiny", f"GRU {UNITS}")
rows = [("parameters", [f"{wavenet.count_params():,}", f"{rnn.count_params():,}"]),
        ("held-out bits/sample", [f"{held_out[n]['bits_per_sample']:.3f}" for n in names]),
        ("CPU-seconds trained", [f"{wavenet_history[-1]['cpu_seconds']:.0f}", f"{budget.used:.0f}"]),
        ("optimizer steps", [f"{state['step']}", f"{rnn_steps}"]),
        ("training samples per CPU-second", [f"{speeds[n]:,.0f}" for n in names]),
        ("generation samples/s, NumPy step", [f"{generation['WaveNet tiny, NumPy step']:,.0f}",
                                              f"{generation[f'GRU {UNITS}, NumPy step']:,.0f}"]),
        ("generation samples/s, served", [f"{generation[served]:,.0f}" if not QUICK else "not run", "—"]),
        ("a changed sample matters (> 1e-6) to lag", [f"{reach[n]}" for n in names]),
        ("memory limited by", [f"receptive field: {R} samples", f"state + truncated BPTT ({window} steps)"])]
print(f"{'':42s}{names[0]:>30s}{names[1]:>36s}")
for label, values in rows:
    print(f"{label:42s}{values[0]:>30s}{values[1]:>36s}")
print(f"unigram baseline {baseline:.3f} bits/sample; {load_average()}")

# What the table says, read from it rather than written in advance.
wavenet_bits, gru_bits = (held_out[n]["bits_per_sample"] for n in names)
ahead = names[0] if wavenet_bits < gru_bits else names[1]
print(f"held-out: {ahead} ahead by {abs(wavenet_bits - gru_bits):.3f} bits/sample")
print(f"optimizer steps in the budget: WaveNet {state['step']}, GRU {rnn_steps} "
      f"({state['step'] / rnn_steps:.2f}x as many for WaveNet)")
both = min(state["step"], rnn_steps)  # step for step: validation at the last step both runs reached
at_step = {name: next(r["val_bits_per_sample"] for r in history if STEPS * r["epoch"] == both)
           for name, history in zip(names, (wavenet_history, budget.history))}
print(f"at step {both}, the last both reached: validation WaveNet {at_step[names[0]]:.3f}, "
      f"GRU {at_step[names[1]]:.3f} bits/sample")
print(f"memory: a changed sample still mattered up to lag {reach[names[0]]} for WaveNet "
      f"({1000 * reach[names[0]] / model_config.sample_rate:.0f} ms), {reach[names[1]]} for the GRU "
      f"({1000 * reach[names[1]] / model_config.sample_rate:.0f} ms)")

# %% [markdown]
# The four lines under the table read the comparison off the run. In the run saved here
# WaveNet ended ahead on held-out audio, and the learning curves separate two reasons.
# It got through more optimizer steps in the same CPU time — the convolution turns a
# window into a few large matrix products, the GRU into 640 small ones in a row — though
# on two CPU cores with batches of 16 windows the factor is modest (the GRU gets parallel
# work across the batch; notebook 0 measures the larger gap for a single sequence). And
# step for step it learned a little more from the same batches: compare the two
# validations at the last step both runs reached, and the right-hand plot for where the
# curves part. Generation is the other side of the ledger: one step per sample for both,
# about the same arithmetic per step, and a recurrent step that is simple to make fast —
# which is why recurrent vocoders such as WaveRNN later came back for fast generation.
# The GRU's unlimited memory did not show here: the last line says how far back each
# model's predictions still moved.
#
# Neither recipe was tuned for this duel (a GRU may want another learning rate, longer
# windows, or another split of its weights between input, state and output): these are
# two reasonable models on one small data set, measured the same way — a starting point
# for your own comparison, not a verdict. Notebook 8 is the glossary of the words used
# here.
