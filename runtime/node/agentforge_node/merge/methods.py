"""The merge methods: per-tensor math, streamed in chunks of the flattened tensor.

Inputs arrive in their stored dtype (zero-copy views of the memory-mapped files). Each method builds a Kernel:
`prepare` runs the passes that need the whole tensor (TIES's top-k thresholds, SLERP's norms), then `chunk(s, e)`
returns merged elements [s, e) in fp32; the engine casts them to the output dtype. Chunks are independent, so the
engine computes them on several threads and writes each straight into the output file, and a chunk's temporaries
live in per-thread scratch buffers reused across chunks: nothing tensor-sized is allocated. The element loops are
compiled (kernels.py) and apply, element by element, exactly the operations of the whole-tensor formula, so
results do not depend on chunk size or thread count. Conventions shared with mergekit so that results can be
compared: task vectors are δᵢ = expertᵢ − base, per-expert weights wᵢ multiply δᵢ before anything else, λ scales
the merged task vector.
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

from . import kernels as _k

F32 = torch.float32
CHUNK = 1 << 18  # elements per work item (1 MB of fp32): fastest measured; smaller pay per-call and GIL costs
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
            buf = self._bufs[(slot, dtype)] = (torch.zeros if slot == -1 else torch.empty)(max(n, CHUNK), dtype=dtype)
        return buf[:n]

    def zeros(self, n: int, dtype: torch.dtype = F32) -> torch.Tensor:
        """n zeros (slot -1); whoever uses them leaves them zero."""
        return self.get(-1, n, dtype)


class Runner:
    """Runs independent tasks on `threads` threads, each with its own Scratch; results come back in task order.

    The compiled kernels release the GIL, so Python threads run chunks in parallel. Torch's own OpenMP pool is set
    to one thread meanwhile (dtype conversions still go through torch): its barriers stall for milliseconds per op
    when another process holds a core, and a chunk is too small to be worth splitting anyway.
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
        return self.run([partial(fn, s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)])

    def close(self) -> None:
        if self._pool:
            self._pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(self._torch_threads)


class Kernel:
    """The merged values of one tensor, flattened: `prepare` once, then `chunk` for any range on any thread."""

    def __init__(self, n: int) -> None:
        self.n = n

    def prepare(self, run: Runner) -> bool:
        """Whatever must be known of the whole tensor before its first chunk; True if that read the inputs."""
        return False

    def chunk(self, s: int, e: int, sc: Scratch) -> torch.Tensor:
        raise NotImplementedError

    def diagnostics(self) -> dict[str, float] | None:
        """Per-tensor statistics of the chunks computed so far (each chunk once), or None for methods without any."""
        return None


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

    Deviations: each element's coin is a counter-based hash of (seed, tensor name, expert index, element index)
    (kernels.coins), so a merge is reproducible and independent of tensor order, chunking and threads; with TIES
    the magnitude trim uses `density` (default 1: none).
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


# ---- kernels: per-chunk inputs as fp32 numpy views, the element loops in kernels.py ----

def _np(x: torch.Tensor, sc: Scratch, slot: int) -> np.ndarray:
    return _f32(x, sc, slot).numpy()


class _Linear(Kernel):
    def __init__(self, job: Job) -> None:
        terms = [(w, _flat(x)) for w, x in zip(job.params.weights, job.experts) if w != 0]
        self.ws, self.xs = np.array([w for w, _ in terms], np.float32), [x for _, x in terms]
        super().__init__(self.xs[0].numel())

    def chunk(self, s: int, e: int, sc: Scratch) -> torch.Tensor:
        out = sc.get(0, e - s)
        _k.linear(tuple(_np(x[s:e], sc, 2 + j) for j, x in enumerate(self.xs)), self.ws, out.numpy())
        return out


