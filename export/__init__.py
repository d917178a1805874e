"""Run directory -> bundle: SavedModel, full-sequence ONNX and the incremental step graph.

The bundle is what leaves the training machine (DESIGN.md, "Bundle"); everything in
`serving` reads only the bundle. The exporter arrives with the export issue; until then
this package holds nothing else.
"""
