#!/usr/bin/env python3
"""compare.py: puts `hd-gpu bench --json` and `pytorch_ref.py` side by side (used by bench/run).

Prints a table of every figure for hd-gpu, PyTorch eager and (where it ran) torch.compile, with
the ratio hd-gpu / PyTorch, and writes the same as Markdown and JSON, with the machine, library
versions and git commit. Standard library only.

The floor is one for both: FLOPs per image from hd-gpu's spec count, and hd-gpu's measured FP32
peak (PyTorch's torch.mm rate where hd-gpu has none, e.g. on a GPU until a backend op measures it).
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys


def load(path):
    if not path:
        return None
    with open(path) as f:
        return json.load(f)


def median(stat):
    return stat.get("median") if isinstance(stat, dict) else stat


def fmt(x, digits):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return "%.*f" % (digits, x)


def fmt_stat(stat, digits):
    if not isinstance(stat, dict) or stat.get("median") is None:
        return fmt(stat if not isinstance(stat, dict) else None, digits)
    return "%s [%s, %s]" % (fmt(stat["median"], digits), fmt(stat["min"], digits), fmt(stat["max"], digits))


def ratio(a, b):
    a, b = median(a), median(b)
    if a is None or b is None or not b:
        return None
    return a / b


class Row:
    def __init__(self, figure, better, digits, hd, eager, compiled, key=None):
        self.figure, self.better, self.digits = figure, better, digits
        self.hd, self.eager, self.compiled = hd, eager, compiled
        self.key = key or re.sub(r"[^a-z0-9]+", "_", figure.lower()).strip("_")

    def as_json(self):
        return {"key": self.key, "figure": self.figure, "better": self.better, "hd_gpu": self.hd,
                "pytorch_eager": self.eager, "pytorch_compile": self.compiled,
                "ratio_eager": ratio(self.hd, self.eager), "ratio_compile": ratio(self.hd, self.compiled)}


def train_by_batch(mode):
    return {t["batch"]: t for t in (mode or {}).get("train", [])} if mode and mode.get("available") else {}


def build_rows(hd, torch_ref, tta):
    floor = hd["floor"]
    flops = floor["flops_forward_per_image"] + floor["flops_backward_per_image"]
    peak = floor.get("peak_gflops") or (torch_ref or {}).get("floor", {}).get("peak_gflops")
    modes = (torch_ref or {}).get("modes", {})
    eager, compiled = modes.get("eager"), modes.get("compile")
    hd_train = {t["batch"]: t for t in hd["train"]}
    eager_train, compiled_train = train_by_batch(eager), train_by_batch(compiled)

    def fraction(t):
        if not t or not peak:
            return None
        return 100.0 * t["batch"] * flops / (t["ms_per_step"]["median"] * 1e-3) * 1e-9 / peak

    rows = []
    for b in sorted(hd_train):
        h, e, c = hd_train[b], eager_train.get(b), compiled_train.get(b)
        get = lambda t, k: t[k] if t else None  # noqa: E731
        rows += [Row("train b%d: ms/step" % b, "lower", 3, h["ms_per_step"], get(e, "ms_per_step"),
                     get(c, "ms_per_step")),
                 Row("train b%d: images/s" % b, "higher", 0, h["images_per_s"], get(e, "images_per_s"),
                     get(c, "images_per_s")),
                 Row("train b%d: s/epoch" % b, "lower", 2, h["epoch_s"], get(e, "epoch_s"), get(c, "epoch_s")),
                 Row("train b%d: %% of peak FP32" % b, "higher", 1, fraction(h), fraction(e), fraction(c),
                     key="train_b%d_peak_percent" % b)]
        if h.get("recorded"):  # hd-gpu replayed CUDA graphs; the same steps op by op, for what they save
            rows.append(Row("train b%d: ms/step, hd-gpu op by op (no graph)" % b, "lower", 3,
                            h.get("op_by_op_ms_per_step"), get(e, "ms_per_step"), get(c, "ms_per_step"),
                            key="train_b%d_op_by_op_ms_per_step" % b))
    inf = lambda m: m["inference"]["images_per_s"] if m and m.get("available") else None  # noqa: E731
    lat = lambda m: m["latency_ms"] if m and m.get("available") else None  # noqa: E731
    rows.append(Row("inference b%d: images/s" % hd["inference"]["batch"], "higher", 0, hd["inference"]["images_per_s"],
                    inf(eager), inf(compiled), key="inference_images_per_s"))
    rows.append(Row("latency, one image: ms", "lower", 3, hd["latency_ms"], lat(eager), lat(compiled)))
    ts = (torch_ref or {}).get("startup", {})
    torch_init = None
    if ts.get("import_torch_s") is not None:
        torch_init = ts["import_torch_s"] + ts.get("device_init_s", 0.0)
    ms = lambda s: None if s is None else 1e3 * s  # noqa: E731
    rows.append(Row("start-up: library + device init, ms", "lower", 2, ms(hd["startup"]["backend_init_s"]),
                    ms(torch_init), None, key="startup_init_ms"))
    rows.append(Row("start-up: data loading, ms", "lower", 1, ms(hd["startup"]["data_load_s"]),
                    ms(ts.get("data_load_s")), None, key="startup_data_load_ms"))
    if tta:
        h, t = tta["hd_gpu"], tta["pytorch"]
        rows.append(Row("time to %.1f%% test acc., s, launch to line" % (100 * tta["target"]), "lower", 2,
                        h.get("wall_from_launch_s"), t.get("wall_from_launch_s"), None, key="time_to_accuracy_s"))
        rows.append(Row("time to %.1f%% test acc., s, as reported" % (100 * tta["target"]), "lower", 2,
                        h.get("seconds"), t.get("seconds"), None, key="time_to_accuracy_reported_s"))
        rows.append(Row("epochs to %.1f%% test accuracy" % (100 * tta["target"]), "lower", 0, h.get("epoch"),
                        t.get("epoch"), None, key="time_to_accuracy_epochs"))
    return rows, peak


def targets(hd, rows, tta):
    """The issue's targets, met or missed, from the batch-128 epoch time and time to accuracy."""
    epoch = {r.key: r for r in rows}.get("train_b128_s_epoch")
    if epoch is None:
        return []
    if not hd["device"]["is_gpu"]:
        # Issue 22: half PyTorch's epoch at batch 128, and half the measured SGEMM peak at every batch size.
        goals = [("s/epoch b128 <= 0.5x PyTorch (CPU)", ratio(epoch.hd, epoch.eager), 0.5)]
        for r in rows:
            m = re.match(r"train_b(\d+)_peak_percent$", r.key or "")
            if m and 64 <= int(m.group(1)) <= 512:
                goals.append(("%% of peak FP32 at b%s >= 50 (CPU)" % m.group(1), r.hd, 50.0, "at least"))
    else:
        seconds = (tta or {}).get("hd_gpu", {}).get("wall_from_launch_s")
        goals = [("s/epoch b128 <= 0.25x PyTorch eager", ratio(epoch.hd, epoch.eager), 0.25),
                 ("s/epoch b128 <= 0.7x torch.compile", ratio(epoch.hd, epoch.compiled), 0.7),
                 ("time to 99.0% test accuracy < 3 s (H100)", seconds, 3.0)]
    goals = [g if len(g) == 4 else g + ("at most",) for g in goals]
    return [{"target": name, "value": value,
             "met": None if value is None else (value >= limit if sense == "at least" else value <= limit)}
            for name, value, limit, sense in goals]


