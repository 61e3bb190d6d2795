"""What is fitted: the run database's grid or any table (``tables``: ``load_runs``, ``read_table``,
``select``).
"""
