"""agentforge's GPU runtime node: receives token shards and hyper-parameters, returns weights and metrics.

Started by runtime/node/client.ts as `python -m agentforge_node <command>`; see protocol.py for the wire format.
"""

import os as _os
import platform as _platform

# Reproducibility across machines: torch picks its CPU kernels by the CPU's ISA, and AVX-512, AVX2 and the
# portable kernels sum floats in different orders, so the same SFT run gives different weights on different x86
# machines (measured: three different weight hashes for one 20-step SFT; thread counts 1-3 gave one). AVX2 is on
# every x86-64 machine we run on and was not slower than AVX-512 for our model sizes. ATEN_CPU_CAPABILITY pins
# torch's own kernels; its GEMMs come from MKL and oneDNN, which dispatch on their own (pytorch#155552), so MKL's
# conditional-reproducibility mode and oneDNN's ISA cap are pinned too. Set before torch loads;
# AGENTFORGE_CPU_CAPABILITY=native keeps the libraries' own choices.
_cap = _os.environ.get("AGENTFORGE_CPU_CAPABILITY", "avx2")
if _cap != "native" and _platform.machine().lower() in ("x86_64", "amd64"):
    _os.environ.setdefault("ATEN_CPU_CAPABILITY", _cap)
    _os.environ.setdefault("MKL_CBWR", _cap.upper())
    _os.environ.setdefault("ONEDNN_MAX_CPU_ISA", _cap.upper())
