"""Allocating compute: the MAE compute-optimal allocation with its proportional-cost cross-check and
frontier (``mae``), and the budget questions under any cost model (``budget``).
"""
