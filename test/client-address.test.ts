// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
// How TRUST_PROXY and CORS_ORIGINS are read, and which address a request is counted under.
// test/trust-proxy.test.ts shows the same through a running service.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/platform/config.js';
import { clientAddressOf, parseProxyTrust } from '../src/platform/http/client-address.js';
import { originAllowed, parseAllowedOrigins } from '../src/platform/http/origin-policy.js';

const PROXY = '10.0.0.5';

describe('TRUST_PROXY: the client is the right-most X-Forwarded-For entry no trusted proxy wrote', () => {
  const via = (setting: string, peer: string, forwardedFor: string | null) => clientAddressOf(parseProxyTrust(setting), peer, forwardedFor);

  test('false (the default): the socket peer, whatever X-Forwarded-For says', () => {
    for (const setting of ['false', '0', 'no', 'off']) assert.equal(via(setting, PROXY, '203.0.113.7'), PROXY, setting);
    assert.equal(clientAddressOf(loadConfig({}).TRUST_PROXY, PROXY, '203.0.113.7'), PROXY);
  });

  test('true and 1: one proxy, so the entry it appended (the last), never the ones the client wrote before it', () => {
    for (const setting of ['true', '1', 'yes', 'on']) {
      assert.equal(via(setting, PROXY, '203.0.113.7'), '203.0.113.7', setting);
      assert.equal(via(setting, PROXY, '1.1.1.1, 2.2.2.2, 203.0.113.7'), '203.0.113.7', setting);
      assert.equal(via(setting, PROXY, '1.1.1.1,203.0.113.7'), '203.0.113.7', setting);
    }
    // No header: the peer itself (a request that did not come through the proxy).
    assert.equal(via('true', PROXY, null), PROXY);
    assert.equal(via('true', PROXY, ''), PROXY);
  });

  test('a hop count: that many proxies from the right are skipped', () => {
    assert.equal(via('2', PROXY, 'forged, 203.0.113.7, 10.0.0.9'), '203.0.113.7');
    assert.equal(via('3', PROXY, 'forged, 203.0.113.7, 10.0.0.9'), 'forged');
    // Fewer entries than hops: the furthest one there is.
    assert.equal(via('5', PROXY, '203.0.113.7, 10.0.0.9'), '203.0.113.7');
  });

  test('a list: trusted proxies are skipped from the right; the first untrusted address is the client', () => {
    const setting = '10.0.0.0/8, 192.168.1.1';
    assert.equal(via(setting, PROXY, 'forged, 203.0.113.7, 192.168.1.1, 10.1.2.3'), '203.0.113.7');
    // A peer that is not a trusted proxy is the client: its X-Forwarded-For is its own writing.
    assert.equal(via(setting, '198.51.100.9', '203.0.113.7'), '198.51.100.9');
    // Every hop trusted: the furthest.
    assert.equal(via(setting, PROXY, '10.9.9.9'), '10.9.9.9');
    // An entry that is no address is never trusted.
    assert.equal(via(setting, PROXY, 'forged, unknown'), 'unknown');
    // Names of the usual ranges, IPv6, and IPv4-mapped IPv6 peers.
    assert.equal(via('loopback', '::ffff:127.0.0.1', '203.0.113.7'), '203.0.113.7');
    assert.equal(via('loopback', '::1', '2001:db8::7'), '2001:db8::7');
    assert.equal(via('uniquelocal', '172.20.0.3', '203.0.113.7'), '203.0.113.7');
    assert.equal(via('fd00::/8', 'fd12::1', '::ffff:203.0.113.7'), '203.0.113.7');
  });

  test('IPv4-mapped IPv6 socket addresses are shortened', () => {
    assert.equal(via('false', '::ffff:127.0.0.1', null), '127.0.0.1');
  });

  test('a value that is none of these stops the start, naming it', () => {
    for (const bad of ['maybe', '10.0.0.0/33', '10.0.0.1, nope', '-1']) {
      assert.throws(() => loadConfig({ TRUST_PROXY: bad }), (err) => err instanceof ConfigError && /TRUST_PROXY: .*is not an IP address/.test(err.message), bad);
    }
  });
});

describe('CORS_ORIGINS', () => {
  test('defaults: any origin in development; in production only the service\'s own', () => {
    assert.deepEqual(loadConfig({}).CORS_ORIGINS, { any: true });
    const production = loadConfig({ NODE_ENV: 'production' }).CORS_ORIGINS;
    assert.equal(originAllowed(production, 'https://evil.example', 'api.example.com'), false);
    assert.equal(originAllowed(production, 'https://api.example.com', 'api.example.com'), true);
    assert.equal(originAllowed(production, 'null', 'api.example.com'), false);
    assert.equal(originAllowed(production, null, 'api.example.com'), true, 'no Origin: not a browser\'s cross-site request');
  });

  test('a list, or * for any', () => {
    const listed = parseAllowedOrigins('https://console.example.com, http://localhost:5173');
    assert.equal(originAllowed(listed, 'https://console.example.com', 'api.example.com'), true);
    assert.equal(originAllowed(listed, 'http://localhost:5173', 'api.example.com'), true);
    assert.equal(originAllowed(listed, 'http://localhost:5174', 'api.example.com'), false);
    assert.equal(originAllowed(listed, 'https://console.example.com.evil.example', 'api.example.com'), false);
    assert.deepEqual(parseAllowedOrigins('*'), { any: true });
  });

  test('an entry that is no origin stops the start, naming it', () => {
    for (const bad of ['console.example.com', 'https://console.example.com/', 'https://console.example.com/app', 'ftp://x.example']) {
      assert.throws(() => loadConfig({ CORS_ORIGINS: bad }), (err) => err instanceof ConfigError && /CORS_ORIGINS: .*is not an origin/.test(err.message), bad);
    }
  });
});

describe('production defaults of the internal endpoints and the body limit', () => {
  test('INTERNAL_ENDPOINTS_AUTH: admin in production on the public port, none with INTERNAL_PORT or in development', () => {
    assert.equal(loadConfig({ NODE_ENV: 'production' }).INTERNAL_ENDPOINTS_AUTH, 'admin');
    assert.equal(loadConfig({ NODE_ENV: 'production', INTERNAL_PORT: '9100' }).INTERNAL_ENDPOINTS_AUTH, 'none');
    assert.equal(loadConfig({ NODE_ENV: 'production', INTERNAL_ENDPOINTS_AUTH: 'none' }).INTERNAL_ENDPOINTS_AUTH, 'none');
    assert.equal(loadConfig({}).INTERNAL_ENDPOINTS_AUTH, 'none');
  });

  test('MAX_REQUEST_BYTES: 1 MiB', () => {
    assert.equal(loadConfig({}).MAX_REQUEST_BYTES, 1_048_576);
  });
});
