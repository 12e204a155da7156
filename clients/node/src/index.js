'use strict';
/** The Node.js client of the agent retraining serving and log contracts (docs/serving-contract.md). */
const { AgentModelClient, ModelRefused, NoModel } = require('./client');
const { bucketOf, columns, contextColumns, encode, encodeContext, encodingId } = require('./encoding');
const { hash64 } = require('./hash');
const { SCHEMA_VERSION, manifestProblem } = require('./manifest');
const { draw, greedyPropensities, routesToCanary } = require('./policy');
const { FolderStore, S3Store, StoreError } = require('./store');
const { LogWriter } = require('./writer');

module.exports = {
  AgentModelClient,
  FolderStore,
  LogWriter,
  ModelRefused,
  NoModel,
  S3Store,
  SCHEMA_VERSION,
  StoreError,
  bucketOf,
  columns,
  contextColumns,
  draw,
  encode,
  encodeContext,
  encodingId,
  greedyPropensities,
  hash64,
  manifestProblem,
  routesToCanary,
};
