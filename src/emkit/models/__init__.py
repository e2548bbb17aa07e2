"""Model families, one folder each: the pure EM models (``init_params``/``estep``/
``mstep``), their compiled kernels, and their scikit-learn-style estimators.

``estimator`` holds the estimator base and the engine options every estimator shares;
``init`` the starting-point methods (k-means, k-means++, starting responsibilities).
"""
