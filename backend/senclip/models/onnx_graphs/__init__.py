"""ONNX graphs of the CLIP towers built from a state_dict with the ``onnx`` package alone (no torch):
``build.build_export`` writes the same export folder as ``senclip.models.onnx_export.export_onnx``.

Modules: ops (graph builder and shared layers), transformer (pre-LN blocks, attention), vit and resnet
(image towers), image (the chip encoder: preprocessing + tower), text (the text encoder), build.
"""
