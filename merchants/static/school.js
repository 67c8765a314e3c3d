// The school accountant's page: import students or invoices from a CSV file and list every bad row.
(function () {
  "use strict";
  const data = HanoiPay.pageData();
  const text = data.messages;

  // A bad row's problem in the page's language, from its stable code; the API's English otherwise.
  function explain(error) {
    const template = data.errors[error.code];
    if (!template) return error.message;
    return template.replace(/%\((\w+)\)s/g, (_, name) => String(error[name] ?? ""));
  }

  document.getElementById("import-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const kind = document.getElementById("import-kind").value;
    const file = document.getElementById("import-file").files[0];
    const result = document.getElementById("import-result");
    const table = document.getElementById("import-errors");
    const body = table.querySelector("tbody");
    body.replaceChildren();
    table.hidden = true;
    const response = await fetch("/v1/schools/" + data.school_id + "/imports/" + kind, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "text/csv; charset=utf-8", Accept: "application/json" },
      body: await file.arrayBuffer(),
    });
    const answer = await response.json();
    if (response.ok) {
      result.textContent = text.imported.replace("%(count)s", answer.imported);
      return;
    }
    result.textContent = answer.errors ? text.refused.replace("%(count)s", answer.errors.length) : answer.detail;
    for (const error of answer.errors || []) {
      const row = document.createElement("tr");
      for (const value of [error.line, error.column, explain(error)]) {
        const cell = document.createElement("td");
        cell.textContent = String(value);
        row.append(cell);
      }
      body.append(row);
    }
    table.hidden = (answer.errors || []).length === 0;
  });
})();
