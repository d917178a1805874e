"""Run directory -> bundle: SavedModel, full-sequence ONNX and the incremental step graph.

The bundle is what leaves the training machine (docs/export.md, docs/architecture.md); everything in
`serving` reads only the bundle. Modules: `export.bundle` (`wavenet export`, the model
card), `export.step_graph` (step.onnx, node by node), `export.native_graph`
(step_native.onnx) and `export.verify` (parity of every graph with the Keras model).
"""
