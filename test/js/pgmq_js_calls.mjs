// test/js/pgmq_js_calls.mjs: every method of the npm client pgmq-js, run
// unchanged against queue_ext. Started by test/scripts/pgmq_js.sh with
//   PGMQ_JS_DIR  the directory pgmq-js was npm-installed into (node_modules/ inside)
//   PGPORT       the test cluster's port (TCP on 127.0.0.1, user postgres, trust)
//   PGMQ_JS_VERSION  the version the script pinned
// Each call's outcome is checked against the tables through a separate
// node-postgres client (pg, which pgmq-js depends on). Prints "ok <method>" per
// call, then the methods the library has and those exercised; exits non-zero
// on any failure or on any public method left unexercised (the list is read
// from the library's prototypes, so a method added in a later version fails
// the test until it is covered).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.env.PGMQ_JS_DIR;
const port = Number(process.env.PGPORT);
assert.ok(dir, 'PGMQ_JS_DIR is not set');
assert.ok(port > 0, 'PGPORT is not set');
const require = createRequire(path.join(dir, 'node_modules') + path.sep);
const pkgDir = path.join(dir, 'node_modules', 'pgmq-js');
const pkg = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
if (process.env.PGMQ_JS_VERSION) {
  assert.equal(pkg.version, process.env.PGMQ_JS_VERSION, 'installed pgmq-js version');
}
const { Pgmq } = require('pgmq-js');
const pg = require('pg');
const Pool = require('pg-pool');

const conn = () => ({
  host: '127.0.0.1', port, user: 'postgres', password: '', database: 'postgres',
  // pgmq-js turns ssl on unless told otherwise; the test cluster has no TLS.
  ssl: false, idleTimeoutMillis: 1000,
});

