// Test-only preload (`node --require tests/node/resolve.js`): the stand-in for a private DNS zone, inside this
// Node process only, as tests/tlsnames.py `resolve_to` is for Python. The names in TEST_RESOLVE (JSON:
// {"names": [...], "suffixes": [...], "ports": {"443": tlsPort, "80": plainPort}}) and every `*.{suffix}`
// resolve to 127.0.0.1, and a connection to one of them on a mapped port goes to the proxy's port instead
// (a test cannot bind 443). The SDK's code is untouched: it calls http(s).request as always, and TLS still
// checks the certificate against the name the SDK asked for.
'use strict';
const dns = require('dns');
const net = require('net');

const zone = JSON.parse(process.env.TEST_RESOLVE || '{}');
const names = new Set((zone.names || []).map((n) => n.toLowerCase()));
const suffixes = (zone.suffixes || []).map((s) => '.' + s.toLowerCase());
const ports = zone.ports || {};

function inZone(host) {
  const name = String(host || '').toLowerCase();
  return names.has(name) || suffixes.some((s) => name.endsWith(s));
}

const lookup = dns.lookup;  // net.connect looks names up through dns.lookup unless given its own lookup
dns.lookup = function (host, options, callback) {
  return lookup.call(dns, inZone(host) ? '127.0.0.1' : host, options, callback);
};

const connect = net.Socket.prototype.connect;  // both net.connect (http) and tls.connect (https) end here
net.Socket.prototype.connect = function (...args) {
  // net.createConnection passes its normalized [options, callback] array; tls.connect passes (options, cb)
  const options = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (options && typeof options === 'object' && inZone(options.host) && ports[String(options.port)]) {
    options.port = Number(ports[String(options.port)]);
  }
  return connect.apply(this, args);
};
