"""The merge methods: per-tensor math, streamed in chunks of the flattened tensor.

Inputs arrive in their stored dtype (zero-copy views of the memory-mapped files). Each method builds a Kernel:
`prepare` runs the passes that need the whole tensor (TIES's top-k thresholds, DARE's drop masks, SLERP's norms),
then `chunk(s, e)` returns merged elements [s, e) in fp32; the engine casts them to the output dtype. Chunks are
independent, so the engine computes them on several threads and writes each straight into the output file, and a
chunk's temporaries live in per-thread scratch buffers reused across chunks: nothing tensor-sized is allocated
(except DARE's drop masks, one byte per element). A chunk applies, element by element, exactly the operations of the whole-tensor formula, so results do
not depend on chunk size or thread count. Conventions shared with mergekit so that results can be compared: task
vectors are δᵢ = expertᵢ − base, per-expert weights wᵢ multiply δᵢ before anything else, λ scales the merged task
vector.
"""
from __future__ import annotations

import hashlib
import math
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Callable, TypeVar

import numpy as np
import torch

F32, F64 = torch.float32, torch.float64
CHUNK = 1 << 18  # elements per work item (1 MB of fp32): fastest measured; smaller pays torch's per-call overhead
STRIDE = 17  # TIES samples 1 element in ≥17 (≥2¹⁸ in all) to bracket its top-k threshold within ~1% of the elements
SMALL = 1 << 16  # below this many elements the threshold comes straight from the whole vector
T = TypeVar("T")


@dataclass(frozen=True)
class TensorParams:
    """Parameters in force for one tensor (global values with the first matching override applied)."""
    weights: tuple[float, ...]
    lam: float
    density: float
    drop_rate: float
    t: float
    dare_combine: str


@dataclass
class Job:
    name: str  # tensor name; seeds DARE so the result does not depend on processing order
    base: torch.Tensor | None
    experts: list[torch.Tensor]
    params: TensorParams
    seed: int


# ---- execution: per-thread scratch and a pool that runs chunks ----

class Scratch:
    """One thread's work buffers, reused across chunks and tensors (fresh memory costs a page fault per 4 KB)."""

    def __init__(self) -> None:
        self._bufs: dict[tuple[int, torch.dtype], torch.Tensor] = {}

    def get(self, slot: int, n: int, dtype: torch.dtype = F32) -> torch.Tensor:
        buf = self._bufs.get((slot, dtype))
        if buf is None or buf.numel() < n:
            buf = self._bufs[(slot, dtype)] = torch.empty(max(n, CHUNK), dtype=dtype)
        return buf[:n]

    def ones(self, n: int) -> torch.Tensor:
        buf = self._bufs.get((-1, F32))
        if buf is None or buf.numel() < n:
            buf = self._bufs[(-1, F32)] = torch.ones(max(n, CHUNK), dtype=F32)
        return buf[:n]


class Runner:
    """Runs independent tasks on `threads` threads, each with its own Scratch; results come back in task order.

    Torch ops release the GIL, so Python threads run chunks in parallel. Torch's own OpenMP pool is set to one
    thread meanwhile: its barriers stall for milliseconds per op when another process holds a core (measured: a
    256K-element add took 2 ms instead of 50 µs), and a chunk is too small to be worth splitting anyway.
    """

    def __init__(self, threads: int = 1) -> None:
        self._local = threading.local()
        self._threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="merge") if threads > 1 else None
        self._torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def scratch(self) -> Scratch:
        if not hasattr(self._local, "scratch"):
            self._local.scratch = Scratch()
        return self._local.scratch

    def run(self, tasks: list[Callable[[Scratch], T]]) -> list[T]:
        if self._pool is None or len(tasks) < 2:
            return [task(self.scratch()) for task in tasks]
        # One worker per thread pulling tasks in order (not one future per task: fewer GIL handoffs).
        results: list = [None] * len(tasks)
        queue, stop = iter(enumerate(tasks)), threading.Event()

        def work() -> None:
            scratch = self.scratch()
            try:
                while not stop.is_set() and (item := next(queue, None)) is not None:
                    results[item[0]] = item[1](scratch)
            except BaseException:
                stop.set()
                raise
        futures = [self._pool.submit(work) for _ in range(min(self._threads, len(tasks)))]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            stop.set()  # on a failure or an interrupt, no task may still be writing once the caller cleans up
            wait(futures)
        for f in futures:
            f.result()
        return results

    def chunks(self, fn: Callable[[int, int, Scratch], T], n: int) -> list[T]:
        """fn(s, e, scratch) for consecutive ranges [s, e) covering [0, n)."""
        return self.run([partial(_range_task, fn, s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)])

    def close(self) -> None:
        if self._pool:
            self._pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(self._torch_threads)


