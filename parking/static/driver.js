// The driver's page: draws the parking streets (offline, from the zones' own geometry, over map tiles if
// an operator configured a tile server), fills the position for "near me", and gets a quote, starts,
// extends and ends sessions through the JSON API (each money request with its own Idempotency-Key).
(function () {
  "use strict";
  const data = HanoiPay.pageData();
  const messages = data.messages || {};
  const SVG = "http://www.w3.org/2000/svg";
  const status = document.getElementById("status");
  const problem = document.getElementById("problem");

  function say(text) {
    status.textContent = text;
  }

  function fail(error) {
    problem.textContent = error.message || String(error);
    problem.hidden = false;
    problem.focus && problem.focus();
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, key) => values[key]);
  }

  function localTime(iso) {
    return new Date(iso).toLocaleTimeString(HanoiPay.language === "vi" ? "vi-VN" : "en-GB", {
      hour: "2-digit", minute: "2-digit", timeZone: "Asia/Ho_Chi_Minh",
    });
  }

  // Web Mercator, so streets line up with standard map tiles when there are some.
  function project(lat, lon) {
    const sin = Math.sin((lat * Math.PI) / 180);
    return [(lon + 180) / 360, 0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI)];
  }

  function drawMap() {
    const svg = document.getElementById("map");
    const zones = data.zones || [];
    if (!svg || zones.length === 0) return;
    const points = zones.flatMap((z) => z.geometry.coordinates.map(([lat, lon]) => project(lat, lon)));
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
    points.forEach(([x, y]) => { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); });
    const pad = Math.max(x1 - x0, y1 - y0) * 0.08 || 0.0005;
    [x0, y0, x1, y1] = [x0 - pad, y0 - pad, x1 + pad, y1 + pad];
    const width = 1000;
    const scale = width / (x1 - x0);
    const height = Math.round((y1 - y0) * scale);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const at = ([x, y]) => `${((x - x0) * scale).toFixed(1)},${((y - y0) * scale).toFixed(1)}`;
    if (data.tiles) {
      const zoom = Math.max(0, Math.min(19, Math.floor(Math.log2(scale / 256))));
      const n = 2 ** zoom;
      for (let tx = Math.floor(x0 * n); tx <= Math.floor(x1 * n); tx++) {
        for (let ty = Math.floor(y0 * n); ty <= Math.floor(y1 * n); ty++) {
          const tile = document.createElementNS(SVG, "image");
          tile.setAttribute("href", data.tiles.replace("{z}", zoom).replace("{x}", tx).replace("{y}", ty));
          tile.setAttribute("x", ((tx / n - x0) * scale).toFixed(1));
          tile.setAttribute("y", ((ty / n - y0) * scale).toFixed(1));
          tile.setAttribute("width", (scale / n).toFixed(1));
          tile.setAttribute("height", (scale / n).toFixed(1));
          svg.appendChild(tile);
        }
      }
    }
    const vehicle = data.vehicle || "car";
    const freeIn = (zone) => (zone.free && zone.free[vehicle]) || 0;
    zones.forEach((zone) => {
      const free = freeIn(zone);
      const shape = document.createElementNS(SVG, zone.geometry.type === "Polygon" ? "polygon" : "polyline");
      shape.setAttribute("points", zone.geometry.coordinates.map(([lat, lon]) => at(project(lat, lon))).join(" "));
      shape.setAttribute("class", "zone " + (free > 0 ? "zone-free" : "zone-full"));
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${zone.name}: ${free} ${free > 0 ? messages.free : messages.full}`;
      shape.appendChild(title);
      shape.addEventListener("click", () => choose(zone.code));
      svg.appendChild(shape);
    });
    // Labels go on top of every street, zones with room first; a label that would cover one already
    // placed moves a line down or up, and is left out if it fits nowhere near its zone (the street
    // keeps its title, and the zone is in the results).
    const placed = [];
    const clear = (box) => placed.every((p) =>
      box.x >= p.x + p.width || p.x >= box.x + box.width || box.y >= p.y + p.height || p.y >= box.y + box.height);
    [...zones].sort((a, b) => freeIn(b) - freeIn(a)).forEach((zone) => {
      const label = document.createElementNS(SVG, "text");
      const [cx, cy] = at(project(zone.lat, zone.lon)).split(",").map(Number);
      label.setAttribute("x", cx);
      label.setAttribute("y", cy);
      label.setAttribute("class", "zone-label");
      label.textContent = `${zone.code} (${freeIn(zone)})`;
      svg.appendChild(label);
      // getBBox's rectangle keeps its fields on its prototype, so it is copied field by field.
      const { x, y, width, height } = label.getBBox();
      const shifted = (dy) => ({ x, y: y + dy, width, height });
      const dy = [0, height, -height, 2 * height, -2 * height].find((d) => clear(shifted(d)));
      if (dy === undefined) {
        label.remove();
        return;
      }
      label.setAttribute("y", cy + dy);
      placed.push(shifted(dy));
    });
  }

  function choose(code) {
    const select = document.getElementById("zone");
    select.value = code;
    document.getElementById("start").scrollIntoView();
    document.getElementById("plate").focus();
  }

  let quote = null;

  async function getPrice() {
    problem.hidden = true;
    const duration = document.getElementById("duration").value;
    const body = { zone_code: document.getElementById("zone").value, vehicle_type: document.getElementById("start-vehicle").value };
    if (duration) body.duration_minutes = Number(duration);
    try {
      say(messages.working);
      quote = await HanoiPay.api("POST", "/v1/parking/quotes", body);
      const template = quote.open_ended ? messages.open_quoted : messages.quoted;
      const text = fill(template, { amount: HanoiPay.vnd(quote.amount), time: localTime(quote.expires_at) });
      document.getElementById("quote").textContent = text;
      document.getElementById("pay").disabled = false;
      say(text);
    } catch (error) {
      fail(error);
    }
  }

  async function pay() {
    if (!quote) return;
    problem.hidden = true;
    const method = document.getElementById("pay-with").value;
    const body = { quote_id: quote.id, plate: document.getElementById("plate").value };
    if (method.startsWith("wallet:")) {
      body.provider = "wallet";
      body.wallet_id = method.slice("wallet:".length);
    } else {
      body.provider = "vietqr";
    }
    try {
      say(messages.working);
      // One key per quote: a double click or a retry starts one session.
      await HanoiPay.api("POST", "/v1/parking/sessions", body, { "Idempotency-Key": "start-" + quote.id });
      say(messages.started);
      window.location.assign("/parking#mine");
      window.location.reload();
    } catch (error) {
      fail(error);
    }
  }

  async function act(path, body, done) {
    problem.hidden = true;
    try {
      say(messages.working);
      await HanoiPay.api("POST", path, body, { "Idempotency-Key": HanoiPay.newKey("psn-act") });
      say(done);
      window.location.reload();
    } catch (error) {
      fail(error);
    }
  }

  document.querySelectorAll("[data-extend]").forEach((button) => {
    button.addEventListener("click", () => {
      const id = button.dataset.extend;
      const minutes = Number(document.getElementById("extend-" + id).value);
      act(`/v1/parking/sessions/${id}/extend`, { minutes }, messages.extended);
    });
  });
  document.querySelectorAll("[data-end]").forEach((button) => {
    button.addEventListener("click", () => act(`/v1/parking/sessions/${button.dataset.end}/end`, undefined, messages.ended));
  });
  document.querySelectorAll("[data-choose]").forEach((button) => {
    button.addEventListener("click", () => choose(button.dataset.choose));
  });
  ["zone", "duration", "start-vehicle"].forEach((id) => {
    document.getElementById(id).addEventListener("change", () => {
      quote = null;
      document.getElementById("pay").disabled = true;
      document.getElementById("quote").textContent = "";
    });
  });
  document.getElementById("get-price").addEventListener("click", getPrice);
  document.getElementById("pay").addEventListener("click", pay);
  document.getElementById("near-me").addEventListener("click", () => {
    if (!navigator.geolocation) return fail(new Error(messages.position));
    navigator.geolocation.getCurrentPosition(
      (position) => {
        document.getElementById("lat").value = position.coords.latitude.toFixed(6);
        document.getElementById("lon").value = position.coords.longitude.toFixed(6);
        document.getElementById("street").value = "";
        document.getElementById("search-form").submit();
      },
      () => fail(new Error(messages.position)),
      { timeout: 10000 },
    );
  });
  document.getElementById("street").addEventListener("input", () => {
    document.getElementById("lat").value = "";
    document.getElementById("lon").value = "";
  });
  drawMap();
})();
