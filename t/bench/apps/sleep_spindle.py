"""Benchmark app: each request parks in spindle.sleep (0.1 s, or ?s=SECONDS)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _parked  # noqa: E402
import spindle  # noqa: E402

application = _parked.sleep_app(spindle.sleep)
