// The finance page: while a run is queued or running, ask the API where it stands every second, move its
// progress bar, and show the finished page once it is done.
(function () {
  "use strict";
  const statuses = HanoiPay.pageData().statuses || {};
  const active = Array.from(document.querySelectorAll(".run")).filter(
    (item) => item.dataset.status === "queued" || item.dataset.status === "running"
  );
  if (!active.length) return;

  async function poll() {
    let finished = true;
    for (const item of active) {
      try {
        const run = await HanoiPay.api("GET", "/v1/reconciliation/runs/" + item.dataset.runId);
        item.querySelector("progress").value = run.progress.percent;
        item.querySelector(".run-status").textContent = statuses[run.status] || run.status;
        item.dataset.status = run.status;
        if (run.status === "queued" || run.status === "running") finished = false;
      } catch (problem) {
        item.querySelector(".run-status").textContent = problem.message;
      }
    }
    if (finished) {
      const url = new URL(window.location.href);
      url.searchParams.delete("notice");
      window.location.replace(url.toString());
    } else {
      window.setTimeout(poll, 1000);
    }
  }
  window.setTimeout(poll, 1000);
})();
