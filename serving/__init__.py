"""The runtime side: NumPy and onnxruntime (plus FastAPI for the server) — never TensorFlow or Keras.

A deployment installs `requirements-serving.txt` and this package. Modules:

- `serving.bundle`: `load_bundle`, which validates a bundle's card, files and graphs.
- `serving.streaming_sampler`: `StreamingSampler`, real-time generation on ``step.onnx``.
- `serving.ring_buffer`, `serving.step_generator`, `serving.numpy_step`, `serving.onnx_step`:
  the incremental step's state and its NumPy and onnxruntime backends.
- `serving.naive`: naive generation (the exactness reference and speed baseline).
- `serving.batcher`, `serving.server`: dynamic batching and `wavenet serve`.
- `serving.generate`, `serving.bench`, `serving.mel`: `wavenet generate`, `wavenet bench`,
  log-mel frames in NumPy.
- `serving.mu_law`, `serving.sampling`: mu-law and inverse-CDF sampling shared by every generator.
"""
