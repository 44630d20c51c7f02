// SPDX-License-Identifier: MIT
// The web chat page (GET /) driven in Debian's chromium through
// playwright-core, against a running `whale serve`:
//   node page_chromium.mjs URL [API_KEY]
// With a key (the server started with --api-key): the page first has none
// and shows the 401 inline, then takes the key, keeps it across a reload
// and sends it as a Bearer token. Then a conversation: each answer streams
// into the page with its thinking in a .thinking block above it, and both
// are exactly what the API gives non-streamed for the same messages
// (temperature 0); the second turn's request carries the first turn's
// answer but not its thinking; Stop ends a stream; New chat clears the page
// and the history, also in the middle of a stream. The page's fetch is wrapped to hand it every response
// body in 61-byte pieces, so its event parser meets events split anywhere,
// and for the Stop check slowly (a tiny model's whole answer otherwise
// arrives before a click can land). Exit 0 when every check holds, else 1
// with the first failure.
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.WHALE_CHROMIUM || '/usr/bin/chromium';
const url = (process.argv[2] || process.env.WHALE_SERVE_URL || '').replace(/\/$/, '');
const key = process.argv[3] || process.env.WHALE_API_KEY || '';
const TIMEOUT_MS = 20000;

function fail(msg) {
  console.error('page_chromium.mjs: ' + msg);
  process.exit(1);
}
function check(cond, msg) {
  if (!cond) throw new Error(msg);
}
function eq(actual, expected, what) {
  check(JSON.stringify(actual) === JSON.stringify(expected),
    `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

if (!url) fail('usage: node page_chromium.mjs URL [API_KEY]');
if (!existsSync(CHROMIUM))
  fail(`no chromium at ${CHROMIUM}: install Debian's chromium (scripts/deps.sh installs it)`);

/* The answer the API gives non-streamed for these messages at temperature 0. */
async function apiAnswer(messages) {
  const res = await fetch(url + '/v1/chat/completions', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: 'Bearer ' + key } : {}) },
    body: JSON.stringify({ messages, temperature: 0 }),
  });
  if (!res.ok) throw new Error(`POST /v1/chat/completions: HTTP ${res.status}: ${await res.text()}`);
  const m = (await res.json()).choices[0].message;
  return { reasoning: m.reasoning_content || '', content: m.content || '' };
}

async function modelId() {
  const res = await fetch(url + '/v1/models', { headers: key ? { Authorization: 'Bearer ' + key } : {} });
  check(res.ok, `GET /v1/models: HTTP ${res.status}`);
  return (await res.json()).data[0].id;
}

/* Runs in the page before its own script: fetch's response bodies come in
 * 61-byte pieces, each after window.__pieceDelayMs; the request's abort
 * signal ends the pieces at once, as it would end a slow network read. */
