"""What to train next: candidate runs (``candidates``), the preposterior analysis (``core``), the ranking
(``suggest``, ``result``), the replay on the published grid (``replay``) and train configs (``configs``).
"""
