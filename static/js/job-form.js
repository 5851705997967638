// Job forms: show only the fields that apply to the chosen mode. The page lists them
// (JobKind.field_modes, as JSON in #job-field-modes): {"field": the mode field's name,
// "modes": {field name: [the mode values in which it is used]}}. A field used in other modes
// only has its row hidden and its controls disabled, so it is not sent: a stale value in it can
// never cause an error the user cannot see, and an irrelevant file is not uploaded. Without
// JavaScript every field shows, as the server expects too.
const config = document.getElementById("job-field-modes");
const form = document.querySelector("form.job-form");

function currentMode(modeField) {
  // A <select> or a group of radio buttons (a RadioNodeList, whose value is the checked one).
  const control = form.elements.namedItem(modeField);
  return control ? control.value : "";
}

function setRow(row, show) {
  row.hidden = !show;
  for (const control of row.querySelectorAll("input, select, textarea, button")) {
    if (!show && !control.disabled) {
      control.disabled = true;
      control.dataset.modeDisabled = "";
    } else if (show && "modeDisabled" in control.dataset) {
      control.disabled = false;
      delete control.dataset.modeDisabled;
    }
  }
}

function apply(modeField, modes, { keepErrors = false } = {}) {
  const mode = currentMode(modeField);
  for (const [name, values] of Object.entries(modes)) {
    const row = form.querySelector(`.form-row[data-field="${CSS.escape(name)}"]`);
    if (!row) continue;
    // On a form sent back with errors, a message is never hidden, even on a field the mode
    // does not use (only a page sent without JavaScript can have one there).
    const hasError = keepErrors && row.querySelector(".errorlist") !== null;
    setRow(row, values.includes(mode) || hasError);
  }
}

if (config && form) {
  const { field: modeField, modes } = JSON.parse(config.textContent);
  form.addEventListener("change", (event) => {
    if (event.target.name === modeField) apply(modeField, modes);
  });
  // A page shown again from the back-forward cache may come back with another mode chosen.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) apply(modeField, modes);
  });
  // On load, also for a form sent back with errors: the rows of the mode it was sent in.
  apply(modeField, modes, { keepErrors: true });
}
