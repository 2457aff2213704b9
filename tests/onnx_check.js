// onnx_check.js: runs an exported model in ONNX Runtime (onnxruntime-node) on every image of an MNIST
// test set and compares it with hd-gpu's own logits, image by image.
//   node onnx_check.js MODEL.onnx IMAGES_IDX REF_LOGITS_F32 logits|probabilities ATOL RTOL [ties]
// The images are scaled as README says (each IDX byte / 255) here, outside the model. Passes (exit 0)
// when every output is within |ort - ref| <= ATOL + RTOL * |ref| and ORT's predicted label equals
// hd-gpu's on every image; with "probabilities" the reference is the softmax of hd-gpu's logits.
// With "ties" (for untrained models, whose top two outputs can be closer than float rounding), an image
// whose top two reference outputs are within ATOL of each other may take either label; they are counted.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function fail(msg) {
    console.error(`onnx_check: ${msg}`);
    process.exit(1);
}

function readImages(path) {
    const b = fs.readFileSync(path);
    if (b.length < 16 || b.readUInt32BE(0) !== 0x803) fail(`${path}: not an IDX images file`);
    const count = b.readUInt32BE(4), rows = b.readUInt32BE(8), cols = b.readUInt32BE(12);
    if (b.length !== 16 + count * rows * cols) fail(`${path}: length does not match ${count}x${rows}x${cols}`);
    const x = new Float32Array(count * rows * cols);
    for (let i = 0; i < x.length; i++) x[i] = b[16 + i] / 255;
    return {count, rows, cols, x};
}

function argmax(a, off, n) {
    let best = 0;
    for (let j = 1; j < n; j++) if (a[off + j] > a[off + best]) best = j;
    return best;
}

async function main() {
    const [modelPath, imagesPath, refPath, kind, atolText, rtolText, tiesText] = process.argv.slice(2);
    const allowTies = tiesText === 'ties';
    if (!rtolText || (kind !== 'logits' && kind !== 'probabilities'))
        fail('usage: node onnx_check.js MODEL IMAGES REF logits|probabilities ATOL RTOL');
    const atol = Number(atolText), rtol = Number(rtolText);
    const images = readImages(imagesPath);
    const refBytes = fs.readFileSync(refPath);
    const ref = new Float32Array(refBytes.buffer, refBytes.byteOffset, refBytes.length / 4);
    const classes = ref.length / images.count;
    if (!Number.isInteger(classes) || classes < 2) fail(`${refPath}: ${ref.length} floats for ${images.count} images`);
    const expected = Float64Array.from(ref);
    if (kind === 'probabilities') {
        for (let i = 0; i < images.count; i++) {
            const o = i * classes;
            let max = -Infinity, sum = 0;
            for (let j = 0; j < classes; j++) max = Math.max(max, ref[o + j]);
            for (let j = 0; j < classes; j++) sum += (expected[o + j] = Math.exp(ref[o + j] - max));
            for (let j = 0; j < classes; j++) expected[o + j] /= sum;
        }
    }

    const session = await ort.InferenceSession.create(modelPath);
    if (session.inputNames.join() !== 'input' || session.outputNames.join() !== kind)
        fail(`${modelPath}: inputs [${session.inputNames}] outputs [${session.outputNames}], expected [input] [${kind}]`);
    const image = images.rows * images.cols;
    let maxAbs = 0, outside = 0, labelsDiffer = 0, done = 0, minMargin = Infinity, ties = 0;
    // Batches of 1, 999 and then 1000 images: the batch dimension is dynamic.
    for (let begin = 0; begin < images.count; begin = done) {
        const n = Math.min(begin === 0 ? 1 : begin === 1 ? 999 : 1000, images.count - begin);
        const input = new ort.Tensor('float32', images.x.subarray(begin * image, (begin + n) * image),
                                     [n, 1, images.rows, images.cols]);
        const result = (await session.run({input}))[kind];
        if (result.dims.join() !== `${n},${classes}`) fail(`output dims [${result.dims}], expected [${n},${classes}]`);
        const got = result.data;
        for (let i = 0; i < n; i++) {
            const o = (begin + i) * classes;
            for (let j = 0; j < classes; j++) {
                const want = expected[o + j], diff = Math.abs(got[i * classes + j] - want);
                maxAbs = Math.max(maxAbs, diff);
                if (!(diff <= atol + rtol * Math.abs(want))) {
                    if (outside < 5) console.error(`image ${begin + i} class ${j}: onnx ${got[i * classes + j]}, hd-gpu ${want}`);
                    outside++;
                }
            }
            const label = argmax(expected, o, classes), ortLabel = argmax(got, i * classes, classes);
            const tie = allowTies && ortLabel !== label && expected[o + label] - expected[o + ortLabel] < atol;
            ties += tie;
            if (ortLabel !== label && !tie) {
                if (labelsDiffer < 5) console.error(`image ${begin + i}: onnx predicts ${ortLabel}, hd-gpu ${label}`);
                labelsDiffer++;
            }
            for (let j = 0; j < classes; j++)
                if (j !== label) minMargin = Math.min(minMargin, expected[o + label] - expected[o + j]);
        }
        done = begin + n;
    }
    console.log(`onnx_check: ${modelPath}: ${images.count} images, ${kind}: max |onnx - hd-gpu| ${maxAbs.toExponential(2)} ` +
                `(tolerance ${atol} + ${rtol} |ref|), ${outside} values outside; labels equal on ` +
                `${images.count - labelsDiffer - ties}/${images.count}` + (allowTies ? ` (and ${ties} ties within ${atol})` : '') +
                `; smallest top-2 gap ${minMargin.toExponential(2)}`);
    process.exit(outside === 0 && labelsDiffer === 0 && done === images.count ? 0 : 1);
}

main().catch((e) => fail(e.message));
