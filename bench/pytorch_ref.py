#!/usr/bin/python3
"""pytorch_ref.py: the peer that `hd-gpu bench` is compared with.

The same model (conv32 3x3 relu, maxpool 2, conv64 3x3 relu, maxpool 2, flatten, dense 128 relu,
dropout 0.5, dense 10; Glorot-uniform weights, zero biases), the same optimizer (Adam lr 1e-3,
betas 0.9/0.999, eps 1e-7), the same batch sizes, data resident on the device, and the same
timing as hd-gpu's (src/bench/bench_*.c): after warm-up, each repeat runs back-to-back steps and ends
with a synchronisation (torch.cuda.synchronize on a GPU) and a read of the accumulated metrics;
the monotonic clock (time.perf_counter) around that region; median, min and max over repeats.
A training step accumulates the summed loss and the number of correct predictions on the device,
as hd-gpu's fused loss does. Eager mode always; torch.compile where this torch has it.

Prints one JSON object on stdout (progress on stderr). Run with Debian's /usr/bin/python3 on the
CPU (python3-torch); on a GPU machine any python with CUDA torch.
"""
import argparse
import json
import math
import os
import re
import statistics
import sys
import time

T_SCRIPT = time.perf_counter()

EPOCH_IMAGES = 54000
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu, or a CUDA index such as 0")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    p.add_argument("--quick", action="store_true", help="short run, as hd-gpu bench --quick")
    p.add_argument("--batches", default="64,128,256,512")
    p.add_argument("--repeats", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--min-steps", type=int)
    p.add_argument("--min-time", type=float)
    p.add_argument("--infer-batch", type=int, default=1024)
    p.add_argument("--latency-iters", type=int)
    p.add_argument("--resident", type=int)
    p.add_argument("--peak-size", type=int, help="SGEMM size (default 2048 on the CPU, 8192 on a GPU)")
    p.add_argument("--data", help="MNIST directory: train on its images (default: synthetic images)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--modes", default="eager,compile", help="eager, compile, or both")
    p.add_argument("--compile-mode", default="default", help="torch.compile mode (default, reduce-overhead, ...)")
    p.add_argument("--tf32", action="store_true", help="allow TF32 in cuBLAS and cuDNN (off: strict FP32)")
    p.add_argument("--time-to-accuracy", type=float, metavar="ACC",
                   help="instead of the speed figures: train (batch 128) until the test accuracy reaches ACC")
    p.add_argument("--max-epochs", type=int, default=30)
    p.add_argument("--tta-batch", type=int, default=128)
    a = p.parse_args()
    quick = dict(repeats=3, warmup=2, min_steps=3, min_time=0.05, latency_iters=30, resident=2)
    full = dict(repeats=5, warmup=5, min_steps=10, min_time=0.5, latency_iters=200, resident=4)
    for key, value in (quick if a.quick else full).items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    a.batch_sizes = [int(b) for b in a.batches.split(",") if b]
    return a


ARGS = parse_args()
if ARGS.threads > 0:  # before torch loads OpenMP and OpenBLAS
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)
T_IMPORT = time.perf_counter()
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from keras_cnn import Net  # noqa: E402  (bench/keras_cnn.py: the model beside hd-gpu's default)
IMPORT_S = time.perf_counter() - T_IMPORT


def log(msg):
    print("pytorch_ref: " + msg, file=sys.stderr, flush=True)


def stat(samples):
    if not samples:
        return {"median": None, "min": None, "max": None, "count": 0}
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "count": len(samples)}




def model_flops():
    """FLOPs per image as hd_model_flops_forward/backward count them: 2 per multiply-add of each
    conv and dense layer; backward = weight gradient + input gradient (none for the first layer)."""
    layers = [(32 * 1 * 9, 26 * 26), (64 * 32 * 9, 11 * 11), (128 * 1600, 1), (10 * 128, 1)]
    forward = sum(2.0 * w * positions for w, positions in layers)
    return forward, 2.0 * forward - 2.0 * layers[0][0] * layers[0][1]