def _range_task(fn: Callable[[int, int, Scratch], T], s: int, e: int, scratch: Scratch) -> T:
    return fn(s, e, scratch)


class Kernel:
    """The merged values of one tensor, flattened: `prepare` once, then `chunk` for any range on any thread."""

    def __init__(self, n: int) -> None:
        self.n = n

    def prepare(self, run: Runner) -> None:
        pass

    def chunk(self, s: int, e: int, sc: Scratch) -> torch.Tensor:
        raise NotImplementedError


class Whole(Kernel):
    """Adapter for a method registered without a kernel: its whole-tensor result, served in chunks."""

    def __init__(self, result: torch.Tensor) -> None:
        super().__init__(result.numel())
        self.flat = result.reshape(-1)

    def chunk(self, s: int, e: int, sc: Scratch) -> torch.Tensor:
        return _f32(self.flat[s:e], sc, 0)


def evaluate(kernel: Kernel, shape: torch.Size) -> torch.Tensor:
    """The kernel's whole result as one fp32 tensor (the methods' function form, used by tests)."""
    run, out = Runner(1), torch.empty(kernel.n, dtype=F32)
    try:
        kernel.prepare(run)
        run.chunks(lambda s, e, sc: out[s:e].copy_(kernel.chunk(s, e, sc)), kernel.n)
    finally:
        run.close()
    return out.view(shape)


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1)


def _f32(x: torch.Tensor, sc: Scratch, slot: int) -> torch.Tensor:
    """x itself when already fp32 (no copy), else its fp32 conversion in scratch."""
    return x if x.dtype == F32 else sc.get(slot, x.numel()).copy_(x)


# ---- the methods ----

def linear(job: Job) -> torch.Tensor:
    """Linear: Σ wᵢ·θᵢ. Wortsman et al. 2022, "Model soups" (arXiv:2203.05482).

    Deviation: weights are given, not tuned on held-out data, and must sum to 1 (checked in spec.py, no silent
    renormalisation). Zero-weight models are skipped, so weights (1, 0) return the first model bit for bit.
    """
    return evaluate(_Linear(job), job.experts[0].shape)


def task_arithmetic(job: Job) -> torch.Tensor:
    """Task arithmetic: θ = base + λ·Σ wᵢ·(θᵢ − base). Ilharco et al. 2023, "Editing models with task
    arithmetic" (arXiv:2212.04089). No deviation; wᵢ default to 1 and negative values give task negation."""
    return evaluate(_TaskArithmetic(job), job.base.shape)


def ties(job: Job) -> torch.Tensor:
    """TIES: trim each δᵢ to its top-`density` fraction by magnitude, elect the sign of Σ wᵢδᵢ per element
    (the mass), then take the disjoint mean over the models whose δ agrees with it. Yadav et al. 2023,
    "TIES-Merging" (arXiv:2306.01708).

    Deviations (the same as mergekit's `ties`, so outputs compare): the disjoint mean is weighted,
    Σ wᵢδᵢ·mᵢ / Σ wᵢ·mᵢ (plain mean when all wᵢ = 1); an element whose summed mass is exactly 0 elects +.
    The top-k keeps k = max(1, ⌊density·n⌋) and, on exact magnitude ties at the threshold, every tied element.
    That last point is where mergekit differs (by design, not by accident): it keeps exactly k, chosen by an
    unstable full argsort, whose order among equal magnitudes is an artifact of the sort (neither index order nor
    reverse) and can only be reproduced by sorting the whole tensor, which the streaming merge avoids.
    """
    return evaluate(_Ties(job, 0.0), job.base.shape)


