// examples/node-worker/worker.js owns the consumer side of the example: a
// worker that drains the "notifications" queue app.js fills.
//
// Each round it leases up to QTY messages with pgmq.read_with_poll (which
// sleeps until a send commits, or until MAX_POLL_SECONDS pass) and handles
// them one by one. A message is handled in one transaction that
//   1. acks it with its receipt, pgmq.ack(queue, msg_id, read_ct): false when
//      the lease lapsed and another worker took the message, and then this
//      worker rolls back and leaves it to that worker;
//   2. does the work (here: an optional delay, and a failure when the payload
//      asks for one on this attempt) and records it in notifications_sent;
//   3. commits: the ack and the record become visible together, so each
//      message leaves exactly one notifications_sent row, however often it is
//      delivered. A worker that dies mid-way commits neither; the message
//      comes back when its lease (VT seconds) lapses.
// A failure rolls that transaction back and nacks the delivery,
// pgmq.nack(queue, msg_id, read_ct, error): the queue retries it after its
// backoff and dead-letters it after its last attempt (setup.sql's options).
//
// SIGTERM or SIGINT: it takes no new messages, cancels a poll that is
// sleeping (a cancelled read leases nothing), finishes the batch in hand
// (every message acked or nacked), ends the pool and exits 0.
//
// Settings (environment): PG* for the connection; QUEUE (notifications),
// WORKER_NAME (worker-<pid>), VT (30), QTY (5), MAX_POLL_SECONDS (10),
// POLL_INTERVAL_MS (500).
'use strict';

const { Pool } = require('pg');

function intSetting(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`worker.js: ${name} must be a non-negative integer, not ${raw}`);
    process.exit(1);
  }
  return n;
}

const QUEUE = process.env.QUEUE || 'notifications';
const NAME = process.env.WORKER_NAME || `worker-${process.pid}`;
const VT = intSetting('VT', 30);
const QTY = intSetting('QTY', 5);
const MAX_POLL_SECONDS = intSetting('MAX_POLL_SECONDS', 10);
const POLL_INTERVAL_MS = intSetting('POLL_INTERVAL_MS', 500);

const QUERY_CANCELED = '57014';

const log = (line) => console.log(`[${NAME}] ${line}`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// One connection polls, one handles messages, one may cancel the poll.
const pool = new Pool({ max: 3, application_name: NAME });
pool.on('error', (err) => log(`idle connection failed: ${err.message}`));

// The work for one message, inside its transaction. The payload may ask for
// a delay (work_ms) or a failure on its first fail_attempts deliveries.
async function deliver(client, msg) {
  const payload = msg.message || {};
  if (Number.isInteger(payload.work_ms) && payload.work_ms > 0) {
    await sleep(payload.work_ms);
  }
  if (Number.isInteger(payload.fail_attempts) && msg.read_ct <= payload.fail_attempts) {
    throw new Error(`asked to fail attempt ${msg.read_ct} of ${payload.fail_attempts}`);
  }
  await client.query(
    'INSERT INTO notifications_sent (msg_id, read_ct, worker, payload) VALUES ($1, $2, $3, $4::jsonb)',
    [msg.msg_id, msg.read_ct, NAME, JSON.stringify(payload)]);
}

// Handles one delivery; resolves to 'acked', 'nacked' or 'stale'.
async function handle(msg) {
  const client = await pool.connect();
  let broken;
  try {
    try {
      await client.query('BEGIN');
      const acked = await client.query(
        'SELECT pgmq.ack($1::text, $2::bigint, $3::integer) AS ok', [QUEUE, msg.msg_id, msg.read_ct]);
      if (!acked.rows[0].ok) {
        await client.query('ROLLBACK');
        return 'stale';
      }
      await deliver(client, msg);
      await client.query('COMMIT');
      return 'acked';
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      // The rollback undid the ack, so the receipt is current again.
      const nacked = await client.query(
        'SELECT pgmq.nack($1::text, $2::bigint, $3::integer, $4::text) AS ok',
        [QUEUE, msg.msg_id, msg.read_ct, err.message]);
      return nacked.rows[0].ok ? 'nacked' : 'stale';
    }
  } catch (err) {
    // Not even the nack went through (the connection failed): the message
    // comes back when its lease lapses.
    broken = err;
    throw err;
  } finally {
    client.release(broken);
  }
}

let stopping = false;
let pollClient = null; // set while a poll is running
let cancelling = Promise.resolve();

function stop(signal) {
  if (stopping) return;
  stopping = true;
  log(`${signal}: taking no new messages`);
  if (pollClient) {
    // Only the poll connection is cancelled, and it runs nothing but polls:
    // a cancel that lands after the poll returned finds it idle and is
    // ignored, and the batch it returned is still handled below.
    const pid = pollClient.processID;
    cancelling = pool.query('SELECT pg_cancel_backend($1)', [pid])
      .catch((err) => log(`could not cancel the poll: ${err.message}`));
  }
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

async function main() {
  const poller = await pool.connect();
  const counts = { acked: 0, nacked: 0, stale: 0, failed: 0 };
  log(`polling ${QUEUE} (vt ${VT} s, up to ${QTY} at a time)`);
  try {
    while (!stopping) {
      let batch;
      pollClient = poller;
      try {
        const res = await poller.query(
          'SELECT msg_id, read_ct, message FROM pgmq.read_with_poll($1::text, $2::integer, $3::integer, $4::integer, $5::integer)',
          [QUEUE, VT, QTY, MAX_POLL_SECONDS, POLL_INTERVAL_MS]);
        batch = res.rows;
      } catch (err) {
        if (stopping && err.code === QUERY_CANCELED) break;
        throw err;
      } finally {
        pollClient = null;
      }
      // The batch in hand is finished even when a signal came meanwhile.
      for (const msg of batch) {
        try {
          const outcome = await handle(msg);
          counts[outcome]++;
          log(`${outcome} ${msg.msg_id} (attempt ${msg.read_ct})`);
        } catch (err) {
          counts.failed++;
          log(`could not finish ${msg.msg_id}: ${err.message}`);
        }
      }
    }
  } finally {
    poller.release();
    await cancelling;
    await pool.end();
  }
  log(`stopped: ${counts.acked} acked, ${counts.nacked} nacked, ${counts.stale} stale, ${counts.failed} failed`);
}

main().then(() => {
  process.exitCode = 0;
}, (err) => {
  log(`fatal: ${err.stack || err}`);
  process.exitCode = 1;
  pool.end().catch(() => {});
});
