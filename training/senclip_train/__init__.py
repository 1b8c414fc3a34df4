"""SenCLIP training and benchmarks: Sen2LUCAS pretraining, export to the release format, and the
EuroSAT / BigEarthNet-19 zero-shot harness.

Depends on the backend (``senclip``) for checkpoints, preprocessing constants, prompts and
encoders, so a model trained here is loaded by the product exactly like a published one.
"""
__version__ = "0.1.0"