def dare(job: Job) -> torch.Tensor:
    """DARE: drop each element of δᵢ with probability p and rescale the survivors by 1/(1−p), then combine with
    task arithmetic ("linear") or TIES. Yu et al. 2024, "Language Models are Super Mario" (arXiv:2311.03099).

    Deviations: the drop mask is drawn from a generator seeded by (seed, tensor name, expert index), so a merge is
    reproducible and independent of tensor order; with TIES the magnitude trim uses `density` (default 1: none).
    mergekit's dare_* rescale by the L1 norm instead of 1/(1−p) and draw from the global RNG, so they differ.
    """
    return evaluate(_dare_kernel(job), job.base.shape)


def slerp(job: Job) -> torch.Tensor:
    """SLERP between two models with factor t (t=0 → first, t=1 → second), each tensor flattened to one vector.
    Shoemake 1985, "Animating rotation with quaternion curves" (SIGGRAPH), as used for LLM weights by mergekit.

    Deviation from textbook SLERP: the angle comes from the normalised vectors but the interpolation is applied to
    the unnormalised ones (norms are not interpolated separately), and nearly collinear pairs (|cos| > 0.9995) fall
    back to linear interpolation, as mergekit does.
    """
    return evaluate(_Slerp(job), job.experts[0].shape)


# ---- kernels ----

class _Linear(Kernel):
    def __init__(self, job: Job) -> None:
        self.terms = [(w, _flat(x)) for w, x in zip(job.params.weights, job.experts) if w != 0]
        super().__init__(self.terms[0][1].numel())

    def chunk(self, s: int, e: int, sc: Scratch) -> torch.Tensor:
        (w, x), *rest = self.terms
        acc = torch.mul(_f32(x[s:e], sc, 0), w, out=sc.get(1, e - s))
        for w, x in rest:
            acc.add_(_f32(x[s:e], sc, 0), alpha=w)
        return acc


