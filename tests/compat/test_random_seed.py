"""manual_seed accepts any 64-bit integer as torch does, and returns the generator."""

import pytest
import torch

import chainrule


@pytest.mark.parametrize("seed", [0, 1, -1, -(2**63), 2**63, 2**64 - 1, 1.5, "7", True])
def test_manual_seed_range_and_initial_seed_match_torch(seed):
    generator = chainrule.manual_seed(seed)
    assert generator is chainrule.default_generator
    assert chainrule.initial_seed() == torch.manual_seed(seed).initial_seed() == torch.initial_seed()


def test_negative_seed_is_the_same_stream_as_its_value_modulo_2_64():
    chainrule.manual_seed(-1)
    first = chainrule.randn(5)
    chainrule.manual_seed(2**64 - 1)
    assert chainrule.equal(chainrule.randn(5), first)
    chainrule.manual_seed(-2)
    assert not chainrule.equal(chainrule.randn(5), first)


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1])
def test_seed_outside_64_bits_raises_value_error_like_torch(seed):
    with pytest.raises(ValueError):
        torch.manual_seed(seed)
    with pytest.raises(ValueError, match="does not fit in 64 bits"):
        chainrule.manual_seed(seed)


def test_generator_manual_seed_rejects_floats_like_torch():
    with pytest.raises(RuntimeError, match="manual_seed expected a long"):
        torch.Generator().manual_seed(1.5)
    with pytest.raises(RuntimeError, match="manual_seed expected a long, but got float"):
        chainrule.Generator().manual_seed(1.5)
    generator = chainrule.Generator().manual_seed(-5)
    assert generator.initial_seed() == torch.Generator().manual_seed(-5).initial_seed()
    state = chainrule.get_rng_state()
    values = chainrule.rand(3)
    chainrule.set_rng_state(state)
    assert chainrule.equal(chainrule.rand(3), values)


def test_the_default_generator_is_seeded_from_the_os_at_start_as_torchs():
    """An unseeded script draws other numbers on each run (torch 2.13 seeds its default CPU
    generator from the OS); a fresh Generator() starts from torch's fixed default seed."""
    import subprocess
    import sys
    probe = "import chainrule; print(chainrule.initial_seed(), chainrule.randn(3).tolist())"
    runs = {subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
            for _ in range(2)}
    assert len(runs) == 2
    assert chainrule.Generator().initial_seed() == torch.Generator().initial_seed() == 67280421310721
