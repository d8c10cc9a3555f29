// What the browser tests share: Debian's headless Chromium, checks that
// count failures, the embedded outbox, axe-core scans and screenshots.
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

/** Headless Chromium (CHROMIUM, else Debian's), without GPU or background traffic. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** The failures counted by check (exit 1 when any). */
export const results = { failures: 0 };

export function check(cond, what) {
  console.log(`  ${cond ? "ok  " : "FAIL"} ${what}`);
  if (!cond) results.failures += 1;
}

/** The outbox lines of a channel in a data dir. */
export function outbox(dataDir, channel) {
  const file = path.join(dataDir, "outbox", `${channel}.jsonl`);
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** axe-core on the page as it is now: zero violations of WCAG 2.1 A/AA. */
export async function axe(page, state) {
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  const details = result.violations.map((v) => `${v.id} (${v.nodes.length}: ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}): ${v.help}`);
  check(result.violations.length === 0, `axe: no violations on ${state}${details.length ? " - " + details.join("; ") : ""}`);
}

/** A full-page screenshot into a directory (made if missing). */
export async function shot(page, dir, name) {
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}
