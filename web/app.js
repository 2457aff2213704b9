// app.js: the page of `hd-gpu serve`. Strokes drawn on #pad with pointer events (mouse, pen, touch) are
// sent to POST /api/predict as a PNG whenever they change: at most one request in flight, and the latest
// drawing sent as soon as it returns, so the answer follows the pen within a round trip (a few ms here).
'use strict';
(() => {
  const pad = document.getElementById('pad');
  const ctx = pad.getContext('2d');
  const penWidth = document.getElementById('pen-width');
  const prediction = document.getElementById('prediction');
  const preprocessed = document.getElementById('preprocessed');
  const hint = document.getElementById('hint');
  const emptyHint = document.getElementById('empty-hint');
  const status = document.getElementById('status');
  const bars = document.getElementById('bars');
  let lowConfidence = 0.5;
  let empty = true, drawing = false, last = null;
  let inFlight = false, dirty = false, generation = 0;

  // One bar a class: ten digits until /healthz says what the model's classes are (a fine-tuned model may have
  // another count, and names: --class-names).
  let pct = [], fill = [], rows = [], names = [];
  function makeBars(classNames) {
    names = classNames;
    pct = []; fill = []; rows = [];
    bars.textContent = '';
    classNames.forEach((name, d) => {
      const li = document.createElement('li');
      const label = document.createElement('span');
      label.textContent = name;
      li.appendChild(label);
      li.insertAdjacentHTML('beforeend', `<span class="bar"><span></span></span><span class="pct" id="prob-${d}"></span>`);
      bars.appendChild(li);
      rows.push(li);
      fill.push(li.querySelector('.bar span'));
      pct.push(li.querySelector('.pct'));
    });
  }
  makeBars(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);

  function clearPad() {
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, pad.width, pad.height);
    empty = true;
    generation++;
    dirty = false;
    showEmpty();
  }

  function showEmpty() {
    emptyHint.hidden = false;
    prediction.textContent = '';
    hint.textContent = '';
    status.textContent = '';
    preprocessed.removeAttribute('src');
    delete prediction.dataset.ms;
    for (let d = 0; d < pct.length; d++) {
      pct[d].textContent = '';
      fill[d].style.width = '0';
      rows[d].classList.remove('best');
    }
  }

  function show(answer) {
    const p = answer.probabilities;
    prediction.textContent = names[answer.label] ?? String(answer.label);
    for (let d = 0; d < pct.length; d++) {
      const v = d < p.length ? p[d] : 0;
      pct[d].textContent = (100 * v).toFixed(1) + '%';
      fill[d].style.width = (100 * v).toFixed(1) + '%';
      rows[d].classList.toggle('best', d === answer.label);
    }
    preprocessed.src = 'data:image/png;base64,' + answer.preprocessed;
    hint.textContent = p[answer.label] < lowConfidence
      ? `not sure (${(100 * p[answer.label]).toFixed(0)}%): try a larger, clearer digit` : '';
    status.textContent = '';
  }

  async function post(body, type) {
    const response = await fetch('/api/predict', {method: 'POST', headers: {'Content-Type': type}, body});
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    return answer;
  }

  // Sends the drawing if it changed; called on every stroke change and when a request returns.
  function request() {
    if (empty || inFlight || !dirty) return;
    dirty = false;
    inFlight = true;
    const sent = generation, start = performance.now();
    pad.toBlob(async (blob) => {
      try {
        const answer = await post(blob, 'image/png');
        if (sent === generation && !empty) {
          show(answer);
          // from the stroke's change to the answer on the page (the browser test prints it)
          prediction.dataset.ms = (performance.now() - start).toFixed(1);
        }
      } catch (e) {
        if (sent === generation && !empty) status.textContent = String(e.message || e);
      } finally {
        inFlight = false;
        request();
      }
    }, 'image/png');
  }

  function changed() {
    dirty = true;
    request();
  }

  function point(e) {
    const r = pad.getBoundingClientRect();
    return {x: (e.clientX - r.left) * pad.width / r.width, y: (e.clientY - r.top) * pad.height / r.height};
  }

  function dot(p) {
    ctx.beginPath();
    ctx.arc(p.x, p.y, penWidth.value / 2, 0, 2 * Math.PI);
    ctx.fill();
  }

  pad.addEventListener('pointerdown', (e) => {
    e.preventDefault();
    pad.setPointerCapture(e.pointerId);
    drawing = true;
    last = point(e);
    ctx.fillStyle = ctx.strokeStyle = '#000';
    ctx.lineWidth = penWidth.value;
    ctx.lineCap = ctx.lineJoin = 'round';
    dot(last);
    if (empty) {
      empty = false;
      emptyHint.hidden = true;
    }
    changed();
  });
  pad.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    e.preventDefault();
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    ctx.beginPath();
    ctx.moveTo(last.x, last.y);
    for (const c of (events.length ? events : [e])) {
      last = point(c);
      ctx.lineTo(last.x, last.y);
    }
    ctx.stroke();
    changed();
  });
  const end = (e) => {
    if (!drawing) return;
    drawing = false;
    if (pad.hasPointerCapture(e.pointerId)) pad.releasePointerCapture(e.pointerId);
    changed();
  };
  pad.addEventListener('pointerup', end);
  pad.addEventListener('pointercancel', end);
  // No page scroll or zoom while a finger draws (touch-action: none does it too, where supported).
  pad.addEventListener('touchstart', (e) => e.preventDefault(), {passive: false});
  pad.addEventListener('touchmove', (e) => e.preventDefault(), {passive: false});

  document.getElementById('clear').addEventListener('click', clearPad);

  document.getElementById('upload').addEventListener('change', async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    clearPad();
    emptyHint.hidden = true;
    const sent = generation, start = performance.now();
    try {
      const answer = await post(file, file.type || 'image/unknown');
      if (sent === generation) {
        show(answer);
        prediction.dataset.ms = (performance.now() - start).toFixed(1);
      }
    } catch (err) {
      if (sent === generation) status.textContent = String(err.message || err);
    }
    e.target.value = '';
  });

  fetch('/healthz').then((r) => r.json()).then((h) => {
    lowConfidence = h.low_confidence;
    if (Array.isArray(h.model.class_names) && h.model.class_names.join() !== names.join()) {
      makeBars(h.model.class_names.map(String));
      if (empty) showEmpty();
    }
    const acc = h.model.test_accuracy;
    const line = document.getElementById('model');
    line.textContent = `${h.model.spec} on ${h.device.split(' (')[0]}` +
      (acc === null ? '' : `, test accuracy ${(100 * acc).toFixed(2)}%`);
    line.title = `${h.model.path}: ${h.model.parameters} parameters on ${h.device}`;
  }).catch(() => {});

  clearPad();
})();
