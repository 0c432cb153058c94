#!/usr/bin/env python3
"""Side-by-side PyTorch references for the benchmarks (Debian's python3-torch,
CPU, one thread). Not part of the build; needs `apt-get install python3-torch`.

  /usr/bin/python3 bench/torch_reference.py nodefit   # test-equation fit, rk4 dt = 0.01, backprop through the solver
  /usr/bin/python3 bench/torch_reference.py conv [C] [batch] [iterations]
        # conv ODE block, C = 16 channels, 32x32, batch 128, euler 8 steps, 5 iterations
  /usr/bin/python3 bench/torch_reference.py cifar [C] [batch] [steps] [ranks] [precisions] [resnet|ode|both]
        # the paper's network (as bench_cifar): tied ResNet N = 8 or the ODE (rk4, 4 steps,
        # backpropagated through the solver); precisions a comma list of float32, bfloat16
        # (autocast) and float64 (default all three, resnet); ranks > 1 runs that many
        # processes on batch/ranks each

  python3 bench/torch_reference.py state OUT [C] [N] [batch]
        # a state file for tests/test_torch.c, as llm.c's test_gpt2.c has: the
        # paper's network in float64 (N = 0: the ODE, rk4 with 4 steps),
        # batch norm in training mode, and its parameters (in resnode's flat
        # order: the modules' parameters in registration order), inputs,
        # labels, logits, mean cross-entropy loss and gradients

The timing commands print median seconds per training iteration (forward +
backward + Adam)."""
import statistics
import sys
import time

import torch

torch.set_num_threads(1)


def median_time(step, iterations):
    step()
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def nodefit(iterations=50):
    torch.set_default_dtype(torch.float64)
    A = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]])
    t = torch.linspace(0, 1.5, 16)
    # the data by a fine rk4 solve of du/dt = A u^3
    def rk4(f, u, dt, n):
        out = [u]
        for _ in range(n):
            k1 = f(u); k2 = f(u + dt / 2 * k1); k3 = f(u + dt / 2 * k2); k4 = f(u + dt * k3)
            u = u + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            out.append(u)
        return out
    with torch.no_grad():
        traj = rk4(lambda u: (u ** 3) @ A.T, torch.tensor([2.0, 0.0]), 0.001, 1500)
        data = torch.stack([traj[i * 100] for i in range(16)])
    net = torch.nn.Sequential(torch.nn.Linear(2, 50), torch.nn.Tanh(), torch.nn.Linear(50, 2))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)

    def step():
        opt.zero_grad()
        traj = rk4(lambda u: net(u ** 3), torch.tensor([2.0, 0.0]), 0.01, 150)
        pred = torch.stack([traj[i * 10] for i in range(16)])
        loss = ((pred - data) ** 2).sum()
        loss.backward()
        opt.step()
    print("torch nodefit rk4 dt=0.01 float64 (backprop through the solver): median %.4f s/iteration" % median_time(step, iterations))


def conv():
    C = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    B = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    iterations = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    for dtype in (torch.float32, torch.float64):
        torch.set_default_dtype(dtype)
        f = torch.nn.Sequential(torch.nn.Conv2d(C, C, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(C, C, 3, padding=1))
        head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(C, 10))
        params = list(f.parameters()) + list(head.parameters())
        opt = torch.optim.Adam(params, lr=1e-3)
        x0 = torch.randn(B, C, 32, 32)
        y = torch.randint(0, 10, (B,))

        def step():
            opt.zero_grad()
            x = x0
            for _ in range(8):
                x = x + f(x) / 8
            loss = torch.nn.functional.cross_entropy(head(x), y)
            loss.backward()
            opt.step()
        t = median_time(step, iterations)
        print("torch conv ODE block C = %d euler 8 steps %s: median %.3f s/step, %.1f images/s" % (C, str(dtype).replace("torch.", ""), t, B / t))


