# draw.py: makes the "hand-drawn" example digits (dark pen strokes on noisy light paper, 200x200 PNG)
# used to try `hd-gpu predict`. Pure Python: python3 draw.py OUTPUT_DIR
import math, random, struct, zlib, sys
def png(path, w, h, rows):
    raw = b''.join(b'\x00' + bytes(r) for r in rows)
    def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
def draw(strokes, path, seed):
    rnd = random.Random(seed); W = H = 200
    img = [[235 + rnd.randint(-8, 8) for _ in range(W)] for _ in range(H)]  # grey paper with noise
    for stroke in strokes:
        pts = []
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
            n = 60
            for i in range(n):
                t = i / n
                pts.append((x0 + (x1 - x0) * t + rnd.uniform(-0.6, 0.6), y0 + (y1 - y0) * t + rnd.uniform(-0.6, 0.6)))
        pts.append(stroke[-1])
        for (x, y) in pts:
            r = 9
            for yy in range(int(y - r), int(y + r) + 1):
                for xx in range(int(x - r), int(x + r) + 1):
                    if 0 <= xx < W and 0 <= yy < H:
                        d = math.hypot(xx - x, yy - y)
                        if d < r:
                            v = 40 + int(30 * d / r)
                            img[yy][xx] = min(img[yy][xx], v)
    png(path, W, H, img)
def arc(cx, cy, rx, ry, a0, a1, n=24):
    return [(cx + rx * math.cos(math.radians(a0 + (a1 - a0) * i / n)), cy + ry * math.sin(math.radians(a0 + (a1 - a0) * i / n))) for i in range(n + 1)]
out = sys.argv[1]
draw([[(50, 45), (150, 40), (95, 165)], [(80, 100), (125, 98)]], f"{out}/seven.png", 1)
draw([arc(100, 68, 42, 30, 200, 450) + arc(100, 132, 48, 36, -90, 160)], f"{out}/three.png", 2)
draw([[(95, 40), (105, 165)]], f"{out}/one.png", 3)
draw([arc(100, 100, 45, 62, 0, 360, 40)], f"{out}/zero.png", 4)
draw([[(120, 35), (45, 125), (155, 122)], [(125, 70), (118, 170)]], f"{out}/four.png", 5)
