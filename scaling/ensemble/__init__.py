"""Answers from several forms at once, and intervals calibrated on the data's own track record.

The layer between choosing forms (``scaling.selection``: backtests, their weights, split-conformal scales) and
designing runs: ``Ensemble`` says which forms and how they are weighted, ``project`` answers a projection's
questions with the weighted forms (their bootstrap distributions mixed) or with one form, either with
calibrated intervals, and ``calibrate`` measures how often nominal intervals cover held-out runs.
"""