function slicedFetch() {
  window.__pieceDelayMs = 0;
  const fetch0 = window.fetch;
  window.fetch = async (resource, init) => {
    const res = await fetch0(resource, init);
    const signal = init && init.signal;
    if (!res.body) return res;
    const sliced = res.body.pipeThrough(new TransformStream({
      async transform(chunk, out) {
        for (let i = 0; i < chunk.length; i += 61) {
          await new Promise((r) => setTimeout(r, window.__pieceDelayMs));
          if (signal && signal.aborted) throw signal.reason;
          out.enqueue(chunk.slice(i, i + 61));
        }
      },
    }));
    return new Response(sliced, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

const lastAssistant = '#messages .msg[data-role="assistant"]:last-child';

/* Type text, send it, wait for the assistant message to leave "streaming";
 * returns its state, thinking, answer and the request body the page sent. */
async function turn(page, sent, text, { stopAfterFirstText = false } = {}) {
  const before = sent.length;
  const replies = await page.locator('#messages .msg[data-role="assistant"]').count();
  await page.fill('#input', text);
  await page.click('#send');
  await page.waitForFunction((n) => document.querySelectorAll('#messages .msg[data-role="assistant"]').length > n,
    replies, { timeout: TIMEOUT_MS });
  if (stopAfterFirstText) {
    await page.locator('#stop').waitFor({ state: 'visible', timeout: TIMEOUT_MS });
    await page.locator(`${lastAssistant} .thinking-text, ${lastAssistant} .answer:not(:empty)`)
      .first().waitFor({ state: 'attached', timeout: TIMEOUT_MS });
    await page.click('#stop');
  }
  await page.waitForSelector(`${lastAssistant}:not([data-state="streaming"])`, { timeout: TIMEOUT_MS });
  const msg = page.locator(lastAssistant);
  const thinking = msg.locator('.thinking');
  const got = {
    state: await msg.getAttribute('data-state'),
    thinking: (await thinking.count()) ? await thinking.locator('.thinking-text').textContent() : null,
    thinkingOpen: (await thinking.count()) ? await thinking.evaluate((d) => d.open) : null,
    answer: await msg.locator('.answer').textContent(),
    error: (await msg.locator('.error').count()) ? await msg.locator('.error').textContent() : null,
    meta: await msg.locator('.meta').textContent(),
    request: sent.length > before ? sent[sent.length - 1] : null,
  };
  check(await page.locator('#stop').isHidden(), 'the Stop button is still shown after the turn');
  check(await page.locator('#send').isEnabled(), 'the Send button is not enabled after the turn');
  return got;
}

async function main() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.addInitScript(slicedFetch);
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const sent = []; /* the chat requests the page made: {body, auth} */
    page.on('request', (r) => {
      if (r.url().endsWith('/v1/chat/completions') && r.method() === 'POST')
        sent.push({ body: JSON.parse(r.postData() || 'null'), auth: r.headers().authorization || null });
    });

    const res = await page.goto(url + '/');
    check(res && res.status() === 200, `GET /: HTTP ${res && res.status()}`);
    check(/text\/html/.test(res.headers()['content-type'] || ''),
      `GET /: content-type ${res.headers()['content-type']}, expected text/html`);
    const id = await modelId();

    if (key) {
      /* no key yet: the model cannot be listed and a message fails inline */
      await page.waitForFunction(() => /unavailable/.test(document.getElementById('model').textContent),
        null, { timeout: TIMEOUT_MS });
      check(/401/.test(await page.textContent('#model')), `#model should name the 401: ${await page.textContent('#model')}`);
      const t = await turn(page, sent, 'Hi');
      eq(t.state, 'error', 'state of a turn without the API key');
      check(t.error && /401/.test(t.error), `the inline error should name HTTP 401, got ${t.error}`);
      eq(t.request.auth, null, 'Authorization header without a key');
      /* the key, from the settings field: kept, used, remembered */
      await page.click('#settings summary');
      await page.fill('#api-key', key);
      await page.press('#api-key', 'Tab'); /* commits the field (change event) */
      await page.waitForFunction((want) => document.getElementById('model').textContent === want, id,
        { timeout: TIMEOUT_MS });
      await page.reload();
      eq(await page.inputValue('#api-key'), key, 'the API key after a reload (localStorage)');
      eq(await page.locator('#messages > *').count(), 0, 'messages after a reload');
    }
    await page.waitForFunction((want) => document.getElementById('model').textContent === want, id,
      { timeout: TIMEOUT_MS });

    await page.click('#settings summary');
    await page.fill('#temperature', '0');
    await page.click('#settings summary');

    /* turn 1: thinking, then the answer, as the API gives them */
    const want1 = await apiAnswer([{ role: 'user', content: 'Hi' }]);
    check(want1.reasoning && want1.content, `the model should think and answer: ${JSON.stringify(want1)}`);
    const t1 = await turn(page, sent, 'Hi');
    eq(t1.state, 'done', 'state of turn 1');
    eq(t1.error, null, 'error of turn 1');
    eq(t1.thinking, want1.reasoning, 'thinking shown for turn 1');
    eq(t1.answer, want1.content, 'answer shown for turn 1');
    eq(t1.thinkingOpen, false, 'the thinking block folds once the answer is there');
    eq(t1.request.body.messages, [{ role: 'user', content: 'Hi' }], 'turn 1 messages');
    eq(t1.request.body.stream, true, 'stream');
    eq(t1.request.body.stream_options, { include_usage: true }, 'stream_options');
    eq(t1.request.body.temperature, 0, 'temperature from the settings');
    eq(t1.request.auth, key ? 'Bearer ' + key : null, 'Authorization header');
    check(/tok\/s/.test(t1.meta), `turn 1's meta line should give a speed: ${t1.meta}`);
    const speed = await page.textContent('#speed');
    check(/^\d+(\.\d+)? tok\/s$/.test(speed) && parseFloat(speed) > 0, `#speed: ${speed}`);

    /* turn 2: the history goes back with the answer, not the thinking */
    const msgs2 = [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: want1.content },
      { role: 'user', content: 'What is 2+2?' }];
    const want2 = await apiAnswer(msgs2);
    const t2 = await turn(page, sent, 'What is 2+2?');
    eq(t2.state, 'done', 'state of turn 2');
    eq(t2.request.body.messages, msgs2, 'turn 2 messages (the history, no thinking)');
    eq(t2.thinking, want2.reasoning || null, 'thinking shown for turn 2');
    eq(t2.answer, want2.content, 'answer shown for turn 2');
    eq(await page.locator('#messages .msg').count(), 4, 'messages on the page after two turns');

    /* New chat: an empty page and a history that starts again */
    await page.click('#new');
    eq(await page.locator('#messages > *').count(), 0, 'messages after New chat');
    eq(await page.textContent('#speed'), '–', '#speed after New chat');
    const t3 = await turn(page, sent, 'Hi');
    eq(t3.state, 'done', 'state of the first turn of a new chat');
    eq(t3.request.body.messages, [{ role: 'user', content: 'Hi' }], 'messages of a new chat');
    eq(t3.answer, want1.content, 'answer in a new chat');

    /* Stop, at the start of a chat (a memorised answer, so a long stream):
     * the stream is slowed to 61 bytes per 100 ms and cut after its first
     * text; what was shown of the answer, if anything, stays in the history */
    await page.click('#new');
    await page.evaluate(() => { window.__pieceDelayMs = 100; });
    const t4 = await turn(page, sent, 'Name a whale.', { stopAfterFirstText: true });
    await page.evaluate(() => { window.__pieceDelayMs = 0; });
    eq(t4.state, 'stopped', 'state of a stopped turn');
    check(/stopped/.test(t4.meta), `a stopped turn's meta line should say so: ${t4.meta}`);
    const t5 = await turn(page, sent, 'What is 2+2?');
    eq(t5.state, 'done', 'state of the turn after a stopped one');
    eq(t5.request.body.messages, [
      ...(t4.answer ? [{ role: 'user', content: 'Name a whale.' }, { role: 'assistant', content: t4.answer }] : []),
      { role: 'user', content: 'What is 2+2?' }], 'messages after a stopped turn');

    /* New chat in the middle of a (slowed) stream: the page empties at once
     * and the next message starts a conversation of its own */
    await page.evaluate(() => { window.__pieceDelayMs = 100; });
    await page.fill('#input', 'Name a whale.');
    await page.click('#send');
    await page.locator(`${lastAssistant} .thinking-text`).waitFor({ state: 'attached', timeout: TIMEOUT_MS });
    await page.click('#new');
    await page.evaluate(() => { window.__pieceDelayMs = 0; });
    eq(await page.locator('#messages > *').count(), 0, 'messages after New chat during a stream');
    check(await page.locator('#send').isEnabled(), 'Send is not enabled after New chat during a stream');
    const t6 = await turn(page, sent, 'Hi');
    eq(t6.state, 'done', 'state of the turn after New chat during a stream');
    eq(t6.request.body.messages, [{ role: 'user', content: 'Hi' }], 'messages after New chat during a stream');
    eq(t6.answer, want1.content, 'answer after New chat during a stream');
    eq(await page.locator('#messages .msg').count(), 2, 'messages on the page after that turn');

    check(errors.length === 0, 'errors in the page: ' + errors.join('; '));
  } finally {
    await browser.close();
  }
}

main().then(() => console.log('page_chromium.mjs: ok'), (e) => fail(e.message || String(e)));
