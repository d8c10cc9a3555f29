// The signup page in a real browser (Debian's headless Chromium, driven by
// playwright-core), against a running `bealert serve`:
//
//   node signup.mjs URL DATA_DIR OPERATOR_KEY ARTIFACTS_DIR
//
// For each language: the form, its errors, the confirmation of the point
// found, the codes read from the outbox, done; an axe-core scan of every
// page state (WCAG 2.1 A/AA rules) must find zero violations; screenshots
// go to ARTIFACTS_DIR. Then a wrong code, a page at 200 % zoom, keyboard
// use, the script's location button, a page without JavaScript (a form
// sent back at once is asked again, never held; a landline gets its code by
// a call), and the
// next alert reaching the citizens who signed up; then self-service in
// English and Dutch: a link asked on the page, read from the outbox, an
// address added, pause, resume, delete. Exits 1 on any failure.
import fs from "node:fs";
import { launch, check, results, outbox as readOutbox, axe, shot as shotIn } from "./common.mjs";

const [url, dataDir, operatorKey, artifacts] = process.argv.slice(2);
if (!artifacts) {
  console.error("usage: node signup.mjs URL DATA_DIR OPERATOR_KEY ARTIFACTS_DIR");
  process.exit(2);
}
fs.mkdirSync(artifacts, { recursive: true });

const outbox = (channel) => readOutbox(dataDir, channel);
const shot = (page, name) => shotIn(page, artifacts, name);

