// examples/node-worker/app.js owns the application side of the example: a
// "like counter" whose write and the notification it queues commit or roll
// back together. likePost() records a like (one per user and post), bumps the
// post's count and sends a message to the queue, all in one transaction:
//   - a duplicate like fails on the likes table's primary key, so nothing is
//     counted and nothing is queued;
//   - a failed send (unknown queue, message too large, ...) rolls the like back.
// The schema is in setup.sql; like.js runs likePost from the command line.
'use strict';

const DUPLICATE = '23505'; // unique_violation

// Records userId's like of postId on `client` (a pg.Client, or a client
// checked out of a pg.Pool, not in a transaction). Resolves to
//   { liked: true, likes, msgId }   the like, the post's new count and the
//                                   id of the queued notification, or
//   { liked: false, reason: 'duplicate' }   the user had liked it already.
// Any other failure rejects, after rolling the whole transaction back.
async function likePost(client, postId, userId, { queue = 'notifications' } = {}) {
  await client.query('BEGIN');
  try {
    await client.query(
      'INSERT INTO likes (post_id, user_id) VALUES ($1, $2)', [postId, userId]);
    const counted = await client.query(
      'UPDATE posts SET likes = likes + 1 WHERE id = $1 RETURNING likes', [postId]);
    if (counted.rowCount !== 1) {
      throw new Error(`post ${postId} does not exist`);
    }
    const likes = counted.rows[0].likes;
    const payload = { type: 'post_liked', post_id: Number(postId), user_id: Number(userId), likes };
    // The message becomes visible to workers only when this transaction
    // commits, and vanishes with it on rollback.
    const sent = await client.query(
      'SELECT * FROM pgmq.send($1::text, $2::jsonb)', [queue, JSON.stringify(payload)]);
    await client.query('COMMIT');
    return { liked: true, likes, msgId: sent.rows[0].send };
  } catch (err) {
    // Undo the like and the send together. If even the rollback fails (the
    // connection is gone, which also ends the transaction), report the
    // original error.
    await client.query('ROLLBACK').catch(() => {});
    if (err.code === DUPLICATE) {
      return { liked: false, reason: 'duplicate' };
    }
    throw err;
  }
}

module.exports = { likePost };
