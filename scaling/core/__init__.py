"""Foundation of the library: which way is better (``direction``), named targets (``targets``), JSON
conversion (``jsonable``), BLAS threads and the fork pool (``threads``, ``forked``). Imports nothing of
scaling but ``errors`` and ``defaults``.
"""