def parse_tta_line(line):
    """'time_to_accuracy_s=2.51 epoch=2 test_acc=0.9912' -> {seconds, epoch, test_acc}; {} if absent."""
    m = re.search(r"time_to_accuracy_s=([0-9.]+) epoch=([0-9]+) test_acc=([0-9.]+)", line)
    if not m:
        return {}
    return {"seconds": float(m.group(1)), "epoch": int(m.group(2)), "test_acc": float(m.group(3))}


def git(*args):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        return subprocess.run(("git", "-C", repo) + args, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine(hd, torch_ref):
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            names = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    commit = git("rev-parse", "HEAD")
    if commit and git("status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_", "MKL_"))}
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(), "loadavg_at_end": os.getloadavg(),
            "device": hd["device"]["description"], "threads": hd["device"]["threads"], "hd_gpu": hd["version"],
            "hd_blas": hd.get("blas"), "torch": (torch_ref or {}).get("torch_version"),
            "torch_python": (torch_ref or {}).get("python"), "torch_blas": (torch_ref or {}).get("blas"),
            "git_commit": commit, "environment": env,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def device_slug(hd, cores):
    if hd["device"]["is_gpu"]:
        name = hd["device"]["description"].split(",")[0]
    else:
        name = "cpu-%dt" % hd["device"]["threads"]
        if cores:
            name = "cpu-%dcore-%dt" % (cores, hd["device"]["threads"])
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def table_lines(rows, markdown):
    has_compile = any(r.compiled is not None for r in rows)
    head = ["figure", "better", "hd-gpu", "PyTorch eager", "hd/eager"]
    if has_compile:
        head += ["torch.compile", "hd/compile"]
    body = []
    for r in rows:
        cell = fmt_stat if markdown else (lambda s, d: fmt(median(s), d))
        line = [r.figure, r.better, cell(r.hd, r.digits), cell(r.eager, r.digits), fmt(ratio(r.hd, r.eager), 2)]
        if has_compile:
            line += [cell(r.compiled, r.digits), fmt(ratio(r.hd, r.compiled), 2)]
        body.append(line)
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|"]
        return out + ["| " + " | ".join(line) + " |" for line in body]
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    lines = ["  ".join(x.ljust(widths[i]) if i < 2 else x.rjust(widths[i]) for i, x in enumerate(line))
             for line in [head] + body]
    return lines[:1] + ["-" * len(lines[0])] + lines[1:]


