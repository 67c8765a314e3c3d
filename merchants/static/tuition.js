// The parent's page: link a child, pay an invoice from a wallet, show its VietQR code.
(function () {
  "use strict";
  const text = HanoiPay.pageData().messages;
  const message = document.getElementById("message");

  function fail(problem) {
    message.textContent = text.failed + " " + problem.message;
    message.hidden = false;
  }

  document.getElementById("link-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const school = document.getElementById("school").value;
    try {
      await HanoiPay.api("POST", "/v1/schools/" + school + "/guardian_links", {
        student_code: document.getElementById("student-code").value.trim(),
        date_of_birth: document.getElementById("birth-date").value,
      });
      window.location.reload();
    } catch (problem) {
      fail(problem);
    }
  });

  document.addEventListener("click", async function (event) {
    const button = event.target.closest("button[data-pay], button[data-qr]");
    if (!button) return;
    if (button.dataset.qr) {
      const box = document.getElementById("qr-" + button.dataset.qr);
      box.querySelector("img").src = "/v1/invoices/" + button.dataset.qr + "/vietqr.png";
      box.hidden = false;
      return;
    }
    const invoice = button.dataset.pay;
    button.disabled = true;
    try {
      await HanoiPay.api("POST", "/v1/invoices/" + invoice + "/payments",
        { provider: "wallet", wallet_id: document.getElementById("wallet-" + invoice).value },
        { "Idempotency-Key": HanoiPay.newKey("tuition") });
      window.location.reload();
    } catch (problem) {
      button.disabled = false;
      fail(problem);
    }
  });
})();
