import os

import pytest
from hypothesis import settings

import rnnkit

# Property-based tests (tests/test_fuzz.py): "ci" keeps the suite fast and repeatable; "long" is the
# deeper run, chosen with --hypothesis-profile long or RNNKIT_HYPOTHESIS_PROFILE=long.
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("long", max_examples=2000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("RNNKIT_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def one_thread():
    """Run the test with the kernels on one thread (models whose results must repeat bit for bit, and
    small problems that a second thread only slows), restoring the previous count after."""
    before = rnnkit.get_num_threads()
    rnnkit.set_num_threads(1)
    yield
    rnnkit.set_num_threads(before)
