// examples/node-worker/like.js owns the command-line driver for app.js's
// likePost (used by test/scripts/example_worker.sh):
//   node like.js [--queue NAME] [--concurrency N] POST:USER ...
// likes each POST as USER, up to N (default 4) at once on a pool of N
// connections, and prints one JSON line per like, in the order given:
//   {"post":1,"user":7,"liked":true,"likes":3,"msgId":"12"}
//   {"post":1,"user":7,"liked":false,"reason":"duplicate"}
//   {"post":1,"user":8,"error":"...","code":"42P01"}
// Exits 0 when every like was recorded or was a duplicate, 2 when any failed
// (1 on bad usage). Connects with the usual PG* environment variables.
'use strict';

const { Pool } = require('pg');
const { likePost } = require('./app');

function usage(msg) {
  console.error(`like.js: ${msg}\nusage: node like.js [--queue NAME] [--concurrency N] POST:USER ...`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { queue: 'notifications', concurrency: 4, likes: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--queue') {
      opts.queue = argv[++i];
      if (!opts.queue) usage('--queue needs a name');
    } else if (arg === '--concurrency') {
      opts.concurrency = Number(argv[++i]);
      if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) usage('--concurrency needs a positive integer');
    } else {
      const m = /^(\d+):(\d+)$/.exec(arg);
      if (!m) usage(`not POST:USER: ${arg}`);
      opts.likes.push({ post: Number(m[1]), user: Number(m[2]) });
    }
  }
  if (opts.likes.length === 0) usage('no likes given');
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const pool = new Pool({ max: opts.concurrency, application_name: 'like.js' });
  pool.on('error', (err) => console.error(`like.js: idle connection failed: ${err.message}`));
  const results = new Array(opts.likes.length);
  let next = 0;

  // N lanes, each taking the next like until none is left.
  async function lane() {
    while (next < opts.likes.length) {
      const i = next++;
      const { post, user } = opts.likes[i];
      const client = await pool.connect();
      try {
        results[i] = { post, user, ...(await likePost(client, post, user, { queue: opts.queue })) };
      } catch (err) {
        results[i] = { post, user, error: err.message, code: err.code || null };
      } finally {
        client.release();
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, opts.likes.length) }, lane));
  await pool.end();

  for (const r of results) console.log(JSON.stringify(r));
  process.exitCode = results.some((r) => r.error !== undefined) ? 2 : 0;
}

main().catch((err) => {
  console.error(`like.js: ${err.stack || err}`);
  process.exit(1);
});
