'use strict';
/** What the command-line tools in bin/ share: a JSON request on stdin, a JSON answer on stdout. */
const { S3Store } = require('./store');

/** A request that cannot be carried out as asked: exit status 2, the reason on stderr. */
class BadRequest extends Error {
  constructor(message) {
    super(message);
    this.name = 'BadRequest';
  }
}

async function readRequest() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  let request;
  try {
    request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new BadRequest(`the request on stdin is not JSON: ${error.message}`);
  }
  if (request === null || typeof request !== 'object' || Array.isArray(request)) {
    throw new BadRequest('the request on stdin is not a JSON object');
  }
  return request;
}

function required(request, name, check, expected) {
  const value = request[name];
  if (!check(value)) {
    throw new BadRequest(`request field '${name}' is ${JSON.stringify(value) ?? 'missing'}: ${expected}`);
  }
  return value;
}

const isText = (value) => typeof value === 'string' && value.length > 0;

/** The bucket the request names, on its endpoint, with its credentials. */
function storeFrom(request) {
  return new S3Store({
    bucket: required(request, 'bucket', isText, 'expected a bucket name'),
    endpoint: request.endpoint,
    region: request.region ?? 'us-east-1',
    accessKeyId: required(request, 'accessKeyId', isText, 'expected the access key id'),
    secretAccessKey: required(request, 'secretAccessKey', isText, 'expected the secret access key'),
  });
}

/**
 * Run a tool: its answer as JSON on stdout; a bad request exits 2 (a TypeError is what this package throws for
 * input it refuses: a bad event, a bad context), any other failure 1; the reason on stderr.
 */
function main(tool) {
  readRequest()
    .then(tool)
    .then((answer) => {
      process.stdout.write(`${JSON.stringify(answer)}\n`);
    })
    .catch((error) => {
      process.stderr.write(`${error.name}: ${error.message}\n`);
      process.exitCode = error instanceof BadRequest || error instanceof TypeError ? 2 : 1;
    });
}

module.exports = { BadRequest, isText, main, required, storeFrom };
