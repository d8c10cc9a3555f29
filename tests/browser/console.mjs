// The operator console in a real browser (Debian's headless Chromium,
// driven by playwright-core), against a running `bealert serve` whose SMS
// limit is low enough to catch an alert while it sends:
//
//   node console.mjs URL DATA_DIR ARTIFACTS_DIR KEY_OFFICER KEY_SECOND KEY_MAYOR KEY_NETWORK
//
// KEY_OFFICER and KEY_SECOND are two people of one national operator (the
// second may approve and halt, not send), KEY_MAYOR a municipal operator
// whose key ends within 14 days (Elsene/Ixelles, 21009), KEY_NETWORK a
// mobile network's key (its cells give the Alert-SMS estimate). Signs in, draws
// a circle, reads the preview, sends an exercise and watches it reach
// `sent`, cancels another while it sends, has an Actual alert approved by
// the second person, refuses the mayor a zone outside the territory, does
// the whole send flow with the keyboard alone, and lists and creates
// drills. axe-core scans every screen (zero violations of WCAG 2.1 A/AA);
// screenshots go to ARTIFACTS_DIR. Exits 1 on any failure. (The
// benchmark figures are console-bench.mjs's.)
import { launch, check, results, outbox as readOutbox, axe, shot as shotIn } from "./common.mjs";

const [url, dataDir, artifacts, officer, second, mayor, networkKey] = process.argv.slice(2);
if (!networkKey) {
  console.error("usage: node console.mjs URL DATA_DIR ARTIFACTS_DIR KEY_OFFICER KEY_SECOND KEY_MAYOR KEY_NETWORK");
  process.exit(2);
}

const outbox = (channel) => readOutbox(dataDir, channel);
const shot = (page, name) => shotIn(page, artifacts, name);

