"""Foundation of every stage: errors, stop signals, progress feedback, enumerated choices, colours, and the one place outputs are published (temp file, rename, senclip's marks).

May import: nothing of senclip but _version (everything else may import it).
"""
