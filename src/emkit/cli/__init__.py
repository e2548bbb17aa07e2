"""The ``emkit`` command line: ``fit``, ``predict``, ``info`` and ``demo``.

Modules: :mod:`~emkit.cli.main` (the entry point and its error handling),
:mod:`~emkit.cli.parser` (arguments), :mod:`~emkit.cli.readers` (data files),
:mod:`~emkit.cli.candidates` (fitting and choosing models), :mod:`~emkit.cli.commands`
(the subcommands), :mod:`~emkit.cli.formatting` (text output) and
:mod:`~emkit.cli.report` (figures).
"""

from emkit.cli.main import main
from emkit.cli.parser import parse_components
from emkit.cli.readers import read_data
from emkit.distributions.covariance import COVARIANCE_TYPES

__all__ = ["COVARIANCE_TYPES", "main", "parse_components", "read_data"]
