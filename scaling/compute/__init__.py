"""What a point costs: the MAE FLOPs model (``flops``), cost models by name or expression (``costs``) and
the one training-length rule that says how many images a run sees (``training_length``).
"""
