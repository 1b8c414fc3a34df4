"""senclip's version, in a leaf module so that every stage can stamp its outputs without importing the package."""
__version__ = "0.1.0"
