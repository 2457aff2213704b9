#!/usr/bin/env python3
# serve_browser_test.py: `hd-gpu serve` in a real browser. Headless Chromium (Debian's chromium,
# chromium-driver, python3-selenium: HD_WITH_BROWSER=1 scripts/install-deps) opens the page, draws digits
# on #pad with pointer events (a mouse at desktop width, then a finger with touch emulation at phone width,
# 390 px), uploads an image through the upload box, and reads #prediction and #prob-0..#prob-9. Saves a screenshot of the page with a recognised
# digit. Exits 77 (skipped) only when the browser or its driver is not installed, saying so.
#   serve_browser_test.py HD_GPU_BINARY MODEL SCREENSHOT.png
import os
import shutil
import subprocess
import sys
import time

def skip(why):
    print(f"serve_browser_test: SKIP: {why} (install with HD_WITH_BROWSER=1 scripts/install-deps)")
    sys.exit(77)

def fail(why):
    print(f"serve_browser_test: FAIL: {why}")
    sys.exit(1)

binary, model, screenshot = sys.argv[1:4]
HANDDRAWN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "handdrawn")
if not os.path.exists(os.path.join(model, "best.safetensors")):
    mnist = os.environ.get("HD_TEST_DATA_DIR", "")
    if not os.path.exists(os.path.join(mnist, "train-images-idx3-ubyte")):
        print(f"serve_browser_test: SKIP: no model to serve ({model}), since there is no MNIST to train it on")
        sys.exit(77)
    fail(f"no model at {model} (the serve_model test makes it)")
chromium = shutil.which("chromium")
driver_path = shutil.which("chromedriver")
if not chromium:
    skip("no chromium")
if not driver_path:
    skip("no chromedriver (Debian: chromium-driver)")
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    skip("no selenium (Debian: python3-selenium)")

# The server, on a free port it prints.
server = subprocess.Popen([binary, "serve", "--model", model, "--port", "0", "--device", "cpu", "--quiet"],
                          stdout=subprocess.PIPE, text=True)
url = None
for line in server.stdout:
    if line.startswith("listening on "):
        url = line.split()[2]
        break
if not url:
    server.kill()
    fail(f"hd-gpu serve printed no URL (exit {server.wait()})")
print(f"serve_browser_test: server at {url}")

def browser(phone):
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    if phone:
        options.add_experimental_option("mobileEmulation", {
            "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0, "touch": True},
            "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/156.0 Mobile Safari/537.36"})
    else:
        options.add_argument("--window-size=900,760")
    return webdriver.Chrome(service=Service(driver_path), options=options)

def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text.strip()

# Strokes in the pad's own coordinates (0..1 of its width and height).
DIGITS = {
    "1": [[(0.52, 0.15), (0.50, 0.50), (0.48, 0.85)]],
    "7": [[(0.25, 0.18), (0.75, 0.18), (0.62, 0.45), (0.45, 0.85)]],
    "0": [[(0.5 + 0.22 * __import__("math").sin(a / 12 * 6.2832), 0.5 - 0.32 * __import__("math").cos(a / 12 * 6.2832))
           for a in range(13)]],
}

def draw(driver, digit, kind):
    pad = driver.find_element(By.ID, "pad")
    w, h = pad.size["width"], pad.size["height"]
    finger = PointerInput(kind, "finger" if kind == interaction.POINTER_TOUCH else "mouse")
    actions = ActionBuilder(driver, mouse=finger, duration=16)
    for stroke in DIGITS[digit]:
        points = []
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
            points += [(x0 + (x1 - x0) * t / 8, y0 + (y1 - y0) * t / 8) for t in range(8)]
        points.append(stroke[-1])
        # selenium 4.8 offsets are from the element's centre
        x, y = points[0]
        actions.pointer_action.move_to(pad, int((x - 0.5) * w), int((y - 0.5) * h))
        actions.pointer_action.pointer_down()
        for x, y in points[1:]:
            actions.pointer_action.move_to(pad, int((x - 0.5) * w), int((y - 0.5) * h))
        actions.pointer_action.pointer_up()
    actions.perform()

