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
