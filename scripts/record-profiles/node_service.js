// The Node.js twin of main.go: the work of a small web service (JSON, hashing, sorting,
// compression, regular expressions, string building), profiled by the real Pyroscope Node.js
// SDK (@pyroscope/nodejs, from crates/emberscope/tests/sdk/node) pushing to SERVER as
// APP_NAME. Run by scripts/record_loadgen_profiles.sh.
const crypto = require('crypto');
const zlib = require('zlib');
const Pyroscope = require('@pyroscope/nodejs');

Pyroscope.init({ serverAddress: process.env.SERVER, appName: process.env.APP_NAME, flushIntervalMs: 1000 });
Pyroscope.start();

const SKU = /sku-0*(\d+)7\b/;
const retained = [];

function makeOrders(n) {
  const orders = [];
  for (let i = 0; i < n; i++) {
    const items = [];
    for (let j = 0; j < 1 + (i % 7); j++) {
      items.push({ sku: `sku-${String((i * 31 + j) % 20000).padStart(5, '0')}`, quantity: 1 + j, price: (i % 97) + 0.99 });
    }
    orders.push({ id: i, customer: `customer-${i % 1000}`, items, tags: { region: ['eu', 'us', 'ap'][i % 3], channel: 'web' } });
  }
  return orders;
}

function encodeOrders(orders) { return Buffer.from(JSON.stringify(orders)); }
function decodeOrders(body) { return JSON.parse(body.toString()); }
function checksum(body) { return crypto.createHash('sha256').update(body).digest(); }
function compress(body) { return zlib.gzipSync(body); }
function matchSkus(orders) {
  let matches = 0;
  for (const o of orders) for (const it of o.items) if (SKU.test(it.sku)) matches++;
  return matches;
}
function rankCustomers(orders) {
  const totals = new Map();
  for (const o of orders) for (const it of o.items) totals.set(o.customer, (totals.get(o.customer) || 0) + it.quantity * it.price);
  return [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a));
}
function renderReport(names) { return names.map((name, i) => `${i + 1}. ${name.toUpperCase()}\n`).join(''); }

function handleRequest(n) {
  const orders = makeOrders(n);
  const body = encodeOrders(orders);
  const decoded = decodeOrders(body);
  const digest = checksum(body);
  const packed = compress(body);
  const report = renderReport(rankCustomers(decoded));
  if (n % 3 === 0) { retained.push(packed); retained.splice(0, Math.max(0, retained.length - 64)); }
  return matchSkus(decoded) + digest[0] + report.length;
}

const end = Date.now() + Number(process.argv[2] || 8000);
let total = 0;
for (let i = 0; Date.now() < end; i++) total += handleRequest(200 + (i % 400));
Pyroscope.stop().then(() => process.exit(total > 0 ? 0 : 1));