// ---- the library's methods, read from its prototypes -------------------------
// Static methods of Pgmq, then the instance's prototype chain, then the
// prototype chains of the objects a Pgmq instance holds (queue, msg), except
// the pg-pool it wraps. Visibility comes from the shipped typings: members
// declared private/protected there are internal and must be exercised through
// a public method (recorded in `internalVia`).
function ownMethods(proto) {
  return Object.getOwnPropertyNames(proto)
    .filter((n) => n !== 'constructor' && typeof Object.getOwnPropertyDescriptor(proto, n).value === 'function');
}
function chainMethods(obj) {
  const out = [];
  for (let p = Object.getPrototypeOf(obj); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const n of ownMethods(p)) if (!out.includes(n)) out.push(n);
  }
  return out;
}
function enumerate(instance) {
  const names = Object.getOwnPropertyNames(Pgmq)
    .filter((n) => !['length', 'name', 'prototype'].includes(n) && typeof Pgmq[n] === 'function')
    .map((n) => `Pgmq.${n}`);
  for (const n of chainMethods(instance)) names.push(`pgmq.${n}`);
  for (const [prop, value] of Object.entries(instance)) {
    if (value === null || typeof value !== 'object' || value instanceof Pool) continue;
    for (const n of chainMethods(value)) names.push(`pgmq.${prop}.${n}`);
  }
  return names;
}
const dts = readFileSync(path.join(pkgDir, pkg.types || 'dist/index.d.ts'), 'utf8');
const hidden = new Set([...dts.matchAll(/^\s*(?:private|protected)\s+(?:readonly\s+)?(\w+)/gm)].map((m) => m[1]));
const withSignature = new Set([...dts.matchAll(/^\s*(?:(?:private|protected|public|static|readonly)\s+)*(\w+)(?:<[^>]*>)?\(/gm)]
  .map((m) => m[1]).filter((n) => n !== 'constructor'));
// "private prepare;": TypeScript ships private members without a signature.
const declared = new Set([...withSignature, ...hidden]);

// ---- bookkeeping ----------------------------------------------------------------
const exercised = new Set();
const internalVia = new Map();
let failures = 0;
async function step(method, fn) {
  try {
    await fn();
    exercised.add(method);
    console.log(`ok ${method}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${method}: ${e.code ? `[${e.code}] ` : ''}${e.message}`);
    if (e.stack && !(e instanceof assert.AssertionError)) console.log(e.stack.split('\n').slice(1, 4).join('\n'));
  }
}

// A separate client to look at the tables pgmq-js works on.
const sql = new pg.Client(conn());
await sql.connect();
const one = async (text, params) => (await sql.query(text, params)).rows[0];
const dbNow = async () => (await one('SELECT clock_timestamp() AS t')).t;
const qRows = async (q) => (await sql.query(`SELECT msg_id::int AS id, read_ct, vt, message FROM pgmq."q_${q}" ORDER BY msg_id`)).rows;
const aRows = async (q) => (await sql.query(`SELECT msg_id::int AS id, read_ct, message FROM pgmq."a_${q}" ORDER BY msg_id`)).rows;
const relpersistence = async (rel) =>
  (await one(`SELECT (SELECT relpersistence FROM pg_class WHERE oid = to_regclass($1)) AS p`, [rel])).p;
const assertNear = (actual, expected, slackMs, what) => {
  const d = Math.abs(actual.getTime() - expected.getTime());
  assert.ok(d <= slackMs, `${what}: ${actual.toISOString()} is ${d} ms from ${expected.toISOString()}`);
};

const Q = 'js_main';          // logged queue most calls run on
const U = 'js_unlogged';      // unlogged queue
const M = 'JsMixedCase';      // pgmq keeps the name as given, tables lowercased

// ---- Pgmq.new with the default options: prepare() runs CREATE EXTENSION IF NOT
// EXISTS pgmq CASCADE. There is no extension named pgmq here (the extension is
// queue_ext), so that statement fails; callers pass skipExtensionCreation. The
// step checks the failure is exactly that and nothing else (prepare() is the
// only thing between pool creation and the resolved client).
await step('Pgmq.new (default options: prepare)', async () => {
  let err;
  try {
    const c = await Pgmq.new(conn());
    await c.close();
  } catch (e) { err = e; }
  assert.ok(err, 'Pgmq.new with the default options resolved: is an extension named pgmq installed?');
  assert.equal(err.code, '0A000', `prepare(): ${err.message}`);
  assert.match(err.message, /^extension "pgmq" is not available$/);
  // ...and it changed nothing: queue_ext is still the one extension here.
  assert.deepEqual((await sql.query(`SELECT extname FROM pg_extension WHERE extname IN ('pgmq', 'queue_ext')`)).rows, [{ extname: 'queue_ext' }]);
  internalVia.set('pgmq.prepare', 'Pgmq.new (default options: prepare)');
});

let mq;
await step('Pgmq.new', async () => {
  mq = await Pgmq.new(conn(), { skipExtensionCreation: true });
  assert.ok(mq instanceof Pgmq);
  assert.equal(typeof mq.queue, 'object');
  assert.equal(typeof mq.msg, 'object');
});
if (!mq) { console.log('FAIL: no client, cannot go on'); process.exit(1); }

const libMethods = enumerate(mq);
const shortName = (m) => m.split('.').pop();
// Every method found at run time is declared in the typings, and every
// declared one exists at run time.
await step('typings match the runtime', async () => {
  for (const m of libMethods) assert.ok(declared.has(shortName(m)), `${m} is not declared in ${pkg.types}`);
  const runtime = new Set(libMethods.map(shortName));
  for (const d of withSignature) assert.ok(runtime.has(d), `${d} is declared but not found at run time`);
});
const isPublic = (m) => !hidden.has(shortName(m));
// executeQuery (protected) runs every statement; each public call below goes through it.
for (const m of libMethods) if (shortName(m) === 'executeQuery') internalVia.set(m, 'every call below');

// ---- queue management ---------------------------------------------------------------
await step('queue.create', async () => {
  await mq.queue.create(Q);
  await mq.queue.create(M);
  assert.equal(await relpersistence(`pgmq.q_${Q}`), 'p');
  assert.equal(await relpersistence(`pgmq.a_${Q}`), 'p');
  assert.equal(await relpersistence(`pgmq.q_${M.toLowerCase()}`), 'p');
  assert.equal((await one(`SELECT count(*)::int AS n FROM pgmq.meta WHERE queue_name IN ($1, $2)`, [Q, M])).n, 2);
  await mq.queue.create(Q); // pgmq: creating an existing queue is a silent no-op
  assert.equal((await one(`SELECT count(*)::int AS n FROM pgmq.meta WHERE queue_name = $1`, [Q])).n, 1);
});

await step('queue.createUnlogged', async () => {
  await mq.queue.createUnlogged(U);
  assert.equal(await relpersistence(`pgmq.q_${U}`), 'u');
  assert.equal((await one(`SELECT is_unlogged FROM pgmq.meta WHERE queue_name = $1`, [U])).is_unlogged, true);
});

await step('queue.list', async () => {
  const list = await mq.queue.list();
  const meta = (await sql.query(`SELECT queue_name, is_partitioned, is_unlogged, created_at FROM pgmq.meta ORDER BY queue_name`)).rows;
  assert.deepEqual(list.map((x) => x.name).sort(), meta.map((r) => r.queue_name).sort());
  assert.deepEqual(list.map((x) => x.name).sort(), [M, Q, U].sort());
  for (const r of meta) {
    const got = list.find((x) => x.name === r.queue_name);
    assert.equal(got.isPartitioned, r.is_partitioned, `${r.queue_name} isPartitioned`);
    assert.equal(got.isUnlogged, r.is_unlogged, `${r.queue_name} isUnlogged`);
    assert.ok(!Number.isNaN(got.createdAt.getTime()), `${r.queue_name} createdAt is not a date`);
    assert.equal(got.createdAt.getTime(), r.created_at.getTime(), `${r.queue_name} createdAt`);
  }
  assert.equal(list.find((x) => x.name === U).isUnlogged, true);
  assert.equal(list.find((x) => x.name === Q).isUnlogged, false);
});

// ---- messages ----------------------------------------------------------------------
const payload = { text: 'héllo, "quoted" ✓', n: 42, f: 1.5, ok: true, none: null, list: [1, 'two', { three: 3 }], nested: { deep: { k: 'v' } } };
let first;
await step('msg.send', async () => {
  first = await mq.msg.send(Q, payload);
  assert.equal(typeof first, 'number');
  assert.ok(Number.isInteger(first) && first > 0);
  const rows = await qRows(Q);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].id, first);
  assert.deepEqual(rows[0].message, payload);
  assert.equal(rows[0].read_ct, 0);
  // with a delay: invisible for ~60 s
  const delayed = await mq.msg.send(Q, { delayed: true }, 60);
  assert.equal(delayed, first + 1);
  const vt = (await one(`SELECT vt, vt - clock_timestamp() > interval '58 seconds' AS later FROM pgmq."q_${Q}" WHERE msg_id = $1`, [delayed]));
  assert.equal(vt.later, true, `delayed send's vt ${vt.vt.toISOString()}`);
  // a scalar and a string payload round trip as JSON too
  const s = await mq.msg.send(M, 'just a string');
  const n = await mq.msg.send(M, 7);
  assert.deepEqual((await qRows(M.toLowerCase())).map((r) => [r.id, r.message]), [[s, 'just a string'], [n, 7]]);
  // an unknown queue is an error (42P01), not a silent success
  await assert.rejects(mq.msg.send('js_no_such_queue', {}), (e) => e.code === '42P01');
});

