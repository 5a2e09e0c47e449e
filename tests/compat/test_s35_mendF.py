"""torch's argument parser's answers where chainrule's still differed, compared with torch 2.13: the
deprecated beta-first overloads of the BLAS products, ..."""

import subprocess
import sys
import warnings

import pytest

import chainrule
from chainrule.ops import _arg_parser

torch = pytest.importorskip("torch")


def outcome(lib, call):
    """What ``call(lib)`` does: ("ok", its result as a list) or (the exception's type name, its message)."""
    try:
        result = call(lib)
    except Exception as error:  # noqa: BLE001 - any refusal is compared
        return type(error).__name__, str(error)
    return "ok", result.tolist() if hasattr(result, "tolist") else result


def assert_alike(call) -> None:
    """``call(lib)`` raises the same exception type and message on torch and chainrule, or gives the
    same result on both."""
    assert outcome(chainrule, call) == outcome(torch, call)


def _products(lib):
    """The operands of the BLAS products: input, the two factors of addmm, addmv, addr, baddbmm, addbmm."""
    gen = torch.Generator().manual_seed(0)

    def values(*shape):
        return lib.tensor(torch.randn(*shape, generator=gen).tolist())

    return {"M": values(2, 2), "m1": values(2, 3), "m2": values(3, 2), "v": values(3), "v2": values(2),
            "b1": values(4, 2, 3), "b2": values(4, 3, 2), "B": values(4, 2, 2)}


BETA_FIRST = {
    "addmm(2, M, m1, m2)": lambda L, t: L.addmm(2, t["M"], t["m1"], t["m2"]),
    "addmm(2, M, 3, m1, m2)": lambda L, t: L.addmm(2, t["M"], 3, t["m1"], t["m2"]),
    "addmm(2, M, m1, m2, out=)": lambda L, t: L.addmm(2, t["M"], t["m1"], t["m2"], out=L.empty(2, 2)),
    "addmm(tensor(2.), M, m1, m2)": lambda L, t: L.addmm(L.tensor(2.0), t["M"], t["m1"], t["m2"]),
    "M.addmm(2, m1, m2)": lambda L, t: t["M"].addmm(2, t["m1"], t["m2"]),
    "M.addmm(2, 3, m1, m2)": lambda L, t: t["M"].addmm(2, 3, t["m1"], t["m2"]),
    "M.addmm_(2, 3, m1, m2)": lambda L, t: t["M"].clone().addmm_(2, 3, t["m1"], t["m2"]),
    "addmv(2, v2, 3, m1, v)": lambda L, t: L.addmv(2, t["v2"], 3, t["m1"], t["v"]),
    "addmv_(2, v2, m1, v)": lambda L, t: L.addmv_(2, t["v2"].clone(), t["m1"], t["v"]),
    "v2.addmv_(2, 3, m1, v)": lambda L, t: t["v2"].clone().addmv_(2, 3, t["m1"], t["v"]),
    "addr(2, M, 3, v2, v2)": lambda L, t: L.addr(2, t["M"], 3, t["v2"], t["v2"]),
    "M.addr_(2, v2, v2)": lambda L, t: t["M"].clone().addr_(2, t["v2"], t["v2"]),
    "baddbmm(2, B, b1, b2)": lambda L, t: L.baddbmm(2, t["B"], t["b1"], t["b2"]),
    "B.baddbmm_(2, 3, b1, b2)": lambda L, t: t["B"].clone().baddbmm_(2, 3, t["b1"], t["b2"]),
    "addbmm(2, M, 3, b1, b2)": lambda L, t: L.addbmm(2, t["M"], 3, t["b1"], t["b2"]),
    "M.addbmm_(2, b1, b2)": lambda L, t: t["M"].clone().addbmm_(2, t["b1"], t["b2"]),
    # refused as torch refuses them
    "addmm(M, 2, m1, m2)": lambda L, t: L.addmm(t["M"], 2, t["m1"], t["m2"]),
    "addmm(M, m1, m2, 2)": lambda L, t: L.addmm(t["M"], t["m1"], t["m2"], 2),
    "addbmm('a', M, b1, b2)": lambda L, t: L.addbmm("a", t["M"], t["b1"], t["b2"]),
    "addmm('a', M, m1, m2)": lambda L, t: L.addmm("a", t["M"], t["m1"], t["m2"]),
    "M.addmm(m1, m2, chainrule.float32)": lambda L, t: t["M"].addmm(t["m1"], t["m2"], L.float32),
    "addr(1)": lambda L, t: L.addr(1),
    "addmv_(x, 'a')": lambda L, t: L.addmv_(t["v2"], "a"),
    "baddbmm(None, None)": lambda L, t: L.baddbmm(None, None),
}


@pytest.mark.parametrize("case", BETA_FIRST)
def test_beta_first_overloads_compute_or_refuse_as_torch(case, monkeypatch):
    monkeypatch.setattr(_arg_parser, "_deprecated_overload_warned", True)  # (the words are the next test's)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = outcome(torch, lambda L: BETA_FIRST[case](L, _products(L)))
        got = outcome(chainrule, lambda L: BETA_FIRST[case](L, _products(L)))
    if expected[0] == "ok":
        assert got[0] == "ok"
        assert torch.allclose(torch.tensor(got[1]), torch.tensor(expected[1]), atol=1e-5)
    else:
        assert got == expected


WARNED = {
    "function": "torch.addmm(2, M, 3, m1, m2)",
    "method": "M.addmm(2, m1, m2)",
    "in-place method": "M.addmm_(2, 3, m1, m2)",
    "top-level in-place": "torch.addmv_(2, v2, m1, v)",
}


@pytest.mark.parametrize("form", WARNED)
def test_beta_first_overloads_warn_once_in_torchs_words(form, monkeypatch):
    # torch warns once per process, for all its deprecated overloads: its words come from a fresh one
    script = ("import warnings, torch\nM = torch.ones(2, 2); m1 = torch.ones(2, 3); m2 = torch.ones(3, 2)\n"
              "v = torch.ones(3); v2 = torch.ones(2)\nwith warnings.catch_warnings(record=True) as w:\n"
              f"    warnings.simplefilter('always'); {WARNED[form]}; {WARNED[form]}\n"
              "print(repr([str(x.message) for x in w]))")
    expected = eval(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    expected = [text.split(" (Triggered internally at")[0] for text in expected]  # (torch's C++ source line)
    monkeypatch.setattr(_arg_parser, "_deprecated_overload_warned", False)
    M, m1, m2 = chainrule.ones(2, 2), chainrule.ones(2, 3), chainrule.ones(3, 2)  # noqa: F841 - the script's names
    v, v2 = chainrule.ones(3), chainrule.ones(2)  # noqa: F841
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = WARNED[form].replace("torch.", "chainrule.")
        exec(f"{code}; {code}")
    assert [str(w.message) for w in caught] == expected
    assert len(expected) == 1
