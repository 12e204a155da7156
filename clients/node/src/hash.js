'use strict';
/**
 * The contract's one hash: the first 8 bytes of the sha256 of a text's UTF-8, as an unsigned big-endian integer.
 * Canary routing hashes "<canary version>/<routing key>" with it, and an open category hashes each value into its
 * buckets with it, so both agree with the Python side to the bit.
 */
const { createHash } = require('node:crypto');

/** The first 64 bits of sha256(UTF-8 of `text`), big-endian, as a BigInt in [0, 2^64). */
function hash64(text) {
  return createHash('sha256').update(text, 'utf8').digest().readBigUInt64BE(0);
}

module.exports = { hash64 };
