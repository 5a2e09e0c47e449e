"""torch.profiler on chainrule: the same program profiled on torch and on chainrule records the
same backward nodes, ranges and schedule steps; the event tree, the table, the Chrome trace and
the step semantics hold; and nothing is left switched on after the profiler stops."""

import gzip
import json
import threading
import warnings

import numpy as np
import pytest
import torch

import chainrule
from chainrule.autograd import function as autograd_function

EVALUATE = "autograd::engine::evaluate_function: "


def _train(lib, prof, steps: int, record_steps: bool = True):
    """A small MLP trained for ``steps`` steps under ``prof``, each step in a named range."""
    lib.manual_seed(0)
    model = lib.nn.Sequential(lib.nn.Linear(8, 16), lib.nn.ReLU(), lib.nn.Linear(16, 3))
    optimizer = lib.optim.SGD(model.parameters(), lr=0.1)
    x = lib.tensor(np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32))
    target = lib.tensor([0, 2, 1, 0])
    for step in range(steps):
        with lib.profiler.record_function(f"step{step}"):
            with lib.profiler.record_function("forward"):
                loss = lib.nn.functional.cross_entropy(model(x), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if record_steps:
            prof.step()


def _profile(lib, **kwargs):
    return lib.profiler.profile(activities=[lib.profiler.ProfilerActivity.CPU], **kwargs)


def _keys(prof) -> dict:
    return {row.key: row.count for row in prof.key_averages()}


def _walk(events):
    """Every event and its descendants (an event list holds them all; this checks the links)."""
    for event in events:
        yield event
        yield from _walk(event.cpu_children)


# -- the same program on torch and on chainrule ------------------------------------------------

@pytest.mark.parametrize("schedule_args", [dict(wait=1, warmup=1, active=2, repeat=1),
                                           dict(wait=0, warmup=1, active=1, repeat=2, skip_first=1)])
def test_training_loop_records_what_torch_records(schedule_args):
    seen = {}
    for lib in (torch, chainrule):
        ready = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes about memory blocks from before the start
            with _profile(lib, schedule=lib.profiler.schedule(**schedule_args),
                          on_trace_ready=lambda p, ready=ready: ready.append(p.step_num)) as prof:
                _train(lib, prof, steps=6)
        keys = _keys(prof)
        seen[lib.__name__] = (ready, {k: v for k, v in keys.items()
                                      if k.startswith(EVALUATE) or k.startswith("step")
                                      or k.startswith("Optimizer.") or k in ("forward", "ProfilerStep*")})
    torch_ready, torch_keys = seen["torch"]
    ready, keys = seen["chainrule"]
    assert ready == torch_ready and len(ready) >= 1
    # the backward nodes evaluated (names and counts), the user's ranges and the steps recorded
    assert keys == torch_keys
    assert keys[EVALUATE + "AddmmBackward0"] == 2 * sum(1 for k in keys if k.startswith("step"))
    assert keys["Optimizer.step#SGD.step"] == keys["Optimizer.zero_grad#SGD.zero_grad"] == keys["forward"]


def test_cnn_step_evaluates_the_nodes_torch_evaluates():
    seen = {}
    for lib in (torch, chainrule):
        lib.manual_seed(0)
        nn = lib.nn
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(4 * 4 * 4, 10))
        optimizer = lib.optim.Adam(model.parameters(), lr=1e-3)
        x = lib.tensor(np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with _profile(lib) as prof:
                loss = lib.nn.functional.cross_entropy(model(x), lib.tensor([1, 3]))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        seen[lib.__name__] = {k: v for k, v in _keys(prof).items()
                              if k.startswith(EVALUATE) or k.startswith("Optimizer.")}
    assert seen["chainrule"] == seen["torch"]  # linear's TBackward0 among them
    assert seen["chainrule"][EVALUATE + "ConvolutionBackward0"] == 1


def test_forward_ops_are_named_like_torchs_dispatcher_ops():
    with _profile(chainrule) as prof:
        a = chainrule.randn(3, 4, requires_grad=True)
        b = chainrule.randn(4, 5)
        y = (a @ b).relu().sum()
        y.backward()
    keys = _keys(prof)
    assert [e.name for e in prof.events() if e.cpu_parent is None and e.name.startswith("aten::")] == [
        "aten::mm", "aten::relu", "aten::sum"]
    assert keys["aten::mm"] == 2  # the forward's, and MmBackward0's for a's gradient
    for name in ("aten::relu", "aten::sum", EVALUATE + "MmBackward0",
                 EVALUATE + "ReluBackward0", EVALUATE + "SumBackward0",
                 EVALUATE + "torch::autograd::AccumulateGrad"):
        assert keys.get(name) == 1, (name, keys)


# -- the event tree -----------------------------------------------------------------------------

def test_nested_ranges_and_self_time_within_total_time():
    with _profile(chainrule) as prof:
        with chainrule.profiler.record_function("outer"):
            x = chainrule.randn(64, 64)
            with chainrule.profiler.record_function("inner"):
                y = x @ x
            z = y + x
    del z
    events = prof.events()
    outer = next(e for e in events if e.name == "outer")
    inner = next(e for e in events if e.name == "inner")
    assert inner.cpu_parent is outer
    assert [child.name for child in outer.cpu_children] == ["inner", "aten::add"]
    assert [child.name for child in inner.cpu_children] == ["aten::mm"]
    for event in _walk([outer]):
        assert 0 <= event.self_cpu_time_total <= event.cpu_time_total
        assert event.self_cpu_time_total == pytest.approx(
            event.cpu_time_total - sum(c.cpu_time_total for c in event.cpu_children))
        for child in event.cpu_children:
            assert event.start_us <= child.start_us <= child.end_us <= event.end_us
    averages = {row.key: row for row in prof.key_averages()}
    assert averages["outer"].cpu_time_total >= averages["inner"].cpu_time_total + averages["aten::add"].cpu_time_total
    assert averages["outer"].cpu_time == averages["outer"].cpu_time_total  # one call: avg == total


def test_record_function_as_decorator_and_outside_a_profiler():
    @chainrule.profiler.record_function("my_fn")
    def my_fn(x):
        return x * 2

    my_fn(chainrule.ones(2))  # no profiler: runs and records nothing
    with _profile(chainrule) as prof:
        my_fn(chainrule.ones(2))
        my_fn(chainrule.ones(2))
    keys = _keys(prof)
    assert keys["my_fn"] == 2 and keys["aten::mul"] == 2
    assert all(e.cpu_parent.name == "my_fn" for e in prof.events() if e.name == "aten::mul")
    with pytest.raises(TypeError, match="record_function"):
        chainrule.profiler.record_function(3)


def test_backward_ops_nest_inside_their_nodes_evaluation():
    with _profile(chainrule) as prof:
        a = chainrule.randn(3, 4, requires_grad=True)
        (a @ chainrule.randn(4, 2)).sum().backward()
    node = next(e for e in prof.events() if e.name == EVALUATE + "MmBackward0")
    assert "aten::mm" in [child.name for child in node.cpu_children]
    assert node.cpu_parent is None


def test_user_function_is_recorded_under_its_class_name():
    class Cube(chainrule.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x * x

    with _profile(chainrule) as prof:
        x = chainrule.randn(3, requires_grad=True)
        Cube.apply(x).sum().backward()
    cube = next(e for e in prof.events() if e.name == "Cube")
    assert [child.name for child in cube.cpu_children] == ["aten::mul", "aten::mul"]
    assert _keys(prof)[EVALUATE + "CubeBackward"] == 1
    np.testing.assert_allclose(x.grad.numpy(), 3 * x.detach().numpy() ** 2, rtol=1e-6)


def test_profiling_inside_no_grad_records_ops_and_no_backward():
    with _profile(chainrule) as prof, chainrule.no_grad():
        w = chainrule.randn(5, 5, requires_grad=True)
        (w @ w).tanh()
    keys = _keys(prof)
    assert keys["aten::mm"] == 1 and keys["aten::tanh"] == 1
    assert not any(k.startswith(EVALUATE) for k in keys)


def test_ops_on_another_thread_are_on_that_threads_row():
    def work():
        chainrule.ones(3).exp()

    with _profile(chainrule) as prof:
        with chainrule.profiler.record_function("main_range"):
            worker = threading.Thread(target=work)
            worker.start()
            worker.join()
            chainrule.ones(3).log()
    events = prof.events()
    main = next(e for e in events if e.name == "main_range")
    exp = next(e for e in events if e.name == "aten::exp")
    log = next(e for e in events if e.name == "aten::log")
    assert exp.thread != main.thread and exp.cpu_parent is None
    assert log.thread == main.thread and log.cpu_parent is main


# -- memory ---------------------------------------------------------------------------------------

def test_profile_memory_counts_the_bytes_an_op_allocates():
    a = chainrule.randn(4, 8)
    b = chainrule.randn(8, 3)
    with _profile(chainrule, profile_memory=True) as prof:
        with chainrule.profiler.record_function("block"):
            c = a @ b
            c.view(12)
            c.t()
    rows = {row.key: row for row in prof.key_averages()}
    assert rows["aten::mm"].self_cpu_memory_usage == 4 * 3 * 4
    assert rows["aten::view"].cpu_memory_usage == 0  # a view allocates nothing
    assert rows["block"].self_cpu_memory_usage == 0
    assert rows["block"].cpu_memory_usage == 4 * 3 * 4
    assert "CPU Mem" in prof.key_averages().table()


# -- the table ----------------------------------------------------------------------------------

def _columns(table: str) -> list:
    header = table.splitlines()[1]
    return [title.strip() for title in header.strip().split("  ") if title.strip()]


@pytest.mark.parametrize("options, group_by_input_shape", [
    (dict(), False), (dict(record_shapes=True, profile_memory=True), False),
    (dict(record_shapes=True, profile_memory=True), True)])
def test_table_has_torchs_columns(options, group_by_input_shape):
    tables = {}
    for lib in (torch, chainrule):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with _profile(lib, **options) as prof:
                a = lib.ones(3, 4, requires_grad=True)
                (a * 2).sum().backward()
        tables[lib.__name__] = prof.key_averages(
            group_by_input_shape=group_by_input_shape).table(sort_by="cpu_time_total")
    assert _columns(tables["chainrule"]) == _columns(tables["torch"])
    lines = tables["chainrule"].splitlines()
    assert lines[0] == lines[2] == lines[-2] and set(lines[0]) == {"-", " "}
    assert lines[-1].startswith("Self CPU time total: ")


def test_table_sorts_limits_rows_and_rejects_an_unknown_key():
    with _profile(chainrule) as prof:
        x = chainrule.randn(100, 100)
        for _ in range(3):
            x.exp()
        x @ x
        x.sum()
    averages = prof.key_averages()
    table = averages.table(sort_by="count", row_limit=2)
    rows = table.splitlines()[3:-2]
    assert len(rows) == 2 and "aten::exp" in rows[0] and rows[0].split()[-1] == "3"
    totals = [row.self_cpu_time_total for row in averages]
    assert sum(totals) == pytest.approx(averages.self_cpu_time_total)
    with pytest.raises(AttributeError, match="cannot sort by 'bogus'"):
        averages.table(sort_by="bogus")


# -- exports --------------------------------------------------------------------------------------

def test_chrome_trace_is_valid_json_with_nested_complete_events(tmp_path):
    with _profile(chainrule, record_shapes=True) as prof:
        with chainrule.profiler.record_function("block"):
            a = chainrule.randn(2, 3, requires_grad=True)
            (a * a).sum().backward()
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["trace.json"]  # no temporary file left
    trace = json.loads(path.read_text())
    complete = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert len(complete) == len(prof.events())
    for event in complete:
        assert set(event) >= {"name", "cat", "ph", "pid", "tid", "ts", "dur", "args"}
        assert isinstance(event["ts"], (int, float)) and event["dur"] >= 0
    block = next(e for e in complete if e["name"] == "block")
    assert block["cat"] == "user_annotation"
    mul = next(e for e in complete if e["name"] == "aten::mul")
    assert mul["cat"] == "cpu_op" and mul["args"]["Input Dims"] == [[2, 3], [2, 3]]
    assert block["ts"] <= mul["ts"] and mul["ts"] + mul["dur"] <= block["ts"] + block["dur"] + 1e-3
    with pytest.raises(FileNotFoundError):
        prof.export_chrome_trace(str(tmp_path / "missing" / "trace.json"))


def test_tensorboard_trace_handler_writes_one_trace_per_cycle(tmp_path):
    folder = tmp_path / "logs"
    with _profile(chainrule, schedule=chainrule.profiler.schedule(wait=0, warmup=1, active=1, repeat=2),
                  on_trace_ready=chainrule.profiler.tensorboard_trace_handler(str(folder), "worker0")) as prof:
        _train(chainrule, prof, steps=5)
    files = sorted(p.name for p in folder.iterdir())
    assert len(files) == 2 and all(f.startswith("worker0.") and f.endswith(".pt.trace.json") for f in files)
    names = {e["name"] for f in files for e in json.loads((folder / f).read_text())["traceEvents"]}
    assert {"ProfilerStep#1", "ProfilerStep#3", "step1", "step3"} <= names and "step0" not in names

    gz_folder = tmp_path / "gz"
    with _profile(chainrule, on_trace_ready=chainrule.profiler.tensorboard_trace_handler(
            str(gz_folder), "w", use_gzip=True)):
        chainrule.ones(2).exp()
    (gz_file,) = gz_folder.iterdir()
    assert gz_file.name.endswith(".pt.trace.json.gz")
    assert any(e["name"] == "aten::exp" for e in json.loads(gzip.decompress(gz_file.read_bytes()))["traceEvents"])


def test_exports_to_bad_paths_fail_and_leave_nothing_behind(tmp_path):
    with _profile(chainrule) as prof:
        chainrule.ones(2).exp()
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(RuntimeError, match="can't create directory"):
        chainrule.profiler.tensorboard_trace_handler(str(tmp_path / "taken"))(prof)
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError):
        prof.export_chrome_trace(str(tmp_path / "folder"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "taken"]
    assert list((tmp_path / "folder").iterdir()) == []
    with _profile(chainrule) as prof:
        with chainrule.profiler.record_function('quote " backslash \\ newline \n'):
            pass
    prof.export_chrome_trace(str(tmp_path / "odd.json"))
    names = [e["name"] for e in json.loads((tmp_path / "odd.json").read_text())["traceEvents"]]
    assert 'quote " backslash \\ newline \n' in names


def test_with_stack_records_the_users_call_site(tmp_path):
    with _profile(chainrule, with_stack=True) as prof:
        chainrule.ones(2).exp()
    exp = next(e for e in prof.events() if e.name == "aten::exp")
    assert exp.stack and "test_profiler.py" in exp.stack[0] and "chainrule/" not in exp.stack[0]
    assert "Source Location" not in prof.key_averages().table()
    assert "Source Location" in prof.key_averages(group_by_stack_n=2).table()
    prof.export_stacks(str(tmp_path / "stacks.txt"))
    assert "aten::exp" in (tmp_path / "stacks.txt").read_text()


# -- the schedule ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [dict(wait=1, warmup=1, active=2), dict(wait=1, warmup=1, active=2, repeat=1),
                                  dict(wait=2, warmup=0, active=3, repeat=2, skip_first=3),
                                  dict(wait=5, warmup=1, active=1, skip_first=2, skip_first_wait=1)])