class Device:
    def __init__(self, spec):
        self.is_gpu = spec != "cpu"
        self.torch = torch.device("cuda:%d" % int(spec) if self.is_gpu else "cpu")

    def sync(self):
        if self.is_gpu:
            torch.cuda.synchronize(self.torch)

    def describe(self):
        if self.is_gpu:
            p = torch.cuda.get_device_properties(self.torch)
            return "%s, %.1f GiB, sm_%d%d, CUDA %s, cuDNN %s" % (
                p.name, p.total_memory / 2**30, p.major, p.minor, torch.version.cuda,
                torch.backends.cudnn.version())
        return "cpu (%d threads)" % torch.get_num_threads()


def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def load_mnist(directory):
    """The four IDX files as uint8 arrays (timed as hd-gpu times hd_mnist_load)."""
    return [read_idx(os.path.join(directory, name)) for name in MNIST_FILES]


def images_to_device(images, labels, dev):
    x = torch.from_numpy(images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return x.to(dev.torch), torch.from_numpy(labels.astype(np.int64)).to(dev.torch)


def host_data(n, seed, mnist):
    """n images and labels on the host: the first MNIST training images, or synthetic ones."""
    if mnist is not None:
        idx = np.arange(n) % mnist[0].shape[0]
        return mnist[0][idx], mnist[1][idx]
    g = np.random.default_rng(seed)
    return (g.random((n, 28, 28)) * 255).astype(np.uint8), g.integers(0, 10, n)


def make_model(dev, mode, seed):
    torch.manual_seed(seed)
    model = Net().to(dev.torch)
    runner = model
    if mode == "compile":
        try:
            runner = torch.compile(model, mode=ARGS.compile_mode, dynamic=False)
        except TypeError:  # torch 2.0: no dynamic= (static shapes were the default)
            runner = torch.compile(model, mode=ARGS.compile_mode)
    return model, runner


def steps_per_repeat(seconds_per_step):
    steps = ARGS.min_steps
    if seconds_per_step > 0 and ARGS.min_time > 0:
        steps = max(steps, math.ceil(ARGS.min_time / seconds_per_step))
    return min(steps, 100000)


def repeat_timed(run, dev, metrics):
    """Warm-up, then repeats; run(steps) queues that many steps. Returns (steps, [seconds], first_s)."""
    def timed(steps):
        start = time.perf_counter()
        run(steps)
        dev.sync()
        metrics.tolist()  # the 8-byte download hd-gpu ends each repeat with
        return time.perf_counter() - start

    first = timed(1)  # first touch; torch.compile compiles here
    per_step = first
    if ARGS.warmup > 1:
        per_step = timed(ARGS.warmup - 1) / (ARGS.warmup - 1)
    steps = steps_per_repeat(per_step)
    metrics.zero_()  # the timed steps only
    return steps, [timed(steps) for _ in range(ARGS.repeats)], first


def bench_train(dev, mode, batch, host, flops, peak):
    model, runner = make_model(dev, mode, ARGS.seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    k = ARGS.resident
    x_all, y_all = images_to_device(host[0][:k * batch], host[1][:k * batch], dev)
    batches = [(x_all[i * batch:(i + 1) * batch], y_all[i * batch:(i + 1) * batch]) for i in range(k)]
    metrics = torch.zeros(2, device=dev.torch)
    model.train()
    counter = [0]

    def run(steps):
        for _ in range(steps):
            x, y = batches[counter[0] % k]
            counter[0] += 1
            logits = runner(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                metrics[0] += loss.detach() * batch
                metrics[1] += (logits.argmax(1) == y).sum()

    steps, seconds, first = repeat_timed(run, dev, metrics)
    ms = [s * 1e3 / steps for s in seconds]
    median_ms = statistics.median(ms)
    gflops = batch * (flops[0] + flops[1]) / (median_ms * 1e-3) * 1e-9
    return {"batch": batch, "steps_per_repeat": steps, "first_step_s": first,
            "ms_per_step": stat(ms),
            "images_per_s": stat([batch * steps / s for s in seconds]),
            "epoch_s": stat([s / steps * math.ceil(EPOCH_IMAGES / batch) for s in seconds]),
            "gflops": gflops, "peak_fraction": gflops / peak if peak else None,
            "mean_loss": metrics[0].item() / (len(seconds) * steps * batch)}


def bench_inference(dev, mode, host):
    n = ARGS.infer_batch
    model, runner = make_model(dev, mode, ARGS.seed)
    model.eval()
    x, y = images_to_device(host[0][:n], host[1][:n], dev)
    metrics = torch.zeros(2, device=dev.torch)

    def run(steps):
        with torch.no_grad():
            for _ in range(steps):
                logits = runner(x)
                metrics[0] += F.cross_entropy(logits, y, reduction="sum")
                metrics[1] += (logits.argmax(1) == y).sum()

    steps, seconds, _ = repeat_timed(run, dev, metrics)
    return {"batch": n, "steps_per_repeat": steps, "images_per_s": stat([n * steps / s for s in seconds])}


def bench_latency(dev, mode, host):
    model, runner = make_model(dev, mode, ARGS.seed)
    model.eval()
    images = torch.from_numpy(host[0][:64].astype(np.float32) / 255.0).reshape(-1, 1, 1, 28, 28)
    samples = []
    with torch.no_grad():
        for i in range(-max(ARGS.warmup, 1), ARGS.latency_iters):
            image = images[i % images.shape[0]]
            start = time.perf_counter()
            logits = runner(image.to(dev.torch)).cpu()  # upload, forward, download of 10 logits
            elapsed = time.perf_counter() - start
            if i >= 0:
                samples.append(elapsed * 1e3)
    assert logits.shape == (1, 10)
    return stat(samples)


def measure_peak(dev):
    n = ARGS.peak_size or (8192 if dev.is_gpu else 2048)
    a = torch.rand(n, n, device=dev.torch)
    b = torch.rand(n, n, device=dev.torch)
    rates = []
    for r in range(-1, ARGS.repeats):
        dev.sync()
        start = time.perf_counter()
        torch.mm(a, b)
        dev.sync()
        if r >= 0:
            rates.append(2.0 * n ** 3 / (time.perf_counter() - start) * 1e-9)
    how = "torch.mm %dx%dx%d FP32%s, best of %d" % (n, n, n, " (TF32 allowed)" if ARGS.tf32 else "",
                                                   ARGS.repeats)
    return max(rates), stat(rates), how


def compile_unavailable():
    if not hasattr(torch, "compile"):
        return "torch %s has no torch.compile (added in 2.0)" % torch.__version__
    return None


def run_mode(dev, mode, host, flops, peak):
    if mode == "compile" and compile_unavailable():
        return {"available": False, "reason": compile_unavailable()}
    try:
        train = []
        for batch in ARGS.batch_sizes:
            t = bench_train(dev, mode, batch, host, flops, peak)
            log("%s train batch %d: %.3f ms/step, %.0f images/s, %.2f s/epoch" % (
                mode, batch, t["ms_per_step"]["median"], t["images_per_s"]["median"], t["epoch_s"]["median"]))
            train.append(t)
        inference = bench_inference(dev, mode, host)
        latency = bench_latency(dev, mode, host)
        log("%s inference %.0f images/s, latency %.3f ms" % (
            mode, inference["images_per_s"]["median"], latency["median"]))
        return {"available": True, "train": train, "inference": inference, "latency_ms": latency}
    except Exception as e:  # torch.compile can fail on a machine without a compiler: report, go on
        if mode != "compile":
            raise
        return {"available": False, "reason": "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:300])}


def process_start_seconds_ago():
    """Seconds since this process started (from /proc: kernel start time, 10 ms resolution)."""
    with open("/proc/self/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")


def time_to_accuracy(dev, mnist):
    """Default recipe: first 54,000 training images, shuffled each epoch, batch 128, Adam; the test
    set evaluated after each epoch; stops at the first epoch reaching the target."""
    x_train, y_train = images_to_device(mnist[0][:EPOCH_IMAGES], mnist[1][:EPOCH_IMAGES], dev)
    x_test, y_test = images_to_device(mnist[2], mnist[3], dev)
    model, _ = make_model(dev, "eager", ARGS.seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    b = ARGS.tta_batch
    for epoch in range(1, ARGS.max_epochs + 1):
        model.train()
        order = torch.randperm(EPOCH_IMAGES, device=dev.torch)
        for i in range(0, EPOCH_IMAGES, b):
            idx = order[i:i + b]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        correct = torch.zeros((), device=dev.torch, dtype=torch.int64)
        with torch.no_grad():
            for i in range(0, x_test.shape[0], 1024):
                correct += (model(x_test[i:i + 1024]).argmax(1) == y_test[i:i + 1024]).sum()
        acc = correct.item() / x_test.shape[0]
        log("epoch %d: test accuracy %.4f at %.1f s" % (epoch, acc, process_start_seconds_ago()))
        if acc >= ARGS.time_to_accuracy:
            seconds = process_start_seconds_ago()
            print("time_to_accuracy_s=%.3f epoch=%d test_acc=%.4f" % (seconds, epoch, acc), file=sys.stderr)
            return {"target": ARGS.time_to_accuracy, "seconds": seconds, "epoch": epoch, "test_acc": acc,
                    "batch": b}
    return {"target": ARGS.time_to_accuracy, "seconds": None, "epoch": None, "test_acc": acc, "batch": b,
            "reason": "not reached in %d epochs" % ARGS.max_epochs}


def blas_info():
    """What torch was built with, and which BLAS/LAPACK/oneDNN libraries this process loaded."""
    loaded = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if any(key in os.path.basename(path) for key in ("blas", "lapack", "mkl", "dnnl", "cudnn")):
                loaded.add(os.path.realpath(path))
    config = torch.__config__.show()
    build = re.findall(r"\b(BLAS_INFO=[^,\s]+|LAPACK_INFO=[^,\s]+|USE_MKLDNN=[^,\s]+|USE_MKL=[^,\s]+)", config)
    build += [l.strip("- ").strip() for l in config.splitlines() if "MKL-DNN" in l or "oneDNN" in l]
    return {"build": build, "loaded_libraries": sorted(loaded)}


def main():
    if ARGS.threads > 0:
        torch.set_num_threads(ARGS.threads)
    torch.backends.cuda.matmul.allow_tf32 = ARGS.tf32
    torch.backends.cudnn.allow_tf32 = ARGS.tf32
    torch.backends.cudnn.benchmark = True
    dev = Device(ARGS.device)
    start = time.perf_counter()
    torch.zeros(1, device=dev.torch).add_(1).tolist()  # CUDA context, or nothing on the CPU
    device_init_s = time.perf_counter() - start

    mnist, data_load_s = None, None
    if ARGS.data:
        start = time.perf_counter()
        mnist = load_mnist(ARGS.data)
        data_load_s = time.perf_counter() - start
    out = {"tool": "pytorch", "torch_version": torch.__version__, "python": sys.version.split()[0],
           "device": {"backend": "cuda" if dev.is_gpu else "cpu", "description": dev.describe(),
                      "is_gpu": dev.is_gpu, "threads": torch.get_num_threads()},
           "blas": blas_info(), "data": "mnist" if mnist is not None else "synthetic",
           "settings": {"batch_sizes": ARGS.batch_sizes, "resident_batches": ARGS.resident,
                        "warmup_steps": ARGS.warmup, "min_steps": ARGS.min_steps, "min_repeat_s": ARGS.min_time,
                        "repeats": ARGS.repeats, "infer_batch": ARGS.infer_batch,
                        "latency_iters": ARGS.latency_iters, "epoch_images": EPOCH_IMAGES, "seed": ARGS.seed,
                        "tf32": ARGS.tf32, "cudnn_benchmark": True, "compile_mode": ARGS.compile_mode},
           "timing": "time.perf_counter around each repeat, closed by a synchronise and an 8-byte read",
           "startup": {"import_torch_s": IMPORT_S, "device_init_s": device_init_s, "data_load_s": data_load_s}}
    if ARGS.time_to_accuracy is not None:
        if mnist is None:
            sys.exit("pytorch_ref: --time-to-accuracy needs --data DIR")
        out["time_to_accuracy"] = time_to_accuracy(dev, mnist)
    else:
        peak, peak_stat, how = measure_peak(dev)
        flops = model_flops()
        out["floor"] = {"flops_forward_per_image": flops[0], "flops_backward_per_image": flops[1],
                        "peak_gflops": peak, "peak_gflops_samples": peak_stat, "peak_method": how}
        log("%s; peak %.1f GFLOP/s (%s)" % (dev.describe(), peak, how))
        n = max([b * ARGS.resident for b in ARGS.batch_sizes] + [ARGS.infer_batch, 64])
        host = host_data(n, ARGS.seed, mnist)
        out["modes"] = {m: run_mode(dev, m, host, flops, peak) for m in ARGS.modes.split(",") if m}
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