let batch;
await step('msg.sendBatch', async () => {
  batch = await mq.msg.sendBatch(Q, [{ i: 1 }, { i: 2 }, { i: 3 }]);
  assert.deepEqual(batch, [first + 2, first + 3, first + 4]);
  for (const id of batch) assert.equal(typeof id, 'number');
  const later = await mq.msg.sendBatch(Q, [{ later: 1 }, { later: 2 }], 60);
  assert.deepEqual(later, [first + 5, first + 6]);
  const rows = await qRows(Q);
  assert.deepEqual(rows.filter((r) => batch.includes(r.id)).map((r) => r.message), [{ i: 1 }, { i: 2 }, { i: 3 }]);
  const invisible = (await one(`SELECT bool_and(vt > clock_timestamp() + interval '58 seconds') AS b FROM pgmq."q_${Q}" WHERE msg_id = ANY($1::bigint[])`, [later])).b;
  assert.equal(invisible, true);
});

await step('msg.read', async () => {
  const before = await dbNow();
  const m = await mq.msg.read(Q, 30);
  assert.equal(m.msgId, first, 'read returns the oldest visible message');
  assert.equal(m.readCount, 1);
  assert.deepEqual(m.message, payload);
  assert.ok(m.enqueuedAt instanceof Date && m.vt instanceof Date);
  assertNear(m.vt, new Date(before.getTime() + 30000), 3000, 'vt after read(30)');
  const row = (await qRows(Q)).find((r) => r.id === first);
  assert.equal(row.read_ct, 1);
  assert.equal(row.vt.getTime(), m.vt.getTime());
  // default vt (0): leased for no time, read again at once
  const again = await mq.msg.read(M);
  assert.equal(again.readCount, 1);
  assert.deepEqual(again.message, 'just a string');
  const again2 = await mq.msg.read(M);
  assert.equal(again2.msgId, again.msgId, 'a vt-0 read leaves the message visible');
  assert.equal(again2.readCount, 2);
});

