import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The real pages live in the repository (tests/fixtures/rm, copied from ../shared/fixtures/rm);
# INKCAST_FIXTURES_RM points the tests at another folder of pages.
FIXTURES_RM = Path(os.environ.get("INKCAST_FIXTURES_RM", ROOT / "tests" / "fixtures" / "rm"))

sys.path.insert(0, str(ROOT / "tests"))

# Fixtures that start real parts: coturn (support.coturn), a tailnet on loopback (support.tailnet).
pytest_plugins = ["support.coturn", "support.tailnet"]


@pytest.fixture(scope="session")
def rm_fixtures() -> Path:
    """The folder of real .rm notebook pages; tests needing it skip where it is absent."""
    if not FIXTURES_RM.is_dir() or not any(FIXTURES_RM.glob("*.rm")):
        pytest.skip(f"real .rm pages not found at {FIXTURES_RM} (set INKCAST_FIXTURES_RM)")
    return FIXTURES_RM
