#!/usr/bin/env python3
"""fast_pytorch.py: the fastest published MNIST recipe (tuomaso/train_mnist_fast, final notebook), written
here in PyTorch from its description in issue 24, for bench/fast to run beside `hd-gpu train --model-spec
fast` on the same machine in the same run:

conv 24 5x5 -> max-pool 2 -> ReLU -> conv 32 3x3 -> max-pool 2 -> ReLU -> dense 256 ReLU -> dense 10;
Adam lr 1e-2, betas (0.7, 0.9); one-cycle learning rate (peak 1e-2, no momentum cycling); batch 256; one
epoch over all 60,000 training images in file order; no augmentation; inputs normalised by MNIST's mean and
std; the data resident in memory (tensors made before the clock starts).

Prints one line: `seed=S train_seconds=T test_acc=A` (training clock: the epoch loop alone). With --device
cuda: strict FP32 (TF32 off, as hd-gpu runs unless told otherwise), the data and model on the GPU before
the clock starts, a throwaway copy of the model trained one step at each batch size first (cuDNN and
cuBLAS handles, kernel loading, the caching allocator: what hd-gpu does before its clock, when it plans),
and the clock read after a synchronize."""
import argparse
import gzip
import os
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    rank = magic & 0xFF
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return torch.frombuffer(bytearray(data[4 + 4 * rank:]), dtype=torch.uint8).reshape(dims)


def find(data_dir, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(data_dir, candidate)
        if os.path.exists(path):
            return path
    raise SystemExit(f"fast_pytorch.py: {data_dir}: no {name}")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 24, 5)
        self.conv2 = nn.Conv2d(24, 32, 3)
        self.fc1 = nn.Linear(32 * 5 * 5, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    mean, std = 0.1307, 0.3081
    x = (read_idx(find(args.data, "train-images-idx3-ubyte")).float() / 255 - mean) / std
    y = read_idx(find(args.data, "train-labels-idx1-ubyte")).long()
    tx = (read_idx(find(args.data, "t10k-images-idx3-ubyte")).float() / 255 - mean) / std
    ty = read_idx(find(args.data, "t10k-labels-idx1-ubyte")).long()
    x, tx = x.unsqueeze(1).to(device), tx.unsqueeze(1).to(device)
    y, ty = y.to(device), ty.to(device)
    model = Net().to(device)
    batch = 256
    steps = (len(x) + batch - 1) // batch
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.7, 0.9))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=steps, cycle_momentum=False)
    if device.type == "cuda":
        warm = Net().to(device)
        warm_opt = torch.optim.Adam(warm.parameters(), lr=1e-2, betas=(0.7, 0.9))
        for n in sorted({batch, len(x) - (steps - 1) * batch}):
            warm_opt.zero_grad(set_to_none=True)
            F.cross_entropy(warm(x[:n]), y[:n]).backward()
            warm_opt.step()
        del warm, warm_opt
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    model.train()
    for i in range(steps):
        xb, yb = x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
        sched.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        correct = sum((model(tx[i:i + 1000]).argmax(1) == ty[i:i + 1000]).sum().item() for i in range(0, len(tx), 1000))
    print(f"seed={args.seed} train_seconds={train_seconds:.3f} test_acc={correct / len(tx):.4f}")


if __name__ == "__main__":
    main()
