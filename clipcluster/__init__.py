"""CLIP-Cluster reproduction: the package behind the Snakemake workflow.

Every algorithm lives here and is importable and testable without Snakemake;
the rule scripts under ``scripts/`` only read the ``snakemake`` object and call in.
"""

__version__ = "0.1.0"
