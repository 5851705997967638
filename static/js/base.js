// Behaviour shared by every page: the language switch submits itself, notices can be dismissed.
// Loaded as a module by base.html; inline scripts and handlers are blocked by the CSP.

function initLanguageSwitch(form) {
  const select = form.querySelector("select");
  if (!select) return;
  // CSS tucks the submit button away until it is focused; see .language-switch.is-enhanced.
  form.classList.add("is-enhanced");
  select.addEventListener("change", () => {
    // requestSubmit runs constraint validation and submit listeners, unlike submit().
    if (typeof form.requestSubmit === "function") form.requestSubmit();
    else form.submit();
  });
}

function initNotice(notice) {
  const button = notice.querySelector("[data-dismiss]");
  if (!button) return;
  // The button stays hidden without JavaScript, where it could not do anything.
  button.hidden = false;
  button.addEventListener("click", () => {
    // Keep keyboard focus somewhere sensible once the notice is gone.
    const next = notice.nextElementSibling?.querySelector("[data-dismiss]");
    notice.remove();
    (next || document.getElementById("content"))?.focus();
  });
}

document.querySelectorAll("form[data-autosubmit]").forEach(initLanguageSwitch);
document.querySelectorAll("[data-dismissible]").forEach(initNotice);
