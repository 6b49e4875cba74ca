"""Reproductions of the papers' experiments (one module per study)."""
