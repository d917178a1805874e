"""The applications built on the training library, serving and export: the `wavenet` command
line (`cli`), `wavenet demo` (`demo`) and the benchmarks (`bench_*`).

Nothing in `wavenet_tf` outside this package, in `serving/` or in `export/` imports from it
(tests/test_architecture.py holds the layers); importing `wavenet_tf.apps` imports nothing
heavy, so `wavenet --help` starts without TensorFlow.
"""