await step('msg.readBatch', async () => {
  const ms = await mq.msg.readBatch(Q, 30, 10);
  // the first is leased, the delayed ones invisible: exactly the three of the batch
  assert.deepEqual(ms.map((m) => m.msgId), batch);
  assert.deepEqual(ms.map((m) => m.message), [{ i: 1 }, { i: 2 }, { i: 3 }]);
  assert.deepEqual(ms.map((m) => m.readCount), [1, 1, 1]);
  assert.deepEqual(await mq.msg.readBatch(Q, 30, 10), [], 'nothing visible is left');
  assert.equal(await mq.msg.read(Q, 30), undefined, 'read on nothing visible gives undefined');
});

await step('msg.setVt', async () => {
  // back to visible now
  const now = await dbNow();
  const m = await mq.msg.setVt(Q, first, 0);
  assert.equal(m.msgId, first);
  assert.deepEqual(m.message, payload);
  assertNear(m.vt, now, 3000, 'vt after setVt(0)');
  const row = (await qRows(Q)).find((r) => r.id === first);
  assert.equal(row.vt.getTime(), m.vt.getTime());
  const r = await mq.msg.read(Q, 5);
  assert.equal(r.msgId, first, 'setVt(0) made it readable again');
  assert.equal(r.readCount, 2);
  // pushed far out
  const now2 = await dbNow();
  const far = await mq.msg.setVt(Q, first, 3600);
  assertNear(far.vt, new Date(now2.getTime() + 3600e3), 3000, 'vt after setVt(3600)');
  assert.equal(far.readCount, 2, 'setVt does not count as a read');
  assert.equal((await qRows(Q)).find((x) => x.id === first).vt.getTime(), far.vt.getTime());
  // an id that is not there
  assert.equal(await mq.msg.setVt(Q, 999999, 10), undefined);
});

await step('msg.pop', async () => {
  const id = await mq.msg.send(U, { pop: 'me' });
  const m = await mq.msg.pop(U);
  assert.equal(m.msgId, id);
  assert.deepEqual(m.message, { pop: 'me' });
  assert.equal(m.readCount, 0, 'pop does not touch read_ct');
  assert.deepEqual(await qRows(U), [], 'pop deleted the message');
  assert.equal(await mq.msg.pop(U), undefined, 'pop on an empty queue gives undefined');
  // pop skips invisible messages
  assert.equal(await mq.msg.pop(Q), undefined);
});

