"""The core both sides import: plain Python, NumPy, soundfile and soxr — never TensorFlow or onnxruntime.

Training (`wavenet_tf`'s Keras parts), export and serving all build on these modules, and
these import none of them (a test walks the imports):

- `config`, `presets`: the frozen model, data and training configurations and named presets.
- `mu_law`, `mel`: mu-law companding and log-mel frames — the one implementation of each.
- `sampling`: temperature and inverse-CDF sampling arithmetic, the naive-generation loop.
- `step_arrays`: the incremental step's arrays, as every engine computes with them.
- `ring_buffer`, `numpy_step`, `step_generator`: the incremental step's state, its NumPy
  reference (what ``step.onnx`` computes), and a driver over any step.
- `audio`, `audio_cache`: any audio file to clean mono float32 at the model's rate, cached.
- `bits`: bits/sample of logits and the unigram baseline.
- `files`: atomic writes and SHA-256 checksums for run directories and bundles.
- `card`: the bundle's model card (``model.json``) as a frozen dataclass: export writes it,
  serving reads it.
"""
