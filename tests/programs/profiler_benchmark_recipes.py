"""The pytorch.org recipes "PyTorch Profiler" (profiler_recipe) and "PyTorch Benchmark"
(benchmark_recipe), as a CPU user runs them on a small model: ``profile(activities=
[ProfilerActivity.CPU], record_shapes=True)`` around ``with record_function("model_inference")``,
``prof.key_averages().table(sort_by="cpu_time_total", row_limit=10)``,
``key_averages(group_by_input_shape=True)`` and its ``input_shapes``, ``profile_memory=True`` with
``sort_by="self_cpu_memory_usage"``, ``export_chrome_trace`` to a temporary file read back by
``json.load``, and ``schedule(wait=1, warmup=1, active=2)`` with an ``on_trace_ready`` handler and
``p.step()``; then ``torch.utils.benchmark``: ``Timer(stmt=..., setup='from __main__ import ...',
globals={'x': x})``, ``timeit(100)``, ``blocked_autorange()``, the ``Measurement`` fields
(``number_per_run``, ``times``, ``task_spec``, ``label``/``sub_label``/``description``,
``num_threads``), the ``label``/``sub_label``/``description`` sweep into ``benchmark.Compare``
with ``trim_significant_figures``/``colorize``; and finally trains the profiled model, stepping a
profiler schedule over the training loop.

Timings vary from run to run, so only what does not depend on them is printed: which op names the
tables hold, call counts, input shapes, trace event names and the Measurement's bookkeeping.
"""

import json
import os
import tempfile

import torch
import torch.nn as nn
import torch.utils.benchmark as benchmark
from torch.profiler import ProfilerActivity, profile, record_function

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        return self.fc(torch.flatten(x, 1))


model = Net()
inputs = torch.randn(5, 3, 16, 16)

# -- Using profiler to analyze execution time
with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
    with record_function("model_inference"):
        model(inputs)

table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=10)
header = table.splitlines()[1].split("  ")
print("table columns:", [column.strip() for column in header if column.strip()])
averages = prof.key_averages()
names = {evt.key for evt in averages}
for name in ("model_inference", "aten::conv2d", "aten::relu", "aten::max_pool2d", "aten::linear",
             "aten::flatten"):
    print(f"{name}: present {name in names}")
calls = {evt.key: evt.count for evt in averages}
print("model_inference calls:", calls["model_inference"], "conv2d calls:", calls["aten::conv2d"])

shaped = prof.key_averages(group_by_input_shape=True)
conv_shapes = [evt.input_shapes for evt in shaped if evt.key == "aten::conv2d"]
print("conv2d input shapes:", conv_shapes[0][:3])
linear_shapes = [evt.input_shapes for evt in shaped if evt.key == "aten::linear"]
print("linear input shapes:", linear_shapes[0][:3])

# -- Using profiler to analyze memory consumption
with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True) as prof:
    model(inputs)
memory_table = prof.key_averages().table(sort_by="self_cpu_memory_usage", row_limit=10)
print("memory columns include CPU Mem:", "CPU Mem" in memory_table, "Self CPU Mem" in memory_table)
conv_memory = sum(evt.cpu_memory_usage for evt in prof.key_averages() if evt.key == "aten::conv2d")
print("conv2d allocated bytes > 0:", conv_memory > 0)

# -- Using tracing functionality
with profile(activities=[ProfilerActivity.CPU]) as prof:
    model(inputs)
with tempfile.TemporaryDirectory() as tmp:
    trace_path = os.path.join(tmp, "trace.json")
    prof.export_chrome_trace(trace_path)
    with open(trace_path) as f:
        trace = json.load(f)
events = trace["traceEvents"] if isinstance(trace, dict) else trace
trace_names = {e.get("name") for e in events}
print("trace has aten::conv2d:", "aten::conv2d" in trace_names, "aten::linear:", "aten::linear" in trace_names)
complete = [e for e in events if e.get("ph") == "X" and e.get("name") == "aten::conv2d"]
print("conv2d complete events:", len(complete), "with ts and dur:", all("ts" in e and "dur" in e for e in complete))

# -- Using profiler to analyze long-running jobs
ready = []


def trace_handler(p):
    output = p.key_averages().table(sort_by="cpu_time_total", row_limit=10)
    ready.append((p.step_num, "model_inference" in output, len(output) > 0))


with profile(
    activities=[ProfilerActivity.CPU],
    schedule=torch.profiler.schedule(wait=1, warmup=1, active=2),
    on_trace_ready=trace_handler,
) as p:
    for idx in range(8):  # noqa: B007 (the recipe's loop)
        with record_function("model_inference"):
            model(inputs)
        p.step()
print("trace_handler calls (step_num, has model_inference, non-empty):", ready)

