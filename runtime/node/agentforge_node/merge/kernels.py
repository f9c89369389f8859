"""The merge methods' element loops, compiled by numba: one loop per chunk instead of one pass per torch op.

Kernels take fp32 numpy views of one chunk (the experts as a tuple, so the loop over them is unrolled for each
arity) and write fp32; `nogil` lets the engine's threads run chunks in parallel. Arithmetic is IEEE fp32 in the
order of the formulas in methods.py (no fastmath: nothing reassociated or contracted into FMAs), so a result does
not depend on the chunking. The exception is `dots`, whose fp64 sums LLVM may reorder within a chunk: fp64
rounding only, far below fp32's, and the same on every run. Tests are 0/1 factors rather than branches: whether
|δ| clears a threshold, or a coin lands, is unpredictable, and a mispredicted branch costs more than the loop body.

DARE's coins are a counter-based hash of (expert key, element index), so any element's coin can be drawn alone:
chunks, samples and threads share no generator state, and no mask is stored.
"""
from __future__ import annotations

import numpy as np
from numba import njit

F32, U32, I32 = np.float32, np.uint32, np.int32

_jit = njit(nogil=True, cache=True, error_model="numpy")


@njit(inline="always", cache=True)
def _mix(x):
    """lowbias32 (C. Wellons): a bijective 32-bit mixer; 32-bit, so cheap without 64-bit SIMD multiplies."""
    x = U32(x ^ (x >> U32(16)))
    x = U32(x * U32(0x7FEB352D))
    x = U32(x ^ (x >> U32(15)))
    x = U32(x * U32(0x846CA68B))
    return U32(x ^ (x >> U32(16)))


@_jit
def coins(key, index):
    """The 24-bit coins of the given element indices (the reference for `dropped`, and the sampler's)."""
    out = np.empty(index.size, np.uint32)
    for k in range(index.size):
        g = index[k]
        out[k] = _mix(U32(g & 0xFFFFFFFF) ^ _mix(U32(key) ^ U32(g >> 32))) >> U32(8)
    return out


@_jit
def dropped(b, x, key, cutoff, scale, start, d):
    """d = (x − b) with each element kept iff its coin ≥ cutoff and then scaled (DARE); returns how many of d are
    nonzero (the diagnostics' kept count). The coin of element g is
    the top 24 bits of mix(low32(g) ^ mix(key ^ high32(g))); a chunk never straddles a multiple of 2³²."""
    stream, low = _mix(U32(key) ^ U32(start >> 32)), U32(start & 0xFFFFFFFF)
    kept = 0
    for i in range(d.size):
        coin = _mix(U32(low + U32(i)) ^ stream) >> U32(8)
        d[i] = (x[i] - b[i]) * (F32(coin >= cutoff) * scale)
        kept += d[i] != 0
    return kept


@_jit
def linear(xs, ws, out):
    for i in range(out.size):
        acc = xs[0][i] * ws[0]
        for j in range(1, len(xs)):
            acc = acc + xs[j][i] * ws[j]
        out[i] = acc


@_jit
def task_arithmetic(sub, xs, ws, lam, add, out):
    """out = (Σⱼ (xⱼ − sub)·wⱼ)·λ + add. sub = add = base, or sub = 0 when xs already hold task vectors (DARE)."""
    for i in range(out.size):
        s = sub[i]
        acc = (xs[0][i] - s) * ws[0]
        for j in range(1, len(xs)):
            acc = acc + (xs[j][i] - s) * ws[j]
        out[i] = acc * lam + add[i]


@_jit
def ties(sub, xs, ws, cuts, lam, min_w, add, out):
    """TIES on δⱼ = xⱼ − sub: trim |δⱼ| < cuts[j] (0 trims nothing), weight, elect the sign of the mass, and take
    the weighted mean of the agreeing δ; out = that·λ + add.

    Also returns diagnostics, integer counts kept in scalars (an array store in the loop would stop it vectorising),
    beside the fp32 arithmetic and never feeding it: (kept δⱼ elements summed over j, elements with any kept δ,
    elements among those whose every kept δ has the elected sign)."""
    E = len(xs)
    kept_sum, active, agreeing = I32(0), I32(0), I32(0)  # int32, as wide as the fp32 lanes: a chunk is < 2³¹/E
    for i in range(out.size):
        s = sub[i]
        mass = F32(0.0)
        for j in range(E):
            v = xs[j][i] - s
            v = v * F32(abs(v) >= cuts[j]) * ws[j]
            mass = v if j == 0 else mass + v
        sign = np.copysign(F32(1.0), mass)  # mass = −0 only when every δ is 0, where the result is 0 anyway
        total, divisor = F32(0.0), F32(0.0)
        kept, agree = I32(0), I32(0)
        for j in range(E):
            v = xs[j][i] - s
            q = v * F32(abs(v) >= cuts[j]) * ws[j] * sign
            p = max(q, F32(0.0))  # agrees with the elected sign iff > 0
            kept += I32(q != 0)
            agree += I32(p > 0)
            divisor = divisor + ws[j] * F32(p > 0)
            total = total + p
        kept_sum += kept
        active += I32(kept > 0)
        agreeing += I32(kept > 0) & I32(agree == kept)
        out[i] = total / max(divisor, min_w) * (sign * lam) + add[i]
    return kept_sum, active, agreeing


@_jit
def band(sub, x, lo, hi, vals, mask):
    """For |x − sub|: how many exceed hi, and the values in [lo, hi] copied into vals; returns (above, copied).
    Few values fall inside, so a branch-free pass marks them in mask (bytes, zero on entry and on return, a multiple
    of 8 long) and the copy skips eight unmarked bytes at a time. `min(max(v, lo), hi) == v` is false for NaN."""
    above = I32(0)
    for i in range(x.size):
        v = abs(x[i] - sub[i])
        above += I32(v > hi)
        mask[i] = np.uint8(min(max(v, lo), hi) == v)
    words, m = mask.view(np.uint64), 0
    for w in range(words.size):
        if words[w] == 0:
            continue
        for i in range(w * 8, min(w * 8 + 8, x.size)):
            if mask[i]:
                mask[i] = 0
                vals[m] = abs(x[i] - sub[i])
                m += 1
    return above, m


@njit(nogil=True, cache=True, error_model="numpy", fastmath=True)
def dots(x, y):
    """(x·x, y·y, x·y), accumulated in fp64."""
    xx = yy = xy = 0.0
    for i in range(x.size):
        a, c = np.float64(x[i]), np.float64(y[i])
        xx += a * a
        yy += c * c
        xy += a * c
    return xx, yy, xy


@_jit
def slerp(x, y, ca, cb, out):
    for i in range(out.size):
        out[i] = x[i] * ca + y[i] * cb


# The first call into compiled code in a process sets up numba's runtime (~0.5 s); pay it at import, with torch's.
slerp(np.zeros(1, F32), np.zeros(1, F32), F32(0), F32(0), np.zeros(1, F32))
