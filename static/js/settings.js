// Settings page: show that Verify is working (it can take a few seconds) and prevent double submits.
for (const form of document.querySelectorAll("form[data-busy-form]")) {
  form.addEventListener("submit", () => {
    const button = form.querySelector("button[type=submit]");
    if (!button) return;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    const spinner = document.createElement("span");
    spinner.className = "spinner";
    spinner.setAttribute("aria-hidden", "true");
    button.textContent = button.dataset.busyLabel || button.textContent;
    button.prepend(spinner);
  });
}

// Offer the relay's models as suggestions for the default model (typing any name still works).
const modelInput = document.querySelector("input[data-models-url]");
const modelOptions = document.getElementById("model-options");
if (modelInput && modelOptions) {
  fetch(modelInput.dataset.modelsUrl, { headers: { Accept: "application/json" } })
    .then((response) => (response.ok ? response.json() : { models: [] }))
    .then(({ models = [] }) => {
      for (const id of models) {
        const option = document.createElement("option");
        option.value = id;
        modelOptions.append(option);
      }
    })
    .catch(() => {}); // suggestions are a convenience; the field works without them
}
