// Run one Node Tea SDK *Advance call against the proxy: argv[2] is a JSON job, the answer body is printed.
'use strict';
const fs = require('fs');
const dns = require('dns');
const job = JSON.parse(process.argv[2]);
// The stand-in for a private DNS zone, inside this process only: the upload host's names resolve to loopback.
const lookup = dns.lookup;
dns.lookup = function (host, options, callback) {
  if (typeof options === 'function') { callback = options; options = {}; }
  if (host === job.uploadName || host.endsWith('.' + job.uploadName)) {
    return lookup.call(dns, '127.0.0.1', options, callback);
  }
  return lookup.call(dns, host, options, callback);
};
const Imageseg = require('@alicloud/imageseg20191230');
const { $OpenApiUtil } = require('@alicloud/openapi-core');
const $dara = require('@darabonba/typescript');

async function main() {
  const client = new Imageseg.default(new $OpenApiUtil.Config({
    accessKeyId: job.key, accessKeySecret: job.secret, endpoint: job.endpoint, protocol: 'http',
    regionId: 'cn-shanghai', readTimeout: 60000,
  }));
  client._openPlatformEndpoint = job.endpoint;  // the one line of redirection
  const runtime = new $dara.RuntimeOptions({});
  const stream = fs.createReadStream(job.file);
  let resp;
  if (job.action === 'SegmentBody') {
    resp = await client.segmentBodyAdvance(new Imageseg.SegmentBodyAdvanceRequest({ imageURLObject: stream, returnForm: 'mask' }), runtime);
  } else {
    resp = await client.segmentCommonImageAdvance(new Imageseg.SegmentCommonImageAdvanceRequest({ imageURLObject: stream, returnForm: 'mask' }), runtime);
  }
  process.stdout.write(JSON.stringify(resp.body.toMap()));
}
main().catch((err) => { process.stderr.write(String(err && err.stack || err)); process.exit(1); });
