"""The suite's CI time (session 41): what CI leaves out of a big case list is still covered.

The emulated CUDA convolution kernels' comparisons run a fixed subset in CI that takes every
compiled kernel, data-gradient path, fence side and geometry kind at least once; the long profile
(``CHAINRULE_LONG_TESTS=1``) runs all of them, as does a GPU the real kernels. Each xdist worker
writes its share of the assertion rewrites into pytest's cache for the other."""

from __future__ import annotations

import pytest

from tests import _profile
from tests.cuda import test_conv_kernels as conv_kernels

torch = pytest.importorskip("torch")


def _kinds(entries, kinds_of) -> set:
    return {kind for entry in entries for kind in kinds_of(entry)}


@pytest.mark.parametrize("choose, everything, kinds_of", [
    (conv_kernels.match_cases, conv_kernels.MATCH_ALL, conv_kernels.match_kinds),
    (conv_kernels.fenced_cases, conv_kernels.FENCED_ALL, conv_kernels.fenced_kinds),
], ids=["match", "fenced"])
def test_conv_kernels_ci_subset_covers_every_kind(choose, everything, kinds_of, monkeypatch):
    monkeypatch.setattr(_profile, "LONG", False)
    chosen = choose()
    assert chosen == choose()  # fixed: the same on every run (and in every pytest-xdist worker)
    assert len(everything) == 2 * 8 * len(conv_kernels.CASES) and len(chosen) < len(everything) // 3
    assert _kinds(chosen, kinds_of) == _kinds(everything, kinds_of)
    # in particular every case, every compiled kernel with both variants, every geometry kind
    assert {entry[0][0] for entry in chosen} == {case[0] for case in conv_kernels.CASES}
    assert {(entry[2], entry[3]) for entry in chosen} == {(entry[2], entry[3]) for entry in everything}
    monkeypatch.setattr(_profile, "LONG", True)
    assert choose() == everything


def test_the_real_kernels_on_a_gpu_take_every_case_in_every_profile():
    by_device = {}
    for where, entry in conv_kernels._DEVICE_AND_MATCH_CASES:
        by_device.setdefault(where, []).append(entry)
    assert by_device == {"gpu": conv_kernels.MATCH_ALL, "emulated": conv_kernels.MATCH_CASES}


def test_conv_kernels_geometry_kinds_are_the_tables_kinds():
    """The kinds come from the geometries, so every one of these is held by some case of the
    table (a kind no case has would be covered vacuously)."""
    found = {kind for case in conv_kernels.CASES for kind in conv_kernels.geometry_kinds(case)}
    assert found == {
        "conv1d", "conv2d", "stride 1", "stride > 1", "mixed stride", "dilation 1", "dilation > 1",
        "mixed dilation", "groups 1", "grouped", "depthwise", "no padding", "symmetric padding",
        "asymmetric padding", "padding past the kernel's reach", "input positions no window reaches",
        "one row block", "several row blocks", "several column blocks", "long K", "batch 1"}
    by_name = {case[0]: set(conv_kernels.geometry_kinds(case)) for case in conv_kernels.CASES}
    assert {"conv1d", "grouped", "asymmetric padding", "dilation > 1"} <= by_name["conv1d dilated groups"]
    assert {"padding past the kernel's reach"} <= by_name["1x1 p1"]
    assert {"input positions no window reaches", "stride > 1"} <= by_name["transpose output_padding"]
    assert {"depthwise"} <= by_name["depthwise x2"] and {"mixed stride", "mixed dilation"} <= by_name[
        "mixed stride, dilation"]


def test_in_ci_kinds_cover_every_kind_and_key_is_unchanged(monkeypatch):
    monkeypatch.setattr(_profile, "LONG", False)
    cases = [(f"op{k % 7}", f"dtype{k % 3}", k) for k in range(200)]
    chosen = _profile.in_ci(cases, 12, seed=5, kinds=lambda case: case[:2])
    assert len(chosen) == 12 and chosen == sorted(chosen, key=lambda case: case[2])
    assert {case[0] for case in chosen} == {f"op{k}" for k in range(7)}
    assert {case[1] for case in chosen} == {f"dtype{k}" for k in range(3)}
    # past the budget, coverage wins: 7 ops and 3 dtypes need at least 7 cases
    assert len({case[0] for case in _profile.in_ci(cases, 2, seed=5, kinds=lambda case: case[:2])}) == 7
    # one kind per case is the same choice as ``key``
    assert _profile.in_ci(cases, 30, seed=9, kinds=lambda case: [case[0]]) == _profile.in_ci(
        cases, 30, seed=9, key=lambda case: case[0])
    with pytest.raises(TypeError, match="in_ci takes key or kinds, not both"):
        _profile.in_ci(cases, 30, seed=9, key=lambda case: case[0], kinds=lambda case: [case[0]])


def test_workers_share_the_assert_rewrites_and_failures_still_show_both_values(tmp_path):
    """Under ``PYTHONDONTWRITEBYTECODE=1`` two pytest-xdist workers write the rewritten modules
    into pytest's cache (tests/_assert_rewrite_cache.py), and a failing ``assert a == b`` still
    shows both values: on the run that writes the cache and on one that reads it back."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from _pytest.assertion.rewrite import PYC_TAIL

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_fails.py").write_text(
        "def test_compares():\n    left, right = [1, 2, 3], [1, 2, 4]\n    assert left == right\n")
    for k in range(4):
        (tmp_path / f"test_passes_{k}.py").write_text(f"def test_passes():\n    assert {k} == {k}\n")
    # only the plugins under test: the others installed (autoloaded by default) took 9 of each
    # run's 12.7 s to import in the controller and both workers
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "pytest", "-p", "xdist", "-n", "2", "-p", "no:cacheprovider",
               "-p", "tests._assert_rewrite_cache",
               "-q", "--rootdir", str(tmp_path), "-c", str(tmp_path / "pytest.ini"), str(tmp_path)]
    for run in ("writes", "reads"):
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
        assert result.returncode == 1, (run, result.stdout[-3000:], result.stderr[-3000:])
        assert "1 failed, 4 passed" in result.stdout, (run, result.stdout[-3000:])
        assert "assert [1, 2, 3] == [1, 2, 4]" in result.stdout, (run, result.stdout[-3000:])
        assert "At index 2 diff: 3 != 4" in result.stdout, (run, result.stdout[-3000:])
        cached = sorted(path.name for path in (tmp_path / "__pycache__").iterdir())
        assert cached == sorted(f"{name}{PYC_TAIL}" for name in ("test_fails", *(f"test_passes_{k}" for k in range(4))))