class _Deltas(Kernel):
    """Methods over task vectors δᵢ = expertᵢ − base, after DARE's drop-and-rescale (drop > 0) and TIES's trim
    (density < 1)."""

    def __init__(self, job: Job, drop: float, density: float = 1.0) -> None:
        self.base, self.experts = _flat(job.base), [_flat(x) for x in job.experts]
        super().__init__(self.base.numel())
        self.job, self.lam, self.density = job, np.float32(job.params.lam), density
        self.weights, self.ws = job.params.weights, np.array(job.params.weights, np.float32)
        # DARE: keep an element iff its 24-bit coin ≥ cutoff, i.e. with probability 1 − p; then scale by 1/(1 − p).
        self.cutoff = np.uint32(math.ceil(float(np.float32(drop)) * (1 << 24)) if drop > 0 and self.n else 0)
        self.scale = np.float32(1.0 / (1.0 - drop)) if drop < 1 else np.float32(0)
        self.keys = [_key(job.seed, job.name, i) for i in range(len(self.experts))]
        self.cuts = np.zeros(len(self.experts), np.float32)  # TIES: |δᵢ| < cuts[i] is trimmed
        # Diagnostics: integer counts summed over chunks (in any order: integers, so the same on every run):
        # [kept task-vector elements summed over experts, TIES: elements with any kept δ, those agreeing in sign].
        self._counts, self._lock = np.zeros(3, np.int64), threading.Lock()

    def _tally(self, counts: np.ndarray) -> None:
        with self._lock:
            self._counts += counts

    def _kept_fraction(self) -> float:
        """Share of task-vector elements still nonzero after DARE's drop and TIES's trim, averaged over experts."""
        return float(self._counts[0] / (self.n * len(self.experts))) if self.n else 0.0

    def prepare(self, run: Runner) -> bool:
        k = max(1, int(self.density * self.n))
        if self.density < 1 and k < self.n:
            self.cuts = np.array([t if t > 0 else 0.0 for t in self._kth_largest(run, k)], np.float32)
            return True
        return False

    def operands(self, s: int, e: int, sc: Scratch, kept: np.ndarray | None = None) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray]:
        """(sub, xs, add) for the kernels, which take δᵢ = xsᵢ − sub and add `add` at the end: the experts and the
        base, or with DARE the dropped task vectors and zero (then kept[0] += how many of those are nonzero)."""
        b = _np(self.base[s:e], sc, 1)
        xs = tuple(_np(x[s:e], sc, 2 + j) for j, x in enumerate(self.experts))
        if not self.cutoff:
            return b, xs, b
        d = sc.get(-3, len(xs) * (e - s)).numpy().reshape(len(xs), e - s)
        for j, x in enumerate(xs):
            n_kept = _k.dropped(b, x, self.keys[j], self.cutoff, self.scale, s, d[j])
            if kept is not None:
                kept[0] += n_kept
        return sc.zeros(e - s).numpy(), tuple(d), b

    def _kth_largest(self, run: Runner, k: int) -> list[float]:
        """Exact k-th largest |δᵢ| per expert, without sorting or holding |δᵢ| whole: a 1-in-STRIDE sample brackets
        it in [lo, hi], one pass counts the elements above hi and keeps the few inside, and the answer is picked
        among those. A bracket that misses it (a freak sample) falls back to the whole vector."""
        n, E = self.n, len(self.experts)
        if n <= SMALL:
            return self._kth_in(run, k, [(0.0, math.inf)] * E)
        stride = max(STRIDE, n >> 18)  # bigger tensors need a smaller fraction for the same narrow bracket
        cols = self.job.base.shape[-1] if self.job.base.dim() else 1
        while math.gcd(stride, cols) != 1:  # walk across columns, not down a few of them
            stride += 1
        # Sampled in parallel chunks: the sample touches every page, and mapping the pages is much of the work.
        samples = run.chunks(partial(self._sample, stride), n)
        return self._kth_in(run, k, [_bracket(np.concatenate([sample[i] for sample in samples]), k, n) for i in range(E)])

    def _kth_in(self, run: Runner, k: int, bounds: list[tuple[float, float]]) -> list[float]:
        lo, hi = np.array([b[0] for b in bounds], np.float32), np.array([b[1] for b in bounds], np.float32)
        parts = run.chunks(partial(self._band, lo, hi), self.n)
        out = []
        for i, bound in enumerate(bounds):
            r = k - sum(p[0][i] for p in parts)  # rank of the answer among the elements in [lo, hi], from the top
            if 0 < r <= sum(p[1][i] for p in parts):
                if bound[0] == bound[1]:  # an atom (e.g. DARE's zeros): its value is the answer
                    out.append(bound[0])
                    continue
                band = np.concatenate([p[2][i] for p in parts])
                out.append(float(np.partition(band, band.size - r)[band.size - r]))
            elif bound != (0.0, math.inf):  # a freak sample: the answer lies outside the bracket
                out.append(self._kth_in(run, k, [(0.0, math.inf)] * len(bounds))[i])
            else:
                out.append(math.nan)  # NaNs among the magnitudes: no threshold, nothing trimmed
        return out

    def _sample(self, stride: int, s: int, e: int, sc: Scratch) -> list[np.ndarray]:
        at = slice(s + (stride // 2 - s) % stride, e, stride)  # global positions ≡ stride/2 (mod stride)
        b, out = self.base[at].to(F32).numpy(), []
        for key, x in zip(self.keys, self.experts):
            d = x[at].to(F32).numpy() - b
            if self.cutoff:
                d *= (_k.coins(key, np.arange(at.start, e, stride, dtype=np.int64)) >= self.cutoff).astype(np.float32) * self.scale
            out.append(np.abs(d, out=d))
        return out

    def _band(self, lo: np.ndarray, hi: np.ndarray, s: int, e: int, sc: Scratch) -> tuple[list[int], list[int], list[np.ndarray | None]]:
        sub, xs, _ = self.operands(s, e, sc)
        vals, above, inside, kept = sc.get(0, e - s).numpy(), [], [], []
        mask = sc.zeros((e - s + 7) & ~7, torch.uint8).numpy()
        for j, x in enumerate(xs):
            a, m = _k.band(sub, x, lo[j], hi[j], vals, mask)
            above.append(int(a))
            inside.append(m)
            kept.append(None if lo[j] == hi[j] else vals[:m].copy())  # an atom needs only its count
        return above, inside, kept


class _TaskArithmetic(_Deltas):
    def __init__(self, job: Job, drop: float = 0.0) -> None:
        super().__init__(job, drop)

    def chunk(self, s: int, e: int, sc: Scratch) -> torch.Tensor:
        counts = np.zeros_like(self._counts) if self.cutoff else None
        sub, xs, add = self.operands(s, e, sc, counts)
        out = sc.get(0, e - s)
        _k.task_arithmetic(sub, xs, self.ws, self.lam, add, out.numpy())
        if counts is not None:
            self._tally(counts)
        return out

    def diagnostics(self) -> dict[str, float] | None:
        return {"kept_fraction": self._kept_fraction()} if self.cutoff else None  # plain task arithmetic keeps all


class _Ties(_Deltas):
    def __init__(self, job: Job, drop: float) -> None:
        super().__init__(job, drop, job.params.density)
        if min(self.weights) <= 0:
            raise ValueError("TIES weights must be > 0")

    def chunk(self, s: int, e: int, sc: Scratch) -> torch.Tensor:
        sub, xs, add = self.operands(s, e, sc)
        out = sc.get(0, e - s)
        kept, active, agreeing = _k.ties(sub, xs, self.ws, self.cuts, self.lam, np.float32(min(self.weights)), add, out.numpy())
        self._tally(np.array([kept, active, agreeing], np.int64))
        return out

    def diagnostics(self) -> dict[str, float] | None:
        """kept_fraction; sign_agreement: of the elements with any kept δ, the share whose kept δ all have the
        elected sign (1 when nothing is kept: nothing disagrees)."""
        active, agree = self._counts[1], self._counts[2]
        return {"kept_fraction": self._kept_fraction(), "sign_agreement": float(agree / active) if active else 1.0}


def _dare_kernel(job: Job) -> Kernel:
    p = job.params.drop_rate
    return _Ties(job, p) if job.params.dare_combine == "ties" else _TaskArithmetic(job, p)


class _Slerp(Kernel):
    def __init__(self, job: Job) -> None:
        self.a, self.b, self.t = _flat(job.experts[0]), _flat(job.experts[1]), job.params.t
        super().__init__(self.a.numel())
        self.ca, self.cb = np.float32(1.0 - self.t), np.float32(self.t)

    def prepare(self, run: Runner) -> bool:
        # Norms and dot accumulate in fp64 (one fp32 dot over 10⁸ elements drifts by ~1e-4 relative), summed in
        # chunk order so the result does not depend on which thread finished first.
        aa = bb = ab = 0.0
        for x, y, z in run.chunks(lambda s, e, sc: _k.dots(_np(self.a[s:e], sc, 0), _np(self.b[s:e], sc, 1)), self.n):
            aa, bb, ab = aa + x, bb + y, ab + z
        na, nb = math.sqrt(aa), math.sqrt(bb)
        na, nb = (na if na > 1e-8 else 1.0), (nb if nb > 1e-8 else 1.0)
        dot = max(-1.0, min(1.0, ab / (na * nb)))
        if abs(dot) <= 0.9995:
            theta = math.acos(dot)
            self.ca = np.float32(math.sin((1 - self.t) * theta) / math.sin(theta))
            self.cb = np.float32(math.sin(self.t * theta) / math.sin(theta))
        return True

    def chunk(self, s: int, e: int, sc: Scratch) -> torch.Tensor:
        out = sc.get(2, e - s)
        _k.slerp(_np(self.a[s:e], sc, 0), _np(self.b[s:e], sc, 1), self.ca, self.cb, out.numpy())
        return out


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


def _key(seed: int, name: str, index: int) -> int:
    """DARE's coin stream for one expert's tensor: from (seed, tensor name, expert index), not from the order."""
    return int.from_bytes(hashlib.sha256(f"{seed}\0{name}\0{index}".encode()).digest()[:4], "little")


# ---- registry: every method declares its contract; a malformed entry fails at import ----

@dataclass(frozen=True)
class Method:
    fn: Callable[[Job], torch.Tensor]  # the whole-tensor form; its docstring cites the paper
    needs_base: bool
    min_experts: int
    kernel: Callable[[Job], Kernel]  # the streaming form the engine runs


METHODS: dict[str, Method] = {}


def register(name: str, method: Method) -> None:
    doc = method.fn.__doc__ or ""
    if name in METHODS:
        raise ValueError(f"merge method {name!r} registered twice")
    if "arXiv:" not in doc and "SIGGRAPH" not in doc:
        raise ValueError(f"merge method {name!r}: its docstring must cite the paper it implements")
    if method.min_experts < 1:
        raise ValueError(f"merge method {name!r}: inconsistent arity")
    METHODS[name] = method


register("linear", Method(linear, False, 2, _Linear))
register("task_arithmetic", Method(task_arithmetic, True, 1, _TaskArithmetic))
register("ties", Method(ties, True, 2, lambda job: _Ties(job, 0.0)))
register("dare", Method(dare, True, 1, _dare_kernel))
register("slerp", Method(slerp, False, 1, _Slerp))  # exactly 2 models: spec.validate checks
