// The rider's page: the device key lives in this browser (WebCrypto Ed25519, not extractable) and signs
// each time slot's code here; the format is docs/transit-qr.md. The server only sees the public key and
// the codes, and draws a code as a PNG on request.
(function () {
  "use strict";

  const data = HanoiPay.pageData();
  const messages = data.messages || {};
  const DB = "hanoipay-transit";
  const STORE = "devices";
  const status = document.getElementById("rider-message");

  function say(text, kind) {
    status.textContent = text;
    status.className = "alert alert-" + (kind || "info");
    status.hidden = false;
  }

  function fail(error) {
    say((messages.error || "Error") + ": " + (error.detail || error.message || error), "error");
  }

  function b64url(bytes) {
    let text = "";
    bytes.forEach((b) => { text += String.fromCharCode(b); });
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromB64url(text) {
    const plain = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
    return Uint8Array.from(plain, (c) => c.charCodeAt(0));
  }

  function openDb() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DB, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id" });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  async function stored(id) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const request = db.transaction(STORE).objectStore(STORE).get(id);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  async function store(record) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, "readwrite");
      tx.objectStore(STORE).put(record);
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
    });
  }

  async function registerDevice() {
    if (!window.crypto || !crypto.subtle) { say(messages.no_webcrypto, "error"); return; }
    let keys;
    try {
      keys = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    } catch (error) {
      say(messages.no_webcrypto, "error");
      return;
    }
    const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", keys.publicKey));
    const device = await HanoiPay.api("POST", `/v1/transit/cards/${data.card_id}/devices`, {
      public_key: b64url(publicKey),
      name: (navigator.userAgentData && navigator.userAgentData.platform) || "Browser",
    });
    await store({ id: device.id, card: data.card_id, key: keys.privateKey, credential: device.credential, counter: 0 });
    say(messages.registered, "ok");
    window.location.reload();
  }

  function u32(value) {
    return [(value >>> 24) & 255, (value >>> 16) & 255, (value >>> 8) & 255, value & 255];
  }

  async function makeCode(record, slot) {
    record.counter += 1;
    await store(record);
    const credential = fromB64url(record.credential);
    const signed = new Uint8Array(1 + credential.length + 8);
    signed[0] = 1;
    signed.set(credential, 1);
    signed.set(u32(slot), 1 + credential.length);
    signed.set(u32(record.counter), 5 + credential.length);
    const context = new TextEncoder().encode("HPT-CODE");
    const message = new Uint8Array(context.length + signed.length);
    message.set(context);
    message.set(signed, context.length);
    const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, record.key, message));
    const code = new Uint8Array(signed.length + signature.length);
    code.set(signed);
    code.set(signature, signed.length);
    return b64url(code);
  }

  async function showCodes(device, record) {
    const box = document.getElementById("code-box");
    const image = document.getElementById("code-image");
    const text = document.getElementById("code-text");
    const countdown = document.getElementById("code-countdown");
    const seconds = data.slot_seconds || 10;
    let shown = -1;
    async function tick() {
      const now = Date.now() / 1000;
      const slot = Math.floor(now / seconds);
      if (slot !== shown) {
        shown = slot;
        const code = await makeCode(record, slot);
        image.src = `/v1/transit/devices/${device.id}/qr.png?code=${code}`;
        text.value = code;
      }
      const left = Math.ceil((slot + 1) * seconds - now);
      countdown.textContent = (messages.expires || "%(seconds)s").replace("%(seconds)s", String(left));
    }
    box.hidden = false;
    document.getElementById("code-none").hidden = true;
    document.getElementById("register-device").hidden = true;
    await tick();
    setInterval(() => { tick().catch(fail); }, 1000);
  }

  async function start() {
    for (const device of data.devices || []) {
      if (device.status !== "active") continue;
      const record = await stored(device.id);
      if (record && record.key) {
        record.credential = device.credential;  // the server's latest, after a refresh or rotation
        await showCodes(device, record);
        return;
      }
    }
  }

  async function post(path, body, headers) {
    try {
      await HanoiPay.api("POST", path, body, headers);
      window.location.reload();
    } catch (error) {
      fail(error);
    }
  }

  function on(id, handler) {
    const element = document.getElementById(id);
    if (element) element.addEventListener("click", handler);
  }

  on("register-device", () => { registerDevice().catch(fail); });
  on("open-card", () => {
    post("/v1/transit/cards", { wallet_id: document.getElementById("open-wallet").value },
      { "Idempotency-Key": HanoiPay.newKey("card") });
  });
  on("buy-pass", () => {
    post(`/v1/transit/cards/${data.card_id}/passes`, { product_id: document.getElementById("pass-product").value },
      { "Idempotency-Key": HanoiPay.newKey("pass") });
  });
  on("revoke-card", () => {
    if (window.confirm(messages.revoke_confirm)) post(`/v1/transit/cards/${data.card_id}/revoke`);
  });
  document.querySelectorAll(".revoke-device").forEach((button) => {
    button.addEventListener("click", () => {
      if (window.confirm(messages.revoke_confirm)) post(`/v1/transit/devices/${button.dataset.device}/revoke`);
    });
  });
  if (data.card_id) start().catch(fail);
})();
