"""The C API as an extension would use it: a Cython module, compiled here, cimports rnnkit.capi and
calls the kernels through the published table with the GIL released; its results must equal
rnnkit.kernels'."""
import os
import sys

import numpy as np
import pytest

import rnnkit
import rnnkit.kernels as K

PYX = r'''
# cython: language_level=3, boundscheck=False, wraparound=False
from rnnkit.capi cimport rnnkit_api, import_rnnkit, RNNKIT_LSTM

cdef const rnnkit_api* api = import_rnnkit()

def workspace_size(int mode, int T, int B, int H):
    return api.train_workspace_size(mode, T, B, H)

def lstm_forward(double[:, :, ::1] x, double[:, ::1] h0, double[:, ::1] c0, double[:, ::1] w_ih,
                 double[:, ::1] w_hh, double[::1] b_ih, double[::1] b_hh, double[:, :, ::1] y,
                 double[:, ::1] h_n, double[:, ::1] c_n, double[::1] ws, int H):
    cdef int status
    with nogil:
        status = api.forward_f64(RNNKIT_LSTM, x.shape[0], x.shape[1], x.shape[2], H, &x[0, 0, 0], &h0[0, 0],
                                 &c0[0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0], NULL, 0, &y[0, 0, 0],
                                 &h_n[0, 0], &c_n[0, 0], &ws[0])
    return status

def lstm_backward(double[:, :, ::1] x, double[:, ::1] h0, double[:, ::1] c0, double[:, ::1] w_ih,
                  double[:, ::1] w_hh, double[::1] b_ih, double[::1] b_hh, double[::1] ws, double[:, :, ::1] dy,
                  double[:, :, ::1] dx, double[:, ::1] dh0, double[:, ::1] dc0, double[:, ::1] dw_ih,
                  double[:, ::1] dw_hh, double[::1] db_ih, double[::1] db_hh):
    cdef int status
    with nogil:
        status = api.backward_f64(RNNKIT_LSTM, x.shape[0], x.shape[1], x.shape[2], h0.shape[1], &x[0, 0, 0],
                                  &h0[0, 0], &c0[0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0], NULL, 0,
                                  &ws[0], &dy[0, 0, 0], NULL, NULL, &dx[0, 0, 0], &dh0[0, 0], &dc0[0, 0],
                                  &dw_ih[0, 0], &dw_hh[0, 0], &db_ih[0], &db_hh[0])
    return status

def lstm_forward_half_w_hh(float[:, :, ::1] x, float[:, ::1] h0, float[:, ::1] c0, float[:, ::1] w_ih,
                           float[:, ::1] w_hh, float[::1] b_ih, float[::1] b_hh, float[:, :, ::1] y,
                           float[:, ::1] h_n, float[:, ::1] c_n):
    cdef int status
    with nogil:
        status = api.forward_half_w_hh_f32(RNNKIT_LSTM, x.shape[0], x.shape[1], x.shape[2], h0.shape[1],
                                           &x[0, 0, 0], &h0[0, 0], &c0[0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0],
                                           &b_hh[0], NULL, 0, &y[0, 0, 0], &h_n[0, 0], &c_n[0, 0])
    return status

def forward_with_mode(int mode, int T):
    """A call with a bad mode or size: returns (status, message) and must not touch memory."""
    cdef double dummy = 0
    cdef int status = api.forward_f64(mode, T, 1, 1, 1, &dummy, &dummy, &dummy, &dummy, &dummy, NULL, NULL,
                                      NULL, 0, &dummy, &dummy, &dummy, NULL)
    return status, api.error_message(status).decode()
'''


