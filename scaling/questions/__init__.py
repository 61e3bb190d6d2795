"""What a projection asks and answers: the inversions of a fitted surface (``projection``), the questions
and their inputs (``asking``), the quantities a bootstrap refits (``derived``) and the report (``report``).
"""