class CifarNet(torch.nn.Module):
    """cifar.h: stem conv3x3(3->C, s2)+ReLU+BN; N tied steps x += conv(relu(conv(x)))/N;
    BN, conv3x3(C->64, s4)+ReLU, BN, 4x4 avg pool, linear 64->10."""

    def __init__(self, C, N):
        super().__init__()
        self.N = N
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, C, 3, 2, 1), torch.nn.ReLU(), torch.nn.BatchNorm2d(C))
        self.f = torch.nn.Sequential(torch.nn.Conv2d(C, C, 3, 1, 1), torch.nn.ReLU(), torch.nn.Conv2d(C, C, 3, 1, 1))
        self.head = torch.nn.Sequential(torch.nn.BatchNorm2d(C), torch.nn.Conv2d(C, 64, 3, 4, 1), torch.nn.ReLU(), torch.nn.BatchNorm2d(64),
                                        torch.nn.AvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(64, 10))

    def forward(self, x):
        x = self.stem(x)
        if self.N > 0:
            for _ in range(self.N):
                x = x + self.f(x) / self.N
        else:
            # the neural ODE on [0, 1]: classical rk4 with 4 steps, backpropagated through the solver
            h = 0.25
            for _ in range(4):
                k1 = self.f(x)
                k2 = self.f(x + 0.5 * h * k1)
                k3 = self.f(x + 0.5 * h * k2)
                k4 = self.f(x + h * k3)
                x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return self.head(x)


PRECISIONS = {"float32": ("float32", torch.float32, False), "bfloat16": ("bfloat16 autocast", torch.float32, True), "float64": ("float64", torch.float64, False)}


def cifar_worker(rank, size, C, B, steps, precisions, kinds):
    import torch.distributed as dist
    torch.set_num_threads(1)
    if size > 1:
        dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29517", rank=rank, world_size=size)
    for (name, dtype, autocast), kind in ((PRECISIONS[p], k) for p in precisions for k in kinds):
        torch.manual_seed(1)
        torch.set_default_dtype(dtype)
        net = CifarNet(C, 8 if kind == "resnet" else 0)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        b = B // size
        x = torch.randn(b, 3, 32, 32)
        y = torch.arange(b) % 10

        def step():
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = torch.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            if size > 1:
                for p in net.parameters():
                    dist.all_reduce(p.grad)
            opt.step()
        t = median_time(step, steps)
        if rank == 0:
            print("torch cifar C = %3d  %-17s %-17s batch %d ranks %d  median %8.3f s/step  %8.1f images/s" %
                  (C, name, "tied ResNet N = 8" if kind == "resnet" else "ODE rk4, 4 steps", B, size, t, B / t), flush=True)


def cifar():
    C = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    B = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    size = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    precisions = (sys.argv[6] if len(sys.argv) > 6 else "float32,bfloat16,float64").split(",")
    kind = sys.argv[7] if len(sys.argv) > 7 else "resnet"
    kinds = ["resnet", "ode"] if kind == "both" else [kind]
    if size == 1:
        cifar_worker(0, 1, C, B, steps, precisions, kinds)
    else:
        torch.multiprocessing.spawn(cifar_worker, args=(size, C, B, steps, precisions, kinds), nprocs=size)


STATE_MAGIC = b"RNTORCH\0"
STATE_VERSION = 1


def state():
    """The state file: char[8] magic "RNTORCH\\0", then little-endian uint32
    version (1), int32 C, N, batch, int64 n (parameters), then float64
    parameters[n], float64 inputs[batch x 3 x 32 x 32], int32 labels[batch],
    float64 logits[batch x 10], float64 loss, float64 gradients[n]."""
    import struct
    out = sys.argv[2]
    C = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    N = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    B = int(sys.argv[5]) if len(sys.argv) > 5 else 6
    torch.manual_seed(7)
    torch.set_default_dtype(torch.float64)
    net = CifarNet(C, N)
    net.train()
    x = torch.randn(B, 3, 32, 32)
    y = torch.arange(B) % 10
    logits = net(x)
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    params = torch.cat([p.detach().flatten() for p in net.parameters()])
    grads = torch.cat([p.grad.flatten() for p in net.parameters()])
    with open(out, "wb") as f:
        f.write(STATE_MAGIC)
        f.write(struct.pack("<Iiiiq", STATE_VERSION, C, N, B, params.numel()))
        f.write(params.numpy().astype("<f8").tobytes())
        f.write(x.detach().numpy().astype("<f8").tobytes())
        f.write(y.numpy().astype("<i4").tobytes())
        f.write(logits.detach().numpy().astype("<f8").tobytes())
        f.write(struct.pack("<d", loss.item()))
        f.write(grads.numpy().astype("<f8").tobytes())
    print("wrote %s: C = %d, N = %d, batch %d, %d parameters, loss %.17g" % (out, C, N, B, params.numel(), loss.item()))


if __name__ == "__main__":
    {"nodefit": nodefit, "conv": conv, "cifar": cifar, "state": state}[sys.argv[1] if len(sys.argv) > 1 else "nodefit"]()
