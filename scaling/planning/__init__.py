"""Training plans: memory per GPU (``memory``), GPU kinds and measured MFU (``gpus``), the shape a plan
trains (``shapes``) and the plan of a point (``planner``).
"""