await step('msg.delete', async () => {
  assert.equal(await mq.msg.delete(Q, batch[0]), true);
  assert.equal((await qRows(Q)).some((r) => r.id === batch[0]), false);
  assert.equal(await mq.msg.delete(Q, batch[0]), false, 'deleting it again');
  assert.equal(await mq.msg.delete(Q, 999999), false);
});

await step('msg.deleteBatch', async () => {
  const got = await mq.msg.deleteBatch(Q, [batch[1], 999999, first + 5]);
  assert.deepEqual([...got].sort((a, b) => a - b), [batch[1], first + 5]);
  const ids = (await qRows(Q)).map((r) => r.id);
  assert.deepEqual(ids, [first, first + 1, batch[2], first + 6]);
  assert.deepEqual(await mq.msg.deleteBatch(Q, [999998]), []);
});

await step('msg.archive', async () => {
  assert.equal(await mq.msg.archive(Q, first), true);
  assert.equal((await qRows(Q)).some((r) => r.id === first), false);
  const a = await aRows(Q);
  assert.equal(a.length, 1);
  assert.equal(a[0].id, first);
  assert.deepEqual(a[0].message, payload);
  assert.equal(a[0].read_ct, 2, 'the archive keeps read_ct');
  assert.equal(await mq.msg.archive(Q, first), false, 'archiving it again');
});

await step('msg.archiveBatch', async () => {
  const got = await mq.msg.archiveBatch(Q, [batch[2], first + 1, 999999]);
  assert.deepEqual([...got].sort((a, b) => a - b), [first + 1, batch[2]]);
  assert.deepEqual((await aRows(Q)).map((r) => r.id), [first, first + 1, batch[2]]);
  assert.deepEqual((await qRows(Q)).map((r) => r.id), [first + 6]);
  assert.deepEqual((await aRows(Q)).map((r) => r.message), [payload, { delayed: true }, { i: 3 }]);
});

await step('queue.getMetrics', async () => {
  const m = await mq.queue.getMetrics(Q);
  const inTable = (await one(`SELECT count(*)::int AS n FROM pgmq."q_${Q}"`)).n;
  assert.equal(m.queueName, Q);
  assert.equal(m.queueLength, inTable);
  assert.equal(m.queueLength, 1);
  assert.equal(m.totalMessages, 7, 'seven messages were ever sent to it');
  assert.equal(typeof m.newestMsgAgeSec, 'number');
  assert.equal(typeof m.oldestMsgAgeSec, 'number');
  assert.ok(m.oldestMsgAgeSec >= 0 && m.oldestMsgAgeSec < 120);
  assertNear(m.scrapeTime, await dbNow(), 5000, 'scrapeTime');
  // an empty queue: no ages
  const e = await mq.queue.getMetrics(U);
  assert.equal(e.queueLength, 0);
  assert.equal(e.totalMessages, 1);
  assert.equal(e.newestMsgAgeSec, undefined);
  assert.equal(e.oldestMsgAgeSec, undefined);
  await assert.rejects(mq.queue.getMetrics('js_no_such_queue'), (err) => err.code === '42P01');
});

await step('queue.getAllMetrics', async () => {
  const all = await mq.queue.getAllMetrics();
  assert.deepEqual(all.map((x) => x.queueName).sort(), [M, Q, U].sort());
  const by = Object.fromEntries(all.map((x) => [x.queueName, x]));
  assert.equal(by[Q].queueLength, 1);
  assert.equal(by[Q].totalMessages, 7);
  assert.equal(by[U].queueLength, 0);
  assert.equal(by[M].queueLength, 2);
  assert.equal(by[M].totalMessages, 2);
});

