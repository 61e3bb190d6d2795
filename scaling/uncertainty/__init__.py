"""Uncertainty of a fit: the run-clustered bootstrap with warm refits (``bootstrap``).
"""
