'use strict';
/**
 * The policy that acts on scores, and the canary's routing: the same arithmetic as the Python client
 * (include/agent_retraining/serving/client.py), so both log the same propensities and split sessions alike.
 */
const { hash64 } = require('./hash');

const TWO_TO_64 = 2 ** 64;

/**
 * Probabilities of a policy greedy on `scores` (one number per action) that explores uniformly with probability
 * `exploration`: every action keeps at least exploration / actions, so its logs stay usable for off-policy
 * evaluation. Ties go to the first action, as numpy's argmax does.
 */
function greedyPropensities(scores, exploration) {
  let best = 0;
  for (let k = 1; k < scores.length; k += 1) if (scores[k] > scores[best]) best = k;
  const probabilities = scores.map(() => exploration / scores.length);
  probabilities[best] += 1 - exploration;
  return probabilities;
}

/**
 * The index drawn from `probabilities` with one uniform draw `u` in [0, 1): the first action whose cumulative
 * probability exceeds u (numpy's choice does the same), so an action of probability 0 is never drawn.
 */
function draw(probabilities, u) {
  let cumulative = 0;
  let last = 0;
  for (let k = 0; k < probabilities.length; k += 1) {
    if (probabilities[k] <= 0) continue;
    cumulative += probabilities[k];
    last = k;
    if (u < cumulative) return k;
  }
  return last; // u beyond a cumulative sum that rounding left just under 1
}

/**
 * Whether the canary serves this routing key: the first 8 bytes of sha256("<canary version>/<key>") as an unsigned
 * big-endian integer, below share * 2^64. Salting with the version keeps a session on its arm for the canary's
 * whole run and gives every canary a fresh draw. The comparison is exact (an integer against the double
 * share * 2^64, as Python compares them): below a double is below its ceiling, and the ceiling of a double is a
 * double that BigInt holds exactly.
 */
function routesToCanary(routingKey, canaryVersion, share) {
  return hash64(`${canaryVersion}/${routingKey}`) < BigInt(Math.ceil(share * TWO_TO_64));
}

module.exports = { draw, greedyPropensities, routesToCanary };
