"""CLIP-Cluster reproduction: the package behind the Snakemake workflow.

Every algorithm lives here and is importable and testable without Snakemake;
the rule scripts under ``scripts/`` only read the ``snakemake`` object and call in.
"""

import os

# Set here, in the package's first import, so they precede torch whichever submodule a script imports first:
# idle OpenMP threads spin by default, which on a shared 2-core machine made 2 threads 2-3x slower than 1
# (measured on score_edges and on the peers' training steps); they must be set before torch loads its OpenMP
# runtime. Same seed, same numbers: MKL may otherwise pick its thread count by the machine's load (MKL_DYNAMIC)
# and its code path by memory alignment (MKL_CBWR); both change float summation order.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MKL_DYNAMIC", "FALSE")
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
# cuBLAS is deterministic only with a fixed workspace (the trainer asks torch for deterministic kernels)
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

__version__ = "0.1.0"
