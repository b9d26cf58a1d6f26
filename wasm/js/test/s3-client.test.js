// The package as the AWS SDK for JavaScript v3 uses it: an S3Client signs a
// request to a loopback server with credentials from the mock IMDS.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';

import { S3Client, HeadBucketCommand } from '@aws-sdk/client-s3';

import { fromInstanceMetadata } from '../../pkg/node.js';
import { HttpImds } from './support.js';

async function startS3() {
  const seen = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers });
    req.resume();
    res.writeHead(200, { 'x-amz-bucket-region': 'us-east-1' }).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, seen, endpoint: `http://127.0.0.1:${server.address().port}` };
}

test('an S3Client signs its requests with the instance credentials', async (t) => {
  const imds = await new HttpImds().start();
  const s3 = await startS3();
  t.after(async () => {
    await imds.stop();
    s3.server.closeAllConnections();
    s3.server.close();
  });

  const client = new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: fromInstanceMetadata({ endpoint: imds.endpoint }),
  });
  t.after(() => client.destroy());
  await client.send(new HeadBucketCommand({ Bucket: 'credstate-test' }));
  await client.send(new HeadBucketCommand({ Bucket: 'credstate-test' }));

  assert.equal(s3.seen.length, 2);
  for (const request of s3.seen) {
    assert.equal(request.method, 'HEAD');
    assert.match(request.url, /^\/credstate-test\/?$/);
    assert.match(
      request.headers.authorization,
      new RegExp(`^AWS4-HMAC-SHA256 Credential=${imds.current.AccessKeyId}/\\d{8}/us-east-1/s3/aws4_request,`),
    );
    assert.equal(request.headers['x-amz-security-token'], imds.current.Token);
  }
  assert.equal(imds.requests.length, 3, 'one fetch sequence for both requests');
});
