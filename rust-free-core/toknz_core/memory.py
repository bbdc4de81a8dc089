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


def _item_address(context: Any, builder: Any, signature: Any, args: Any) -> Any:
    """LLVM pointer to ``array[index]`` for an intrinsic whose first two arguments are a
    one-dimensional array and an index (no bounds check)."""
    array_type = signature.args[0]
    view = context.make_array(array_type)(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, array_type, view, [args[1]], wraparound=False)


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
        address = _item_address(context, builder, signature, args)
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


@intrinsic
def load_u64(typingctx: Any, array: Any, index: Any) -> Any:  # noqa: ARG001
    """The 8 bytes ``array[index:index + 8]`` of a one-dimensional uint8 array as one
    little-endian ``uint64``, in one unaligned load: no bounds check, so the caller makes
    sure that ``index + 8 <= array.shape[0]``.

    Packing a piece of text a byte at a time costs a loop whose length changes from piece
    to piece (a mispredicted exit each time); this is one instruction.

    >>> import numpy as np
    >>> from numba import njit
    >>> @njit
    ... def first_word(a):
    ...     return load_u64(a, 1)
    >>> hex(first_word(np.arange(10, dtype=np.uint8)))
    '0x807060504030201'
    """
    sig = types.uint64(array, index)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        address = _item_address(context, builder, signature, args)
        word_ptr = builder.bitcast(address, ir.IntType(64).as_pointer())
        return builder.load(word_ptr, align=1)

    return sig, codegen


@intrinsic
def store_u64(typingctx: Any, array: Any, index: Any, value: Any) -> Any:  # noqa: ARG001
    """Write the 8 bytes of ``value`` (a ``uint64``, little-endian) at ``array[index]`` of a
    one-dimensional array, in one unaligned store: no bounds check, so the caller makes
    sure the 8 bytes lie inside ``array``.

    Two int32 ids packed in one word go out in one store, whatever their number.

    >>> import numpy as np
    >>> from numba import njit
    >>> @njit
    ... def put(a):
    ...     store_u64(a, 1, np.uint64(0x0000000700000005))
    >>> a = np.zeros(4, dtype=np.int32)
    >>> put(a)
    >>> a.tolist()
    [0, 5, 7, 0]
    """
    sig = types.void(array, index, value)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        address = _item_address(context, builder, signature, args)
        word_ptr = builder.bitcast(address, ir.IntType(64).as_pointer())
        builder.store(args[2], word_ptr, align=1)
        return context.get_dummy_value()

    return sig, codegen


def _borrowed(typingctx: Any, array: Any) -> Any:  # noqa: ARG001
    """``borrowed(array)``: the same array (same memory, shape and strides) without its reference to the
    memory's owner (a null meminfo): copying, slicing or passing it on touches no
    reference count.

    Numba increments and decrements an array's reference count (atomic operations on one
    shared counter) each time it is sliced or passed to a helper. A kernel that does that
    per piece pays tens of nanoseconds per piece, and two threads using the same tables
    make the counter's cache line bounce between their cores. A kernel takes
    ``data = borrowed(data)`` once at its top and works on the view. The caller's array
    keeps the memory alive (a kernel's own argument is alive until it returns): never
    return a borrowed view or keep it past the call.

    >>> import numpy as np
    >>> from numba import njit
    >>> @njit
    ... def total(a):
    ...     b = borrowed(a)
    ...     s = 0
    ...     for i in range(b.shape[0]):
    ...         s += b[i:][0]
    ...     return s
    >>> int(total(np.arange(5)))
    10
    """
    sig = array(array)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        view = context.make_array(signature.args[0])(context, builder, value=args[0])
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        return view._getvalue()

    return sig, codegen


#: ``borrowed(array)`` inside a kernel: see :func:`_borrowed` (typed ``Any`` so that the
#: kernels' calls need no type-checker exemptions).
borrowed: Any = intrinsic(_borrowed)
