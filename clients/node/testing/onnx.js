'use strict';
/**
 * Small ONNX models written from JavaScript, for tests that need a model whose every score is known: the protobuf
 * of a logistic regression, sigmoid(features . weights + bias), with the contract's tensor names. Written here
 * rather than with Python's `onnx` so that the Node tests need nothing but Node (onnxruntime checks every byte).
 */

function varint(value) {
  const bytes = [];
  let rest = BigInt(value);
  do {
    const low = Number(rest & 0x7fn);
    rest >>= 7n;
    bytes.push(rest ? low | 0x80 : low);
  } while (rest);
  return Buffer.from(bytes);
}

const key = (field, wireType) => varint((field << 3) | wireType);
const int = (field, value) => Buffer.concat([key(field, 0), varint(value)]);
function bytes(field, value) {
  const body = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
  return Buffer.concat([key(field, 2), varint(body.length), body]);
}
const message = (field, ...parts) => bytes(field, Buffer.concat(parts));

const FLOAT = 1; // TensorProto.DataType

function tensor(field, name, dims, values) {
  const raw = Buffer.from(Float32Array.from(values).buffer);
  return message(field, ...dims.map((d) => int(1, d)), int(2, FLOAT), bytes(8, name), bytes(9, raw));
}

/** A float tensor's ValueInfoProto; a dimension is a number or, for the batch, a name. */
function valueInfo(field, name, dims) {
  const shape = dims.map((d) => message(1, typeof d === 'number' ? int(1, d) : bytes(2, d)));
  return message(field, bytes(1, name), message(2, message(1, int(1, FLOAT), message(2, ...shape))));
}

function node(opType, inputs, outputs) {
  return message(1, ...inputs.map((i) => bytes(1, i)), ...outputs.map((o) => bytes(2, o)), bytes(4, opType));
}

/**
 * sigmoid(features . weights + bias) as an ONNX model: input `features` float32 [N, weights.length], output
 * `reward_probability` float32 [N]. `names` replaces the tensor names (for a model that breaks the contract).
 */
function logisticModel(weights, bias, names = { input: 'features', output: 'reward_probability' }) {
  const graph = Buffer.concat([
    node('MatMul', [names.input, 'weights'], ['logit_column']),
    node('Add', ['logit_column', 'bias'], ['shifted']),
    node('Sigmoid', ['shifted'], ['probability_column']),
    node('Reshape', ['probability_column', 'flat'], [names.output]),
    bytes(2, 'logistic'),
    tensor(5, 'weights', [weights.length, 1], weights),
    tensor(5, 'bias', [1], [bias]),
    // int64 [-1] as the Reshape target: data_type 7, int64_data packed
    message(5, int(1, 1), int(2, 7), bytes(8, 'flat'), bytes(7, varint(2n ** 64n - 1n))),
    valueInfo(11, names.input, ['N', weights.length]),
    valueInfo(12, names.output, ['N']),
  ]);
  return Buffer.concat([int(1, 8), bytes(2, 'agent-retraining-tests'), message(7, graph), message(8, int(2, 13))]);
}

/** What logisticModel's model gives for one row, in float64 (the model computes in float32). */
function logistic(weights, bias, row) {
  let logit = bias;
  for (let j = 0; j < weights.length; j += 1) logit += Math.fround(weights[j]) * row[j];
  return 1 / (1 + Math.exp(-logit));
}

module.exports = { logistic, logisticModel };
