"""Loaded by every Python subprocess a test starts (this folder is on its PYTHONPATH): the network guard."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import _guard

_guard.install()
