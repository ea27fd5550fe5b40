"""RLIV-UA: lifelong interaction value of user-author pairs with multi-task critics over
sparse cross-request transitions."""
