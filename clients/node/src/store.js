'use strict';
/**
 * Where the client reads manifests and models and the writer puts logs: a bucket, through a two-call interface
 * so that tests (and agents with other storage) can supply their own.
 *
 *   getObject(key) -> {body: Buffer, etag: string}   (throws StoreError; code 'NoSuchKey' when it is absent)
 *   putObject(key, body: Buffer | string)
 */
const { createHash } = require('node:crypto');
const fs = require('node:fs/promises');
const path = require('node:path');
const { GetObjectCommand, PutObjectCommand, S3Client } = require('@aws-sdk/client-s3');

class StoreError extends Error {
  constructor(message, { code, cause } = {}) {
    super(message, { cause });
    this.name = 'StoreError';
    this.code = code;
  }
}

/** One bucket of an S3-compatible server (AWS, MinIO, SeaweedFS, ...). */
class S3Store {
  constructor({ bucket, endpoint, region = 'us-east-1', accessKeyId, secretAccessKey, client }) {
    if (!bucket) throw new TypeError('S3Store needs a bucket');
    this.bucket = bucket;
    if (client) {
      this.client = client;
    } else {
      this.client = new S3Client({
        region,
        endpoint,
        forcePathStyle: Boolean(endpoint), // a custom endpoint rarely has a DNS name per bucket
        credentials: accessKeyId ? { accessKeyId, secretAccessKey } : undefined,
        // Checksums only where S3 requires them: servers other than AWS do not all accept the SDK's default
        // trailing checksums, and each model is checked against the manifest's sha256 anyway.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
    }
  }

  failure(operation, key, error) {
    const code = error.name === 'NoSuchKey' || error.$metadata?.httpStatusCode === 404 ? 'NoSuchKey' : error.name;
    return new StoreError(`${operation} s3://${this.bucket}/${key} failed: ${error.name}: ${error.message}`, {
      code,
      cause: error,
    });
  }

  async getObject(key) {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return { body: Buffer.from(await response.Body.transformToByteArray()), etag: response.ETag };
    } catch (error) {
      throw this.failure('GET', key, error);
    }
  }

  async putObject(key, body) {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body }));
    } catch (error) {
      throw this.failure('PUT', key, error);
    }
  }
}

/**
 * A folder standing in for a bucket (tests, the committed test vectors): key `a/b.json` is file `<root>/a/b.json`,
 * unless `files` maps the key to another file of the folder (the test vectors keep `live.onnx` for a model key).
 */
class FolderStore {
  constructor(root, files = {}) {
    this.root = path.resolve(root);
    this.files = files;
  }

  file(key) {
    const file = path.resolve(this.root, Object.hasOwn(this.files, key) ? this.files[key] : key);
    if (!file.startsWith(this.root + path.sep)) throw new StoreError(`key ${JSON.stringify(key)} leaves ${this.root}`);
    return file;
  }

  async getObject(key) {
    let body;
    try {
      body = await fs.readFile(this.file(key));
    } catch (error) {
      if (error instanceof StoreError) throw error;
      const code = error.code === 'ENOENT' ? 'NoSuchKey' : error.code;
      throw new StoreError(`GET ${key} from ${this.root} failed: ${code}: ${error.message}`, { code, cause: error });
    }
    // A content hash stands in for S3's ETag: it changes exactly when the bytes do.
    return { body, etag: `"${createHash('md5').update(body).digest('hex')}"` };
  }

  async putObject(key, body) {
    const file = this.file(key);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const partial = `${file}.${process.pid}.partial`; // readers never see half a file
    await fs.writeFile(partial, body);
    await fs.rename(partial, file);
  }
}

module.exports = { FolderStore, S3Store, StoreError };
