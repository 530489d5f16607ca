"""Warm-up for the multiprocess executor's forkserver (alphadag.definitions.DEFAULT_EXECUTOR).

Importing this module builds the code location once: load_from_defs_folder imports every asset
module and with them polars, scikit-learn, MLflow, Great Expectations and numba (about 7.5 s of a
step's 10 s start on this machine). The forkserver imports it before forking, so each step
process starts with those modules loaded and rebuilding the definitions takes a fraction of a
second.
"""

from alphadag.definitions import defs

defs()