async function codeFor(channel, to) {
  for (let i = 0; i < 100; i++) {
    const line = outbox(channel).reverse().find((l) => l.kind === "verification" && l.to === to);
    // A call reads the digits one by one ("1, 2, 3, 4, 5, 6").
    if (line) return channel === "voice" ? line.text.split(". ")[0].replace(/\D/g, "") : line.text.match(/\b\d{6}\b/)[0];
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no code to ${to} in the ${channel} outbox`);
}

const words = {
  nl: { phone: "Telefoonnummer", email: "E-mailadres", postal: "Postcode", consent: /Ik ga ermee akkoord/, submit: "Verder", confirm: "Bevestigen en code sturen", verify: "Bevestigen", done: "U bent ingeschreven", consentError: "Vink de toestemming aan", codeWrong: "Deze code klopt niet" },
  fr: { phone: "Numéro de téléphone", email: "Adresse e-mail", postal: "Code postal", consent: /J'accepte que bealert/, submit: "Continuer", confirm: "Confirmer et envoyer le code", verify: "Confirmer", done: "Vous êtes inscrit", consentError: "Cochez le consentement", codeWrong: "Ce code n'est pas correct" },
  de: { phone: "Telefonnummer", email: "E-Mail-Adresse", postal: "Postleitzahl", consent: /Ich bin einverstanden/, submit: "Weiter", confirm: "Bestätigen und Code senden", verify: "Bestätigen", done: "Sie sind angemeldet", consentError: "kreuzen Sie die Einwilligung an", codeWrong: "Dieser Code stimmt nicht" },
  en: { phone: "Phone number", email: "E-mail address", postal: "Postal code", consent: /I agree that bealert/, submit: "Continue", confirm: "Confirm and send my code", verify: "Confirm", done: "You are signed up", consentError: "Tick the consent box", codeWrong: "This code is not right" },
};
const locales = { nl: "nl-BE", fr: "fr-BE", de: "de-BE", en: "en-GB" };

const browser = await launch();
const thirdParty = [];
const phones = {};
try {
  let n = 0;
  for (const [lang, w] of Object.entries(words)) {
    console.log(`${lang}:`);
    n += 1;
    const phone = `+3247055500${n}`;
    const email = `citizen-${lang}@example.be`;
    phones[lang] = phone;
    // bypassCSP lets the test inject axe-core; the page itself is unchanged.
    const context = await browser.newContext({ locale: locales[lang], bypassCSP: true, viewport: { width: 1024, height: 900 } });
    const page = await context.newPage();
    page.on("request", (r) => { if (!r.url().startsWith(url)) thirdParty.push(r.url()); });

    await page.goto(`${url}/`);
    check((await page.getAttribute("html", "lang")) === lang, `Accept-Language ${locales[lang]} gives the ${lang} page`);
    await axe(page, `${lang} form`);
    await shot(page, `${lang}-1-form`);

    // Errors next to their fields, in the page's language.
    await page.getByRole("button", { name: w.submit }).click();
    check(await page.getByText(w.consentError).first().isVisible(), "errors say what to fix, in the page's language");
    check((await page.getAttribute("#consent", "aria-invalid")) === "true", "the field with the error is marked invalid");
    await axe(page, `${lang} form with errors`);
    await shot(page, `${lang}-2-errors`);

    await page.getByLabel(w.phone, { exact: true }).fill(phone);
    await page.getByLabel(w.email, { exact: true }).fill(email);
    await page.getByLabel("SMS", { exact: true }).check();
    await page.locator("#ch-email").check();
    await page.locator("#a0-postal").fill("6600");
    await page.getByLabel(w.consent).check();
    await page.getByRole("button", { name: w.submit }).click();
    check(await page.getByText("Bastogne").first().isVisible(), "the point found for 6600 is shown to confirm");
    await axe(page, `${lang} confirmation`);
    await shot(page, `${lang}-3-confirm`);

    await page.getByRole("button", { name: w.confirm }).click();
    await page.waitForSelector("#code-phone", { timeout: 30000 });
    await axe(page, `${lang} code entry`);
    await shot(page, `${lang}-4-code`);

    const smsCode = await codeFor("sms", phone);
    await page.locator("#code-phone").fill(smsCode);
    await page.locator("form.code").filter({ has: page.locator("#code-phone") }).getByRole("button", { name: w.verify, exact: true }).click();
    await page.waitForSelector("#code-email");
    const emailCode = await codeFor("email", email);
    await page.locator("#code-email").fill(emailCode);
    await page.getByRole("button", { name: w.verify, exact: true }).first().click();
    await page.waitForSelector("h1");
    check((await page.textContent("h1")).includes(w.done), "both codes typed: signed up");
    await axe(page, `${lang} done`);
    await shot(page, `${lang}-5-done`);
    await context.close();
  }

  console.log("a wrong code:");
  {
    const context = await browser.newContext({ locale: "fr-BE", bypassCSP: true });
    const page = await context.newPage();
    await page.goto(`${url}/`);
    await page.getByLabel("Adresse e-mail", { exact: true }).fill("wrong-code@example.be");
    await page.locator("#ch-email").check();
    await page.locator("#a0-town").fill("Liège");
    await page.getByLabel(/J'accepte que bealert/).check();
    await page.getByRole("button", { name: "Continuer" }).click();
    await page.getByRole("button", { name: "Confirmer et envoyer le code" }).click();
    await page.waitForSelector("#code-email");
    const right = await codeFor("email", "wrong-code@example.be");
    await page.locator("#code-email").fill(right === "123456" ? "654321" : "123456");
    await page.getByRole("button", { name: "Confirmer", exact: true }).click();
    await page.waitForSelector("#code-error");
    check((await page.textContent("#code-error")).includes("Ce code n'est pas correct (encore 4 essais)"), "a wrong code: said in French, with the tries left");
    check((await page.getAttribute("#code-email", "aria-invalid")) === "true", "the code field is marked invalid");
    await axe(page, "fr wrong code");
    await shot(page, "fr-6-wrong-code");
    await context.close();
  }

  console.log("200 % zoom, keyboard, location:");
  {
    // A 1280 px screen at 200 % zoom is a 640 px wide viewport at scale 2.
    const context = await browser.newContext({ locale: "de-BE", bypassCSP: true, viewport: { width: 640, height: 800 }, deviceScaleFactor: 2,
      geolocation: { latitude: 50.6326, longitude: 5.5797 }, permissions: ["geolocation"] });
    const page = await context.newPage();
    await page.goto(`${url}/`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `no horizontal scrolling at 200 % (overflow ${overflow}px)`);
    await shot(page, "de-7-zoom-200");
    // Keyboard: the first field is reached by Tab after the language links.
    await page.keyboard.press("Tab");
    let reached = false;
    for (let i = 0; i < 10 && !reached; i++) {
      reached = await page.evaluate(() => document.activeElement && document.activeElement.id === "phone");
      if (!reached) await page.keyboard.press("Tab");
    }
    check(reached, "the phone field is reached with the keyboard");
    await page.keyboard.type("+32470555100");
    await page.getByRole("button", { name: "Meinen aktuellen Standort verwenden" }).click();
    await page.waitForFunction(() => document.querySelector("#a0-located").textContent.includes("50.63"));
    check(true, "the script's location button fills the first address");
    await page.getByLabel("SMS", { exact: true }).check();
    await page.getByLabel(/Ich bin einverstanden/).check();
    await page.getByRole("button", { name: "Weiter" }).focus();
    await Promise.all([page.waitForURL("**/signup"), page.keyboard.press("Enter")]);
    await page.waitForSelector("ol.places");
    await shot(page, "de-8-device-point");
    check(await page.getByText("Standort Ihres Geräts.").isVisible(), "the device's point is shown as such");
    await axe(page, "de confirmation at 200 %");
    await context.close();
  }

  console.log("without JavaScript:");
  {
    const context = await browser.newContext({ locale: "nl-BE", javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${url}/`);
    await page.getByLabel("E-mailadres", { exact: true }).fill("no-script@example.be");
    await page.locator("#ch-email").check();
    await page.locator("#a0-postal").fill("9000");
    await page.getByLabel(/Ik ga ermee akkoord/).check();
    await page.getByRole("button", { name: "Verder" }).click();
    check(await page.getByText("Gent").first().isVisible(), "no script: the point is found");
    await page.getByRole("button", { name: "Bevestigen en code sturen" }).click();
    await page.waitForSelector("#code-email");
    await page.locator("#code-email").fill(await codeFor("email", "no-script@example.be"));
    await page.getByRole("button", { name: "Bevestigen", exact: true }).click();
    check((await page.textContent("h1")).includes("U bent ingeschreven"), "no script: signed up by e-mail");
    // A phone without the script's proof of work: the server never waits;
    // a form sent back faster than a person fills it in is asked again.
    await page.goto(`${url}/`);
    await page.getByLabel("Telefoonnummer", { exact: true }).fill("+32470555199");
    await page.getByLabel("SMS", { exact: true }).check();
    await page.locator("#a0-postal").fill("9000");
    await page.getByLabel(/Ik ga ermee akkoord/).check();
    await page.getByRole("button", { name: "Verder" }).click();
    await page.getByRole("button", { name: "Bevestigen en code sturen" }).click();
    check((await page.textContent("#summary")).includes("Dat ging snel"), "no script: a form sent back at once is asked again");
    check(!outbox("sms").some((l) => l.to === "+32470555199"), "no script: no code for a form sent back at once");
    // A person reads the page before confirming (the wait is the test's, not the server's).
    await page.waitForTimeout(5200);
    await page.getByRole("button", { name: "Verder" }).click();
    await page.getByRole("button", { name: "Bevestigen en code sturen" }).click();
    await page.waitForSelector("#code-phone");
    await page.locator("#code-phone").fill(await codeFor("sms", "+32470555199"));
    await page.getByRole("button", { name: "Bevestigen", exact: true }).click();
    check((await page.textContent("h1")).includes("U bent ingeschreven"), "no script: signed up by phone");
    // A landline: SMS is refused next to the channels; by call, its code comes by a call.
    await page.goto(`${url}/`);
    await page.getByLabel("Telefoonnummer", { exact: true }).fill("+3292345678");
    await page.getByLabel("SMS", { exact: true }).check();
    await page.locator("#a0-postal").fill("9000");
    await page.getByLabel(/Ik ga ermee akkoord/).check();
    await page.getByRole("button", { name: "Verder" }).click();
    check((await page.textContent("#channels-error")).includes("vaste lijn"), "a landline cannot choose SMS, and the page says so");
    await page.getByLabel("SMS", { exact: true }).uncheck();
    await page.getByLabel("Telefoonoproep", { exact: true }).check();
    await page.waitForTimeout(5200);
    await page.getByRole("button", { name: "Verder" }).click();
    await page.getByRole("button", { name: "Bevestigen en code sturen" }).click();
    await page.waitForSelector("#code-phone");
    check((await page.textContent("body")).includes("Code ontvangen via een oproep"), "a landline's code comes by a call");
    await page.locator("#code-phone").fill(await codeFor("voice", "+3292345678"));
    await page.getByRole("button", { name: "Bevestigen", exact: true }).click();
    check((await page.textContent("h1")).includes("U bent ingeschreven"), "no script: a landline signed up by call");
    check(!outbox("sms").some((l) => l.to === "+3292345678"), "never an SMS to a landline");
    await context.close();
  }

  console.log("the next alert:");
  {
    const res = await fetch(`${url}/v1/alerts`, {
      method: "POST",
      headers: { authorization: `Bearer ${operatorKey}`, "content-type": "application/json" },
      body: JSON.stringify({
        status: "Exercise", event: "Browser test", severity: "Minor", urgency: "Immediate", certainty: "Observed",
        messages: { nl: "Oefening", fr: "Exercice", de: "Übung", en: "Exercise" },
        area: { circles: [{ lat: 50.0035, lon: 5.7184, radius_km: 5 }] },
      }),
    });
    const created = await res.json();
    check(res.status === 201, `an alert over Bastogne is accepted (${res.status})`);
    let state = "";
    for (let i = 0; i < 200 && state !== "sent"; i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = (await (await fetch(`${url}/v1/alerts/${created.id}`, { headers: { authorization: `Bearer ${operatorKey}` } })).json()).state;
    }
    const got = outbox("sms").filter((l) => l.kind === "alert" && l.alert_id === created.id).map((l) => l.to);
    for (const [lang, phone] of Object.entries(phones)) {
      check(got.includes(phone), `the ${lang} citizen's phone got the alert`);
    }
    const line = outbox("sms").find((l) => l.kind === "alert" && l.to === phones.de);
    check(line && line.text.startsWith("ÜBUNG"), "in the citizen's own language");
  }
  const manageWords = {
    en: { link: "Manage my registration", contact: "Mobile number or e-mail address", send: "Send the link", sent: "it received a link", active: "active", paused: "paused", save: "Save", saved: "Saved.", pause: "Pause", resume: "Resume", confirm: /I want to delete my registration/, del: "Delete my registration", deleted: "Your registration is deleted", dead: "This link is not valid or has expired" },
    nl: { link: "Inschrijving beheren", contact: "Gsm-nummer of e-mailadres", send: "Link sturen", sent: "kreeg het een link", active: "actief", paused: "gepauzeerd", save: "Opslaan", saved: "Opgeslagen.", pause: "Pauzeren", resume: "Hervatten", confirm: /Ik wil mijn inschrijving/, del: "Inschrijving verwijderen", deleted: "Uw inschrijving is verwijderd", dead: "Deze link is ongeldig of verlopen" },
  };
  for (const [lang, m] of Object.entries(manageWords)) {
    console.log(`self-service (${lang}): link, edit, pause, resume, delete:`);
    const context = await browser.newContext({ locale: locales[lang], bypassCSP: true });
    const page = await context.newPage();
    page.on("request", (r) => { if (!r.url().startsWith(url)) thirdParty.push(r.url()); });
    await page.goto(`${url}/`);
    await page.getByRole("link", { name: m.link }).click();
    await axe(page, `${lang} link request`);
    await page.getByLabel(m.contact).fill(phones[lang]);
    await page.getByRole("button", { name: m.send }).click();
    check(await page.getByText(m.sent).isVisible(), "the link is said to be sent, without saying who is registered");
    let line;
    for (let i = 0; i < 50 && !line; i++) {
      line = outbox("sms").reverse().find((l) => l.kind === "self_service" && l.to === phones[lang]);
      if (!line) await new Promise((r) => setTimeout(r, 100));
    }
    check(Boolean(line), "a link went to the verified phone");
    const link = line.text.slice(line.text.indexOf("http"));
    await page.goto(link);
    check((await page.textContent("#state")).includes(m.active), "the link opens the registration");
    await axe(page, `${lang} manage`);
    await shot(page, `${lang}-8-manage`);
    await page.locator("#new-postal").fill("9000");
    await page.locator("#new-label").fill("work");
    await page.getByRole("button", { name: m.save }).click();
    check(await page.getByText(m.saved).isVisible(), "an address is added");
    check((await page.locator(".places li").count()) === 2, "two addresses now");
    await page.getByRole("button", { name: m.pause }).click();
    check((await page.textContent("#state")).includes(m.paused), "paused");
    await axe(page, `${lang} manage, paused`);
    await page.getByRole("button", { name: m.resume }).click();
    check((await page.textContent("#state")).includes(m.active), "resumed");
    await page.getByLabel(m.confirm).check();
    await page.getByRole("button", { name: m.del }).click();
    check((await page.textContent("h1")).includes(m.deleted), "deleted, and the page says what");
    check((await page.textContent("#report")).includes("addresses: 2"), "the report counts the addresses");
    await axe(page, `${lang} deleted`);
    await shot(page, `${lang}-9-deleted`);
    await page.goto(link);
    check((await page.textContent("body")).includes(m.dead), "the link no longer opens anything");
    await context.close();
  }
  check(thirdParty.length === 0, `no third-party requests (${thirdParty.join(", ")})`);
} catch (e) {
  results.failures += 1;
  console.log(`  FAIL ${e.stack || e}`);
} finally {
  await browser.close();
}
console.log(results.failures ? `${results.failures} failure(s)` : "all browser checks passed");
process.exit(results.failures ? 1 : 0);
