"""Handing freed heap memory back to the operating system in long-running servers."""

from __future__ import annotations

import contextlib

__all__ = ["release_heap"]


def release_heap(*, collect: bool = False) -> None:
    """Return freed heap to the OS (glibc ``malloc_trim``); a no-op on other C libraries."""
    import ctypes

    if collect:
        import gc

        gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
