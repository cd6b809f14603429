// onnx_check.mjs runs clipgo's exported encoders (clipgo export --format onnx) under
// onnxruntime-node and compares their outputs with clipgo's on the same inputs: the independent
// check that the ONNX graphs compute what clipgo's inference path computes.
//
//   node onnx_check.mjs --dir DIR --case CASE.json [--tol 1e-5]
//
// DIR holds image_encoder.onnx and text_encoder.onnx. CASE.json (written by fusion/onnx's test)
// holds the inputs and clipgo's outputs:
//   {"pixel_values": {"shape": [n,3,S,S], "data": [...]}, "image_embeds": [...],
//    "input_ids": {"shape": [n,L], "data": [...]}, "text_embeds": [...]}
// It prints one JSON line {"onnxruntime": version, "image_max_abs": x, "text_max_abs": y,
// "tol": t, "pass": bool} and exits 1 when either difference is over tol (2 on a usage or run
// error).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';

function fail(msg) {
  console.error(`onnx_check: ${msg}`);
  process.exit(2);
}

const { values: args } = parseArgs({
  options: { dir: { type: 'string' }, case: { type: 'string' }, tol: { type: 'string', default: '1e-5' } },
});
if (!args.dir || !args.case) fail('usage: node onnx_check.mjs --dir DIR --case CASE.json [--tol 1e-5]');
const tol = Number(args.tol);
if (!(tol >= 0)) fail(`--tol ${args.tol} is not a non-negative number`);

const c = JSON.parse(readFileSync(args.case, 'utf8'));

// run feeds one tensor to the model at path and returns its one output's values.
async function run(path, inputName, tensor, outputName) {
  const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
  const out = await session.run({ [inputName]: tensor });
  if (!(outputName in out)) fail(`${path} has no output ${outputName} (has ${Object.keys(out)})`);
  return out[outputName];
}

// maxAbs is the largest |a[i] − b[i]|, after checking the lengths agree.
function maxAbs(got, want, what) {
  if (got.length !== want.length) fail(`${what}: onnxruntime gave ${got.length} values, clipgo ${want.length}`);
  let m = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (Number.isNaN(d)) return NaN; // JSON writes it as null: a failure, never a pass
    if (d > m) m = d;
  }
  return m;
}

try {
  const px = c.pixel_values;
  const img = await run(join(args.dir, 'image_encoder.onnx'), 'pixel_values',
    new ort.Tensor('float32', Float32Array.from(px.data), px.shape), 'image_embeds');
  const ids = c.input_ids;
  const txt = await run(join(args.dir, 'text_encoder.onnx'), 'input_ids',
    new ort.Tensor('int64', BigInt64Array.from(ids.data, BigInt), ids.shape), 'text_embeds');
  const imageMax = maxAbs(img.data, c.image_embeds, 'image_embeds');
  const textMax = maxAbs(txt.data, c.text_embeds, 'text_embeds');
  const pass = imageMax <= tol && textMax <= tol;
  console.log(JSON.stringify({
    onnxruntime: ort.env.versions?.node ?? 'unknown', image_shape: img.dims, text_shape: txt.dims,
    image_max_abs: imageMax, text_max_abs: textMax, tol, pass,
  }));
  process.exit(pass ? 0 : 1);
} catch (e) {
  fail(e?.stack ?? String(e));
}
