"""Reporting: the paper's tables, the figures and the run's provenance (workflow/rules/tables.smk)."""
