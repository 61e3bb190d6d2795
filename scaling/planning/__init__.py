"""Training plans: memory per GPU (``memory``), GPU kinds and measured MFU (``gpus``), and the plan of a
point (``planner``).
"""
