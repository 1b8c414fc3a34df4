"""The performance benchmark suite (issue 5): ``make bench`` or ``python -m bench.run``.

Every figure is a ratio to a limit measured (or stated) in the same run, so results from a
noisy shared machine still say how close the code gets to what the hardware allows.
"""