def test_schedule_returns_torchs_actions(args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warmup=0
        ours, theirs = chainrule.profiler.schedule(**args), torch.profiler.schedule(**args)
    assert [ours(step).name for step in range(30)] == [theirs(step).name for step in range(30)]


def test_schedule_records_only_the_active_steps():
    ready = []
    with _profile(chainrule, schedule=chainrule.profiler.schedule(wait=1, warmup=1, active=2, repeat=1),
                  on_trace_ready=lambda p: ready.append(sorted(k for k in _keys(p) if k.startswith("step")))) as prof:
        _train(chainrule, prof, steps=7)
    assert ready == [["step2", "step3"]]
    steps = sorted(e.name for e in prof.events() if e.name.startswith("ProfilerStep#"))
    assert steps == ["ProfilerStep#2", "ProfilerStep#3"]
    assert autograd_function.active_profiler is None


def test_schedule_rejects_bad_arguments():
    with pytest.raises(AssertionError, match="active must be an int >= 1"):
        chainrule.profiler.schedule(wait=1, warmup=1, active=0)
    with pytest.raises(AssertionError, match="wait must be an int >= 0"):
        chainrule.profiler.schedule(wait=-1, warmup=1, active=1)
    with pytest.raises(TypeError, match="ProfilerActivity"):
        chainrule.profiler.profile(activities=["cpu"])
    with pytest.raises(TypeError, match="schedule must be callable"):
        chainrule.profiler.profile(schedule=3)


# -- starting, stopping, errors -----------------------------------------------------------------

def test_an_exception_inside_the_block_stops_the_profiler_cleanly():
    with pytest.raises(ValueError, match="boom"):
        with _profile(chainrule) as prof:
            with chainrule.profiler.record_function("failing"):
                chainrule.ones(2).exp()
                raise ValueError("boom")
    assert autograd_function.active_profiler is None
    failing = next(e for e in prof.events() if e.name == "failing")
    assert failing.end_us >= failing.start_us and [c.name for c in failing.cpu_children] == ["aten::exp"]


def test_a_failing_op_does_not_swallow_the_ranges_after_it():
    with _profile(chainrule) as prof:
        with pytest.raises(RuntimeError, match="must match"):
            chainrule.ones(2) + chainrule.ones(3)
        chainrule.ones(2).exp()
    exp = next(e for e in prof.events() if e.name == "aten::exp")
    assert exp.cpu_parent is None


def test_nothing_is_left_switched_on_after_the_profiler_stops():
    with _profile(chainrule) as prof:
        chainrule.ones(2).exp()
    recorded = len(prof.events())
    assert autograd_function.active_profiler is None
    a = chainrule.ones(2, requires_grad=True)
    (a.exp() * 2).sum().backward()
    assert len(prof.events()) == recorded
    with pytest.raises(RuntimeError, match="already recording"):
        with _profile(chainrule):
            with _profile(chainrule):
                pass
    assert autograd_function.active_profiler is None


def test_results_before_anything_was_recorded_raise():
    prof = _profile(chainrule, schedule=chainrule.profiler.schedule(wait=5, warmup=1, active=1))
    with prof:
        prof.step()
    with pytest.raises(RuntimeError, match="no events yet"):
        prof.key_averages()


# -- torch.autograd.profiler, the legacy names ----------------------------------------------------

def test_legacy_autograd_profiler():
    legacy = chainrule.autograd.profiler
    with legacy.profile(use_cuda=False, record_shapes=True) as prof:
        with legacy.record_function("block"):
            (chainrule.ones(2, 3) * 3).sum()
    assert {"block", "aten::mul", "aten::sum"} <= {e.name for e in prof.function_events}
    assert prof.self_cpu_time_total == pytest.approx(prof.function_events.self_cpu_time_total)
    assert "Input Shapes" in prof.key_averages(group_by_input_shape=True).table()
    assert prof.total_average().count == len(prof.function_events)
    with legacy.profile(enabled=False) as off:
        chainrule.ones(2).exp()
    assert off.function_events is None
    with pytest.raises(RuntimeError, match="didn't finish"):
        off.key_averages()
    with legacy.emit_nvtx():
        chainrule.ones(2).exp()


def test_cuda_activity_times_device_ops_with_synchronization():
    with chainrule._backend.use_standin_cuda():
        x = chainrule.ones(4, 4, device="cuda")
        with chainrule.profiler.profile(activities=[chainrule.profiler.ProfilerActivity.CPU,
                                                   chainrule.profiler.ProfilerActivity.CUDA]) as prof:
            (x @ x).exp()
    mm = next(e for e in prof.events() if e.name == "aten::mm")
    assert mm.device_time_total == mm.cpu_time_total > 0
    table = prof.key_averages().table()
    assert "Self CUDA" in table and "Self CUDA time total" in table
