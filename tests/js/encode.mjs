// SPDX-License-Identifier: MIT
// Token ids of @lenml/tokenizers (a port of Hugging Face tokenizers) for
// any tokenizer directory, e.g. one whale tokenizer-train wrote: reads
// MODEL_DIR/tokenizer.json (+ tokenizer_config.json if present) and IN, one
// JSON string per line, and writes OUT, the ids of each line as a JSON
// array (no special tokens added), the same format `whale tokenize --jsonl`
// prints.
// Usage: node tests/js/encode.mjs MODEL_DIR IN.jsonl OUT.jsonl
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TokenizerLoader } from "@lenml/tokenizers";

const [dir, input, output] = process.argv.slice(2);
if (!dir || !input || !output) {
  console.error("usage: node encode.mjs MODEL_DIR IN.jsonl OUT.jsonl");
  process.exit(2);
}
const cfgPath = join(dir, "tokenizer_config.json");
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")),
  tokenizerConfig: existsSync(cfgPath) ? JSON.parse(readFileSync(cfgPath, "utf8")) : {},
});
const lines = readFileSync(input, "utf8").split("\n").filter((l) => l.length > 0);
const ids = lines.map((l) => JSON.stringify(tok.encode(JSON.parse(l), { add_special_tokens: false })));
writeFileSync(output, ids.map((l) => l + "\n").join(""));
