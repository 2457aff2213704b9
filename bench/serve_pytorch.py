#!/usr/bin/env python3
"""serve_pytorch.py: what a user would otherwise write to serve an hd-gpu model: Python's http.server
(ThreadingHTTPServer, one thread per connection, keep-alive) with the model in PyTorch, loaded from our
safetensors checkpoint with json + struct + torch.frombuffer (no safetensors package). bench/serve
drives it beside `hd-gpu serve` with the same requests.

POST /api/predict with 784 grey bytes (application/octet-stream, a 28x28 MNIST image) ->
{"label": d, "probabilities": [...], "ms": t}, one forward pass per request.
    serve_pytorch.py CHECKPOINT [PORT]     (PORT 0: any free port; prints "listening on http://HOST:PORT/")
The model is the default keras spec: conv 32 3x3 relu, max-pool 2, conv 64 3x3 relu, max-pool 2, flatten,
dense 128 relu, dropout (identity here), dense 10; tensors conv1, conv2, dense1, dense2."""
import json
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch
import torch.nn.functional as F

KERAS_SPEC = "conv:32:3:relu,maxpool:2,conv:64:3:relu,maxpool:2,flatten,dense:128:relu,dropout:0.5,dense:10"


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    meta = header.pop("__metadata__", {})
    base = 8 + header_len
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {t['dtype']}, expected F32")
        begin, end = t["data_offsets"]
        tensors[name] = torch.frombuffer(bytearray(data[base + begin:base + end]),
                                         dtype=torch.float32).reshape(t["shape"])
    return tensors, meta


class Model:
    def __init__(self, path):
        self.w, meta = load_safetensors(path)
        if meta.get("hd.spec") != KERAS_SPEC:
            raise SystemExit(f"{path}: spec {meta.get('hd.spec')}, this server runs {KERAS_SPEC}")
        self.mean = float(meta.get("hd.input_mean", 0.0))
        self.std = float(meta.get("hd.input_std", 1.0))

    @torch.no_grad()
    def probabilities(self, x):
        w = self.w
        x = (x - self.mean) / self.std
        x = F.max_pool2d(F.relu(F.conv2d(x, w["conv1.weight"], w["conv1.bias"])), 2)
        x = F.max_pool2d(F.relu(F.conv2d(x, w["conv2.weight"], w["conv2.bias"])), 2)
        x = F.relu(F.linear(torch.flatten(x, 1), w["dense1.weight"], w["dense1.bias"]))
        return torch.softmax(F.linear(x, w["dense2.weight"], w["dense2.bias"]), dim=1)[0]


def handler_for(model):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects

        def log_message(self, *args):
            pass

        def answer(self, status, obj):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            start = time.perf_counter()
            length = int(self.headers.get("Content-Length", 0))
            if self.path != "/api/predict":
                return self.answer(404, {"error": "no such path"})
            if length != 784:
                self.rfile.read(min(length, 1 << 22))
                return self.answer(400, {"error": "expected 784 bytes"})
            raw = self.rfile.read(784)
            x = torch.frombuffer(bytearray(raw), dtype=torch.uint8).float().div(255).reshape(1, 1, 28, 28)
            p = model.probabilities(x)
            self.answer(200, {"label": int(p.argmax()), "probabilities": p.tolist(),
                              "ms": 1e3 * (time.perf_counter() - start)})

    return Handler


def main():
    path = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 8081
    server = ThreadingHTTPServer(("127.0.0.1", port), handler_for(Model(path)))
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/ (torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
