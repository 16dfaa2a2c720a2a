// Run one Node Tea SDK *Advance call against the proxy: argv[2] is a JSON job, the answer body is printed.
// Names resolve to the proxy through the preload tests/node/resolve.js (the test's private DNS zone).
// job.way "endpoint": (a) the one line `_openPlatformEndpoint` (and the product endpoint) name the proxy;
// job.way "private_dns": (c) no change at all: the client built as an app builds it, Aliyun's own
// endpoints, HTTPS, the private CA trusted by the host (NODE_EXTRA_CA_CERTS);
// job.way "http_proxy": (b) Aliyun's endpoints over http with `httpProxy` set (and HTTP_PROXY in the
// environment): this SDK generation honours neither, which the test shows.
'use strict';
const fs = require('fs');
const job = JSON.parse(process.argv[2]);
const Imageseg = require('@alicloud/imageseg20191230');
const { $OpenApiUtil } = require('@alicloud/openapi-core');
const $dara = require('@darabonba/typescript');

function makeClient() {
  const config = { accessKeyId: job.key, accessKeySecret: job.secret, regionId: 'cn-shanghai', readTimeout: 60000 };
  if (job.way === 'private_dns') {
    return new Imageseg.default(new $OpenApiUtil.Config(config));
  }
  if (job.way === 'http_proxy') {
    return new Imageseg.default(new $OpenApiUtil.Config({ ...config, protocol: 'http', httpProxy: job.proxy }));
  }
  const client = new Imageseg.default(new $OpenApiUtil.Config({ ...config, endpoint: job.endpoint, protocol: 'http' }));
  client._openPlatformEndpoint = job.endpoint;  // the one line of redirection
  return client;
}

async function main() {
  const client = makeClient();
  const runtime = new $dara.RuntimeOptions({});
  const stream = fs.createReadStream(job.file);
  let resp;
  if (job.action === 'SegmentBody') {
    resp = await client.segmentBodyAdvance(new Imageseg.SegmentBodyAdvanceRequest({ imageURLObject: stream, returnForm: 'mask' }), runtime);
  } else {
    resp = await client.segmentCommonImageAdvance(new Imageseg.SegmentCommonImageAdvanceRequest({ imageURLObject: stream, returnForm: 'mask' }), runtime);
  }
  process.stdout.write(JSON.stringify({ endpoint: client._endpoint, body: resp.body.toMap() }));
}
main().catch((err) => { process.stderr.write(String(err && err.stack || err)); process.exit(1); });
