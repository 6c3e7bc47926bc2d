"""Code the subprocess tests' scripts import (see ``tests._subprocess``).

The scripts themselves are short strings in the tests; what several of them share lives
here as real modules, so that ruff and ``mypy --strict`` check it. Nothing here runs at
import time.
"""