def markdown(hd, torch_ref, rows, peak, meta, goals):
    m = meta
    modes = (torch_ref or {}).get("modes", {})
    compiled = modes.get("compile") or {}
    lines = ["# hd-gpu vs PyTorch: %s" % m["device"], "",
             "- date: %s; commit: %s" % (m["date"], m["git_commit"]),
             "- machine: %s, %s cores, %s; load average at the end %s" % (
                 m["cpu"], m["cores"], m["os"], ", ".join("%.2f" % x for x in m["loadavg_at_end"])),
             "- hd-gpu %s: %s; %s" % (m["hd_gpu"], hd["device"]["description"], hd.get("blas")),
             "- PyTorch %s (python %s): %s; built with %s; loaded %s" % (
                 m["torch"], m["torch_python"], (torch_ref or {}).get("device", {}).get("description"),
                 ", ".join((m["torch_blas"] or {}).get("build", [])),
                 ", ".join(os.path.basename(p) for p in (m["torch_blas"] or {}).get("loaded_libraries", []))),
             "- torch.compile: %s" % ("ran (mode %s)" % torch_ref["settings"].get("compile_mode")
                                      if compiled.get("available") else "n/a: %s" % compiled.get("reason", "not run")),
             "- environment: %s" % (", ".join("%s=%s" % kv for kv in sorted(m["environment"].items())) or "none"),
             "- data: %s, resident on the device; model `%s` (%d parameters)" % (
                 hd["data"], hd["spec"], hd["param_count"]),
             "- timing: %s; median [min, max] of %d repeats after warm-up" % (hd["timing"], hd["settings"]["repeats"]),
             "- floor: %.4g FLOPs forward + %.4g backward per image; peak FP32 %s GFLOP/s (%s)" % (
                 hd["floor"]["flops_forward_per_image"], hd["floor"]["flops_backward_per_image"], fmt(peak, 1),
                 hd["floor"]["peak_method"] if hd["floor"].get("peak_gflops") else
                 "PyTorch's " + (torch_ref or {}).get("floor", {}).get("peak_method", "n/a")),
             "- ratio = hd-gpu / PyTorch (medians): below 1 is better for 'lower' figures, above 1 for 'higher'",
             ""]
    if any(r.key.startswith("time_to_accuracy") for r in rows):
        lines.insert(-1, "- time to accuracy: hd-gpu `train` with its default recipe (augmentation, 10% validation "
                     "split, learning-rate schedule); PyTorch the plain Keras recipe (first 54,000 images shuffled "
                     "each epoch, batch 128, Adam 1e-3, no augmentation). 'launch to line': bench/run's clock from "
                     "starting the process to its time_to_accuracy_s line; 'as reported': the program's own figure")
    lines += table_lines(rows, True)
    if goals:
        lines += ["", "| target | value | met |", "|---|---:|---|"]
        lines += ["| %s | %s | %s |" % (g["target"], fmt(g["value"], 3),
                                        {True: "yes", False: "no", None: "n/a"}[g["met"]]) for g in goals]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hd", required=True, help="hd-gpu bench --json output")
    p.add_argument("--torch", help="pytorch_ref.py output")
    p.add_argument("--tta-target", type=float, help="time-to-accuracy target (with the two below)")
    p.add_argument("--tta-hd", help="hd-gpu train's 'time_to_accuracy_s=S epoch=N test_acc=X' line ('' if none)")
    p.add_argument("--tta-torch", help="pytorch_ref.py --time-to-accuracy output")
    p.add_argument("--tta-hd-wall", type=float, help="hd-gpu: seconds from launch to its line, timed by bench/run")
    p.add_argument("--tta-torch-wall", type=float, help="PyTorch: the same")
    p.add_argument("--results", help="directory for <date>-<device>.md/.json (none: print only)")
    a = p.parse_args()
    hd, torch_ref = load(a.hd), load(a.torch)
    tta = None
    if a.tta_target is not None:
        tta = {"target": a.tta_target, "hd_gpu": parse_tta_line(a.tta_hd or ""),
               "pytorch": ((load(a.tta_torch) or {}).get("time_to_accuracy") if a.tta_torch else None) or {}}
        tta["hd_gpu"]["wall_from_launch_s"] = a.tta_hd_wall
        tta["pytorch"]["wall_from_launch_s"] = a.tta_torch_wall
    rows, peak = build_rows(hd, torch_ref, tta)
    meta = machine(hd, torch_ref)
    goals = targets(hd, rows, tta)
    print("\n".join(table_lines(rows, False)))
    for g in goals:
        print("target: %s: %s (%s)" % (g["target"], fmt(g["value"], 3), {True: "met", False: "missed",
                                                                          None: "n/a"}[g["met"]]))
    if a.results:
        os.makedirs(a.results, exist_ok=True)
        base = os.path.join(a.results, "%s-%s" % (meta["date"][:10], device_slug(hd, meta["cores"])))
        with open(base + ".md", "w") as f:
            f.write(markdown(hd, torch_ref, rows, peak, meta, goals))
        with open(base + ".json", "w") as f:
            json.dump({"machine": meta, "rows": [r.as_json() for r in rows], "targets": goals, "peak_gflops": peak,
                       "hd_gpu": hd, "pytorch": torch_ref, "time_to_accuracy": tta}, f, indent=1)
            f.write("\n")
        print("wrote %s.md and %s.json" % (base, base))


if __name__ == "__main__":
    sys.exit(main())