@pytest.fixture(scope="module")
def ext(tmp_path_factory):
    cython_build = pytest.importorskip("Cython.Build")  # pinned in the test extra
    from setuptools import Distribution, Extension

    tmp = tmp_path_factory.mktemp("capi")
    (tmp / "use_rnnkit.pyx").write_text(PYX)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(rnnkit.__file__)))
    modules = cython_build.cythonize(
        [Extension("use_rnnkit", [str(tmp / "use_rnnkit.pyx")], include_dirs=[rnnkit.get_include()])],
        include_path=[package_parent], quiet=True)
    dist = Distribution({"ext_modules": modules, "script_args": [
        "build_ext", "--build-lib", str(tmp), "--build-temp", str(tmp / "build")]})
    dist.parse_command_line()
    dist.run_commands()
    sys.path.insert(0, str(tmp))
    try:
        import use_rnnkit
    finally:
        sys.path.remove(str(tmp))
    return use_rnnkit


def lstm_problem(T=6, B=3, I=4, H=5):
    rng = np.random.default_rng(7)
    arrays = dict(x=rng.standard_normal((T, B, I)), h0=rng.standard_normal((B, H)), c0=rng.standard_normal((B, H)),
                  w_ih=rng.standard_normal((4 * H, I)) * 0.4, w_hh=rng.standard_normal((4 * H, H)) * 0.4,
                  b_ih=rng.standard_normal(4 * H) * 0.2, b_hh=rng.standard_normal(4 * H) * 0.2)
    return arrays, rng.standard_normal((T, B, H))


def test_c_api_forward_and_backward_equal_the_kernels(ext):
    a, dy = lstm_problem()
    T, B, I = a["x"].shape
    H = a["h0"].shape[1]
    ws = np.empty(ext.workspace_size(2, T, B, H))
    y, h_n, c_n = np.empty((T, B, H)), np.empty((B, H)), np.empty((B, H))
    assert ext.lstm_forward(a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], y, h_n, c_n,
                            ws, H) == 0
    ref = K.forward("lstm", a["x"], a["h0"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], c0=a["c0"])
    np.testing.assert_array_equal(y, ref.y)
    np.testing.assert_array_equal(h_n, ref.h_n)
    np.testing.assert_array_equal(c_n, ref.c_n)

    grads = [np.empty_like(a[k]) for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")]
    assert ext.lstm_backward(a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], ws, dy,
                             *grads) == 0
    expected = K.backward(ref.workspace, dy)
    for got, want in zip(grads, expected):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("B", [1, 3])
def test_c_api_half_w_hh_forward_equals_the_kernels(ext, B):
    a, _ = lstm_problem(T=7, B=B, I=6, H=40)
    a = {k: v.astype(np.float32) for k, v in a.items()}
    T, _, I = a["x"].shape
    H = a["h0"].shape[1]
    y, h_n, c_n = np.empty((T, B, H), np.float32), np.empty((B, H), np.float32), np.empty((B, H), np.float32)
    args = [a[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")]
    assert ext.lstm_forward_half_w_hh(*args, y, h_n, c_n) == 0
    ref = K.forward("lstm", a["x"], a["h0"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], c0=a["c0"],
                    training=False, recurrent_weights="float16")
    np.testing.assert_array_equal(y, ref.y)
    np.testing.assert_array_equal(h_n, ref.h_n)
    np.testing.assert_array_equal(c_n, ref.c_n)
    a["w_hh"][1, 2] = 1e5  # no half holds it
    assert ext.lstm_forward_half_w_hh(*[a[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")],
                                      y, h_n, c_n) == -1


@pytest.mark.parametrize("mode, T", [(len(rnnkit.CELLS), 3), (-1, 3), (2, 0)])
def test_c_api_refuses_invalid_arguments_with_a_status(ext, mode, T):
    status, message = ext.forward_with_mode(mode, T)
    assert status == -1 and "invalid argument" in message


def test_c_api_workspace_size_matches_the_binding_and_is_zero_when_invalid(ext):
    assert ext.workspace_size(2, 6, 3, 5) == rnnkit._C.train_workspace_size(2, 6, 3, 5) > 0
    assert ext.workspace_size(9, 6, 3, 5) == 0
    assert ext.workspace_size(2, 0, 3, 5) == 0


def test_get_include_holds_the_header():
    assert os.path.isfile(os.path.join(rnnkit.get_include(), "rnnkit", "c_api.h"))
