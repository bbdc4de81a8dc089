"""Memory helpers for the kernels: :func:`prefetch` asks the CPU to start loading a line early;
:func:`pointer` lets a kernel view memory it is given by address.

A kernel that knows which table lines it will read a few steps ahead (the word cache's
record of the next pieces) can ask for them first: the loads then overlap, instead of each
stalling the step that needs it.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def prefetch(typingctx: Any, array: Any, index: Any) -> Any:  # noqa: ARG001
    """Hint that ``array[index]`` (a one-dimensional array) will be read soon; no effect on
    results, and no bounds check (an address out of range is only a wasted hint).

    Call it from compiled code only:

    >>> import numpy as np
    >>> from numba import njit
    >>> @njit
    ... def total(a):
    ...     s = 0
    ...     for i in range(a.shape[0]):
    ...         prefetch(a, i + 8)
    ...         s += a[i]
    ...     return s
    >>> total(np.arange(10))
    45
    """
    sig = types.void(array, index)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        address = cgutils.get_item_pointer(
            context, builder, array_type, view, [args[1]], wraparound=False
        )
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]),
            "llvm.prefetch.p0",
        )
        # read, keep in all cache levels, data cache
        builder.call(
            fn,
            [
                builder.bitcast(address, byte_ptr),
                ir.Constant(i32, 0),
                ir.Constant(i32, 3),
                ir.Constant(i32, 1),
            ],
        )
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def pointer(typingctx: Any, address: Any) -> Any:  # noqa: ARG001
    """The integer ``address`` (``arr.ctypes.data`` plus a byte offset) as a pointer for
    :func:`numba.carray`, which then views that memory as an array of a given shape and
    dtype.

    Such a view holds no reference to the memory: the caller keeps the array it came from
    alive for the whole call, and the address, shape and dtype must lie inside it. A view
    made this way costs a few instructions, where slicing, ``view`` and ``reshape`` of an
    argument array cost tens of nanoseconds each (reference counts, reshape checks) -- a
    large part of a call that encodes one short text.

    >>> import numpy as np
    >>> from numba import carray, njit
    >>> @njit
    ... def second_row(address):
    ...     return carray(pointer(address), (2, 3), np.int64)[1].sum()
    >>> a = np.arange(6, dtype=np.int64)
    >>> int(second_row(a.ctypes.data))
    12
    """
    sig = types.voidptr(address)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], context.get_value_type(types.voidptr))

    return sig, codegen
