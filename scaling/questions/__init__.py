"""What a projection asks and answers: the inversions of a fitted surface (``projection``), the questions as
objects (``objects``: Scale, Solve, At, Cheapest, AtBudget), the quantities a bootstrap refits for each
(``derived``), the report (``report``) and ``scaling.project``, a loop over questions (``workflow``).
"""

from __future__ import annotations

from typing import Literal, get_args

# The keyword form of ``scaling.project``'s questions (``mode=``, ``--mode``): light, for the CLI's choices.
Mode = Literal["all", "scale", "solve", "at"]
MODES: tuple[str, ...] = get_args(Mode)
