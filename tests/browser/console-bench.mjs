// The operator console's benchmark figures, in Debian's headless Chromium
// against a running `bealert serve` (prints figures, asserts nothing):
//
//   node console-bench.mjs URL OPERATOR_KEY [RUNS]
//
// * weight: every file the console loads (page, script, styles, Leaflet,
//   outlines), as the server sends them to a browser that takes gzip;
// * sign-in to ready map: from submitting the key to the outlines drawn
//   (the console's own marks, window.bealertTimings), each run in a fresh
//   browser context (nothing cached), after one warm-up run.
import { launch } from "./common.mjs";

const [url, key, runsArg] = process.argv.slice(2);
if (!key) {
  console.error("usage: node console-bench.mjs URL OPERATOR_KEY [RUNS]");
  process.exit(2);
}
const runs = Number(runsArg || 5);
const browser = await launch();
const times = [];
let weight = null;
try {
  for (let i = 0; i <= runs; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const page = await context.newPage();
    const sizes = new Map();
    page.on("response", async (r) => {
      if (!r.url().startsWith(url)) return;
      const s = await r.request().sizes().catch(() => null);
      if (s) sizes.set(new URL(r.url()).pathname, s.responseBodySize);
    });
    await page.goto(`${url}/console`);
    await page.getByLabel("API key").fill(key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForSelector("body[data-map-ready=true]", { timeout: 30000 });
    const t = await page.evaluate(() => window.bealertTimings);
    if (i > 0) times.push(t.mapReady - t.signin);
    await page.waitForLoadState("networkidle");
    if (i === runs) weight = [...sizes.entries()].filter(([p]) => p.startsWith("/console"));
    await context.close();
  }
} finally {
  await browser.close();
}
let total = 0;
for (const [p, n] of weight) {
  total += n;
  console.log(`bench: ${p} ${n} bytes on the wire`);
}
console.log(`bench: console weight ${(total / 1024).toFixed(1)} KB compressed (goal <= 400 KB)`);
times.sort((a, b) => a - b);
console.log(`bench: sign-in to ready map, ${runs} runs: median ${times[Math.floor(times.length / 2)].toFixed(0)} ms, slowest ${times[times.length - 1].toFixed(0)} ms (goal <= 1000 ms)`);
