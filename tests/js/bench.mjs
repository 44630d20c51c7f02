// SPDX-License-Identifier: MIT
// Encode throughput of the JavaScript oracle (@lenml/tokenizers), for
// bench/tokenizer.sh to print beside whale's. Reads MODEL_DIR/tokenizer.json
// (+ tokenizer_config.json) and FILE, encodes the whole file as one text
// (no special tokens added) RUNS times after a warm-up on its first 100 kB,
// and prints "MB/s TOKENS": the median speed (the timer covers the encode
// call only) and the token count.
// Usage: node tests/js/bench.mjs MODEL_DIR FILE [RUNS]
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TokenizerLoader } from "@lenml/tokenizers";

const [dir, file, runsArg] = process.argv.slice(2);
if (!dir || !file) {
  console.error("usage: node bench.mjs MODEL_DIR FILE [RUNS]");
  process.exit(2);
}
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")),
  tokenizerConfig: JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")),
});
const buf = readFileSync(file);
const text = buf.toString("utf8");
tok.encode(text.slice(0, 100000), { add_special_tokens: false });
const speeds = [];
let n = 0;
for (let i = 0; i < Number(runsArg || 3); i++) {
  const t0 = performance.now();
  n = tok.encode(text, { add_special_tokens: false }).length;
  speeds.push(buf.length / ((performance.now() - t0) / 1000) / 1e6);
}
speeds.sort((a, b) => a - b);
console.log(`${speeds[Math.floor(speeds.length / 2)].toFixed(2)} ${n}`);
