// SPDX-License-Identifier: MIT
// The official `openai` npm client against a running `whale serve` that
// holds tests/serve_model.sh's model:
//   node openai_client.mjs URL [API_KEY]
// Chat, non-streamed and streamed, gives the memorised thinking in
// reasoning_content (on the message, and in stream deltas that all come
// before the answer's) and the answer in content; usage carries DeepSeek's
// context-caching counts and the reasoning tokens, and the same request
// again is served partly from the prefix cache. Completions continue a
// plain prompt. An unknown model is a 404 APIError, a wrong key a 401.
// Exit 0 when every check holds, else 1 with the first failure.
import OpenAI from 'openai';

const url = (process.argv[2] || process.env.WHALE_SERVE_URL || '').replace(/\/$/, '');
const key = process.argv[3] || process.env.WHALE_API_KEY || 'none';

/* What the fixture model memorised (tests/serve_model.sh). */
const HI = { user: 'Hi', reasoning: 'I should greet back.', content: 'Hello! How can I help?' };
const STORY = { prompt: 'Once upon a time', text: ' there was a whale.' };

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}
function eq(actual, expected, what) {
  check(JSON.stringify(actual) === JSON.stringify(expected),
    `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

/* DeepSeek's usage fields, consistent with each other. */
function checkUsage(u, what, { reasoning = false } = {}) {
  check(u, `${what}: no usage`);
  for (const f of ['prompt_tokens', 'completion_tokens', 'total_tokens', 'prompt_cache_hit_tokens',
    'prompt_cache_miss_tokens'])
    check(Number.isInteger(u[f]) && u[f] >= 0, `${what}: usage.${f} is ${u[f]}`);
  check(u.prompt_tokens > 0 && u.completion_tokens > 0, `${what}: usage ${JSON.stringify(u)}`);
  eq(u.total_tokens, u.prompt_tokens + u.completion_tokens, `${what}: total_tokens`);
  eq(u.prompt_cache_hit_tokens + u.prompt_cache_miss_tokens, u.prompt_tokens,
    `${what}: cache hit + miss tokens`);
  const r = u.completion_tokens_details && u.completion_tokens_details.reasoning_tokens;
  check(Number.isInteger(r), `${what}: no completion_tokens_details.reasoning_tokens`);
  if (reasoning)
    check(r > 0 && r < u.completion_tokens, `${what}: reasoning_tokens ${r} of ${u.completion_tokens}`);
}

async function chat(client, model) {
  const req = { model, messages: [{ role: 'user', content: HI.user }], temperature: 0 };
  const a = await client.chat.completions.create(req);
  eq(a.object, 'chat.completion', 'object');
  check(typeof a.id === 'string' && a.id.length > 0, `id: ${a.id}`);
  eq(a.model, model, 'model');
  eq(a.choices.length, 1, 'choices');
  const m = a.choices[0].message;
  eq(m.role, 'assistant', 'role');
  eq(m.reasoning_content, HI.reasoning, 'message.reasoning_content');
  eq(m.content, HI.content, 'message.content');
  eq(a.choices[0].finish_reason, 'stop', 'finish_reason');
  checkUsage(a.usage, 'chat', { reasoning: true });

  /* the same prompt again: its prefix comes from the context cache */
  const b = await client.chat.completions.create(req);
  eq(b.choices[0].message.content, HI.content, 'content of the repeated request');
  checkUsage(b.usage, 'repeated chat', { reasoning: true });
  check(b.usage.prompt_cache_hit_tokens > 0,
    `the repeated request should hit the cache: usage ${JSON.stringify(b.usage)}`);
  eq(b.usage.prompt_tokens, a.usage.prompt_tokens, 'prompt_tokens of the repeated request');
  return a;
}

async function chatStream(client, model, full) {
  const stream = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: HI.user }], temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let reasoning = '', content = '', finish = null, usage = null, chunks = 0, role = null;
  for await (const c of stream) {
    chunks++;
    eq(c.object, 'chat.completion.chunk', 'chunk object');
    if (c.usage) {
      usage = c.usage;
      eq(c.choices, [], 'choices of the usage chunk');
      continue;
    }
    check(!usage, 'a chunk after the usage chunk');
    const d = c.choices[0].delta;
    if (d.role) role = d.role;
    if (d.reasoning_content) {
      check(!content, `reasoning_content after content began: ${JSON.stringify(d)}`);
      reasoning += d.reasoning_content;
    }
    if (d.content) content += d.content;
    if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
  }
  eq(role, 'assistant', 'delta.role');
  eq(reasoning, HI.reasoning, 'streamed reasoning_content');
  eq(content, HI.content, 'streamed content');
  eq(finish, 'stop', 'streamed finish_reason');
  check(chunks > 3, `only ${chunks} chunks: not streamed`);
  checkUsage(usage, 'streamed chat', { reasoning: true });
  eq(usage.completion_tokens, full.usage.completion_tokens, 'streamed completion_tokens');
  eq(usage.completion_tokens_details.reasoning_tokens,
    full.usage.completion_tokens_details.reasoning_tokens, 'streamed reasoning_tokens');

  /* max_tokens cuts the answer: finish_reason "length" */
  const short = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: HI.user }], temperature: 0, max_tokens: 3,
  });
  eq(short.choices[0].finish_reason, 'length', 'finish_reason with max_tokens 3');
  eq(short.usage.completion_tokens, 3, 'completion_tokens with max_tokens 3');
}

async function completions(client, model) {
  const a = await client.completions.create({ model, prompt: STORY.prompt, temperature: 0, max_tokens: 40 });
  eq(a.object, 'text_completion', 'completion object');
  check(a.choices[0].text.startsWith(STORY.text), `completion text: ${JSON.stringify(a.choices[0].text)}`);
  checkUsage(a.usage, 'completion');
  const stream = await client.completions.create({
    model, prompt: STORY.prompt, temperature: 0, max_tokens: 40, stream: true,
  });
  let text = '';
  for await (const c of stream) if (c.choices.length) text += c.choices[0].text || '';
  eq(text, a.choices[0].text, 'streamed completion text');
}

async function errors(client, model) {
  try {
    await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'Hi' }] });
    throw new Error('an unknown model was accepted');
  } catch (e) {
    check(e instanceof OpenAI.APIError, `unknown model: not an APIError: ${e}`);
    eq(e.status, 404, 'status for an unknown model');
    check(/no-such-model/.test(e.message), `the error should name the model: ${e.message}`);
  }
  if (key === 'none') return;
  const wrong = new OpenAI({ baseURL: url + '/v1', apiKey: key + '-wrong', maxRetries: 0 });
  try {
    await wrong.models.list();
    throw new Error('a wrong API key was accepted');
  } catch (e) {
    check(e instanceof OpenAI.AuthenticationError, `wrong key: expected a 401, got ${e.status}: ${e.message}`);
  }
}

async function main() {
  if (!url) throw new Error('usage: node openai_client.mjs URL [API_KEY]');
  const client = new OpenAI({ baseURL: url + '/v1', apiKey: key, maxRetries: 0, timeout: 60000 });
  const models = await client.models.list();
  check(models.data.length === 1, `models: ${JSON.stringify(models.data)}`);
  const model = models.data[0].id;
  const full = await chat(client, model);
  await chatStream(client, model, full);
  await completions(client, model);
  await errors(client, model);
}

main().then(() => console.log('openai_client.mjs: ok'), (e) => {
  console.error('openai_client.mjs: ' + (e.message || e));
  process.exit(1);
});
