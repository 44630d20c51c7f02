// SPDX-License-Identifier: MIT
// Independent GGUF reader for whale's tests: parses FILE with @huggingface/gguf
// and prints one JSON object: version, data offset, every key/value in file
// order with its type numbers, and every tensor info. 64-bit integers (and
// offsets) are printed as decimal strings so that no precision is lost.
import { gguf } from "@huggingface/gguf";

const file = process.argv[2];
if (!file) {
  console.error("usage: node dump.mjs FILE.gguf");
  process.exit(2);
}

const big = (_k, v) => (typeof v === "bigint" ? v.toString() : v);

try {
  const r = await gguf(file, { allowLocalFile: true, typedMetadata: true });
  const header = new Set(["version", "tensor_count", "kv_count"]);
  const kv = [];
  for (const [key, e] of Object.entries(r.typedMetadata)) {
    if (header.has(key)) continue;
    kv.push({ key, type: e.type, subType: e.subType ?? null, value: e.value });
  }
  const out = {
    version: r.metadata.version,
    tensor_count: r.metadata.tensor_count,
    kv_count: r.metadata.kv_count,
    littleEndian: r.littleEndian,
    tensorDataOffset: r.tensorDataOffset,
    kv,
    tensors: r.tensorInfos.map((t) => ({
      name: t.name,
      n_dims: t.n_dims,
      shape: t.shape,
      dtype: t.dtype,
      offset: t.offset,
    })),
  };
  process.stdout.write(JSON.stringify(out, big) + "\n");
} catch (e) {
  console.error(`dump.mjs: ${file}: ${e.message}`);
  process.exit(1);
}
