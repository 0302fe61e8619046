"""Where the real-data tests find ``../shared/data`` (read in place, never copied), and the
marks that skip them, with the reason, where it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: the Open Bandit Dataset samples
OBD = DATA / "obd"
needs_obd = pytest.mark.skipif(
    not (OBD / "random_men" / "men.csv").is_file(),
    reason=f"the Open Bandit Dataset samples are not at {OBD} (a copy of shared/ beside the repo)",
)
