"""Training runs: typed configs and recipes (``config``), the Lightning adapter (``lit_method``, ``fit``), data
modules, schedules, monitors and the final evaluation.

Importing this package imports nothing (``contrastkit.train.fit`` imports Lightning).
"""
