"""Eight float32 lanes as one value inside numba-compiled code, for the batched product in
:mod:`rnn_demo.generation.kernels`.

numba vectorizes simple loops by itself, but a product that keeps a tile of its outputs in
registers across the whole sum (as a BLAS kernel does) is beyond its loop vectorizer: written
with arrays or scalars, it comes out as scalar code, several times slower
(``python -m benchmarks.engine_choices`` times the product). Here an 8-lane vector is a numba type
whose value is an LLVM ``<8 x float>``, and each operation below is one LLVM instruction
(``load``, ``store``, a broadcast, ``fadd``, ``fmul``), so the code that uses them says exactly
which products and sums are made, in which order, and LLVM keeps the vectors in registers (on an
x86 CPU with AVX, one ``ymm`` register each; without AVX, two SSE registers).

Each lane is computed as the scalar code would compute it: a product, then a sum, each rounded
to float32 (no fused multiply-add; LLVM does not contract without fast-math flags). So a result
is bit for bit the one of the same operations done one element at a time.

The arrays given to :func:`load` and :func:`store` must be C-contiguous float32 arrays; the index
is a flat offset into their data (row-major), and lanes ``index .. index + 7`` must lie inside
the array: nothing is checked at run time.

numba's disk cache of the functions that use these (``rnn_demo/generation/kernels.py``) is renewed when
their own file changes, not this one: after editing only this file, delete the ``kernels*.nbi``
and ``kernels*.nbc`` files of the cache (in ``rnn_demo/generation/__pycache__``, or under
``$NUMBA_CACHE_DIR`` when it is set).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

LANES = 8
_FLOATS = ir.VectorType(ir.FloatType(), LANES)


class Float32x8(types.Type):
    """The numba type of eight float32 lanes."""

    def __init__(self):
        super().__init__(name="float32x8")


float32x8 = Float32x8()


@register_model(Float32x8)
class _Float32x8Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _FLOATS)


def _is_float32_c_array(array) -> bool:
    return isinstance(array, types.Array) and array.dtype == types.float32 and array.layout == "C"


def _lanes_pointer(context, builder, array_type, array, index):
    """Pointer to the 8 floats from flat ``index`` of ``array``'s data."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [index], inbounds=True), _FLOATS.as_pointer())


@intrinsic
def load(typingctx, array, index):
    """The 8 floats at ``array``'s flat ``index`` (no alignment needed)."""
    if not (_is_float32_c_array(array) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        pointer = _lanes_pointer(context, builder, signature.args[0], *args)
        return builder.load(pointer, align=4, typ=_FLOATS)

    return float32x8(array, index), codegen


@intrinsic
def store(typingctx, array, index, value):
    """Writes the 8 lanes of ``value`` to ``array``'s flat ``index``."""
    if not (_is_float32_c_array(array) and isinstance(index, types.Integer) and value == float32x8):
        return None

    def codegen(context, builder, signature, args):
        pointer = _lanes_pointer(context, builder, signature.args[0], args[0], args[1])
        builder.store(args[2], pointer, align=4)
        return context.get_dummy_value()

    return types.none(array, index, value), codegen


@intrinsic
def splat(typingctx, x):
    """A float32 in all 8 lanes."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        undefined = ir.Constant(_FLOATS, ir.Undefined)
        first = builder.insert_element(undefined, args[0], ir.Constant(ir.IntType(32), 0))
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
        return builder.shuffle_vector(first, undefined, zeros)

    return float32x8(x), codegen


@intrinsic
def add(typingctx, a, b):
    """a + b, lane by lane."""
    if not (a == float32x8 and b == float32x8):
        return None

    def codegen(context, builder, signature, args):
        return builder.fadd(*args)

    return float32x8(a, b), codegen


@intrinsic
def multiply(typingctx, a, b):
    """a * b, lane by lane."""
    if not (a == float32x8 and b == float32x8):
        return None

    def codegen(context, builder, signature, args):
        return builder.fmul(*args)

    return float32x8(a, b), codegen


@intrinsic
def prefetch(typingctx, array, index):
    """A hint to bring the cache line holding ``array``'s flat ``index`` into the L1 cache. The
    index may lie past the array's end: a prefetch never faults, it is dropped."""
    if not (_is_float32_c_array(array) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        pointer = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        kind = ir.FunctionType(ir.VoidType(), [pointer.type, i32, i32, i32])  # address, write, locality, data
        function = cgutils.get_or_insert_function(builder.module, kind, "llvm.prefetch.p0")
        builder.call(function, [pointer, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.none(array, index), codegen
