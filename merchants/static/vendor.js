// The vendor's stall page: the live feed (server-sent events, resumed by the browser with Last-Event-ID),
// each payment announced aloud in Vietnamese as stall payment speakers do, today's total, codes per sale,
// and transfers to the stall's static code waiting for confirmation.
(function () {
  "use strict";
  const data = HanoiPay.pageData();
  const text = data.messages;
  const seen = new Set();
  const feed = document.getElementById("feed");
  const status = document.getElementById("feed-status");
  const announcement = document.getElementById("announcement");
  const soundToggle = document.getElementById("sound-toggle");
  let total = data.gross_today;
  let count = data.count_today;
  let soundOn = localStorage.getItem("hanoipay.sound") === "on";

  function spokenAmount(amount) {
    return new Intl.NumberFormat("vi-VN").format(amount) + " đồng";
  }

  function announce(sentence) {
    announcement.textContent = sentence;
    if (soundOn && "speechSynthesis" in window) {
      const utterance = new SpeechSynthesisUtterance(sentence);
      utterance.lang = "vi-VN";
      window.speechSynthesis.speak(utterance);
    }
  }

  function showSound() {
    soundToggle.setAttribute("aria-pressed", soundOn ? "true" : "false");
    soundToggle.textContent = soundOn ? text.sound_on : text.sound_off;
  }

  soundToggle.addEventListener("click", function () {
    soundOn = !soundOn;
    localStorage.setItem("hanoipay.sound", soundOn ? "on" : "off");
    showSound();
  });
  showSound();

  function addToFeed(amount, note) {
    const item = document.createElement("li");
    const money = document.createElement("span");
    money.className = "money";
    money.textContent = HanoiPay.vnd(amount);
    const time = document.createElement("span");
    time.className = "muted";
    time.textContent = " · " + new Date().toLocaleTimeString(HanoiPay.language === "vi" ? "vi-VN" : "en-GB", { hour: "2-digit", minute: "2-digit" }) + " · " + note;
    item.append(money, time);
    feed.prepend(item);
  }

  function paymentArrived(payment) {
    if (payment.purpose_ref !== data.stall_id) return;
    total += payment.amount_received;
    count += 1;
    document.getElementById("today-total").textContent = HanoiPay.vnd(total);
    document.getElementById("today-count").textContent = String(count);
    addToFeed(payment.amount_received, text.received);
    announce("Đã nhận " + spokenAmount(payment.amount_received));
    const sale = document.getElementById("sale-text");
    if (sale.dataset.intent === payment.id) {
      sale.textContent = text.received + ": " + HanoiPay.vnd(payment.amount_received);
      document.getElementById("sale-qr").hidden = true;
    }
  }

  function transferHeld(transfer) {
    addToFeed(transfer.amount, text.waiting);
    announce("Có chuyển khoản " + spokenAmount(transfer.amount) + ", chờ xác nhận");
    refreshWaiting();
  }

  const source = new EventSource(data.feed_url);
  source.addEventListener("open", function () { status.textContent = text.connected; });
  source.addEventListener("error", function () { status.textContent = text.reconnecting; });
  source.addEventListener("payment_intent.succeeded", function (event) {
    const message = JSON.parse(event.data);
    if (seen.has(message.id)) return;
    seen.add(message.id);
    paymentArrived(message.data);
  });
  source.addEventListener("bank_transfer.held", function (event) {
    const message = JSON.parse(event.data);
    if (seen.has(message.id)) return;
    seen.add(message.id);
    transferHeld(message.data);
  });

  // Transfers waiting for the vendor ---------------------------------------------------------------
  const waiting = document.getElementById("waiting");

  async function refreshWaiting() {
    const transfers = (await HanoiPay.api("GET", data.transfers_url)).filter((t) => t.stall_id === data.stall_id);
    waiting.replaceChildren(...transfers.map(function (t) {
      const item = document.createElement("li");
      item.dataset.transfer = t.id;
      const money = document.createElement("span");
      money.className = "money";
      money.textContent = HanoiPay.vnd(t.amount);
      const note = document.createElement("span");
      note.className = "muted";
      note.textContent = " · " + t.description;
      const actions = document.createElement("span");
      actions.className = "row actions";
      const confirm = document.createElement("button");
      confirm.type = "button";
      confirm.className = "primary";
      confirm.dataset.confirm = t.id;
      confirm.textContent = text.confirm;
      const back = document.createElement("button");
      back.type = "button";
      back.className = "danger";
      back.dataset.return = t.id;
      back.textContent = text.send_back;
      actions.append(confirm, back);
      item.append(money, note, actions);
      return item;
    }));
    document.getElementById("waiting-empty").hidden = transfers.length > 0;
  }

  waiting.addEventListener("click", async function (event) {
    const button = event.target.closest("button");
    if (!button) return;
    button.disabled = true;
    try {
      if (button.dataset.confirm) {
        await HanoiPay.api("POST", "/v1/stall_transfers/" + button.dataset.confirm + "/confirm", undefined,
          { "Idempotency-Key": HanoiPay.newKey("confirm") });
      } else if (button.dataset.return) {
        await HanoiPay.api("POST", "/v1/stall_transfers/" + button.dataset.return + "/return",
          { reason: text.send_back_reason }, { "Idempotency-Key": HanoiPay.newKey("return") });
      }
      await refreshWaiting();
    } catch (problem) {
      button.disabled = false;
      status.textContent = text.failed + " " + problem.message;
    }
  });

  // A code for one sale ------------------------------------------------------------------------------
  document.getElementById("sale-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const error = document.getElementById("sale-error");
    error.hidden = true;
    const amount = Number(document.getElementById("sale-amount").value);
    try {
      const sale = await HanoiPay.api("POST", data.sales_url, { amount: amount }, { "Idempotency-Key": HanoiPay.newKey("sale") });
      const qr = document.getElementById("sale-qr");
      qr.src = sale.qr_png_url;
      qr.hidden = false;
      const note = document.getElementById("sale-text");
      note.dataset.intent = sale.payment_intent;
      note.textContent = text.scan.replace("%(amount)s", HanoiPay.vnd(sale.amount)).replace("%(reference)s", sale.reference);
      document.getElementById("sale").hidden = false;
    } catch (problem) {
      error.textContent = text.failed + " " + problem.message;
      error.hidden = false;
    }
  });
})();