await step('queue.purge', async () => {
  await mq.msg.sendBatch(U, [{ p: 1 }, { p: 2 }, { p: 3 }, { p: 4 }]);
  assert.equal((await qRows(U)).length, 4);
  await mq.queue.purge(U);
  assert.deepEqual(await qRows(U), []);
  const m = await mq.queue.getMetrics(U);
  assert.equal(m.queueLength, 0);
  assert.equal(m.totalMessages, 5, 'purge keeps total_messages (pgmq: the sequence position)');
  // the queue itself is still there and usable
  const id = await mq.msg.send(U, { after: 'purge' });
  assert.equal(id, 6);
  await assert.rejects(mq.queue.purge('js_no_such_queue'), (err) => err.code === '42P01');
});

await step('queue.detachArchive', async () => {
  const member = `SELECT count(*)::int AS n FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = to_regclass($1) AND d.deptype = 'e'`;
  assert.equal((await one(member, [`pgmq.a_${Q}`])).n, 0, 'archive table is not an extension member');
  await mq.queue.detachArchive(Q); // pgmq 1.13: deprecated no-op with a warning
  assert.equal((await one(member, [`pgmq.a_${Q}`])).n, 0);
  assert.deepEqual((await aRows(Q)).map((r) => r.id), [first, first + 1, batch[2]], 'the archive is untouched');
  assert.equal((await qRows(Q)).length, 1, 'the queue is untouched');
});

await step('queue.drop', async () => {
  await mq.queue.drop(Q);
  assert.equal(await relpersistence(`pgmq.q_${Q}`), null, 'queue table gone');
  assert.equal(await relpersistence(`pgmq.a_${Q}`), null, 'archive table gone');
  assert.deepEqual((await mq.queue.list()).map((x) => x.name).sort(), [M, U].sort());
  await assert.rejects(mq.msg.send(Q, {}), (e) => e.code === '42P01', 'send to a dropped queue');
  await mq.queue.drop(U);
  await mq.queue.drop(M);
  assert.deepEqual(await mq.queue.list(), []);
  assert.equal((await one(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'pgmq' AND (tablename LIKE 'q\\_%' OR tablename LIKE 'a\\_%')`)).n, 0);
  await mq.queue.drop('js_no_such_queue'); // pgmq: a notice and false, no error
});

await step('close', async () => {
  await mq.close();
  await assert.rejects(mq.queue.list(), /pool/i, 'a closed client refuses calls');
});

await sql.end();

// ---- inventory --------------------------------------------------------------------
// Map step names to inventory names ("queue.create" -> "pgmq.queue.create").
const covered = new Set();
for (const m of libMethods) {
  const short = m.replace(/^pgmq\./, '');
  if (exercised.has(m) || exercised.has(short)) covered.add(m);
}
console.log(`pgmq-js ${pkg.version}: ${libMethods.length} methods: ${libMethods.join(', ')}`);
const pub = libMethods.filter(isPublic);
const internal = libMethods.filter((m) => !isPublic(m));
console.log(`public (${pub.length}): ${pub.join(', ')}`);
console.log(`exercised directly: ${pub.filter((m) => covered.has(m)).join(', ')}`);
console.log(`internal (private/protected in the typings): ${internal.map((m) => `${m} via ${internalVia.get(m) ?? 'NOTHING'}`).join('; ')}`);
const missed = pub.filter((m) => !covered.has(m));
const viaDone = (via) => (via === 'every call below' ? pub.some((m) => covered.has(m) && m !== 'Pgmq.new') : exercised.has(via));
const internalMissed = internal.filter((m) => !internalVia.has(m) || !viaDone(internalVia.get(m)));
if (missed.length) { failures++; console.log(`FAIL: public methods not exercised: ${missed.join(', ')}`); }
if (internalMissed.length) { failures++; console.log(`FAIL: internal methods not exercised: ${internalMissed.join(', ')}`); }
if (pub.length < 2) { failures++; console.log('FAIL: found almost no methods: the enumeration is broken'); }
console.log(failures ? `${failures} failure(s)` : 'all pgmq-js calls passed against queue_ext');
process.exit(failures ? 1 : 0);
