"""The BLAS thread pools as the tests that check `expint._blas` see them."""

from __future__ import annotations


def blas_threads() -> list[int]:
    """The thread count of every BLAS pool loaded in this process (threadpoolctl)."""
    from threadpoolctl import threadpool_info

    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
