"""The runtime side: NumPy and onnxruntime only — never TensorFlow or Keras.

A deployment installs `requirements-serving.txt` and this package. Modules:

- `serving.mu_law`: mu-law companding and quantization (bit-identical to the TF ops).
- `serving.sampling`: inverse-CDF sampling of the next class, shared by every generator.
"""
