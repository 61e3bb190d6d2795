"""Choosing a form: held-out backtests of larger runs (``backtest``) and every form side by side
(``compare``).
"""
