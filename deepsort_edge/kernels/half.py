"""float16 gallery entries: numba has no float16 type, so entries are kept as their uint16 bits.

``load`` and ``store`` convert through LLVM's ``half`` type, which compiles
to one vector instruction on x86-64 with F16C (``vcvtph2ps``/``vcvtps2ph``,
every x86-64 CPU since 2012) and on 64-bit ARM. Both pass float32 through
unchanged, so one kernel serves float32 and float16 galleries.
"""

from __future__ import annotations

import platform

import numba
import numpy as np
from llvmlite import binding, ir
from numba.core import types
from numba.extending import intrinsic


@intrinsic
def load(typingctx, value):
    """A gallery entry as float32 (uint16 holds float16 bits)."""
    if value == types.uint16:

        def codegen(context, builder, signature, args):
            return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

        return types.float32(types.uint16), codegen
    if value == types.float32:

        def passthrough(context, builder, signature, args):
            return args[0]

        return types.float32(types.float32), passthrough
    return None


@intrinsic
def store(typingctx, value, like):
    """``value`` (float32) as an entry of the same type as ``like`` (rounded to nearest for float16)."""
    if like == types.uint16:

        def codegen(context, builder, signature, args):
            v = context.cast(builder, args[0], signature.args[0], types.float32)
            return builder.bitcast(builder.fptrunc(v, ir.HalfType()), ir.IntType(16))

        return types.uint16(value, like), codegen
    if like == types.float32:

        def cast(context, builder, signature, args):
            return context.cast(builder, args[0], signature.args[0], types.float32)

        return types.float32(value, like), cast
    return None


def check_float16() -> None:
    """Raise ``ValueError`` where float16 entries would need a software fallback the JIT cannot link."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i386", "i686") and "+f16c" not in binding.get_host_cpu_features().flatten():
        raise ValueError("gallery_dtype='float16' needs a CPU with F16C (x86-64 since 2012); use 'float32'")


if numba.config.DISABLE_JIT:  # intrinsics only exist in compiled code: plain numpy stands in for them

    def load(value):  # noqa: F811
        if isinstance(value, np.uint16):
            return np.array(value, dtype=np.uint16).view(np.float16).astype(np.float32)[()]
        return np.float32(value)

    def store(value, like):  # noqa: F811
        if isinstance(like, np.uint16):
            return np.array(value, dtype=np.float16).view(np.uint16)[()]
        return np.float32(value)