async function api(method, p, key, body) {
  const res = await fetch(`${url}${p}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, ms = 30000) {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function signIn(page, key, map = true) {
  await page.goto(`${url}/console`);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForSelector(map ? "body[data-map-ready=true]" : "#who:not([hidden])");
}

/** Zooms the map in on a point (lat, lon), as a person would, and clicks it. */
async function clickMap(page, lat, lon) {
  const p = await page.evaluate(([lat, lon]) => {
    const m = document.getElementById("map");
    const map = m._leaflet_map;
    map.setView([lat, lon], 15, { animate: false });
    const r = m.getBoundingClientRect();
    const c = map.latLngToContainerPoint([lat, lon]);
    return { x: r.left + c.x, y: r.top + c.y };
  }, [lat, lon]);
  await page.mouse.click(p.x, p.y);
}

// Subscribers: 10 near the Grand-Place (the exercise), 400 in Antwerp
// (the alert cancelled while it sends at 20 SMS/s).
const subscribers = [];
for (let i = 0; i < 10; i++) {
  subscribers.push({ external_id: `bxl-${i}`, language: ["nl", "fr", "de", "en"][i % 4], phone: `+3247010${String(i).padStart(4, "0")}`, channels: ["sms"], addresses: [{ lat: 50.8467 + i * 0.0001, lon: 4.3525 }] });
}
for (let i = 0; i < 400; i++) {
  subscribers.push({ external_id: `antw-${i}`, language: i % 2 ? "nl" : "en", phone: `+3247020${String(i).padStart(4, "0")}`, channels: ["sms"], addresses: [{ lat: 51.2194 + (i % 20) * 0.0005, lon: 4.4025 + Math.floor(i / 20) * 0.0005 }] });
}
const imported = await api("POST", "/v1/subscribers:import", officer, { subscribers });
if (imported.status !== 200 || imported.body.imported !== 410) {
  console.error("import failed", imported);
  process.exit(1);
}

// One network's cells around the Grand-Place: a 3 x 3 grid of ~1 km
// squares, so a 0.5 km circle there touches cells that reach beyond it.
const cells = [];
for (let i = 0; i < 3; i++) {
  for (let j = 0; j < 3; j++) {
    const [lat, lon] = [50.8377 + i * 0.009, 4.3385 + j * 0.014];
    cells.push({ type: "Feature", properties: { cell_id: `bxl-${i}-${j}`, active_devices: 1200 },
      geometry: { type: "Polygon", coordinates: [[[lon, lat], [lon + 0.014, lat], [lon + 0.014, lat + 0.009], [lon, lat + 0.009], [lon, lat]]] } });
  }
}
const loaded = await api("PUT", "/v1/networks/proximus/cells", networkKey, { type: "FeatureCollection", features: cells });
if (loaded.status !== 200) {
  console.error("cells not loaded", loaded);
  process.exit(1);
}

// A template with a blank, for composing and for drills.
const put = await api("PUT", "/v1/alert-templates/flood", officer, { event: "Flood", messages: { nl: "Overstroming in {place}. Ga naar hoger gelegen plaatsen.", fr: "Inondation à {place}. Montez en hauteur.", en: "Flood in {place}. Move to higher ground." }, severity: "Severe", urgency: "Expected", certainty: "Likely" });
if (put.status !== 200 && put.status !== 201) {
  console.error("template not stored", put);
  process.exit(1);
}

const browser = await launch();
const thirdParty = [];
async function newPage() {
  // bypassCSP lets the test inject axe-core; the page itself is unchanged.
  const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  page.on("request", (r) => { if (!r.url().startsWith(url)) thirdParty.push(r.url()); });
  page.on("pageerror", (e) => check(false, `no script error (${e.message})`));
  // Leaflet keeps its map on the element; the test reads it to click points.
  await page.addInitScript(() => {
    const wait = setInterval(() => {
      if (window.L && !window.L.Map.prototype._bealertHooked) {
        window.L.Map.prototype._bealertHooked = true;
        window.L.Map.addInitHook(function () { this._container._leaflet_map = this; });
        clearInterval(wait);
      }
    }, 1);
  });
  return { context, page };
}

try {
  console.log("sign in, draw, preview, send an exercise:");
  {
    const { context, page } = await newPage();
    await page.goto(`${url}/console`);
    await axe(page, "sign-in");
    await shot(page, "1-sign-in");
    await page.getByLabel("API key").fill("bea_not-a-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForSelector("#signin-error:not(:empty)");
    check((await page.textContent("#signin-error")).includes("not valid"), "a wrong key is refused, saying so");
    await signIn(page, officer);
    check((await page.textContent("#who-name")).includes("national"), "the header names the person, operator and jurisdiction");
    check(await page.evaluate(() => sessionStorage.getItem("bealert.key") !== null && document.cookie === ""), "the key is in sessionStorage, no cookie");
    check(await page.locator("#halt").isHidden(), "a person without the halt right is not offered the global stop");
    check(await page.locator("#key-banner").isHidden(), "a key far from its end is not warned of");
    const idempotency = [];
    page.on("request", (r) => { if (r.method() === "POST" && r.url().endsWith("/v1/alerts")) idempotency.push(r.headers()["idempotency-key"]); });
    await axe(page, "new alert");
    await page.getByRole("button", { name: "Circle on the map" }).click();
    await page.getByLabel("Radius (km)").fill("0.5");
    await clickMap(page, 50.8467, 4.3525);
    await page.waitForSelector("#recipients");
    check((await page.textContent("#recipients")).startsWith("10 registered"), `the preview counts the 10 people in the circle (${await page.textContent("#recipients")}; ${await page.textContent("#zone-parts")})`);
    check((await page.textContent("#preview")).includes("By language"), "the preview splits by language");
    check((await page.textContent("#preview")).includes("proximus"), "the preview gives the Alert-SMS estimate per network");
    await page.waitForSelector("#overshoot-note");
    const note = await page.textContent("#overshoot-note");
    check(/^\d+ cells? reach beyond the zone/.test(note), `the overshoot is drawn on the map: ${note}`);
    // A template fills every language; its blank is typed once.
    await page.locator("#template").selectOption("flood");
    await page.locator("[data-blank=place]").fill("Elsene");
    check((await page.locator("#msg-nl").inputValue()) === "Overstroming in Elsene. Ga naar hoger gelegen plaatsen." &&
      (await page.locator("#msg-fr").inputValue()).startsWith("Inondation à Elsene."), "a template's blank, typed once, fills every language");
    check((await page.locator("#severity").inputValue()) === "Severe" && (await page.locator("#event").inputValue()) === "Flood", "the template sets the event and its defaults");
    await page.locator("#template").selectOption("");
    await page.locator("#msg-de").fill("");
    await page.getByLabel("Event").fill("Gas leak");
    await page.locator("#msg-nl").fill("Gaslek aan de Grote Markt. Blijf binnen.");
    await page.locator("#msg-fr").fill("Fuite de gaz à la Grand-Place. Restez à l'intérieur.");
    await page.locator("#msg-en").fill("Gas leak at the Grand-Place. Stay inside.");
    await page.waitForFunction(() => document.getElementById("meter-nl").textContent.includes("OEFENING"));
    check((await page.textContent("#meter-fr")).includes("EXERCICE") && (await page.textContent("#meter-fr")).includes("SMS: 1 part"), "each language shows its exercise marker and SMS parts");
    check((await page.textContent("#meter-de")).includes("No text"), "a language without text says who gets what");
    await axe(page, "composed exercise");
    await shot(page, "2-exercise-composed");
    await page.getByRole("button", { name: "Send exercise" }).click();
    await page.waitForSelector("dialog[open]");
    check((await page.textContent("#confirm-title")).includes("exercise to 10 people"), `the confirmation names the number of people (${await page.textContent("#confirm-title")})`);
    await axe(page, "exercise confirmation");
    await shot(page, "3-exercise-confirm");
    await page.getByRole("button", { name: /Send the exercise to 10 people/ }).click();
    await page.waitForURL(/#alerts\//);
    check(idempotency.length === 1 && /^[0-9a-f-]{32,36}$/.test(idempotency[0] || ""), `the alert is sent with an Idempotency-Key (${idempotency})`);
    await page.waitForFunction(() => document.getElementById("alert-state") && document.getElementById("alert-state").textContent === "sent", null, { timeout: 30000 });
    check(true, "the exercise reaches sent on the watch screen");
    const id = page.url().split("#alerts/")[1];
    const sms = outbox("sms").filter((l) => l.alert_id === id);
    check(sms.length === 10 && sms.every((l) => /^(OEFENING|EXERCICE|EXERCISE|ÜBUNG) - /.test(l.text)), `10 SMS left, each marked as an exercise (${sms.length})`);
    check((await page.textContent("#watch")).includes("sms · nl"), "the watch screen counts per language");
    const nlRow = await page.locator("tr", { hasText: "sms · nl" }).textContent();
    check(/\d+\.\d s \/ \d+\.\d s/.test(nlRow), `the watch screen gives the first and last message per language (${nlRow})`);
    await axe(page, "watch (sent)");
    await shot(page, "4-exercise-sent");

    console.log("update and all-clear from the watch screen:");
    await page.getByRole("button", { name: "Send an update" }).click();
    await page.locator("#update-en").fill("Update: the gas leak is under control. Stay inside for one more hour.");
    await axe(page, "update");
    await page.getByRole("button", { name: "Send the update" }).click();
    await page.waitForURL((u) => !u.toString().endsWith(id));
    await page.waitForFunction(() => (document.getElementById("alert-state") || {}).textContent === "sent", null, { timeout: 30000 });
    const update = page.url().split("#alerts/")[1];
    const updates = outbox("sms").filter((l) => l.alert_id === update);
    check(updates.length === 10 && updates.some((l) => l.text.includes("under control")), `the update reaches the 10 (${updates.length})`);
    check(updates.some((l) => l.language === "nl" && l.text.includes("Gaslek")), "languages not changed keep the alert's text");
    await page.getByRole("button", { name: "All clear" }).click();
    await page.waitForURL((u) => !u.toString().endsWith(update));
    await page.waitForFunction(() => (document.getElementById("alert-state") || {}).textContent === "sent", null, { timeout: 30000 });
    const clear = page.url().split("#alerts/")[1];
    check(outbox("sms").filter((l) => l.alert_id === clear).length === 10, "the all-clear reaches the 10, in one click");

    console.log("cancel an alert while it sends:");
    await page.goto(`${url}/console#new`);
    await page.waitForSelector("body[data-map-ready=true]");
    await page.getByRole("button", { name: "Clear zone" }).click();
    await page.getByLabel("Latitude", { exact: true }).fill("51.2244");
    await page.getByLabel("Longitude", { exact: true }).fill("4.4075");
    await page.getByLabel("Radius (km)").fill("2");
    await page.getByRole("button", { name: "Add circle" }).click();
    await page.waitForFunction(() => (document.getElementById("recipients") || {}).textContent === "400 registered recipients");
    await page.getByLabel("Event").fill("Fire");
    await page.locator("#msg-en").fill("Fire at the port. Close windows and doors.");
    await page.getByRole("button", { name: "Send exercise" }).click();
    await page.getByRole("button", { name: /Send the exercise to 400 people/ }).click();
    await page.waitForURL(/#alerts\//);
    const original = page.url().split("#alerts/")[1];
    await page.waitForFunction(() => (document.getElementById("alert-state") || {}).textContent === "sending");
    await waitFor("the first SMS", () => outbox("sms").some((l) => l.alert_id === original));
    await shot(page, "5-sending");
    await page.getByRole("button", { name: "Cancel this alert" }).click();
    await page.waitForURL((u) => !u.toString().endsWith(original));
    const orig = await waitFor("the original to end", async () => {
      const a = await api("GET", `/v1/alerts/${original}`, officer);
      const done = ["cancelled", "sent"].includes(a.body.state) && a.body.channels.sms.queued === 0;
      return done ? a.body : null;
    });
    const sent = orig.channels.sms.sent;
    check(orig.state === "cancelled" && sent < 400 && orig.channels.sms.cancelled > 0, `cancelled while sending: ${sent} sent, ${orig.channels.sms.cancelled} never sent`);
    check(outbox("sms").filter((l) => l.alert_id === original).length === sent, "the outbox holds exactly the originals counted as sent");
    await page.waitForFunction(() => (document.getElementById("alert-state") || {}).textContent === "sent", null, { timeout: 60000 });
    check((await page.textContent("#watch-title")).includes("Cancel"), "the console follows the cancel to sent");
    await axe(page, "watch (cancel)");
    await shot(page, "6-cancel-sent");
    await context.close();
  }

  console.log("four-eyes: an Actual alert approved by a second person:");
  {
    const { context, page } = await newPage();
    await signIn(page, officer);
    await page.getByLabel("Latitude", { exact: true }).fill("50.8467");
    await page.getByLabel("Longitude", { exact: true }).fill("4.3525");
    await page.getByLabel("Radius (km)").fill("0.5");
    await page.getByRole("button", { name: "Add circle" }).click();
    await page.waitForSelector("#recipients");
    await page.getByLabel("Actual: a real emergency").check();
    check((await page.textContent("#send")).includes("REAL"), "Actual changes the send button to a red REAL alert");
    await page.getByLabel("Event").fill("Toxic cloud");
    await page.locator("#msg-en").fill("Toxic cloud. Stay inside, close windows.");
    await shot(page, "7-actual-composed");
    await page.getByRole("button", { name: "Send the REAL alert" }).click();
    check((await page.textContent("#confirm-title")).includes("REAL ALERT to 10 people"), `the Actual confirmation says REAL ALERT and the number (${await page.textContent("#confirm-title")})`);
    await axe(page, "actual confirmation");
    await shot(page, "8-actual-confirm");
    await page.getByRole("button", { name: /Yes, send the REAL alert to 10 people/ }).click();
    await page.waitForURL(/#alerts\//);
    const id = page.url().split("#alerts/")[1];
    await page.waitForFunction(() => (document.getElementById("alert-state") || {}).textContent === "awaiting approval");
    // The author is not offered the approval.
    await page.goto(`${url}/console#approvals`);
    await page.getByRole("button", { name: /Toxic cloud/ }).click();
    await page.waitForSelector("#own-alert");
    check((await page.locator("#approval-detail button").count()) === 0, "the author is not offered Approve or Reject, and is told why");
    const own = await api("POST", `/v1/alerts/${id}:approve`, officer);
    check(own.status === 403, `nor can the author approve it through the API (${own.status})`);
    await context.close();

    const second_ = await newPage();
    const p2 = second_.page;
    await signIn(p2, second, false);
    check(await p2.evaluate(() => document.querySelector("a[href='#new']").parentElement.hidden), "an approver who may not send is not offered New alert");
    await p2.goto(`${url}/console#approvals`);
    await p2.getByRole("button", { name: /Toxic cloud/ }).click();
    await p2.waitForSelector("#approval-detail .texts");
    check((await p2.textContent("#approval-detail")).includes("Toxic cloud. Stay inside"), "the approver sees the texts");
    check(await p2.evaluate(() => document.querySelectorAll("#map path.leaflet-interactive, #map canvas").length > 0), "the approver sees the zone on the map");
    await axe(p2, "approvals");
    await shot(p2, "9-approval");
    await p2.getByRole("button", { name: "Approve and send" }).click();
    await p2.waitForFunction(() => (document.getElementById("alert-state") || {}).textContent === "sent", null, { timeout: 30000 });
    check(outbox("sms").filter((l) => l.alert_id === id).length === 10, "approved by the second person, it reaches the 10");
    check(await p2.locator("#do-cancel").isHidden() && await p2.locator("#do-update").isHidden(), "nor a cancel or update of a sent alert");
    await p2.goto(`${url}/console#alerts`);
    await p2.waitForSelector("#alert-list table");
    await axe(p2, "alert list");
    await shot(p2, "10-alerts");

    console.log("the global stop, by a person holding halt:");
    await p2.getByRole("button", { name: "Stop all sending" }).click();
    await p2.waitForSelector("#halt-confirm[open]");
    await axe(p2, "halt confirmation");
    await p2.getByLabel(/Reason/).fill("browser test");
    await p2.getByRole("button", { name: "Stop all sending" }).last().click();
    await p2.waitForSelector("#halted-banner:not([hidden])");
    check((await p2.textContent("#halted-banner")).includes("browser test"), "the console says all sending is stopped, by whom and why");
    const halted = await api("GET", "/v1/sending", officer);
    check(halted.body && halted.body.halted === true, `the API agrees: halted (${JSON.stringify(halted.body)})`);
    await axe(p2, "halted");
    await shot(p2, "10b-halted");
    await p2.getByRole("button", { name: "Resume sending" }).click();
    await p2.waitForSelector("#halted-banner[hidden]", { state: "attached" });
    const resumed = await api("GET", "/v1/sending", officer);
    check(resumed.body && resumed.body.halted === false && resumed.body.log.length === 2, "resumed, and both moves are in the log");
    await second_.context.close();
  }

  console.log("a municipal operator outside its territory:");
  {
    const { context, page } = await newPage();
    await signIn(page, mayor);
    check((await page.textContent("#who-name")).includes("Elsene/Ixelles"), "the header names the territory");
    check((await page.textContent("#key-banner")).includes("Your key ends"), "a key that ends within 14 days is warned of");
    check(await page.evaluate(() => document.querySelector("a[href='#drills']").parentElement.hidden === false), "the menus offer what a mayor may do");
    const before = await page.textContent("#zone-parts");
    await page.getByLabel("Latitude", { exact: true }).fill("51.2194");
    await page.getByLabel("Longitude", { exact: true }).fill("4.4025");
    await page.getByLabel("Radius (km)").fill("1");
    await page.getByRole("button", { name: "Add circle" }).click();
    await page.waitForSelector("#zone-error:not(:empty)");
    const why = await page.textContent("#zone-error");
    check(/outside|territory|jurisdiction/i.test(why), `a circle in Antwerp is refused on the spot: ${why}`);
    check((await page.textContent("#zone-parts")) === before, "and is not in the zone");
    await axe(page, "refused zone");
    await shot(page, "11-mayor-refused");
    // Nor can it send there through the API the console uses.
    const r = await api("POST", "/v1/alerts", mayor, { status: "Exercise", event: "x", severity: "Minor", urgency: "Future", certainty: "Possible", messages: { en: "x" }, area: { circles: [{ lat: 51.2194, lon: 4.4025, radius_km: 1 }] }, channels: ["sms"] });
    check(r.status === 403, `the API refuses the send outside the territory (${r.status})`);
    await context.close();
  }

  console.log("keyboard only: sign in, zone, text, send, watch:");
  {
    const { context, page } = await newPage();
    await page.goto(`${url}/console`);
    const focusOn = async (selector, max = 80) => {
      for (let i = 0; i < max; i++) {
        if (await page.evaluate((s) => document.activeElement && document.activeElement.matches(s), selector)) return;
        await page.keyboard.press("Tab");
      }
      throw new Error(`Tab never reached ${selector}`);
    };
    await focusOn("#key");
    await page.keyboard.type(officer);
    await page.keyboard.press("Enter");
    await page.waitForSelector("body[data-map-ready=true]");
    await focusOn("#circle-lat");
    await page.keyboard.type("50.8467");
    await page.keyboard.press("Tab");
    await page.keyboard.type("4.3525");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Control+A");
    await page.keyboard.type("0.5");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    await page.waitForSelector("#recipients");
    await focusOn("#event");
    await page.keyboard.type("Keyboard drill");
    await focusOn("#msg-en");
    await page.keyboard.type("Keyboard test message. No action needed.");
    await focusOn("#send");
    await page.keyboard.press("Enter");
    await page.waitForSelector("dialog[open]");
    check(await page.evaluate(() => document.activeElement.id === "confirm-no"), "the confirmation takes the focus, on Go back");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    await page.waitForURL(/#alerts\//);
    await page.waitForFunction(() => (document.getElementById("alert-state") || {}).textContent === "sent", null, { timeout: 30000 });
    check(true, "sent with the keyboard alone");
    await context.close();
  }

  console.log("the page under its own Content-Security-Policy (no bypass):");
  {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const page = await context.newPage();
    const errors = [];
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    page.on("pageerror", (e) => errors.push(e.message));
    await signIn(page, officer);
    await page.getByLabel("Latitude", { exact: true }).fill("50.8467");
    await page.getByLabel("Longitude", { exact: true }).fill("4.3525");
    await page.getByRole("button", { name: "Add circle" }).click();
    await page.waitForSelector("#overshoot-note");
    await page.goto(`${url}/console#alerts`);
    await page.waitForSelector("#alert-list table");
    check(errors.length === 0, `no script error and nothing the policy refuses (${errors.join("; ")})`);
    await context.close();
  }

  console.log("drills:");
  {
    const { context, page } = await newPage();
    await signIn(page, officer);
    await page.goto(`${url}/console#drills`);
    await page.waitForSelector("#drill-list p, #drill-list table");
    await page.locator("#drill-template").selectOption("flood");
    await page.getByLabel(/Zone: NIS code/).fill("21009");
    await page.getByLabel(/Values/).fill("place=Elsene");
    await page.getByRole("button", { name: "Schedule" }).click();
    await page.waitForSelector("#drill-list table, #drill-error:not(:empty)");
    check(await page.textContent("#drill-error") === "", `the drill is accepted ${await page.textContent("#drill-error")}`);
    check((await page.textContent("#drill-list")).includes("flood"), "a drill scheduled from the console is listed");
    await page.getByRole("button", { name: /Reports of flood/ }).first().click();
    await page.waitForSelector("#drill-runs h2");
    await axe(page, "drills");
    await shot(page, "12-drills");
    await context.close();
  }
  check(thirdParty.length === 0, `no third-party requests (${thirdParty.join(", ")})`);
} catch (e) {
  results.failures += 1;
  console.log(`  FAIL ${e.stack || e}`);
} finally {
  await browser.close();
}

console.log(results.failures ? `${results.failures} failure(s)` : "all console checks passed");
process.exit(results.failures ? 1 : 0);
