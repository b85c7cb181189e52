"""The ``aquant`` console script the wheel installs: the command line (the same clap parser and commands as the
``aquant`` binary, through the extension), with ``--executor ray[:ADDRESS]`` besides."""

from __future__ import annotations

import sys

from . import _aquant
from ._api import _find_engines


def main() -> None:
    _find_engines()
    sys.exit(_aquant.cli(["aquant", *sys.argv[1:]]))
