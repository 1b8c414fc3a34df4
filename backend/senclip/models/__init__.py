"""Models, weights and engines: the model registry, checkpoints, downloads, ONNX export, bundles, precision choice, and the torch / ONNX Runtime / OpenVINO encoders.

May import: senclip.core.
"""
