"""BLAS on one thread for a while: small dense work that OpenBLAS would spread over its
thread pool, where waking the threads costs more than they save.

Used, where measured to pay on this project's 2-core machine, by `phiv`'s Krylov loop on
long vectors (`expint._krylov._ONE_THREAD_SIZES`) and by the augmented exponentials of
the exponential Rosenbrock steps on ~130 unknowns (`expint._phi._ONE_THREAD_EXPM_SIZES`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_users = 0
_limiter: Any = None
_controller_cache: Any = None


def _controller() -> Any:
    """threadpoolctl's view of the loaded BLAS libraries, built once (a few ms)."""
    global _controller_cache
    if _controller_cache is None:
        from threadpoolctl import ThreadpoolController

        _controller_cache = ThreadpoolController()
    return _controller_cache


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit the BLAS thread pools to one thread inside the block.  Reference-counted
    under a lock, so overlapping blocks from several Python threads (or nested ones)
    restore the caller's setting exactly once, when the last one leaves; switching
    costs ~20–90 µs, so it suits work of a millisecond or more."""
    global _users, _limiter
    with _lock:
        if _users == 0:
            _limiter = _controller().limit(limits=1, user_api="blas")
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                _limiter.restore_original_limits()
                _limiter = None
