// A small program profiled by the real Pyroscope Node.js SDK (@pyroscope/nodejs), pushing to
// the server under test: CPU (wall) work in a known function, with a static tag.
const Pyroscope = require('@pyroscope/nodejs');

Pyroscope.init({
  serverAddress: process.env.SERVER,
  appName: process.env.APP_NAME,
  tenantID: process.env.TENANT,
  tags: { region: 'test-region' },
  flushIntervalMs: 1000,
});
Pyroscope.start();

function burnCpuInKnownFunction(ms) {
  const end = Date.now() + ms;
  let total = 0;
  while (Date.now() < end) {
    for (let i = 0; i < 10000; i++) total += i * i;
  }
  return total;
}

burnCpuInKnownFunction(Number(process.argv[2] || 4000));
Pyroscope.stop().then(() => process.exit(0));
