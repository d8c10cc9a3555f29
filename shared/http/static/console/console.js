// The bealert operator console: plain JavaScript over the HTTP API
// (/openapi.yaml). The key stays in sessionStorage and goes as a Bearer
// token; every rule (territory, four-eyes, segment counts) is the API's,
// and the console shows its answers.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const KEY = "bealert.key";
  const LANGS = ["nl", "fr", "de", "en"];
  const FINAL = ["sent", "failed", "cancelled", "expired"];
  let me = null;
  let map = null;
  let mapEl = null;
  let outlines = null;
  let zoneLayer = null;
  let drawLayer = null;
  let shownLayer = null;
  let overshootLayer = null;
  let tool = null;
  let drawing = [];
  let lastPreview = null;
  let previewSeq = 0;
  let watchTimer = null;
  let watched = null;
  const timings = (window.bealertTimings = {});
  // The zone being drawn: parts, each one circle, polygon or unit.
  let parts = [];

  // ---------- the API ----------
  // A fresh Idempotency-Key: a request retried with it (a double click, a
  // lost answer) creates nothing new.
  function idempotencyKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function api(method, path, body, idempotency) {
    const headers = { Authorization: "Bearer " + (sessionStorage.getItem(KEY) || "") };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (idempotency) headers["Idempotency-Key"] = idempotency;
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    if (!res.ok) {
      const e = new Error(problem(data, res));
      e.status = res.status;
      throw e;
    }
    return data;
  }

  function problem(p, res) {
    if (p && typeof p === "object") {
      const fields = (p.errors || []).map((e) => `${e.path}: ${e.message}`);
      return [p.detail || p.title, ...fields].filter(Boolean).join(" · ");
    }
    return `${res.status} ${res.statusText}`;
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== false && v !== undefined && v !== null) e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  const fmt = (n) => (typeof n === "number" ? Math.round(n).toLocaleString("en-GB") : "–");
  const say = (id, text) => {
    $(id).textContent = text || "";
  };

  // ---------- sign in, menus, routing ----------
  async function signIn(key) {
    sessionStorage.setItem(KEY, key);
    try {
      me = await api("GET", "/v1/operator");
    } catch (e) {
      sessionStorage.removeItem(KEY);
      me = null;
      throw e;
    }
    $("who-name").textContent = `${me.user} · ${me.name} · ${me.territory ? me.territory.name : me.jurisdiction}`;
    $("who").hidden = false;
    $("nav").hidden = false;
    for (const a of document.querySelectorAll("[data-may]")) {
      a.parentElement.hidden = !me.may.includes(a.dataset.may);
    }
    const kb = $("key-banner");
    kb.hidden = !me.key_expires_soon;
    kb.textContent = me.key_expires_soon
      ? `Your key ends ${when(me.key_expires_at)} (Belgian time). Ask for a new one before then (bealert key rotate --overlap 1h keeps the old one working for an hour).`
      : "";
    $("halt").hidden = !mayHalt();
    refreshApprovalCount();
    refreshSending();
  }

  // ---------- the global stop ----------
  const mayHalt = () => !!me && me.jurisdiction === "national" && (me.rights || []).includes("halt");
  let sendingTimer = null;
  async function refreshSending() {
    clearInterval(sendingTimer);
    sendingTimer = null;
    if (!me) return;
    try {
      const s = await api("GET", "/v1/sending");
      $("halted-banner").hidden = !s.halted;
      if (s.halted) {
        $("halted-by").textContent = `by ${s.by || "?"}${s.at ? ", " + when(s.at) : ""}${s.reason ? ": " + s.reason : ""}`;
        $("halted-queued").textContent = fmt(Object.values(s.queued_jobs || {}).reduce((a, b) => a + b, 0));
      }
      $("resume").hidden = !(s.halted && mayHalt());
      $("halt").hidden = s.halted || !mayHalt();
    } catch {
      /* the state shows again at the next look */
    }
    sendingTimer = setInterval(refreshSending, 5000);
  }

  $("halt").addEventListener("click", () => {
    const dlg = $("halt-confirm");
    $("halt-reason").value = "";
    dlg.returnValue = "";
    dlg.showModal();
    $("halt-no").focus();
  });
  $("halt-confirm").addEventListener("close", async () => {
    if ($("halt-confirm").returnValue !== "halt") return $("halt").focus();
    const reason = $("halt-reason").value.trim();
    try {
      await api("POST", "/v1/sending:halt", reason ? { reason } : undefined);
    } catch (e) {
      alert(e.message);
    }
    await refreshSending();
    $("resume").focus();
  });
  $("resume").addEventListener("click", async () => {
    try {
      await api("POST", "/v1/sending:resume");
    } catch (e) {
      alert(e.message);
    }
    await refreshSending();
  });

  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say("signin-error", "");
    timings.signin = performance.now();
    try {
      await signIn($("key").value.trim());
      $("key").value = "";
      if (!location.hash || location.hash === "#signin") location.hash = me.may.includes("alert") ? "#new" : "#alerts";
      else route();
    } catch (e) {
      say("signin-error", e.status === 401 ? `This key is not valid: ${e.message}` : e.message);
    }
  });

  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    me = null;
    clearInterval(sendingTimer);
    for (const b of document.querySelectorAll(".banner")) b.hidden = true;
    $("halt").hidden = true;
    $("who").hidden = true;
    $("nav").hidden = true;
    location.hash = "#signin";
    route();
  });

  function show(name, title) {
    for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== `view-${name}`;
    for (const a of document.querySelectorAll("#nav a")) {
      if (a.getAttribute("href") === `#${name}`) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    document.title = `${title} · bealert console`;
    const h1 = document.querySelector(`#view-${name} h1`);
    if (h1) {
      h1.tabIndex = -1;
      h1.focus({ preventScroll: true });
    }
  }

  function route() {
    clearInterval(watchTimer);
    watchTimer = null;
    const h = location.hash.slice(1);
    if (!me) return show("signin", "Sign in");
    if (h.startsWith("alerts/")) return openWatch(decodeURIComponent(h.slice(7)));
    switch (h) {
      case "approvals":
        return openApprovals();
      case "alerts":
        return openAlerts();
      case "drills":
        return openDrills();
      default:
        return openNew();
    }
  }
  window.addEventListener("hashchange", route);

  // ---------- the map ----------
  const LEVEL_STYLE = {
    region: { color: "#1d3557", weight: 2.5 },
    province: { color: "#457b9d", weight: 1.5 },
    municipality: { color: "#8d99ae", weight: 1 },
  };

  function placeMap(slotId) {
    const slot = $(slotId);
    if (!mapEl) {
      mapEl = el("div", { id: "map", "aria-label": "Map of the zone: arrow keys move it, plus and minus zoom" });
      slot.append(mapEl);
      map = L.map(mapEl, { preferCanvas: true, zoomSnap: 0.25, minZoom: 6, maxZoom: 16 });
      map.attributionControl.setPrefix(false);
      const tiles = document.body.dataset.tiles;
      if (tiles) L.tileLayer(tiles, { attribution: "© OpenStreetMap contributors" }).addTo(map);
      map.fitBounds([[49.49, 2.54], [51.51, 6.41]]);
      map.on("click", onMapClick);
      zoneLayer = L.featureGroup().addTo(map);
      drawLayer = L.featureGroup().addTo(map);
      shownLayer = L.featureGroup().addTo(map);
      overshootLayer = L.featureGroup().addTo(map);
      loadOutlines();
    } else if (mapEl.parentElement !== slot) {
      slot.append(mapEl);
      map.invalidateSize();
    }
  }

  async function loadOutlines() {
    const res = await fetch("/console/outlines.geojson");
    outlines = await res.json();
    L.geoJSON(outlines, {
      interactive: false,
      style: (f) => ({ ...(LEVEL_STYLE[f.properties.level] || LEVEL_STYLE.municipality), fill: false }),
    }).addTo(map);
    const list = $("unit-list");
    for (const f of outlines.features) {
      list.append(el("option", { value: `${f.properties.name} (${f.properties.code})` }));
    }
    const t = me && me.territory;
    const own = t && outlines.features.find((f) => f.properties.code === t.code && f.properties.level === t.level);
    if (own) {
      L.geoJSON(own, { interactive: false, style: { color: "#d62828", weight: 4, fill: false, dashArray: "8 6" } })
        .addTo(map)
        .bindTooltip(`Your territory: ${t.name}`);
    }
    if (t) map.fitBounds([[t.bbox[1], t.bbox[0]], [t.bbox[3], t.bbox[2]]]);
    // The map is ready: outlines drawn.
    timings.mapReady = performance.now();
    document.body.dataset.mapReady = "true";
  }

  function setTool(name) {
    tool = tool === name ? null : name;
    $("tool-circle").setAttribute("aria-pressed", String(tool === "circle"));
    $("tool-polygon").setAttribute("aria-pressed", String(tool === "polygon"));
    $("finish-polygon").disabled = tool !== "polygon";
    drawing = [];
    drawLayer.clearLayers();
    say(
      "tool-hint",
      tool === "circle"
        ? "Click the centre of the circle on the map; its radius is the one in the field below."
        : tool === "polygon"
          ? "Click the corners on the map, then Finish polygon."
          : "Choose how to draw.",
    );
    mapEl.style.cursor = tool ? "crosshair" : "";
  }

  function onMapClick(ev) {
    if (tool === "circle") {
      $("circle-lat").value = ev.latlng.lat.toFixed(5);
      $("circle-lon").value = ev.latlng.lng.toFixed(5);
      addCircle();
    } else if (tool === "polygon") {
      drawing.push([ev.latlng.lng, ev.latlng.lat]);
      drawLayer.clearLayers();
      L.polyline(drawing.map(([x, y]) => [y, x]), { color: "#e76f51" }).addTo(drawLayer);
      for (const [x, y] of drawing) L.circleMarker([y, x], { radius: 4, color: "#e76f51" }).addTo(drawLayer);
    }
  }

  $("tool-circle").addEventListener("click", () => setTool("circle"));
  $("tool-polygon").addEventListener("click", () => setTool("polygon"));
  $("finish-polygon").addEventListener("click", () => {
    if (drawing.length < 3) return say("zone-error", "A polygon needs at least three corners: click them on the map.");
    const ring = [...drawing, drawing[0]];
    setTool(null);
    addPart({ kind: "polygon", ring, label: `Polygon of ${ring.length - 1} corners` });
  });
  $("clear-zone").addEventListener("click", () => {
    parts = [];
    overshootLayer.clearLayers();
    zoneChanged();
  });
  $("add-circle").addEventListener("click", addCircle);

  function addCircle() {
    const lat = Number($("circle-lat").value);
    const lon = Number($("circle-lon").value);
    const radius = Number($("circle-radius").value);
    if (!$("circle-lat").value || !$("circle-lon").value || !Number.isFinite(lat) || !Number.isFinite(lon)) {
      return say("zone-error", "Give the circle's centre: a latitude and a longitude in degrees, e.g. 51.2 and 4.4.");
    }
    if (!(radius > 0)) return say("zone-error", "Give the circle's radius in kilometres, more than 0.");
    addPart({ kind: "circle", lat, lon, radius_km: radius, label: `Circle of ${radius} km at ${lat.toFixed(4)}, ${lon.toFixed(4)}` });
  }

  $("add-unit").addEventListener("click", () => {
    const v = $("unit-input").value.trim();
    const code = (v.match(/\((\d{5})\)\s*$/) || v.match(/^(\d{5})$/) || [])[1];
    const f =
      outlines &&
      outlines.features.find((f) => (code ? f.properties.code === code : f.properties.name.toLowerCase() === v.toLowerCase()));
    const nis = code || (f && f.properties.code);
    if (!nis) return say("zone-error", `No municipality, province or region is called "${v}": pick one from the list or type its NIS code.`);
    addPart({ kind: "unit", code: nis, feature: f, label: f ? `${f.properties.name} (${nis})` : `NIS ${nis}` });
    $("unit-input").value = "";
  });

  $("add-geojson").addEventListener("click", () => {
    let g;
    try {
      g = JSON.parse($("geojson-input").value);
    } catch (e) {
      return say("zone-error", `This is not JSON: ${e.message}`);
    }
    const polys = [];
    const take = (geom) => {
      if (!geom) return;
      if (geom.type === "Polygon") polys.push(geom.coordinates);
      else if (geom.type === "MultiPolygon") polys.push(...geom.coordinates);
      else if (geom.type === "Feature") take(geom.geometry);
      else if (geom.type === "FeatureCollection") (geom.features || []).forEach(take);
    };
    take(g);
    if (!polys.length) return say("zone-error", "The GeoJSON holds no Polygon or MultiPolygon.");
    addPart({ kind: "geojson", polygons: polys, label: `Pasted GeoJSON (${polys.length} polygon${polys.length > 1 ? "s" : ""})` });
    $("geojson-input").value = "";
  });

  function areaOf(ps) {
    const area = {};
    const circles = ps.filter((p) => p.kind === "circle").map((p) => ({ lat: p.lat, lon: p.lon, radius_km: p.radius_km }));
    const polygons = [];
    for (const p of ps) {
      if (p.kind === "polygon") polygons.push([p.ring]);
      if (p.kind === "geojson") polygons.push(...p.polygons);
    }
    const geocodes = ps.filter((p) => p.kind === "unit").map((p) => ({ name: "NIS", value: p.code }));
    if (circles.length) area.circles = circles;
    if (polygons.length) area.geojson = { type: "MultiPolygon", coordinates: polygons };
    if (geocodes.length) area.geocodes = geocodes;
    return area;
  }

  // A part is added only if the API takes the zone with it: drawing
  // outside the territory is refused on the spot, with the API's reason.
  async function addPart(part) {
    say("zone-error", "");
    const next = [...parts, part];
    const ok = await preview(next);
    if (!ok) return;
    parts = next;
    drawZone(zoneLayer, parts);
    listParts();
  }

  function zoneChanged() {
    drawZone(zoneLayer, parts);
    listParts();
    say("zone-error", "");
    if (parts.length) preview(parts);
    else {
      lastPreview = null;
      overshootLayer.clearLayers();
      $("preview").replaceChildren(el("p", { class: "muted" }, "Draw a zone to see who it reaches."));
    }
  }

  function drawZone(layer, ps) {
    layer.clearLayers();
    const style = { color: "#e63946", weight: 2, fillOpacity: 0.15 };
    for (const p of ps) {
      if (p.kind === "circle") L.circle([p.lat, p.lon], { radius: p.radius_km * 1000, ...style }).addTo(layer);
      if (p.kind === "polygon") L.polygon(p.ring.map(([x, y]) => [y, x]), style).addTo(layer);
      if (p.kind === "geojson") L.geoJSON({ type: "MultiPolygon", coordinates: p.polygons }, { style }).addTo(layer);
      if (p.kind === "unit" && p.feature) L.geoJSON(p.feature, { style }).addTo(layer);
    }
  }

  function listParts() {
    const ul = $("zone-parts");
    if (!parts.length) return ul.replaceChildren(el("li", { class: "muted" }, "Nothing yet."));
    ul.replaceChildren(
      ...parts.map((p, i) =>
        el(
          "li",
          {},
          p.label,
          " ",
          el("button", { type: "button", class: "link", onclick: () => { parts.splice(i, 1); zoneChanged(); } }, `Remove ${p.label}`),
        ),
      ),
    );
  }

  // ---------- the preview ----------
  async function preview(ps) {
    const seq = ++previewSeq;
    const area = areaOf(ps);
    const box = $("preview");
    box.setAttribute("aria-busy", "true");
    try {
      // One request: the registered recipients and, when networks have
      // loaded their cells, the Alert-SMS estimate of the same zone.
      const who = await api("POST", "/v1/zones:preview", { area });
      if (seq !== previewSeq) return true;
      lastPreview = { who };
      box.replaceChildren(...previewView(who));
      overshootLayer.clearLayers();
      if (who.estimate) drawOvershoot(area, seq);
      return true;
    } catch (e) {
      if (seq === previewSeq) say("zone-error", `The zone was not changed: ${e.message}`);
      return false;
    } finally {
      box.removeAttribute("aria-busy");
    }
  }

  // Alert-SMS reaches whole cells: those partly outside the zone are
  // drawn (orange, dashed), so the overshoot shows beyond the zone's edge.
  async function drawOvershoot(area, seq) {
    try {
      const est = await api("POST", "/v1/zones:estimate", { area, overshoot_cells: true });
      if (seq !== previewSeq) return;
      const cells = est.overshoot_cells;
      L.geoJSON(cells, { interactive: false, style: { color: "#c2410c", weight: 1, dashArray: "4 4", fillColor: "#fb923c", fillOpacity: 0.12 } }).addTo(overshootLayer);
      zoneLayer.bringToFront();
      const n = cells.features.length;
      $("preview").append(
        el("p", { id: "overshoot-note" }, n ? `${n}${cells.truncated ? "+" : ""} cell${n > 1 ? "s" : ""} reach beyond the zone: drawn in orange on the map.` : "No cell reaches beyond the zone."),
      );
    } catch (e) {
      say("zone-error", `The overshoot could not be drawn: ${e.message}`);
    }
  }

  function countTable(caption, rows) {
    return el(
      "table",
      {},
      el("caption", {}, caption),
      el("tbody", {}, ...rows.map(([k, v]) => el("tr", {}, el("th", { scope: "row" }, k), el("td", {}, fmt(v))))),
    );
  }

  function previewView(who) {
    const est = who.estimate;
    const out = [
      el("p", { class: "big", id: "recipients" }, `${fmt(who.recipients)} registered recipients`),
      countTable("By channel", Object.entries(who.by_channel || {})),
      countTable("By language", Object.entries(who.by_language || {})),
    ];
    if (!est) {
      out.push(el("p", { class: "muted" }, "Alert-SMS: no mobile network has loaded its cells, so there is no estimate of the people present."));
    } else {
      const nets = Object.entries(est.networks || {});
      out.push(
        el("p", {}, `Alert-SMS: about ${fmt(est.estimated_present)} people present; ${fmt(est.reach_devices)} devices reached; `,
          `overshoot ${(est.overshoot_km2 || 0).toFixed(1)} km² (about ${fmt(est.overshoot_people)} people outside the zone)`),
      );
      if (nets.length) {
        out.push(
          el(
            "table",
            {},
            el("caption", {}, "Per network"),
            el("thead", {}, el("tr", {}, ...["Network", "People present", "Devices reached", "Cells", "Overshoot km²"].map((h) => el("th", { scope: "col" }, h)))),
            el(
              "tbody",
              {},
              ...nets.map(([n, v]) =>
                el("tr", {}, el("th", { scope: "row" }, n), el("td", {}, fmt(v.estimated_present)), el("td", {}, fmt(v.reach_devices)),
                  el("td", {}, fmt(v.cells)), el("td", {}, (v.overshoot_km2 || 0).toFixed(1))),
              ),
            ),
          ),
        );
      }
    }
    return out;
  }

  // ---------- composing ----------
  let templates = [];
  async function loadTemplates() {
    try {
      templates = (await api("GET", "/v1/alert-templates")).items || [];
    } catch {
      templates = [];
    }
    for (const sel of [$("template"), $("drill-template")]) {
      const first = sel.id === "template" ? [el("option", { value: "" }, "No template")] : [];
      sel.replaceChildren(...first, ...templates.map((t) => el("option", { value: t.name }, `${t.name}: ${t.event}`)));
    }
  }

  // A template fills the form; its blanks ({place}) get one field each,
  // written into every language's text as it is typed.
  let template = null;
  function fillBlanks() {
    if (!template) return;
    const values = {};
    for (const input of $("blank-fields").querySelectorAll("input")) if (input.value.trim()) values[input.dataset.blank] = input.value.trim();
    for (const l of LANGS) {
      const text = (template.messages && template.messages[l]) || "";
      $(`msg-${l}`).value = text.replace(/\{([a-z_]+)\}/g, (m, name) => values[name] || m);
    }
    measure();
  }
  $("template").addEventListener("change", () => {
    template = templates.find((t) => t.name === $("template").value) || null;
    const blanks = (template && template.placeholders) || [];
    $("blank-fields").replaceChildren(
      ...blanks.map((b) => el("label", {}, `${b} `, el("input", { "data-blank": b, oninput: fillBlanks }))),
    );
    $("blanks").hidden = blanks.length === 0;
    if (!template) return;
    const t = template;
    $("event").value = t.event;
    for (const k of ["severity", "urgency", "certainty"]) if (t[k]) $(k).value = t[k];
    if (t.channels) for (const c of document.querySelectorAll("input[name=channel]")) c.checked = t.channels.includes(c.value);
    fillBlanks();
  });

  const status = () => document.querySelector("input[name=status]:checked").value;

  function statusChanged() {
    const s = status();
    const send = $("send");
    send.className = `send ${s.toLowerCase()}`;
    send.textContent = s === "Actual" ? "Send the REAL alert" : `Send ${s.toLowerCase()}`;
    document.getElementById("view-new").dataset.status = s;
    measure();
  }
  for (const r of document.querySelectorAll("input[name=status]")) r.addEventListener("change", statusChanged);

  let measureTimer = null;
  function measure() {
    clearTimeout(measureTimer);
    measureTimer = setTimeout(async () => {
      const messages = {};
      for (const l of LANGS) if ($(`msg-${l}`).value.trim()) messages[l] = $(`msg-${l}`).value;
      for (const l of LANGS) if (!messages[l]) say(`meter-${l}`, "No text: these people get English, or the first language given.");
      if (!Object.keys(messages).length) return;
      try {
        const m = await api("POST", "/v1/messages:measure", { status: status(), messages });
        for (const [l, v] of Object.entries(m)) {
          const marker = v.text.slice(0, v.text.length - messages[l].length);
          say(
            `meter-${l}`,
            `${marker ? `Starts with "${marker.trim()}". ` : ""}SMS: ${v.sms.segments} part${v.sms.segments > 1 ? "s" : ""} (${v.sms.units} ${v.sms.encoding === "gsm7" ? "GSM characters" : "UCS-2 units"}). ` +
              `Cell broadcast: ${v.cell_broadcast.pages} page${v.cell_broadcast.pages > 1 ? "s" : ""}${v.cell_broadcast_problem ? ` (${v.cell_broadcast_problem})` : ""}.`,
          );
        }
      } catch (e) {
        say("compose-error", e.message);
      }
    }, 200);
  }
  for (const l of LANGS) $(`msg-${l}`).addEventListener("input", measure);

  function alertBody() {
    const messages = {};
    for (const l of LANGS) if ($(`msg-${l}`).value.trim()) messages[l] = $(`msg-${l}`).value.trim();
    return {
      status: status(),
      event: $("event").value.trim(),
      severity: $("severity").value,
      urgency: $("urgency").value,
      certainty: $("certainty").value,
      messages,
      area: areaOf(parts),
      channels: [...document.querySelectorAll("input[name=channel]:checked")].map((c) => c.value),
    };
  }

  $("compose").addEventListener("submit", (ev) => {
    ev.preventDefault();
    say("compose-error", "");
    const body = alertBody();
    if (!parts.length) return say("compose-error", "Draw the zone first: a circle, a polygon, a municipality or pasted GeoJSON.");
    if (!body.event) return say("compose-error", "Name the event (e.g. Chemical leak).");
    if (!Object.keys(body.messages).length) return say("compose-error", "Write the message in at least one language.");
    if (!body.channels.length) return say("compose-error", "Choose at least one channel.");
    const open = Object.entries(body.messages).find(([, t]) => /\{[a-z_]+\}/.test(t));
    if (open) return say("compose-error", `Fill in ${open[1].match(/\{[a-z_]+\}/)[0]} in the ${open[0]} text (it comes from the template).`);
    const n = lastPreview ? lastPreview.who.recipients : 0;
    const present = lastPreview && lastPreview.who.estimate ? lastPreview.who.estimate.estimated_present : null;
    const s = body.status;
    const dlg = $("confirm");
    dlg.className = s.toLowerCase();
    $("confirm-title").textContent = s === "Actual" ? `Send a REAL ALERT to ${fmt(n)} people?` : `Send this ${s.toLowerCase()} to ${fmt(n)} people?`;
    $("confirm-text").textContent =
      (s === "Actual"
        ? `This is not an exercise. ${fmt(n)} registered people will be warned of "${body.event}" by ${body.channels.join(", ")}`
        : `${fmt(n)} registered people get a message marked ${s.toUpperCase()} by ${body.channels.join(", ")}`) +
      (present !== null ? `; about ${fmt(present)} people are in the zone.` : ".") +
      (s === "Actual" ? " A second person must approve it before it leaves." : "");
    $("confirm-yes").textContent = s === "Actual" ? `Yes, send the REAL alert to ${fmt(n)} people` : `Send the ${s.toLowerCase()} to ${fmt(n)} people`;
    dlg.returnValue = "";
    dlg.showModal();
    $("confirm-no").focus();
    // One key for this confirmation: sent again, it creates nothing new.
    const once = idempotencyKey();
    dlg.onclose = async () => {
      if (dlg.returnValue !== "send") return $("send").focus();
      try {
        const created = await api("POST", "/v1/alerts", body, once);
        location.hash = `#alerts/${created.id}`;
      } catch (e) {
        say("compose-error", e.message);
        $("send").focus();
      }
    };
  });

  function openNew() {
    show("new", "New alert");
    placeMap("new-map-slot");
    shownLayer.clearLayers();
    drawZone(zoneLayer, parts);
    if (!templates.length) loadTemplates();
    statusChanged();
  }

  // ---------- approvals ----------
  async function refreshApprovalCount() {
    if (!me || !me.may.includes("approve")) return;
    try {
      const n = (await api("GET", "/v1/alerts?state=awaiting_approval")).items.length;
      $("approval-count").textContent = n ? `(${n})` : "";
    } catch {
      /* the count is a convenience */
    }
  }

  async function showAlertOnMap(id) {
    const area = await api("GET", `/v1/alerts/${id}/area`);
    shownLayer.clearLayers();
    const style = { color: "#6a040f", weight: 2, fillOpacity: 0.2 };
    L.geoJSON(area, {
      style,
      pointToLayer: (f, ll) => L.circle(ll, { radius: f.properties.radius_km * 1000, ...style }),
    }).addTo(shownLayer);
    if (shownLayer.getLayers().length) map.fitBounds(shownLayer.getBounds(), { maxZoom: 12 });
  }

  async function openApprovals() {
    show("approvals", "Approvals");
    placeMap("approval-map-slot");
    zoneLayer.clearLayers();
    overshootLayer.clearLayers();
    shownLayer.clearLayers();
    say("approval-error", "");
    $("approval-detail").replaceChildren();
    try {
      const items = (await api("GET", "/v1/alerts?state=awaiting_approval")).items;
      $("approval-count").textContent = items.length ? `(${items.length})` : "";
      $("approval-list").replaceChildren(
        ...(items.length
          ? items.map((a) => el("li", {}, el("button", { type: "button", class: "link", onclick: () => openApproval(a) }, `${a.event} (${a.status}) by ${a.created_by || a.operator} of ${a.operator}, ${when(a.created_at)}`)))
          : [el("li", { class: "muted" }, "Nothing awaits approval.")]),
      );
    } catch (e) {
      say("approval-error", e.message);
    }
  }

  function textsView(messages) {
    return el("div", { class: "texts read" }, ...Object.entries(messages || {}).map(([l, t]) => el("div", { class: "text", lang: l }, el("h3", {}, l.toUpperCase()), el("p", {}, t))));
  }

  async function openApproval(item) {
    const id = item.id;
    say("approval-error", "");
    try {
      const a = await api("GET", `/v1/alerts/${id}`);
      await showAlertOnMap(id);
      $("approval-detail").replaceChildren(
        el("h2", { tabindex: "-1", id: "approval-head" }, `${a.event}: ${a.status === "Actual" ? "REAL ALERT" : a.status}`),
        el("p", {}, `By ${a.operator}, ${when(a.created_at)}. Channels: ${Object.keys(a.channels).join(", ")}.`),
        textsView(a.messages),
        item.may_approve === false
          ? el("p", { class: "hint", id: "own-alert" }, "You created this alert: another person must approve it (four-eyes). You can withdraw it from its page.", " ", el("a", { href: `#alerts/${id}` }, "Open it"))
          : el(
              "div",
              { class: "row" },
              el("button", { type: "button", class: "primary", onclick: () => decide(id, "approve") }, "Approve and send"),
              el("button", { type: "button", class: "danger", onclick: () => decide(id, "reject") }, "Reject"),
            ),
      );
      $("approval-head").focus();
    } catch (e) {
      say("approval-error", e.message);
    }
  }

  async function decide(id, verb) {
    say("approval-error", "");
    try {
      await api("POST", `/v1/alerts/${id}:${verb}`);
      location.hash = `#alerts/${id}`;
    } catch (e) {
      say("approval-error", e.message);
    }
  }

  // ---------- the alert list ----------
  async function openAlerts() {
    show("alerts", "Alerts");
    const box = $("alert-list");
    try {
      const items = (await api("GET", "/v1/alerts")).items;
      if (!items.length) return box.replaceChildren(el("p", { class: "muted" }, "No alert in the last 7 days."));
      box.replaceChildren(
        el(
          "table",
          {},
          el("thead", {}, el("tr", {}, ...["Created", "Event", "Kind", "State", "By"].map((h) => el("th", { scope: "col" }, h)))),
          el(
            "tbody",
            {},
            ...items.map((a) =>
              el("tr", {}, el("td", {}, when(a.created_at)), el("td", {}, el("a", { href: `#alerts/${a.id}` }, a.event)),
                el("td", {}, el("span", { class: `badge ${a.status.toLowerCase()}` }, a.status)), el("td", {}, a.state), el("td", {}, a.operator)),
            ),
          ),
        ),
      );
    } catch (e) {
      box.replaceChildren(el("p", { class: "problem" }, e.message));
    }
  }

  // ---------- watching an alert ----------
  async function openWatch(id) {
    show("watch", "Alert");
    placeMap("watch-map-slot");
    zoneLayer.clearLayers();
    overshootLayer.clearLayers();
    say("watch-error", "");
    $("update-box").hidden = true;
    watched = null;
    $("watch").replaceChildren(el("p", { class: "muted" }, "Loading…"));
    try {
      await showAlertOnMap(id);
    } catch (e) {
      say("watch-error", e.message);
    }
    const tick = async () => {
      try {
        const a = await api("GET", `/v1/alerts/${id}`);
        watched = a;
        renderWatch(a);
        if (FINAL.includes(a.state)) {
          clearInterval(watchTimer);
          watchTimer = null;
        }
      } catch (e) {
        say("watch-error", e.message);
      }
    };
    await tick();
    if (watched && !FINAL.includes(watched.state)) watchTimer = setInterval(tick, 1000);
  }

  // First and last message sent, from the alert's release (each within a
  // histogram bucket, never shown better than measured).
  const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
  const firstLast = (t) => (t && t.to_sent ? `${secs(t.to_sent.first_ms)} / ${secs(t.to_sent.last_ms)}` : "–");
  const when = (iso) => (iso ? new Date(iso).toLocaleString("en-GB", { timeZone: "Europe/Brussels" }) : "");

  function renderWatch(a) {
    $("watch-title").textContent = `${a.event}: ${a.msg_type && a.msg_type !== "Alert" ? a.msg_type + " · " : ""}${a.status === "Actual" ? "REAL ALERT" : a.status}`;
    const live = !FINAL.includes(a.state) && a.state !== "awaiting_approval";
    // A cancel is not cancelled, updated or cleared: its original was.
    // Only a person who may send follows an alert up.
    const followable = a.msg_type !== "Cancel" && !a.all_clear && me.may.includes("alert");
    $("do-cancel").hidden = !followable || !["awaiting_approval", "resolving", "sending", "sent"].includes(a.state);
    $("do-cancel").textContent = a.state === "awaiting_approval" ? "Withdraw (cancel) this alert" : "Cancel this alert";
    $("do-update").hidden = !followable || !["resolving", "sending", "sent"].includes(a.state);
    $("do-all-clear").hidden = !followable || !["resolving", "sending", "sent"].includes(a.state);
    const channels = Object.entries(a.channels || {});
    const rows = [];
    for (const [c, v] of channels) {
      rows.push(el("tr", { class: "channel" }, el("th", { scope: "row" }, c), ...[v.queued, v.sent, v.delivered, v.failed, v.cancelled].map((n) => el("td", {}, fmt(n || 0))), el("td", {}, firstLast(v.times))));
      for (const [l, lv] of Object.entries(v.languages || {})) {
        rows.push(el("tr", {}, el("th", { scope: "row", class: "sub" }, `${c} · ${l}`), ...[lv.queued, lv.sent, lv.delivered, lv.failed, lv.cancelled].map((n) => el("td", {}, fmt(n || 0))), el("td", {}, firstLast(lv.times))));
      }
    }
    const out = [
      el("p", { class: "state" }, "State: ", el("strong", { id: "alert-state", class: `state-${a.state}` }, a.state.replace("_", " ")), live ? " (updating every second)" : ""),
      el("p", {}, `${fmt(a.recipients)} registered recipients · created ${when(a.created_at)} (Belgian time) by ${a.operator}${a.completed_at ? ` · done ${when(a.completed_at)}` : ""}`),
      a.references ? el("p", {}, `${a.all_clear ? "All-clear" : a.msg_type || "Follow-up"} of `, el("a", { href: `#alerts/${a.references}` }, "the original alert")) : null,
      el(
        "table",
        {},
        el("caption", {}, "Per channel and language"),
        el("thead", {}, el("tr", {}, ...["", "Queued", "Sent", "Delivered", "Failed", "Cancelled", "First / last"].map((h) => el("th", { scope: "col" }, h || el("span", { class: "sr-only" }, "Channel"))))),
        el("tbody", {}, ...rows),
      ),
    ];
    const nets = Object.entries(a.networks || {});
    if (nets.length) {
      out.push(
        el(
          "table",
          {},
          el("caption", {}, "Alert-SMS per network"),
          el("thead", {}, el("tr", {}, ...["Network", "State", "Cells", "Requested", "Accepted", "Delivered", "Failed"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, ...nets.map(([n, v]) => el("tr", {}, el("th", { scope: "row" }, n), el("td", {}, v.state), ...[v.cells, v.requested, v.accepted, v.delivered, v.failed].map((x) => el("td", {}, fmt(x || 0)))))),
        ),
      );
    }
    const reasons = channels.flatMap(([c, v]) => Object.entries(v.reasons || {}).map(([r, n]) => `${c}: ${r} (${n})`));
    for (const [n, v] of nets) if (v.error) reasons.push(`${n}: ${v.error}`);
    if (reasons.length) out.push(el("h2", {}, "Failures"), el("ul", {}, ...reasons.map((r) => el("li", {}, r))));
    out.push(el("h2", {}, "Texts"), textsView(a.messages));
    $("watch").replaceChildren(...out);
  }

  async function followUp(verb, body) {
    say("watch-error", "");
    if (!watched) return;
    try {
      const created = await api("POST", `/v1/alerts/${watched.id}:${verb}`, body, idempotencyKey());
      location.hash = `#alerts/${created.id}`;
    } catch (e) {
      say("watch-error", e.message);
    }
  }
  $("do-cancel").addEventListener("click", () => followUp("cancel"));
  $("do-all-clear").addEventListener("click", () => followUp("all_clear"));
  $("do-update").addEventListener("click", () => {
    $("update-box").hidden = false;
    for (const l of LANGS) $(`update-${l}`).value = (watched && watched.messages && watched.messages[l]) || "";
    $("update-nl").focus();
  });
  $("send-update").addEventListener("click", () => {
    const messages = {};
    for (const l of LANGS) if ($(`update-${l}`).value.trim()) messages[l] = $(`update-${l}`).value.trim();
    if (!Object.keys(messages).length) return say("watch-error", "Write the update's text in at least one language.");
    followUp("update", { messages });
  });

  // ---------- drills ----------
  async function openDrills() {
    show("drills", "Drills");
    if (!templates.length) await loadTemplates();
    const box = $("drill-list");
    try {
      const items = (await api("GET", "/v1/drills")).items;
      if (!items.length) return box.replaceChildren(el("p", { class: "muted" }, "No drill is scheduled."));
      box.replaceChildren(
        el(
          "table",
          {},
          el("caption", {}, "Scheduled drills"),
          el("thead", {}, el("tr", {}, ...["Template", "Schedule", "Next run", "Kind", "Zone", "Reports"].map((h) => el("th", { scope: "col" }, h)))),
          el(
            "tbody",
            {},
            ...items.map((d) =>
              el("tr", {}, el("td", {}, d.template), el("td", {}, d.schedule), el("td", {}, d.next_run || "–"), el("td", {}, d.status),
                el("td", {}, d.area ? JSON.stringify(d.area).slice(0, 60) : (d.groups || []).join(", ")),
                el("td", {}, el("button", { type: "button", class: "link", onclick: () => showRuns(d) }, `Reports of ${d.template}, ${d.schedule}`))),
            ),
          ),
        ),
      );
    } catch (e) {
      box.replaceChildren(el("p", { class: "problem" }, e.message));
    }
  }

  async function showRuns(d) {
    const box = $("drill-runs");
    try {
      const runs = (await api("GET", `/v1/drills/${d.id}/runs`)).items;
      box.replaceChildren(
        el("h2", {}, `Reports of ${d.template}`),
        runs.length
          ? el("ul", {}, ...runs.map((r) => el("li", {}, `${r.scheduled_at || ""} `, r.alert_id ? el("a", { href: `#alerts/${r.alert_id}` }, `alert ${r.alert_id}`) : "", r.error ? ` · ${r.error}` : "", r.missed ? " · missed" : "", r.channels ? ` · ${Object.entries(r.channels).map(([c, v]) => `${c}: ${v.sent} sent, ${v.failed} failed`).join("; ")}` : "")))
          : el("p", { class: "muted" }, "It has not run yet."),
      );
    } catch (e) {
      box.replaceChildren(el("p", { class: "problem" }, e.message));
    }
  }

  $("drill-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say("drill-error", "");
    const code = $("drill-geocode").value.trim();
    const values = {};
    for (const line of $("drill-values").value.split("\n")) {
      const [k, ...v] = line.split("=");
      if (k.trim()) values[k.trim()] = v.join("=").trim();
    }
    try {
      await api("POST", "/v1/drills", {
        schedule: $("drill-schedule").value.trim(),
        template: $("drill-template").value,
        values,
        area: { geocodes: [{ name: "NIS", value: code }] },
        status: document.querySelector("input[name=drill-status]:checked").value,
      });
      openDrills();
    } catch (e) {
      say("drill-error", e.message);
    }
  });

  // ---------- start ----------
  (async () => {
    if (sessionStorage.getItem(KEY)) {
      try {
        await signIn(sessionStorage.getItem(KEY));
      } catch {
        /* back to the sign-in form */
      }
    }
    route();
  })();
})();
