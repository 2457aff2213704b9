#!/usr/bin/python3
"""memory_pytorch.py: the default one-epoch training written in PyTorch the way a PyTorch user writes it, for
bench/memory to measure its peak resident memory beside `hd-gpu train --device cpu --epochs 1`.

The Keras MNIST CNN that bench/pytorch_ref.py runs too (bench/keras_cnn.py's Net): conv32 3x3 relu, maxpool 2, conv64 3x3 relu, maxpool 2,
flatten, dense 128 relu, dropout 0.5, dense 10; Glorot-uniform weights, zero biases. The four IDX files read
from --data; the training file split as Keras' validation_split=0.1 splits it (the last 10% validates: 54,000
train, 6,000 validation); all images converted to float tensors once, x / 255, as Keras' MNIST example does (hd-gpu's
default does not normalise either; its default augmentation, a per-batch cost, is left out); one epoch of batches of 128,
shuffled, Adam lr 1e-3 (eps 1e-7); then the validation and test sets evaluated in chunks of --eval-batch
(1,000) under no_grad. torch.set_num_threads(--threads).

Prints progress on stderr and one line on stdout, `key=value` pairs: the resident set (VmRSS, KiB) of this
process at start (python), after `import torch` (library), after the data are loaded and converted (data), its
peak (VmHWM, which only rises) after loading (the bytes and their float copy at once), after the training epoch
and at the end (after evaluation), the training seconds, the seconds with evaluation, the validation and test
accuracy. (Writing 5 to /proc/self/clear_refs would reset VmHWM between phases, but it also lowers the peak
that getrusage reports to the parent, so it is not done.)
bench/memory measures the peak from outside too (getrusage of the child), as it measures hd-gpu's."""
import argparse
import gzip
import os
import sys
import time


def fail(msg):
    sys.exit("memory_pytorch.py: " + msg)


def status_kib(field):
    """A field of /proc/self/status in KiB (VmRSS: resident now; VmHWM: the peak so far)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    fail("/proc/self/status has no " + field)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="directory of the four MNIST IDX files")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (and OMP/OpenBLAS threads)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--eval-batch", type=int, default=1000)
    p.add_argument("--limit", type=int, default=0, help="train on the first N training images only (tests)")
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    if a.threads < 1 or a.batch < 1 or a.eval_batch < 1 or a.limit < 0:
        fail("--threads, --batch and --eval-batch must be at least 1, --limit at least 0")
    return a


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before torch loads them
    os.environ[var] = str(ARGS.threads)
RSS_PYTHON = status_kib("VmRSS")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from keras_cnn import Net  # noqa: E402  (bench/keras_cnn.py: the model bench/pytorch_ref.py runs too)

torch.set_num_threads(ARGS.threads)
RSS_LIBRARY = status_kib("VmRSS")



def read_idx(path, rank, magic, dims=None):
    """An IDX file (or PATH.gz, as hd-gpu reads it) as a writable uint8 array; its header's sizes checked."""
    try:
        if not os.path.exists(path) and os.path.exists(path + ".gz"):
            path += ".gz"
            with gzip.open(path, "rb") as f:
                raw = np.frombuffer(bytearray(f.read()), dtype=np.uint8)
        else:
            raw = np.fromfile(path, dtype=np.uint8)
    except (OSError, EOFError) as e:
        fail(f"{path}: {getattr(e, 'strerror', None) or e}")
    head = raw[:4 + 4 * rank].tobytes()
    if len(head) < 4 + 4 * rank or int.from_bytes(head[:4], "big") != magic:
        fail(f"{path}: not an IDX file of rank {rank} (magic 0x{magic:08x})")
    shape = [int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    if dims is not None and shape[1:] != dims:
        fail(f"{path}: images are {shape[1:]}, expected {dims}")
    if shape[0] < 1 or raw.size != 4 + 4 * rank + int(np.prod(shape)):
        fail(f"{path}: header says {shape}, but the file has {raw.size} bytes")
    return raw[4 + 4 * rank:].reshape(shape)


def load(directory, name):
    images = read_idx(os.path.join(directory, name + "-images-idx3-ubyte"), 3, 0x803, [28, 28])
    path = os.path.join(directory, name + "-labels-idx1-ubyte")
    labels = read_idx(path, 1, 0x801)
    if labels.shape[0] != images.shape[0] or labels.max() > 9:
        fail(f"{path}: {labels.shape[0]} labels (max {labels.max()}) for {images.shape[0]} images")
    return images, labels


def accuracy(model, x, y):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], ARGS.eval_batch):
            correct += (model(x[i:i + ARGS.eval_batch]).argmax(1) == y[i:i + ARGS.eval_batch]).sum().item()
    return correct / x.shape[0]


def main():
    train_images, train_labels = load(ARGS.data, "train")
    test_images, test_labels = load(ARGS.data, "t10k")
    split = int(train_images.shape[0] * 0.9)  # Keras' validation_split=0.1: the last 10% validates
    x = torch.from_numpy(train_images).float().div_(255).reshape(-1, 1, 28, 28)
    x_test = torch.from_numpy(test_images).float().div_(255).reshape(-1, 1, 28, 28)
    y, y_test = torch.from_numpy(train_labels).long(), torch.from_numpy(test_labels).long()
    del train_images, test_images
    x_train, y_train, x_val, y_val = x[:split], y[:split], x[split:], y[split:]
    if ARGS.limit:
        x_train, y_train = x_train[:ARGS.limit], y_train[:ARGS.limit]
    rss_data, hwm_data = status_kib("VmRSS"), status_kib("VmHWM")
    print(f"memory_pytorch.py: {x_train.shape[0]} training, {x_val.shape[0]} validation, {x_test.shape[0]} test "
          f"images, {torch.get_num_threads()} threads, torch {torch.__version__}", file=sys.stderr, flush=True)

    torch.manual_seed(ARGS.seed)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    start = time.perf_counter()
    model.train()
    order = torch.randperm(x_train.shape[0])
    for i in range(0, x_train.shape[0], ARGS.batch):
        idx = order[i:i + ARGS.batch]
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    train_s = time.perf_counter() - start
    hwm_train = status_kib("VmHWM")
    val_acc = accuracy(model, x_val, y_val)
    test_acc = accuracy(model, x_test, y_test)
    epoch_s = time.perf_counter() - start
    print(f"rss_python_kib={RSS_PYTHON} rss_library_kib={RSS_LIBRARY} rss_data_kib={rss_data} "
          f"peak_data_kib={hwm_data} peak_train_kib={hwm_train} "
          f"peak_kib={status_kib('VmHWM')} train_s={train_s:.2f} epoch_s={epoch_s:.2f} "
          f"val_acc={val_acc:.4f} test_acc={test_acc:.4f} threads={torch.get_num_threads()} "
          f"torch={torch.__version__}")


if __name__ == "__main__":
    main()