sched = torch.profiler.schedule(skip_first=2, wait=1, warmup=1, active=2, repeat=2)
print("schedule actions:", [sched(step).name for step in range(12)])


# -- PyTorch Benchmark recipe
def batched_dot_mul_sum(a, b):
    """Computes batched dot by multiplying and summing"""
    return a.mul(b).sum(-1)


def batched_dot_bmm(a, b):
    """Computes batched dot by reducing to ``bmm``"""
    a = a.reshape(-1, 1, a.shape[-1])
    b = b.reshape(-1, b.shape[-1], 1)
    return torch.bmm(a, b).flatten(-3)


x = torch.randn(1000, 64)
assert batched_dot_mul_sum(x, x).allclose(batched_dot_bmm(x, x))
print("batched dots agree:", torch.allclose(batched_dot_mul_sum(x, x), batched_dot_bmm(x, x), atol=1e-4))

t0 = benchmark.Timer(
    stmt="batched_dot_mul_sum(x, x)",
    setup="from __main__ import batched_dot_mul_sum",
    globals={"x": x})
t1 = benchmark.Timer(
    stmt="batched_dot_bmm(x, x)",
    setup="from __main__ import batched_dot_bmm",
    globals={"x": x})
m0 = t0.timeit(100)
m1 = t1.timeit(100)
for m in (m0, m1):
    print(f"timeit: stmt={m.task_spec.stmt!r} number_per_run={m.number_per_run} runs={len(m.times)} "
          f"threads={m.num_threads} positive={m.mean > 0 and m.median > 0}")
print("Measurement repr names the stmt:", "batched_dot_mul_sum(x, x)" in repr(m0))

m2 = benchmark.Timer(stmt="batched_dot_bmm(x, x)", globals={"x": x, "batched_dot_bmm": batched_dot_bmm},
                     num_threads=1, label="Batched dot", sub_label="bmm", description="1000x64")
m2 = m2.blocked_autorange(min_run_time=0.05)
print(f"blocked_autorange: label={m2.label} sub_label={m2.sub_label} description={m2.description} "
      f"threads={m2.num_threads} has runs={len(m2.times) >= 1} iqr>=0={m2.iqr >= 0}")

results = []
sizes = [1, 64]
for b in sizes:
    for n in sizes:
        label = "Batched dot"
        sub_label = f"[{b}, {n}]"
        xs = torch.ones((b, n))
        for num_threads in [1, 2]:
            results.append(benchmark.Timer(
                stmt="batched_dot_mul_sum(x, x)",
                setup="from __main__ import batched_dot_mul_sum",
                globals={"x": xs},
                num_threads=num_threads,
                label=label,
                sub_label=sub_label,
                description="mul/sum",
            ).timeit(20))
            results.append(benchmark.Timer(
                stmt="batched_dot_bmm(x, x)",
                setup="from __main__ import batched_dot_bmm",
                globals={"x": xs},
                num_threads=num_threads,
                label=label,
                sub_label=sub_label,
                description="bmm",
            ).timeit(20))
compare = benchmark.Compare(results)
compare.trim_significant_figures()
compare.colorize()
text = str(compare)
print("Compare results:", len(results), "labels:", sorted({r.label for r in results}))
print("sub_labels:", sorted({r.sub_label for r in results}), "descriptions:", sorted({r.description for r in results}))
print("Compare names every row and column:",
      all(s in text for s in ["Batched dot", "[1, 64]", "[64, 64]", "mul/sum", "bmm", "1 threads", "2 threads"]))

# -- then train the profiled model, profiling a few steps of the loop
data = torch.randn(64, 3, 16, 16)
target = (data[:, 0].mean((1, 2)) > data[:, 1].mean((1, 2))).long() + 2 * (data[:, 2].mean((1, 2)) > 0).long()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
criterion = nn.CrossEntropyLoss()
steps_seen = []
with profile(activities=[ProfilerActivity.CPU], schedule=torch.profiler.schedule(wait=1, warmup=1, active=3),
             on_trace_ready=lambda p: steps_seen.append(p.step_num)) as p:
    for epoch in range(15):
        for i in range(0, 64, 16):
            with record_function("train_step"):
                optimizer.zero_grad()
                loss = criterion(model(data[i:i + 16]), target[i:i + 16])
                loss.backward()
                optimizer.step()
            p.step()
        if epoch % 5 == 0:
            print(f"epoch {epoch} loss {loss.item():.4f}")
train_names = {evt.key for evt in p.key_averages()}
print("profiled training steps:", steps_seen, "train_step recorded:", "train_step" in train_names)
with torch.no_grad():
    logits = model(data)
    final_loss = criterion(logits, target).item()
    accuracy = (logits.argmax(1) == target).float().mean().item()
print(f"FINAL loss={final_loss:.4f} accuracy={accuracy:.4f}")
