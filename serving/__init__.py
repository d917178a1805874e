"""The runtime side: NumPy and onnxruntime (plus FastAPI for the server) — never TensorFlow or Keras.

A deployment installs `requirements-serving.txt` and this package; from `wavenet_tf` it
imports only the TensorFlow-free core (`wavenet_tf.core`: mu-law, log-mel, sampling, the
ring buffer, audio decoding). Modules:

- `serving.bundle`: `load_bundle`, which validates a bundle's card, files and graphs.
- `serving.step_model`: `StepModel` (one per bundle) advancing lists of `Stream` objects (state).
- `serving.streaming_sampler`: `StreamingSampler`, B streams of one seed over a `StepModel`.
- `serving.onnx_step`, `serving.native`: the step on onnxruntime, and the native operator.
- `serving.naive`: naive generation (the exactness reference and speed baseline).
- `serving.batcher`, `serving.server`: dynamic batching and `wavenet serve`.
- `serving.generate`, `serving.evaluate`, `serving.bench`, `serving.bench_levers`:
  `wavenet generate`, `evaluate`, `bench` and `bench-levers`.
"""
