"""numba is optional (the `fast` extra): every compiled kernel module is imported through here,
so all engines fall back to their numpy/torch versions for the same reasons."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["load_kernels"]


def load_kernels(module: str) -> ModuleType | None:
    """The compiled kernel module `module` (a full name, e.g. "reluscope.traversal._sparse_nb"),
    or None when numba is missing (ImportError), cannot cache its kernels (RuntimeError: no
    writable folder, which it says when the module is imported) or its LLVM library does not
    load (OSError, e.g. under a tight address-space rlimit)."""
    try:
        return importlib.import_module(module)
    except (ImportError, RuntimeError, OSError):
        return None
