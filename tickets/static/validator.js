// The validator page: the checks of tickets/validator.py, in the browser, offline, with the issuer keys
// and deny list it last synced (kept in localStorage). Each decision is queued as a tap and uploaded with
// the validator device's own credentials. Format and reasons: docs/transit-qr.md.
(function () {
  "use strict";

  const data = HanoiPay.pageData();
  const messages = data.messages || {};
  const reasons = messages.reasons || {};
  const SKEW = data.skew_seconds || 20;
  const RESCAN = data.rescan_seconds || 300;
  const MAX_CODE = 213;
  const STATE = "hanoipay-validator";
  const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  const el = (id) => document.getElementById(id);

  function load() {
    try { return JSON.parse(localStorage.getItem(STATE)) || {}; } catch (error) { return {}; }
  }
  function save(state) { localStorage.setItem(STATE, JSON.stringify(state)); }
  let state = load();
  state.seen = state.seen || {};
  state.taps = state.taps || [];

  function fromB64url(text) {
    const clean = text.trim();
    if (!/^[A-Za-z0-9_-]+={0,2}$/.test(clean)) return null;
    const plain = atob(clean.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "") + "===".slice((clean.replace(/=+$/, "").length + 3) % 4));
    return Uint8Array.from(plain, (c) => c.charCodeAt(0));
  }

  function u32(bytes, at) {
    return ((bytes[at] << 24) >>> 0) + (bytes[at + 1] << 16) + (bytes[at + 2] << 8) + bytes[at + 3];
  }

  function cardId(bytes) {
    let value = 0n;
    bytes.forEach((b) => { value = (value << 8n) | BigInt(b); });
    let text = "";
    for (let i = 0; i < 26; i += 1) { text = CROCKFORD[Number(value & 31n)] + text; value >>= 5n; }
    return "card_" + text;
  }

  class Rejected extends Error {}

  function parse(code) {
    if (!code || code.length === 0 || code[0] !== 1) {
      if (code && code.length && code[0] > 1 && code[0] < 16) throw new Rejected("unsupported_version");
      throw new Rejected("malformed");
    }
    if (code.length > MAX_CODE) throw new Rejected("oversized");
    if (code.length < 3) throw new Rejected("truncated");
    if (code[1] !== 1) throw new Rejected(code[1] > 1 && code[1] < 16 ? "unsupported_version" : "malformed");
    const kidLength = code[2];
    if (kidLength < 1 || kidLength > 8) throw new Rejected("malformed");
    const credentialLength = 124 + kidLength;
    const end = 1 + credentialLength + 8;
    if (code.length < end + 64) throw new Rejected("truncated");
    if (code.length > end + 64) throw new Rejected("oversized");
    const c = 1;  // where the credential starts
    const kid = String.fromCharCode(...code.slice(c + 2, c + 2 + kidLength));
    const at = c + 2 + kidLength;
    const credential = {
      kid,
      card: cardId(code.slice(at, at + 16)),
      deviceKey: code.slice(at + 16, at + 48),
      slotSeconds: code[at + 49],
      validFrom: u32(code, at + 50),
      validUntil: u32(code, at + 54),
      body: code.slice(c, at + 58),
      signature: code.slice(at + 58, at + 122),
    };
    if (credential.slotSeconds === 0 || credential.validUntil <= credential.validFrom) throw new Rejected("malformed");
    return {
      credential,
      slot: u32(code, 1 + credentialLength),
      signed: code.slice(0, end),
      signature: code.slice(end),
    };
  }

  async function verify(publicKey, signature, context, body) {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    const message = new Uint8Array(context.length + body.length);
    message.set(new TextEncoder().encode(context));
    message.set(body, context.length);
    return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  }

  function b64url(bytes) {
    let text = "";
    bytes.forEach((b) => { text += String.fromCharCode(b); });
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function decide(payloadText, now) {
    const code = fromB64url(payloadText);
    if (code === null) return { reason: "malformed" };
    let parsed;
    try { parsed = parse(code); } catch (error) { if (error instanceof Rejected) return { reason: error.message }; throw error; }
    const credential = parsed.credential;
    const issuer = (state.keys || {})[credential.kid];
    if (!issuer) return { reason: "unknown_key" };
    if (!(await verify(fromB64url(issuer), credential.signature, "HPT-CRED", credential.body))) {
      return { reason: "bad_credential_signature" };
    }
    const named = { card: credential.card };
    if (now < credential.validFrom - SKEW) return { reason: "credential_not_yet_valid", ...named };
    if (now > credential.validUntil + SKEW) return { reason: "credential_expired", ...named };
    if (!(await verify(credential.deviceKey, parsed.signature, "HPT-CODE", parsed.signed))) {
      return { reason: "bad_signature", ...named };
    }
    const slotStart = parsed.slot * credential.slotSeconds;
    if (now > slotStart + credential.slotSeconds + SKEW) return { reason: "code_expired", ...named };
    if (now < slotStart - SKEW) return { reason: "code_from_future", ...named };
    const deny = state.deny || { revoked_cards: [], cards_in_debt: [], revoked_devices: [] };
    if (deny.revoked_devices.includes(b64url(credential.deviceKey))) return { reason: "device_revoked", ...named };
    if (deny.revoked_cards.includes(credential.card)) return { reason: "card_revoked", ...named };
    if (deny.cards_in_debt.includes(credential.card)) return { reason: "card_in_debt", ...named };
    const last = state.seen[credential.card];
    if (last !== undefined && Math.abs(now - last) < RESCAN) return { reason: "already_scanned", ...named };
    state.seen[credential.card] = now;
    return { reason: "accepted", ...named };
  }

  function show(reason) {
    const box = el("decision");
    const accepted = reason === "accepted";
    box.className = "decision " + (accepted ? "accepted" : "rejected");
    box.dataset.reason = reason;
    box.textContent = accepted ? messages.accepted : `${messages.rejected}: ${reasons[reason] || reason}`;
  }

  function format(template, values) {
    return Object.entries(values).reduce((text, [k, v]) => text.replace(`%(${k})s`, String(v)), template || "");
  }

  function showState(extra) {
    const synced = state.syncedAt
      ? format(messages.synced, {
        keys: Object.keys(state.keys || {}).length,
        denied: state.deny ? state.deny.revoked_cards.length + state.deny.cards_in_debt.length + state.deny.revoked_devices.length : 0,
        time: new Date(state.syncedAt).toLocaleTimeString(HanoiPay.language),
      })
      : messages.never_synced;
    el("sync-state").textContent = [synced, format(messages.queued, { count: state.taps.length }), extra || ""].filter(Boolean).join(" · ");
  }

  async function check(text) {
    const now = Date.now() / 1000;
    const decision = await decide(text, now);
    show(decision.reason);
    state.taps.push({
      id: HanoiPay.newKey("tap"),
      route_id: el("route").value,
      stop_id: el("stop").value || null,
      direction: el("direction").value,
      tapped_at: new Date(now * 1000).toISOString(),
      payload: text.trim() || "-",
      result: decision.reason,
    });
    save(state);
    showState();
  }

  function credentials() {
    const secret = el("secret").value.trim() || state.secret || "";
    if (secret) { state.secret = secret; save(state); }
    return { Authorization: `Bearer ${secret}` };
  }

  async function sync() {
    const keys = await HanoiPay.api("GET", "/v1/transit/keys");
    const deny = await HanoiPay.api("GET", "/v1/transit/deny_list", undefined, credentials());
    state.keys = Object.fromEntries(keys.keys.map((k) => [k.kid, k.public_key]));
    state.deny = deny;
    state.syncedAt = Date.now();
    save(state);
    showState();
  }

  async function upload() {
    const batch = state.taps.slice(0, 1000).filter((t) => t.payload !== "-");
    const skipped = state.taps.slice(0, 1000).length - batch.length;
    if (batch.length) {
      const answer = await HanoiPay.api("POST", "/v1/transit/taps/batch", { taps: batch }, credentials());
      state.taps = state.taps.slice(batch.length + skipped);
      save(state);
      showState(format(messages.uploaded, { applied: answer.applied, duplicates: answer.duplicates, errors: answer.errors.length }));
    } else {
      state.taps = state.taps.slice(skipped);
      save(state);
      showState();
    }
  }

  function fail(error) {
    showState(`${messages.error}: ${error.detail || error.message || error}`);
  }

  el("check").addEventListener("click", () => {
    check(el("payload").value).catch(fail);
  });
  el("sync").addEventListener("click", () => { sync().catch(fail); });
  el("upload").addEventListener("click", () => { upload().catch(fail); });
  if (state.secret) el("secret").placeholder = "••••••••";

  if ("BarcodeDetector" in window) {
    const scan = el("scan");
    scan.hidden = false;
    scan.addEventListener("click", async () => {
      try {
        const video = el("camera");
        video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
        video.hidden = false;
        await video.play();
        const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        const loop = async () => {
          const found = await detector.detect(video);
          if (found.length) {
            // A binary QR comes back as text with one character per byte.
            const bytes = Uint8Array.from(found[0].rawValue, (c) => c.charCodeAt(0) & 255);
            await check(b64url(bytes));
            setTimeout(loop, 1500);
          } else {
            requestAnimationFrame(() => { loop().catch(fail); });
          }
        };
        await loop();
      } catch (error) {
        fail(error);
      }
    });
  }
  showState();
})();