def read_answer(driver, expected):
    try:
        WebDriverWait(driver, 15).until(lambda d: text(d, "prediction") != "")
        # the answer for the whole drawing (the last request) may come a moment after the first one
        time.sleep(0.3)
    except Exception:
        fail(f"#prediction stayed empty after drawing a {expected} (status: {text(driver, 'status')!r})")
    label = text(driver, "prediction")
    probs = []
    for d in range(10):
        t = text(driver, f"prob-{d}")
        if not t.endswith("%"):
            fail(f"#prob-{d} holds {t!r}, expected a percentage")
        probs.append(float(t[:-1]))
    if abs(sum(probs) - 100) > 1.5:
        fail(f"#prob-0..9 sum to {sum(probs):.1f}%, expected 100%")
    top = max(range(10), key=lambda d: probs[d])
    if str(top) != label:
        fail(f"#prediction says {label} but the largest bar is {top} ({probs})")
    if label != expected:
        fail(f"drew a {expected}, the page says {label} ({probs})")
    ms = driver.find_element(By.ID, "prediction").get_attribute("data-ms")
    took = f", {ms} ms from the drawing's (or upload's) change to the answer shown" if ms else ""
    print(f"serve_browser_test: {expected}: #prediction {label}, #prob-{label} {probs[top]:.1f}%{took}")
    return probs

def check_empty(driver, when):
    if text(driver, "prediction") != "":
        fail(f"{when}: #prediction is {text(driver, 'prediction')!r}, expected empty")
    if text(driver, "empty-hint") != "draw a digit":
        fail(f"{when}: the empty canvas does not say 'draw a digit'")

status = 0
try:
    # ---- desktop, mouse ----
    d = browser(phone=False)
    try:
        d.get(url)
        WebDriverWait(d, 10).until(lambda drv: drv.find_element(By.ID, "pad").is_displayed())
        check_empty(d, "desktop page on load")
        draw(d, "7", interaction.POINTER_MOUSE)
        read_answer(d, "7")
        src = d.find_element(By.ID, "preprocessed").get_attribute("src")
        if not src.startswith("data:image/png;base64,iVBOR"):
            fail(f"#preprocessed shows {src[:40]!r}, expected the base64 PNG the server sent")
        os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
        d.save_screenshot(screenshot)
        print(f"serve_browser_test: screenshot {screenshot}")
        d.find_element(By.ID, "clear").click()
        check_empty(d, "after Clear")
        draw(d, "0", interaction.POINTER_MOUSE)
        read_answer(d, "0")
        # the upload box: a hand-drawn photo-like PNG (dark ink on light paper)
        d.find_element(By.ID, "clear").click()
        d.find_element(By.ID, "upload").send_keys(os.path.join(HANDDRAWN, "seven.png"))
        read_answer(d, "7")
    finally:
        d.quit()
    # ---- phone width, touch ----
    p = browser(phone=True)
    try:
        p.get(url)
        WebDriverWait(p, 10).until(lambda drv: drv.find_element(By.ID, "pad").is_displayed())
        width = p.execute_script("return window.innerWidth")
        if width != 390:
            fail(f"phone emulation: window.innerWidth {width}, expected 390")
        if p.execute_script("return getComputedStyle(document.getElementById('pad')).touchAction") != "none":
            fail("#pad does not have touch-action: none")
        if not p.execute_script("return !!document.querySelector('meta[name=viewport]')"):
            fail("no viewport meta tag")
        pad_width = p.find_element(By.ID, "pad").size["width"]
        if pad_width > 390:
            fail(f"#pad is {pad_width} px wide on a 390 px screen")
        check_empty(p, "phone page on load")
        p.execute_script("window.scrollTo(0, 0)")
        draw(p, "1", interaction.POINTER_TOUCH)
        read_answer(p, "1")
        p.save_screenshot(screenshot.replace(".png", "-phone.png"))
        scrolled = p.execute_script("return window.scrollY")
        if scrolled != 0:
            fail(f"the page scrolled by {scrolled} px while a finger drew")
    finally:
        p.quit()
    # the server is still answering
    import urllib.request
    with urllib.request.urlopen(url + "healthz", timeout=10) as r:
        if r.status != 200:
            fail(f"/healthz answered {r.status} after the browser test")
finally:
    server.terminate()
    try:
        code = server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        fail("hd-gpu serve did not stop within 20 s of SIGTERM")
if code != 0:
    fail(f"hd-gpu serve exited {code} after SIGTERM, expected 0")
print("serve_browser_test: ok")
