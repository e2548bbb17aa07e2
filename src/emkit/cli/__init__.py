"""The ``emkit`` command line: ``fit``, ``predict``, ``info`` and ``demo``."""

from emkit.cli.main import COVARIANCE_TYPES, main, parse_components, read_data

__all__ = ["COVARIANCE_TYPES", "main", "parse_components", "read_data"]
