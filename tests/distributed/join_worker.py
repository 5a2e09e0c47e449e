"""torch.distributed.algorithms, run on torch's gloo (``--torch``: 2 processes forked by ``mp.start_processes``)
and on chainrule under our launcher: uneven inputs under Join (rank 0 has 3 batches, rank 1 has 5),
DDP communication hooks, model averaging. Each rank writes what it ended with to
``OUT_DIR/<library>_<rank>.json``; test_join.py compares the two libraries."""

import contextlib
import json
import os
import sys

STEPS = (3, 5)  # batches on rank 0 and rank 1


def _filled(torch, module):
    """Deterministic, distinct parameter values (the two libraries' random streams differ)."""
    with torch.no_grad():
        for index, p in enumerate(module.parameters()):
            p.copy_(torch.linspace(-0.6, 0.5 + 0.1 * index, p.numel()).reshape(p.shape))
    return module


def _batch(torch, rank: int, step: int):
    grid = torch.arange(24, dtype=torch.float32).reshape(6, 4)
    return torch.cos(grid * 0.37 + rank + 0.5 * step), torch.sin(grid[:, :2] * 0.21 - step)


class _WithUnused:
    """A model whose second head never reaches the loss (for find_unused_parameters)."""

    @staticmethod
    def build(torch):
        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.body = torch.nn.Linear(4, 3)
                self.unused = torch.nn.Linear(3, 2)
                self.head = torch.nn.Linear(3, 2)

            def forward(self, x):
                return self.head(torch.tanh(self.body(x)))

        return Model()


def _train(torch, dist, ddp, rank, optimizer, join, extra=None) -> int:
    steps = 0
    with join:
        for step in range(STEPS[rank]):
            x, y = _batch(torch, rank, step)
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(ddp(x), y).backward()
            optimizer.step()
            if extra is not None:
                extra()
            steps += 1
    return steps


