// HanoiPay's shared page script: a small client for the JSON API (with the session cookie), money
// formatting in the page's language, and the page's data block. No framework, no build step.
(function () {
  "use strict";

  const language = document.documentElement.lang || "vi";

  class Problem extends Error {
    constructor(status, body) {
      super((body && body.detail) || `HTTP ${status}`);
      this.status = status;
      this.code = (body && body.code) || "http_error";
      this.body = body;
    }
  }

  async function api(method, path, body, headers) {
    const options = { method, credentials: "same-origin", headers: Object.assign({ Accept: "application/json" }, headers || {}) };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok) throw new Problem(response.status, data);
    return data;
  }

  function vnd(amount) {
    return new Intl.NumberFormat(language === "vi" ? "vi-VN" : "en-US").format(amount) + " ₫";
  }

  function pageData() {
    const block = document.getElementById("page-data");
    return block ? JSON.parse(block.textContent) : {};
  }

  function newKey(prefix) {
    const random = crypto.getRandomValues(new Uint8Array(12));
    return prefix + "-" + Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  window.HanoiPay = { api, vnd, pageData, newKey, Problem, language };
})();
