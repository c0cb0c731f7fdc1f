"""Ready-made studies behind ``expint demo`` and the scripts in ``benchmarks/``.

They need the optional extras (mpmath for high-precision references, matplotlib for
plots) and are imported only when run.
"""
