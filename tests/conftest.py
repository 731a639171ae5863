import pytest

import rnnkit


@pytest.fixture
def one_thread():
    """Run the test with the kernels on one thread (models whose results must repeat bit for bit, and
    small problems that a second thread only slows), restoring the previous count after."""
    before = rnnkit.get_num_threads()
    rnnkit.set_num_threads(1)
    yield
    rnnkit.set_num_threads(before)