class _Deltas(Kernel):
    """δᵢ = expertᵢ − base per chunk, after DARE's drop-and-rescale (drop > 0) and TIES's trim (density < 1)."""

    def __init__(self, job: Job, drop: float, density: float = 1.0) -> None:
        self.base, self.experts = _flat(job.base), [_flat(x) for x in job.experts]
        super().__init__(self.base.numel())
        self.job, self.weights, self.lam = job, job.params.weights, job.params.lam
        self.drop, self.density = (drop if self.n else 0.0), density
        self.keep: list[torch.Tensor | None] = [None] * len(self.experts)  # DARE: survivors of the drop
        self.cut: list[float | None] = [None] * len(self.experts)  # TIES: |δ| ≤ cut is trimmed

    def prepare(self, run: Runner) -> None:
        if self.drop > 0:
            self.keep = run.run([partial(self._draw, i) for i in range(len(self.experts))])
        k = max(1, int(self.density * self.n))
        if self.density < 1 and k < self.n:
            self.cut = [_below(t) for t in self._kth_largest(run, k)]

    def _draw(self, i: int, sc: Scratch) -> torch.Tensor:
        # Bit for bit the mask `torch.rand(n, generator=g) >= p`: rand's fp32 value is (r & 0xFFFFFF)·2⁻²⁴ for the
        # same 32-bit draw r that random_ on int32 returns (as r mod 2³¹), so the integer test below is equivalent,
        # and drawing chunk by chunk gives the same stream (both CPU kernels are serial). It runs 30% faster.
        g, keep = _generator(self.job.seed, self.job.name, i), torch.empty(self.n, dtype=torch.bool)
        cutoff = math.ceil(float(np.float32(self.drop)) * (1 << 24))
        for s in range(0, self.n, CHUNK):
            r = sc.get(0, min(s + CHUNK, self.n) - s, torch.int32).random_(generator=g).numpy()
            np.greater_equal(np.bitwise_and(r, 0xFFFFFF, out=r), cutoff, out=keep[s:s + r.size].numpy())
        return keep

    def _delta(self, x: torch.Tensor, b: torch.Tensor, keep: torch.Tensor | None, out: torch.Tensor) -> torch.Tensor:
        d = torch.sub(x, b, out=out)
        if keep is not None:  # as uint8: the same 0/1 factor, 4x faster than torch's float-by-bool product
            d.mul_(keep.view(torch.uint8)).mul_(1.0 / (1.0 - self.drop))
        return d

    def delta(self, i: int, s: int, e: int, sc: Scratch, b: torch.Tensor, slot: int, trim: bool = True) -> torch.Tensor:
        keep = self.keep[i]
        d = self._delta(_f32(self.experts[i][s:e], sc, slot), b, None if keep is None else keep[s:e], sc.get(slot, e - s))
        if trim and self.cut[i] is not None:
            torch.hardshrink(d, self.cut[i], out=d)  # zeroes |d| ≤ cut, i.e. |d| < threshold
        return d

    def _kth_largest(self, run: Runner, k: int) -> list[float]:
        """Exact k-th largest |δᵢ| per expert, without sorting or holding |δᵢ| whole: a 1-in-STRIDE sample brackets
        it in [lo, hi], one pass counts the elements above hi and keeps the few inside, and the answer is picked
        among those. A bracket that misses it (a freak sample) falls back to the whole vector."""
        n, E = self.n, len(self.experts)
        if n <= SMALL:
            return [self._kth_exact(run, i, k) for i in range(E)]
        stride = max(STRIDE, n >> 18)  # bigger tensors need a smaller fraction for the same narrow bracket
        cols = self.job.base.shape[-1] if self.job.base.dim() else 1
        while math.gcd(stride, cols) != 1:  # walk across columns, not down a few of them
            stride += 1
        # Sampled in parallel chunks: the sample touches every page, and mapping the pages is much of the work.
        samples = run.chunks(partial(self._sample, stride), n)
        bounds = [_bracket(torch.cat([sample[i] for sample in samples]).numpy(), k, n) for i in range(E)]
        parts = run.chunks(partial(self._band, bounds), n)
        out = []
        for i, (lo, hi) in enumerate(bounds):
            r = k - sum(p[i][0] for p in parts)  # rank of the answer among the elements in [lo, hi], from the top
            if not 0 < r <= sum(p[i][1] for p in parts):
                out.append(self._kth_exact(run, i, k))
            elif lo == hi:
                out.append(lo)
            else:
                band = torch.cat([p[i][2] for p in parts]).numpy()
                out.append(float(np.partition(band, band.size - r)[band.size - r]))
        return out

    def _sample(self, stride: int, s: int, e: int, sc: Scratch) -> list[torch.Tensor]:
        at = slice(s + (stride // 2 - s) % stride, e, stride)  # global positions ≡ stride/2 (mod stride)
        b = self.base[at].to(F32)
        return [self._delta(x[at].to(F32), b, None if keep is None else keep[at], torch.empty(0)).abs_()
                for x, keep in zip(self.experts, self.keep)]

    def _band(self, bounds: list[tuple[float, float]], s: int, e: int, sc: Scratch) -> list[tuple[int, int, torch.Tensor | None]]:
        # numpy for the comparisons: torch's bool-producing comparisons and masked_select run ~10x slower here.
        b, out = _f32(self.base[s:e], sc, 0), []
        above_hi, above_lo = sc.get(2, e - s, torch.bool).numpy(), sc.get(3, e - s, torch.bool).numpy()
        for i, (lo, hi) in enumerate(bounds):
            a = self.delta(i, s, e, sc, b, 1, trim=False).abs_().numpy()
            above = np.count_nonzero(np.greater(a, hi, out=above_hi))
            inside = np.not_equal(np.greater_equal(a, lo, out=above_lo), above_hi, out=above_lo)  # lo ≤ a ≤ hi
            # lo == hi (an atom, e.g. DARE's zeros) needs only the count.
            out.append((above, np.count_nonzero(inside), None if lo == hi else torch.from_numpy(a[inside])))
        return out

    def _kth_exact(self, run: Runner, i: int, k: int) -> float:
        def magnitudes(s: int, e: int, sc: Scratch) -> torch.Tensor:
            return self.delta(i, s, e, sc, _f32(self.base[s:e], sc, 0), 1, trim=False).abs_().clone()
        a = torch.cat(run.chunks(magnitudes, self.n)).numpy()
        return float(np.partition(a, self.n - k)[self.n - k])


class _TaskArithmetic(_Deltas):
    def __init__(self, job: Job, drop: float = 0.0) -> None:
        super().__init__(job, drop)

    def chunk(self, s: int, e: int, sc: Scratch) -> torch.Tensor:
        b, acc = _f32(self.base[s:e], sc, 0), None
        for i, w in enumerate(self.weights):
            d = self.delta(i, s, e, sc, b, 1 if acc is None else 2)
            if w != 1:  # x·1 = x exactly: skipping it changes no bit
                d.mul_(w)
            acc = d if acc is None else acc.add_(d)
        if self.lam != 1:
            acc.mul_(self.lam)
        return acc.add_(b)


class _Ties(_Deltas):
    def __init__(self, job: Job, drop: float) -> None:
        super().__init__(job, drop, job.params.density)
        if min(self.weights) <= 0:
            raise ValueError("TIES weights must be > 0")

    def chunk(self, s: int, e: int, sc: Scratch) -> torch.Tensor:
        n, b, E = e - s, _f32(self.base[s:e], sc, 0), len(self.experts)
        ds = []
        for i, w in enumerate(self.weights):
            d = self.delta(i, s, e, sc, b, 1 + i)
            ds.append(d.mul_(w) if w != 1 else d)
        sign = torch.add(ds[0], ds[1], out=sc.get(E + 1, n)) if E > 1 else sc.get(E + 1, n).copy_(ds[0])
        for d in ds[2:]:
            sign.add_(d)  # the mass Σ wᵢδᵢ
        # Elected sign as ±1; copysign differs from (mass >= 0) only at mass = -0, where every δ is 0 and none agrees.
        torch.copysign(sc.ones(n), sign, out=sign)
        # With the elected sign s, δ agrees iff sδ > 0, and Σ δ·agree = s·Σ relu(sδ) exactly (negation is exact).
        for d in ds:
            d.mul_(sign).clamp_min_(0)
        divisor = torch.gt(ds[0], 0, out=sc.get(E + 2, n))
        if self.weights[0] != 1:
            divisor.mul_(self.weights[0])
        for w, d in zip(self.weights[1:], ds[1:]):
            divisor.add_(torch.gt(d, 0, out=sc.get(E + 3, n)), alpha=w)
        # The divisor is 0 or at least the smallest weight; where it is 0 so is the sum, and 0/any = 0/1 = 0.
        divisor.clamp_min_(min(self.weights))
        mixed = ds[0]
        for d in ds[1:]:
            mixed.add_(d)
        if self.lam != 1:
            sign.mul_(self.lam)
        return mixed.div_(divisor).mul_(sign).add_(b)


def _dare_kernel(job: Job) -> Kernel:
    p = job.params.drop_rate
    return _Ties(job, p) if job.params.dare_combine == "ties" else _TaskArithmetic(job, p)


class _Slerp(Kernel):
    def __init__(self, job: Job) -> None:
        self.a, self.b, self.t = _flat(job.experts[0]), _flat(job.experts[1]), job.params.t
        super().__init__(self.a.numel())
        self.ca, self.cb = 1.0 - self.t, self.t

    def prepare(self, run: Runner) -> None:
        # Norms and dot accumulate in fp64 (one fp32 dot over 10⁸ elements drifts by ~1e-4 relative), summed in
        # chunk order so the result does not depend on which thread finished first.
        aa = bb = ab = 0.0
        for x, y, z in run.chunks(self._dots, self.n):
            aa, bb, ab = aa + x, bb + y, ab + z
        na, nb = math.sqrt(aa), math.sqrt(bb)
        na, nb = (na if na > 1e-8 else 1.0), (nb if nb > 1e-8 else 1.0)
        dot = max(-1.0, min(1.0, ab / (na * nb)))
        if abs(dot) <= 0.9995:
            theta = math.acos(dot)
            self.ca, self.cb = math.sin((1 - self.t) * theta) / math.sin(theta), math.sin(self.t * theta) / math.sin(theta)

    def _dots(self, s: int, e: int, sc: Scratch) -> tuple[float, float, float]:
        x, y = sc.get(0, e - s, F64).copy_(self.a[s:e]), sc.get(1, e - s, F64).copy_(self.b[s:e])
        return torch.dot(x, x).item(), torch.dot(y, y).item(), torch.dot(x, y).item()

    def chunk(self, s: int, e: int, sc: Scratch) -> torch.Tensor:
        acc = torch.mul(_f32(self.a[s:e], sc, 0), self.ca, out=sc.get(1, e - s))
        return acc.add_(_f32(self.b[s:e], sc, 0), alpha=self.cb)


def _bracket(sample: np.ndarray, k: int, n: int) -> tuple[float, float]:
    """[lo, hi] holding the k-th largest of n values unless the sample is off by more than 4σ (binomial); the
    sample is reordered in place."""
    m = sample.size
    c = k * m / n  # expected sample values at or above the answer
    margin = 4 * math.sqrt(c * (1 - c / m)) + 2
    top, bottom = math.floor(c - margin), math.ceil(c + margin)  # ranks from the top
    lo, hi = 0.0, math.inf
    if top >= 1:
        sample.partition(m - top)
        hi, sample = float(sample[m - top]), sample[:m - top]  # lo lies in the part below hi
    if bottom <= m:
        sample.partition(m - bottom)
        lo = float(sample[m - bottom])
    return lo, hi


def _below(t: float) -> float | None:
    """The largest fp32 value under t, so that hardshrink (which zeroes |x| ≤ bound) keeps exactly |x| ≥ t."""
    if not t > 0:
        return None  # |x| ≥ 0 keeps everything
    return float(np.nextafter(np.float32(t), np.float32(0)))


def _generator(seed: int, name: str, index: int) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}\0{name}\0{index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


# ---- registry: every method declares its contract; a malformed entry fails at import ----

@dataclass(frozen=True)
class Method:
    fn: Callable[[Job], torch.Tensor]
    needs_base: bool
    min_experts: int
    max_models: int | None = None  # counting the base, for methods with a fixed arity
    kernel: Callable[[Job], Kernel] | None = None  # streaming form; without it the engine evaluates fn whole


METHODS: dict[str, Method] = {}


def register(name: str, method: Method) -> None:
    doc = method.fn.__doc__ or ""
    if name in METHODS:
        raise ValueError(f"merge method {name!r} registered twice")
    if "arXiv:" not in doc and "SIGGRAPH" not in doc:
        raise ValueError(f"merge method {name!r}: its docstring must cite the paper it implements")
    if method.min_experts < 1 or (method.max_models is not None and method.max_models < method.min_experts):
        raise ValueError(f"merge method {name!r}: inconsistent arity")
    METHODS[name] = method


register("linear", Method(linear, needs_base=False, min_experts=2, kernel=_Linear))
register("task_arithmetic", Method(task_arithmetic, needs_base=True, min_experts=1, kernel=_TaskArithmetic))
register("ties", Method(ties, needs_base=True, min_experts=2, kernel=lambda job: _Ties(job, 0.0)))
register("dare", Method(dare, needs_base=True, min_experts=1, kernel=_dare_kernel))
register("slerp", Method(slerp, needs_base=False, min_experts=1, max_models=2, kernel=_Slerp))