def run_all(torch, dist, join_module, hooks, averaging, ddp_class, rank: int) -> dict:
    out: dict = {}

    def state(module):
        return {name: t.tolist() for name, t in module.state_dict().items()}

    # 1. a model with buffers (BatchNorm), SGD with momentum, gradients over the initial world size
    model = _filled(torch, torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                                               torch.nn.Linear(8, 2)))
    ddp = ddp_class(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    out["bn steps"] = _train(torch, dist, ddp, rank, optimizer, ddp.join())
    out["bn state"] = state(model)

    # 2. unused parameters, gradients over the ranks still training
    model = _filled(torch, _WithUnused.build(torch))
    ddp = ddp_class(model, find_unused_parameters=True)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.2)
    out["unused steps"] = _train(torch, dist, ddp, rank, optimizer, ddp.join(divide_by_initial_world_size=False))
    out["unused state"] = state(model)

    # 3. a joinable of our own next to DDP: it counts, per iteration, the ranks still training
    class Counter(join_module.Joinable):
        def __init__(self):
            super().__init__()
            self.count = torch.zeros(1)

        def __call__(self):
            join_module.Join.notify_join_context(self)
            training = torch.ones(1)
            dist.all_reduce(training)
            self.count += training

        def join_hook(self, **kwargs):
            return CounterHook(self, kwargs.get("share_count", False))

        @property
        def join_device(self):
            return torch.device("cpu")

        @property
        def join_process_group(self):
            return dist.group.WORLD

    class CounterHook(join_module.JoinHook):
        def __init__(self, counter, share_count):
            self.counter, self.share_count, self.calls = counter, share_count, []

        def main_hook(self):
            dist.all_reduce(torch.zeros(1))  # this rank has joined: it counts for nothing
            self.calls.append("main")

        def post_hook(self, is_last_joiner):
            self.calls.append(f"post {is_last_joiner}")
            if self.share_count:
                last = torch.tensor([dist.get_rank() if is_last_joiner else -1])
                dist.all_reduce(last, op=dist.ReduceOp.MAX)
                dist.broadcast(self.counter.count, src=int(last.item()))

    counter = Counter()
    alone = join_module.Join([counter])
    with alone:
        for _ in range(STEPS[rank]):
            counter()
    out["counter alone"] = [counter.count.tolist(), alone._join_hooks[0].calls]

    model = _filled(torch, torch.nn.Linear(4, 2))
    ddp, counter = ddp_class(model), Counter()
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
    both = join_module.Join([ddp, counter], share_count=True)
    out["with ddp steps"] = _train(torch, dist, ddp, rank, optimizer, both, counter)
    out["with ddp"] = [counter.count.tolist(), both._join_hooks[1].calls, state(model)]

    # 4. buffers are re-sent only after an iteration that synchronised gradients (torch's
    # require_forward_param_sync): after a no_sync step each rank keeps its own running stats
    model = _filled(torch, torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)))
    ddp = ddp_class(model)
    stats = []
    for step, synchronised in enumerate((False, True, True)):
        x, _ = _batch(torch, rank, step)
        with (contextlib.nullcontext() if synchronised else ddp.no_sync()):
            ddp(x).sum().backward()
        stats.append(model[1].running_mean.tolist())
    out["buffers after no_sync"] = stats

    # 5. communication hooks: torch's default ones (under join, where a joined rank runs the hook
    # on zero buckets) and one of our own that sums without averaging and reports its buckets
    model = _filled(torch, torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)))
    ddp = ddp_class(model)
    ddp.register_comm_hook(None, hooks.allreduce_hook)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
    out["allreduce_hook steps"] = _train(torch, dist, ddp, rank, optimizer, ddp.join())
    out["allreduce_hook state"] = state(model)

    model = _filled(torch, torch.nn.Linear(4, 2))
    ddp = ddp_class(model)
    ddp.register_comm_hook(dist.group.WORLD, hooks.fp16_compress_hook)
    x, y = _batch(torch, rank, 0)
    torch.nn.functional.mse_loss(ddp(x), y).backward()
    out["fp16_compress_hook grads"] = [model.weight.grad.tolist(), model.bias.grad.tolist()]

    seen = []

    def summed(state, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
        seen.append([state, bucket.index(), bucket.is_last(), bucket.buffer().numel(),
                     sorted(list(p.shape) for p in bucket.parameters()),
                     sorted(list(g.shape) for g in bucket.gradients())])
        return dist.all_reduce(bucket.buffer(), async_op=True).get_future().then(lambda fut: fut.value()[0])

    model = _filled(torch, torch.nn.Linear(4, 2))
    ddp = ddp_class(model)
    ddp.register_comm_hook("my state", summed)
    torch.nn.functional.mse_loss(ddp(x), y).backward()
    out["own hook"] = [seen, model.weight.grad.tolist(), model.bias.grad.tolist()]

    # a Work's Future: waited through collect_all/wait_all, and its value, as torch gives them
    pending = [dist.all_reduce(torch.full((2,), float(rank + k)), async_op=True) for k in range(2)]
    gathered = torch.futures.wait_all([work.get_future() for work in pending])
    out["work futures"] = [[t.tolist() for t in value] for value in gathered]
    pending[0].wait()  # torch's Work.result() needs the work waited on, not only its future (a race otherwise)
    out["work result"] = [t.tolist() for t in pending[0].result()]

    def attempt(name, fn):
        try:
            fn()
            out[name] = "no error"
        except Exception as error:  # noqa: BLE001 - the type and words are what is compared
            out[name] = [type(error).__name__, str(error)]

    def badly_annotated(state, bucket: int):
        return None

    attempt("hook twice", lambda: ddp.register_comm_hook(None, summed))
    attempt("hook not callable", lambda: ddp_class(model).register_comm_hook(None, "hook"))
    attempt("hook annotation", lambda: ddp_class(model).register_comm_hook(None, badly_annotated))

    # 6. model averaging (local SGD): parameters averaged every 2 steps after 1 warm-up step,
    # given as parameters, then as the optimizer's parameter groups
    model = _filled(torch, torch.nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    averager = averaging.averagers.PeriodicModelAverager(period=2, warmup_steps=1)
    averaged = []
    for step in range(5):
        x, y = _batch(torch, rank, step)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        averager.average_parameters(model.parameters() if step < 3 else optimizer.param_groups)
        averaged.append(model.bias.tolist())
    out["model averaging"] = [averaged, averager.step, state(model)]
    attempt("averager period", lambda: averaging.averagers.PeriodicModelAverager(period=0))
    attempt("averager warmup", lambda: averaging.averagers.PeriodicModelAverager(period=2, warmup_steps=-1))
    attempt("averager inputs", lambda: averaging.utils.get_params_to_average([torch.ones(1)]))
    out["averager inputs"] = out["averager inputs"][0]  # the words name each library's Tensor class

    # 7. throw_on_early_termination: every rank raises in the iteration where rank 0 ran out
    model = _filled(torch, torch.nn.Linear(4, 2))
    ddp = ddp_class(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
    steps = [0]
    try:
        with ddp.join(throw_on_early_termination=True):
            for step in range(STEPS[rank]):
                x, y = _batch(torch, rank, step)
                optimizer.zero_grad()
                torch.nn.functional.mse_loss(ddp(x), y).backward()
                optimizer.step()
                steps[0] += 1
        out["throw"] = ["no error", steps[0]]
    except RuntimeError as error:
        out["throw"] = [type(error).__name__, str(error), steps[0], state(model)]
    return out


def run(torch, dist, join_module, hooks, averaging, ddp_class, rank: int, out_dir: str, library: str) -> None:
    found = run_all(torch, dist, join_module, hooks, averaging, ddp_class, rank)
    with open(os.path.join(out_dir, f"{library}_{rank}.json"), "w") as handle:
        json.dump(found, handle)
    dist.barrier()
    dist.destroy_process_group()


def _torch_rank(rank: int, size: int, out_dir: str, port: str) -> None:
    import torch
    import torch.distributed as dist
    import torch.distributed.algorithms.join as join_module
    import torch.distributed.algorithms.model_averaging.averagers
    import torch.distributed.algorithms.model_averaging.utils
    from torch.distributed.algorithms import model_averaging
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=size)
    run(torch, dist, join_module, default_hooks, model_averaging, torch.nn.parallel.DistributedDataParallel, rank, out_dir, "torch")


if __name__ == "__main__":
    if sys.argv[1] == "--torch":
        import torch.multiprocessing as mp

        # forked from this interpreter, which has imported torch: spawn's children each imported it again
        mp.start_processes(_torch_rank, args=(2, sys.argv[2], sys.argv[3]), nprocs=2, start_method="fork")
    else:
        import chainrule
        import chainrule.distributed as cdist
        import chainrule.distributed.algorithms.join as join_module
        from chainrule.distributed.algorithms import model_averaging
        from chainrule.distributed.algorithms.ddp_comm_hooks import default_hooks
        from chainrule.nn.parallel import DistributedDataParallel

        cdist.init_process_group("gloo")
        run(chainrule, cdist, join_module, default_hooks, model_averaging, DistributedDataParallel, cdist.get_rank(), sys.argv[1], "chainrule")
