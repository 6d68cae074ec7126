"""glibc malloc tuned for CPU training: freed memory stays in the process for the next step.

PyTorch's CPU tensors come from plain ``malloc``. glibc serves blocks above its mmap threshold (32 MB at
most) with a fresh ``mmap`` and unmaps them on free, so every step re-faults those pages in, zero-filled,
one by one. MPT's up-sampling weight is 6890 x 1723 (47 MB): its gradient, Adam's update and the
activations around it take that path at every step. Keeping freed memory in the heap removes the page
faults: a training step of the embedded default's head (batch 4, 1 thread) 324 -> 208 ms
(``python tools/benchmark_cpu_allocator.py``, both measured side by side: ratio 1.55); the up-sampling
weight gradient alone 63 -> 32 ms.

The cost is that the process keeps its peak heap until it exits, which is what a training or test job
does anyway (each forked DataLoader worker keeps its own). ``MMPOSE_MPT_KEEP_FREED_MEMORY=0`` on the
top-level command turns it off (the processes a tuned one starts inherit the ``MALLOC_*_`` variables);
malloc settings of your own (``MALLOC_MMAP_MAX_``, ``MALLOC_TRIM_THRESHOLD_``, ``GLIBC_TUNABLES``) are
left alone.
"""
import ctypes
import ctypes.util
import os

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_ENV = {'MALLOC_MMAP_MAX_': '0', 'MALLOC_TRIM_THRESHOLD_': str(2**31 - 1)}


def keep_freed_memory(children: bool = True) -> bool:
    """Make glibc keep freed memory (no per-allocation mmap, no trimming) in this process and, with
    ``children``, in the processes it starts (through glibc's ``MALLOC_*_`` environment variables,
    read at their start-up; forked DataLoader workers inherit the setting itself).

    Returns:
        True when the setting took effect; False on a C library without ``mallopt`` (not glibc), when
        ``MMPOSE_MPT_KEEP_FREED_MEMORY=0``, or when the environment already has malloc settings (a
        process started by a tuned one: those are the same settings).
    """
    if os.environ.get('MMPOSE_MPT_KEEP_FREED_MEMORY', '1') == '0':
        return False
    if any(key in os.environ for key in (*_ENV, 'GLIBC_TUNABLES')):   # the user's own malloc settings
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt, _ = libc.mallopt, libc.gnu_get_libc_version    # glibc only
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    if ok and children:
        os.environ.update(_ENV)
    return ok
